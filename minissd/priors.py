"""Default boxes (priors): scales, shapes, centres, presets, and their order.

SSD places a fixed set of default boxes on every cell of several feature maps
(Liu et al. 2016, section 2.2). For the k-th of m feature maps:

    scale     s_k  = s_min + (s_max - s_min) / (m - 1) * (k - 1),   k = 1..m
    shape     w = s_k * sqrt(a),  h = s_k / sqrt(a)   for aspect ratio a = w / h
    extra     s'_k = sqrt(s_k * s_(k+1))              one more square box
    centre    ((i + 0.5) / |f_k|, (j + 0.5) / |f_k|)  the paper's rule, or
              ((i + 0.5) * step_k / image_size, ...)  the Caffe / torchvision rule

Order contract (docs/conventions.md): feature map, then row (y), then column
(x), then the box within the cell, with per-cell order
[s_k, s'_k, a=2, a=1/2, a=3, a=1/3]. The heads of ``minissd.models`` reshape
their NCHW outputs in exactly this order, so prediction p and default box p
always describe the same place.

Output: (P, 4) cxcywh, normalised to [0, 1], float32, NumPy (models move it).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace

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


_SSD300_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
_SSD300_STEPS = (8, 16, 32, 64, 100, 300)
_SSD300_MAPS = (38, 19, 10, 5, 3, 1)


def _ssd512_sizes() -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Caffe's ssd_pascal_512.py: ratios 15..90 % of 512 in steps of 15, and conv4_3 special-cased at
    # 7 % (min) / 15 % (max): 35.84, 76.8, ..., 460.8 px and 76.8, 153.6, ..., 537.6 px. (4 % / 10 % is
    # the COCO script's conv4_3, not VOC's.)
    min_ratio, max_ratio, maps = 15, 90, 7
    step = (max_ratio - min_ratio) // (maps - 2)
    ratios = list(range(min_ratio, max_ratio + 1, step))
    mins = [7.0] + [float(r) for r in ratios]
    maxs = [15.0] + [float(r + step) for r in ratios]
    return tuple(v / 100 for v in mins), tuple(v / 100 for v in maxs)


def _presets() -> dict[str, PriorConfig]:
    paper = replace(
        paper_config(_SSD300_MAPS, 0.2, 0.9, _SSD300_RATIOS, 300, "ssd300-paper"),
        description="SSD300, the paper's scale formula (s_min 0.2, s_max 0.9, m = 6) and centres",
    )
    voc_min = (30, 60, 111, 162, 213, 264)
    voc_max = (60, 111, 162, 213, 264, 315)
    voc = PriorConfig(
        name="ssd300-voc",
        image_size=300,
        feature_maps=_SSD300_MAPS,
        min_sizes=tuple(v / 300 for v in voc_min),
        max_sizes=tuple(v / 300 for v in voc_max),
        aspect_ratios=_SSD300_RATIOS,
        steps=_SSD300_STEPS,
        description="SSD300 as Caffe's VOC model: sizes 30..264 / 60..315 px, pixel steps",
    )
    coco_scales = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
    coco = PriorConfig(
        name="ssd300-coco",
        image_size=300,
        feature_maps=_SSD300_MAPS,
        min_sizes=coco_scales[:-1],
        max_sizes=coco_scales[1:],
        aspect_ratios=_SSD300_RATIOS,
        steps=_SSD300_STEPS,
        description="SSD300 as Caffe's COCO model and torchvision's ssd300_vgg16",
    )
    torchvision = replace(
        coco,
        name="ssd300-torchvision",
        clip="size",
        description="torchvision's ssd300_vgg16: the COCO scales, w and h clamped to [0, 1] as its DefaultBoxGenerator",
    )
    mins512, maxs512 = _ssd512_sizes()
    voc512 = PriorConfig(
        name="ssd512-voc",
        image_size=512,
        feature_maps=(64, 32, 16, 8, 4, 2, 1),
        min_sizes=mins512,
        max_sizes=maxs512,
        aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,)),
        steps=(8, 16, 32, 64, 128, 256, 512),
        description="SSD512 as Caffe's VOC model: sizes 35.84..460.8 / 76.8..537.6 px, pixel steps 8..512",
    )
    tiny = PriorConfig(
        name="tiny",
        image_size=128,
        feature_maps=(16, 8, 4, 2, 1),
        min_sizes=(0.08, 0.18, 0.36, 0.56, 0.76),
        max_sizes=(0.18, 0.36, 0.56, 0.76, 0.96),
        aspect_ratios=((2,), (2,), (2,), (2,), (2,)),
        steps=(8, 16, 32, 64, 128),
        description="the tiny CPU model: 128 x 128 input, maps 16..1, 4 boxes per cell",
    )
    return {c.name: c for c in (paper, voc, coco, torchvision, voc512, tiny)}


PRESETS: dict[str, PriorConfig] = _presets()


def get_config(preset_name_or_config) -> PriorConfig:
    """A PriorConfig from a preset name, or the config itself."""
    if isinstance(preset_name_or_config, PriorConfig):
        return preset_name_or_config
    try:
        return PRESETS[preset_name_or_config]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown default-box preset {preset_name_or_config!r}; "
            f"choose one of {sorted(PRESETS)} or pass a PriorConfig"
        ) from None


def default_boxes(preset_name_or_config, clip: bool | str | None = None) -> np.ndarray:
    """All default boxes of a preset: (P, 4) cxcywh, normalised, float32.

    Order: feature map -> row (y) -> column (x) -> box in the cell, per-cell
    [s_k, s'_k, a=2, a=1/2, a=3, a=1/3]. ``clip`` overrides the config's
    clipping: False, True / "corners" (xyxy clipped to [0, 1]) or "size"
    (w and h clamped to [0, 1], as torchvision does).
    """
    config = get_config(preset_name_or_config)
    clip = config.clip if clip is None else clip
    if clip not in (False, True, "corners", "size"):
        raise ValueError(f"clip must be False, True, 'corners' or 'size'; got {clip!r}")
    per_map = []
    for k, size in enumerate(config.feature_maps):
        step = None if config.steps is None else config.steps[k]
        centres = cell_centres(size, step, config.image_size)  # (f,)
        shapes = np.array(
            box_shapes(config.min_sizes[k], config.max_sizes[k], config.aspect_ratios[k])
        )  # (B, 2)
        if clip == "size":
            shapes = np.clip(shapes, 0.0, 1.0)
        cy, cx = np.meshgrid(centres, centres, indexing="ij")  # (f, f) each, row-major
        cells = np.stack([cx.ravel(), cy.ravel()], axis=1)  # (f*f, 2)
        boxes = np.concatenate(
            [
                np.repeat(cells, len(shapes), axis=0),  # (f*f*B, 2) centre of each box
                np.tile(shapes, (size * size, 1)),  # (f*f*B, 2) size of each box
            ],
            axis=1,
        )  # (f*f*B, 4)
        per_map.append(boxes)
    priors = np.concatenate(per_map, axis=0)  # (P, 4)
    if clip is True or clip == "corners":
        corners = np.concatenate([priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2], 1)
        corners = np.clip(corners, 0.0, 1.0)
        priors = np.concatenate([(corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]], 1)
    too_big = ~(np.abs(priors) <= FLOAT32_MAX).all(axis=1)  # (P,) beyond float32 (a ratio like 1e-300)
    if too_big.any():
        row = int(np.argmax(too_big))
        k = next(k for k, rows in enumerate(prior_slices(config)) if rows.start <= row < rows.stop)
        raise ValueError(f"default_boxes: config {config.name!r} gives default box {row} (feature map {k}) = "
                         f"{priors[row].tolist()}, beyond float32; check aspect_ratios[{k}] and the sizes")
    return priors.astype(np.float32)


def prior_slices(preset_name_or_config) -> list[slice]:
    """For each feature map, the slice of ``default_boxes`` rows it owns."""
    config = get_config(preset_name_or_config)
    slices, start = [], 0
    for size, count in zip(config.feature_maps, config.boxes_per_cell):
        stop = start + size * size * count
        slices.append(slice(start, stop))
        start = stop
    return slices


def describe(preset_name_or_config) -> str:
    """A small text table of a config: map size, step, s_k, s'_k, boxes."""
    config = get_config(preset_name_or_config)
    lines = [
        f"{config.name}: {config.description}".rstrip(": "),
        f"image {config.image_size} px, {config.num_priors} default boxes, clip={config.clip}",
        "  map  step    s_k    s'_k  ratios        boxes/cell  boxes",
    ]
    for k, size in enumerate(config.feature_maps):
        step = "-" if config.steps is None else f"{config.steps[k]:g}"
        extra = math.sqrt(config.min_sizes[k] * config.max_sizes[k])
        per_cell = config.boxes_per_cell[k]
        ratios = ",".join(f"{a:g}" for a in config.aspect_ratios[k])
        lines.append(
            f"  {size:>3}  {step:>4}  {config.min_sizes[k]:.3f}  {extra:.3f}  "
            f"{ratios:<12}  {per_cell:>10}  {size * size * per_cell:>5}"
        )
    return "\n".join(lines)
