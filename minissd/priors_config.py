"""What fixes a set of default boxes: the paper's formulas for scales, shapes and centres, and ``PriorConfig``.

    scales(m, s_min, s_max)              s_1..s_m, evenly spaced
    box_shapes(s_k, s_(k+1), ratios)     (w, h) of one cell's boxes, in per-cell order
    cell_centres(|f_k|, step, size)      the centres along one axis, paper or Caffe rule
    PriorConfig                          maps, sizes, ratios, steps, clipping; checked when made
    paper_config(feature_maps, ...)      a PriorConfig from the paper's scale formula

Separate from ``priors.py`` (the default boxes themselves, built from a
config) and ``priors_presets.py`` (the named configs): this is the part both
of them build on, so it imports neither. Everything here is re-exported by
``minissd.priors``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from .validate import check_number, format_value

FLOAT32_MAX = float(np.finfo(np.float32).max)  # a Python float: comparing with it never casts to float32


def scales(m: int, s_min: float = 0.2, s_max: float = 0.9) -> list[float]:
    """The paper's m scales s_1..s_m, evenly spaced from s_min to s_max.

    >>> [round(s, 2) for s in scales(6)]
    [0.2, 0.34, 0.48, 0.62, 0.76, 0.9]
    """
    m = _positive_integer(m, "m", "scales", "the number of feature maps")
    s_min = check_number(s_min, "s_min", "scales", rule="a scale is a fraction of the image side")
    s_max = check_number(s_max, "s_max", "scales", rule="a scale is a fraction of the image side")
    if not 0 < s_min <= s_max:
        raise ValueError(f"scales: need 0 < s_min <= s_max; got s_min={format_value(s_min)}, "
                         f"s_max={format_value(s_max)}")
    if m == 1:
        return [float(s_min)]
    step = (s_max - s_min) / (m - 1)
    return [float(s_min + step * (k - 1)) for k in range(1, m + 1)]


def _is_positive_integer(value) -> bool:
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real) and math.isfinite(value)
            and value >= 1 and int(value) == value)


def _positive_integer(value, name: str, function: str, rule: str) -> int:
    """An integer >= 1 (3.0 is accepted as 3), or a ValueError naming ``name`` and its value."""
    if not _is_positive_integer(value):
        raise ValueError(f"{function}: {name} = {value!r} must be a positive integer ({rule})")
    return int(value)


def _positive(value, name: str, function: str, rule: str) -> float:
    """A finite number > 0, or a ValueError / TypeError naming ``name`` and its value."""
    number = check_number(value, name, function, rule=rule)
    if number <= 0:
        raise ValueError(f"{function}: {name} = {format_value(number)} must be > 0 ({rule})")
    return number


def _aspect_ratios(aspect_ratios, name: str, function: str) -> tuple[float, ...]:
    if isinstance(aspect_ratios, (str, bytes)) or not hasattr(aspect_ratios, "__iter__"):
        raise TypeError(f"{function}: {name} = {aspect_ratios!r} must be a sequence of aspect ratios")
    return tuple(_positive(a, f"{name}[{i}]", function, "an aspect ratio a = w / h is > 0")
                 for i, a in enumerate(aspect_ratios))


def box_shapes(scale: float, next_scale: float, aspect_ratios=(2, 3)) -> list[tuple[float, float]]:
    """(width, height) of one cell's default boxes, in per-cell order.

    [s_k square, s'_k square, then for each a in ``aspect_ratios``: a, 1/a],
    with w = s * sqrt(a), h = s / sqrt(a), s'_k = sqrt(s_k * s_(k+1)).
    """
    scale = _positive(scale, "scale", "box_shapes", "s_k is a fraction of the image side")
    next_scale = _positive(next_scale, "next_scale", "box_shapes", "s_(k+1) is a fraction of the image side")
    aspect_ratios = _aspect_ratios(aspect_ratios, "aspect_ratios", "box_shapes")
    extra = math.sqrt(scale * next_scale)
    shapes = [(scale, scale), (extra, extra)]
    for ratio in aspect_ratios:
        root = math.sqrt(ratio)
        shapes.append((scale * root, scale / root))  # a
        shapes.append((scale / root, scale * root))  # 1 / a
    return shapes


def boxes_per_cell(aspect_ratios) -> int:
    """Default boxes per feature-map cell: 2 squares + 2 per aspect ratio."""
    return 2 + 2 * len(aspect_ratios)


def cell_centres(size: int, step: float | None = None, image_size: int | None = None) -> np.ndarray:
    """Centres along one axis of a |f_k| = ``size`` feature map, normalised.

    Paper:  (i + 0.5) / size.   Caffe / torchvision: (i + 0.5) * step / image_size.
    """
    size = _positive_integer(size, "size", "cell_centres", "the side |f_k| of the map")
    index = np.arange(size, dtype=np.float64) + 0.5
    if step is None:
        return index / size
    if image_size is None:
        raise ValueError("cell_centres: the step rule needs image_size")
    step = _positive(step, "step", "cell_centres", "the pixel distance between cell centres")
    image_size = _positive(image_size, "image_size", "cell_centres", "the input side in pixels")
    return index * step / image_size


@dataclass(frozen=True)
class PriorConfig:
    """Everything that fixes a set of default boxes.

    feature_maps:  side |f_k| of each square feature map, e.g. (38, 19, ...).
    min_sizes:     s_k of each map, normalised by the image size.
    max_sizes:     s_(k+1) of each map (the extra box is sqrt(s_k * s_(k+1))).
    aspect_ratios: per map, the ratios a > 1 used as a and 1/a, e.g. ((2,), (2, 3)).
    steps:         per map, the pixel step of the Caffe centre rule; None for
                   the paper's (i + 0.5) / |f_k|.
    image_size:    the square input side in pixels.
    clip:          False, "corners" (clip xyxy to [0, 1], as Caffe's option)
                   or "size" (clamp w and h to [0, 1], as torchvision).
    """

    name: str
    image_size: int
    feature_maps: tuple[int, ...]
    min_sizes: tuple[float, ...]
    max_sizes: tuple[float, ...]
    aspect_ratios: tuple[tuple[float, ...], ...]
    steps: tuple[float, ...] | None = None
    clip: bool | str = False
    description: str = field(default="", compare=False)

    def __post_init__(self):
        where = f"PriorConfig {self.name!r}"
        for label in ("feature_maps", "min_sizes", "max_sizes", "aspect_ratios") + (
                ("steps",) if self.steps is not None else ()):
            values = getattr(self, label)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
                raise TypeError(f"{where}: {label} = {values!r} must be a sequence, one entry per feature map")
        count = len(self.feature_maps)
        for label, values in (
            ("min_sizes", self.min_sizes),
            ("max_sizes", self.max_sizes),
            ("aspect_ratios", self.aspect_ratios),
        ) + ((("steps", self.steps),) if self.steps is not None else ()):
            if len(values) != count:
                raise ValueError(
                    f"{where}: {label} has {len(values)} entries "
                    f"but there are {count} feature maps"
                )
        if not _is_positive_integer(self.image_size):
            raise ValueError(f"{where}: image_size = {self.image_size!r} must be a positive integer (pixels)")
        for k, f in enumerate(self.feature_maps):
            if not _is_positive_integer(f):
                raise ValueError(f"{where}: feature_maps[{k}] = {f!r}: feature map sizes must be positive integers")
        for label, values, rule in (
            ("min_sizes", self.min_sizes, "sizes are fractions of the image side, > 0"),
            ("max_sizes", self.max_sizes, "sizes are fractions of the image side, > 0"),
        ) + ((("steps", self.steps, "steps are pixel distances, > 0"),) if self.steps is not None else ()):
            for k, value in enumerate(values):
                _positive(value, f"{label}[{k}]", where, rule)
        for k, ratios in enumerate(self.aspect_ratios):
            _aspect_ratios(ratios, f"aspect_ratios[{k}]", where)
            shapes = box_shapes(self.min_sizes[k], self.max_sizes[k], ratios)
            if max(max(shape) for shape in shapes) > FLOAT32_MAX:
                raise ValueError(f"{where}: aspect_ratios[{k}] = {tuple(ratios)} with min_sizes[{k}] = "
                                 f"{self.min_sizes[k]} gives boxes beyond float32 (w = s sqrt(a), h = s / sqrt(a))")
        if self.clip not in (False, True, "corners", "size"):
            raise ValueError(f"{where}: clip must be False, True, 'corners' or 'size'; got {self.clip!r}")

    @property
    def boxes_per_cell(self) -> tuple[int, ...]:
        return tuple(boxes_per_cell(a) for a in self.aspect_ratios)

    @property
    def num_priors(self) -> int:
        return sum(f * f * b for f, b in zip(self.feature_maps, self.boxes_per_cell))


def paper_config(
    feature_maps,
    s_min: float = 0.2,
    s_max: float = 0.9,
    aspect_ratios=None,
    image_size: int = 300,
    name: str = "paper",
) -> PriorConfig:
    """A config from the paper's formula: s_k evenly spaced, centres (i + 0.5) / |f_k|.

    s_(m+1), needed by the last map's extra box, continues the same formula
    (for m = 6: 0.9 + 0.14 = 1.04). ``aspect_ratios`` defaults to (2, 3) on
    every map, the paper's full set {1, 2, 3, 1/2, 1/3}.
    """
    if isinstance(feature_maps, (str, bytes)) or not hasattr(feature_maps, "__len__"):
        raise TypeError(f"paper_config: feature_maps = {feature_maps!r} must be a sequence of map sizes")
    for k, f in enumerate(feature_maps):
        if not _is_positive_integer(f):
            raise ValueError(f"paper_config: feature_maps[{k}] = {f!r}: feature map sizes must be positive integers")
    m = len(feature_maps)
    if m < 1:
        raise ValueError("paper_config: feature_maps is empty; give at least one feature map size")
    s = scales(m, s_min, s_max)
    step = (s_max - s_min) / (m - 1) if m > 1 else 0.0
    s_next = s[1:] + [s[-1] + step if m > 1 else s[-1]]
    if aspect_ratios is None:
        aspect_ratios = [(2, 3)] * m
    if isinstance(aspect_ratios, (str, bytes)) or not hasattr(aspect_ratios, "__len__"):
        raise TypeError(f"paper_config: aspect_ratios = {aspect_ratios!r} must be one sequence of ratios per map")
    aspect_ratios = [_aspect_ratios(a, f"aspect_ratios[{k}]", "paper_config") for k, a in enumerate(aspect_ratios)]
    return PriorConfig(
        name=name,
        image_size=image_size,
        feature_maps=tuple(int(f) for f in feature_maps),
        min_sizes=tuple(s),
        max_sizes=tuple(s_next),
        aspect_ratios=tuple(tuple(a) for a in aspect_ratios),
        steps=None,
    )
