"""Numerical gradient checks: centred finite differences in float64.

For any computation out = f(a, b, ...) with a hand-written backward, pick a
random upstream gradient D of out's shape and look at the scalar

    s(a, b, ...) = sum(f(a, b, ...) * D)

Its gradient with respect to a is exactly what the backward returns for
dout = D. Numerically, for every entry a_i:

    ds/da_i ~ (s(a_i + eps) - s(a_i - eps)) / (2 eps)        error O(eps^2)

A random D (not all ones) matters: with ones a backward that, say, swaps two
output positions would still pass. float64 matters too: in float32 the
rounding error of s, divided by 2 eps, swamps the difference.

``check_gradients`` works for one op or for a whole network: give it a
``forward()`` that reads the arrays (it perturbs them in place and restores
them) and a ``backward(dout)`` that returns the analytic gradients by name.

The error is relative, ||a - n|| / (||a|| + ||n||): scale-free, but
meaningless for a gradient that is exactly zero (a conv bias right before a
BatchNorm, which removes any per-channel shift): there the analytic value is
0 and the numerical one is rounding noise, a relative error near 1. Check
such parameters on their own, or arrange the network so they matter. Kinks
(ReLU at 0, ties in a max) need inputs kept away from them.
"""

from __future__ import annotations

import numpy as np

from .. import backend


def _as_tuple(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _scalar(outputs, upstream) -> float:
    return float(sum(float((o * d).sum()) for o, d in zip(_as_tuple(outputs), upstream)))


def numerical_gradient(scalar_fn, array, eps: float = 1e-6, indices=None):
    """Centred differences of ``scalar_fn()`` with respect to the entries of ``array``.

    array:   float64, C-contiguous; perturbed in place one entry at a time, then restored.
    indices: flat indices to differentiate (default: all).
    Returns a NumPy float64 array of array's shape; entries not in ``indices`` are NaN.
    """
    if str(array.dtype) != "float64":
        raise TypeError(f"numerical_gradient runs in float64; got an array of dtype {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array (it perturbs a flat view)")
    flat = array.reshape(-1)  # (size,), a view
    grad = np.full(int(array.size), np.nan)
    for index in range(int(array.size)) if indices is None else indices:
        index = int(index)
        original = float(flat[index])
        flat[index] = original + eps
        plus = scalar_fn()
        flat[index] = original - eps
        minus = scalar_fn()
        flat[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad.reshape(tuple(array.shape))


def relative_error(analytic, numeric) -> float:
    """||a - n|| / (||a|| + ||n||), 0 when both vanish."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    scale = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - n) / scale)


def check_gradients(forward, backward, arrays, rng, eps: float = 1e-6, max_entries: int | None = None):
    """Relative error of each analytic gradient against centred differences.

    forward():      runs the computation on the current contents of ``arrays``;
                    returns an output array or a tuple of them.
    backward(dout): given upstream gradients (same structure as the output),
                    returns a dict name -> gradient for every name in ``arrays``.
    arrays:         dict name -> float64 array that forward reads.
    rng:            numpy Generator for the upstream gradient and the sampled entries.
    max_entries:    check at most this many random entries per array (big networks).
    Returns dict name -> relative error over the checked entries.
    """
    for name, array in arrays.items():
        if str(array.dtype) != "float64":
            raise TypeError(f"check_gradients: {name!r} is {array.dtype}; gradient checks run in float64")
    outputs = _as_tuple(forward())
    upstream = []
    for output in outputs:
        xp = backend.get_array_module(output)
        upstream.append(xp.asarray(rng.standard_normal(tuple(output.shape))))
    upstream = tuple(upstream)
    analytic = backward(upstream if len(upstream) > 1 else upstream[0])
    analytic = {name: backend.to_numpy(grad).copy() for name, grad in analytic.items()}
    errors = {}
    for name, array in arrays.items():
        if name not in analytic:
            raise KeyError(f"check_gradients: backward returned no gradient for {name!r}")
        if tuple(analytic[name].shape) != tuple(array.shape):
            raise ValueError(
                f"check_gradients: gradient of {name!r} has shape {analytic[name].shape}, the array {array.shape}"
            )
        indices = None
        if max_entries is not None and array.size > max_entries:
            indices = rng.choice(int(array.size), size=max_entries, replace=False)
        numeric = numerical_gradient(lambda: _scalar(forward(), upstream), array, eps, indices)
        checked = np.isfinite(numeric)
        errors[name] = relative_error(analytic[name][checked], numeric[checked])
    return errors


def assert_gradients_close(forward, backward, arrays, rng, tolerance: float = 1e-7, **kwargs) -> dict:
    """``check_gradients`` that raises AssertionError naming every gradient above ``tolerance``."""
    errors = check_gradients(forward, backward, arrays, rng, **kwargs)
    bad = {name: error for name, error in errors.items() if not error <= tolerance}
    if bad:
        raise AssertionError(
            "analytic and numerical gradients differ: "
            + ", ".join(f"{name}: relative error {error:.3g}" for name, error in bad.items())
            + f" (tolerance {tolerance:g})"
        )
    return errors
