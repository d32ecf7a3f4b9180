"""A tiny SSD that trains in minutes on two CPU cores.

Same idea as SSD300 at a fraction of the cost: a small conv backbone whose
maps halve down to 1 x 1, one head per map, the ``tiny`` default boxes
(128 x 128 input, maps 16, 8, 4, 2, 1, 4 boxes per cell: 1364 in all).

    conv1  3x3 s2 3 -> w0, BN, ReLU               128 -> 64
    conv2  3x3 s2 w0 -> w1, BN, ReLU              64 -> 32
    conv3  3x3 w1 -> w2, BN, ReLU, maxpool 2       32 -> 16
    conv4  3x3 w2 -> w3, BN, ReLU                  16        map 0
    conv5  3x3 s2 w3 -> w4, BN, ReLU                8        map 1
    conv6  3x3 s2 w4 -> w5, BN, ReLU                4        map 2
    conv7  3x3 s2 w5 -> w6, BN, ReLU                2        map 3
    conv8  3x3 s2 w6 -> w7, BN, ReLU                1        map 4

Two stride-2 convolutions open the network, instead of convolution + pooling
at full resolution: the first layers are where a CPU spends its time (18 ->
12.6 ms per image for a training step, docs/performance.md). Batch
normalisation is not in the SSD paper; it is here because it lets a small
network train from scratch quickly (``batch_norm=False`` builds
the same network with biases instead).
"""

from __future__ import annotations

import numpy as np

from ..nn import BatchNorm2d, Conv2d, MaxPool2d, ReLU, Sequential
from ..nn.im2col import conv_output_size
from ..priors import get_config
from .ssd import SSD, ModelInfo, MultiBoxHead
from .vgg import _check_classes, _class_names

DEFAULT_WIDTHS = (16, 32, 64, 64, 96, 96, 96, 96)


def _block(index: int, cin: int, cout: int, rng, batch_norm: bool, stride: int = 1, pool: bool = False):
    layers = [(f"conv{index}", Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not batch_norm, rng=rng))]
    if batch_norm:
        layers.append((f"bn{index}", BatchNorm2d(cout)))
    layers.append((f"relu{index}", ReLU(inplace=True)))
    if pool:
        layers.append((f"pool{index}", MaxPool2d(2, 2)))
    return layers


def tiny_ssd(num_classes: int, preset: str = "tiny", class_names=None, widths=DEFAULT_WIDTHS,
             batch_norm: bool = True, seed: int = 0, rng=None) -> SSD:
    """The tiny SSD: (N, 3, 128, 128) -> loc (N, 1364, 4), conf (N, 1364, L) with the default preset.

    num_classes counts the background. widths: the 8 conv widths w0..w7.
    """
    _check_classes(num_classes)
    widths = tuple(int(w) for w in widths)
    if len(widths) != 8 or min(widths) < 1:
        raise ValueError(f"tiny_ssd needs 8 positive conv widths; got {widths}")
    config = get_config(preset)
    rng = rng if rng is not None else np.random.default_rng(seed)
    size = config.image_size
    sides = [size // 8]
    for _ in range(4):
        sides.append(conv_output_size(sides[-1], 3, 2, 1, 1))
    if tuple(sides) != tuple(config.feature_maps):
        raise ValueError(
            f"tiny_ssd makes maps {tuple(sides)} from {size} px, but preset {config.name!r} "
            f"has maps {tuple(config.feature_maps)}"
        )
    stem = (
        _block(1, 3, widths[0], rng, batch_norm, stride=2)
        + _block(2, widths[0], widths[1], rng, batch_norm, stride=2)
        + _block(3, widths[1], widths[2], rng, batch_norm, pool=True)
        + _block(4, widths[2], widths[3], rng, batch_norm)
    )
    stem[0][1].needs_input_grad = False
    stages = [Sequential(*stem)]
    for k in range(4):
        stages.append(Sequential(*_block(5 + k, widths[3 + k], widths[4 + k], rng, batch_norm, stride=2)))
    heads = [MultiBoxHead(widths[3 + k], boxes, num_classes, rng) for k, boxes in enumerate(config.boxes_per_cell)]
    info = ModelInfo(arch="tiny", num_classes=num_classes, preset=config.name,
                     class_names=_class_names(class_names, num_classes),
                     options={"widths": list(widths), "batch_norm": batch_norm, "seed": seed})
    names = [f"conv{4 + k}" for k in range(5)]
    return SSD(info, stages, {}, heads, stage_names=names, prior_config=config)
