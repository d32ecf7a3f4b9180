"""Initial weights, drawn on the host from an explicit generator.

Xavier (Glorot) uniform, as torchvision's SSD initialises its extra layers
and heads:

    w ~ U(-a, a),   a = gain * sqrt(6 / (fan_in + fan_out)),
    fan_in = C * KH * KW,   fan_out = O * KH * KW      for w of shape (O, C, KH, KW)

which keeps the variance of activations and of gradients about equal from
layer to layer. Kaiming (He) normal, std = gain / sqrt(fan), is the usual
choice for a ReLU backbone trained from scratch (torchvision's VGG: fan_out,
gain sqrt(2)). Biases start at zero.

Weights are always made with NumPy, in float32, from the ``numpy.random.Generator``
passed in, and only then moved to a device: a CPU run and a GPU run with
the same seed start from identical weights.
"""

from __future__ import annotations

import math

import numpy as np


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: (C*KH*KW, O*KH*KW) for (O, C, KH, KW), (C, O) for (O, C)."""
    if len(shape) < 2:
        raise ValueError(f"fans need a weight of shape (O, C, ...); got {tuple(shape)}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"pass a numpy.random.Generator (np.random.default_rng(seed)); got {type(rng).__name__}")


def xavier_uniform(shape, rng, gain: float = 1.0, dtype=np.float32) -> np.ndarray:
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); a NumPy array of ``shape``."""
    _check_rng(rng)
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=tuple(shape)).astype(dtype)


def kaiming_normal(shape, rng, gain: float = math.sqrt(2.0), mode: str = "fan_out", dtype=np.float32) -> np.ndarray:
    """N(0, std^2), std = gain / sqrt(fan) with fan = fan_in or fan_out (``mode``)."""
    _check_rng(rng)
    fan_in, fan_out = fans(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out'; got {mode!r}")
    std = gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    return (rng.standard_normal(size=tuple(shape)) * std).astype(dtype)


def zeros(shape, dtype=np.float32) -> np.ndarray:
    """Zeros (biases)."""
    return np.zeros(tuple(shape), dtype=dtype)


def constant(shape, value: float, dtype=np.float32) -> np.ndarray:
    """Every entry ``value`` (the L2Norm scale starts at 20)."""
    return np.full(tuple(shape), value, dtype=dtype)
