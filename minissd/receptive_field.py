"""Theoretical receptive field of a stack of layers: which input pixels one feature-map cell can see.

Three numbers describe where one output pixel looks, in input pixels, along
one axis (the same along the other, every SSD layer being square):

    size   side of the window of input pixels that can change the output pixel
    jump   input pixels between two neighbouring output pixels (the map's stride)
    start  centre of output pixel 0 of the map, in input coordinates where
           input pixel i covers [i, i + 1) and has its centre at i + 0.5

A layer with kernel k, stride s, padding p and dilation d spans
k_eff = d (k - 1) + 1 of its input's pixels, so

    size'  = size + (k_eff - 1) * jump
    jump'  = jump * s
    start' = start + ((k_eff - 1) / 2 - p) * jump

starting from the image itself: size 1, jump 1, start 0.5. Output pixel i of
a map then sees the window centred at start + i * jump, size pixels wide
(clipped by the image border: padding lies outside). ReLU, BatchNorm and
L2Norm act on each pixel alone and change nothing; max pooling counts as a
layer with its kernel, stride and padding (ceil mode only adds a last,
partly empty window, which changes none of the three numbers).

The field is an upper bound: the "effective" receptive field, where the
gradient actually lands, is much smaller and concentrated in the middle
(Luo et al. 2016). Notebook 05 shows both for SSD300.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .nn.layers import BatchNorm2d, Conv2d, L2Norm, MaxPool2d, ReLU, Sequential

PER_PIXEL_LAYERS = (ReLU, BatchNorm2d, L2Norm)


@dataclass(frozen=True)
class ReceptiveField:
    """size and jump in input pixels; start, the centre of output pixel 0 (see the module docstring)."""

    size: int = 1
    jump: int = 1
    start: float = 0.5

    def centre(self, index: int) -> float:
        """Input coordinate of the centre of output pixel ``index``."""
        return self.start + index * self.jump

    def window(self, index: int) -> tuple[float, float]:
        """(first, last) input coordinates of output pixel ``index``'s window, not clipped to the image."""
        centre = self.centre(index)
        return centre - self.size / 2, centre + self.size / 2


def _whole(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"grow: {name} = {value!r} must be an integer >= {minimum}")
    if not math.isfinite(value) or int(value) != value or value < minimum:
        raise ValueError(f"grow: {name} = {value!r} must be an integer >= {minimum}")
    return int(value)


def grow(field: ReceptiveField, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> ReceptiveField:
    """The field after one more layer of the given geometry (the recurrence of the module docstring)."""
    kernel = _whole(kernel, "kernel", 1)
    stride = _whole(stride, "stride", 1)
    padding = _whole(padding, "padding", 0)
    dilation = _whole(dilation, "dilation", 1)
    span = dilation * (kernel - 1) + 1
    return ReceptiveField(size=field.size + (span - 1) * field.jump,
                          jump=field.jump * stride,
                          start=field.start + ((span - 1) / 2 - padding) * field.jump)


def layer_geometry(layer, name: str = "layer"):
    """(kernel, stride, padding, dilation) of a Conv2d or MaxPool2d; None for a per-pixel layer.

    Any other layer is a TypeError naming it: a field computed past a layer
    whose geometry is unknown would be a wrong answer.
    """
    if isinstance(layer, Conv2d):
        kernel = int(layer.params["weight"].shape[-1])
        return kernel, layer.stride, layer.padding, layer.dilation
    if isinstance(layer, MaxPool2d):
        return layer.kernel_size, layer.stride or layer.kernel_size, layer.padding, 1
    if isinstance(layer, PER_PIXEL_LAYERS):
        return None
    raise TypeError(f"receptive field: {name} is a {type(layer).__name__}, whose geometry is unknown "
                    f"(known: Conv2d, MaxPool2d, Sequential and the per-pixel ReLU, BatchNorm2d, L2Norm)")


def through(layer, field: ReceptiveField = ReceptiveField(), name: str = "layer") -> ReceptiveField:
    """The field after ``layer`` (a Sequential is walked layer by layer)."""
    if isinstance(layer, Sequential):
        for child_name, child in layer.layers.items():
            field = through(child, field, child_name)
        return field
    geometry = layer_geometry(layer, name)
    return field if geometry is None else grow(field, *geometry)


def source_receptive_fields(model) -> list[ReceptiveField]:
    """One ReceptiveField per feature map of an ``minissd.models.SSD`` (stage k's output is map k).

    The per-map normalisation (SSD300's L2Norm on conv4_3) is per pixel and
    the heads come after the map, so neither enters.
    """
    stages = getattr(model, "stages", None)
    if stages is None:
        raise TypeError(f"source_receptive_fields: model must be an SSD (with .stages); got {type(model).__name__}")
    names = getattr(model, "stage_names", [f"stage{k}" for k in range(len(stages))])
    fields, field = [], ReceptiveField()
    for name, stage in zip(names, stages):
        field = through(stage, field, name)
        fields.append(field)
    return fields
