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

Files: ``priors_config.py`` holds the formulas and ``PriorConfig``,
``priors_presets.py`` the named configs (``PRESETS``); this module builds the
boxes from either and re-exports both.

Output: (P, 4) cxcywh, normalised to [0, 1], float32, NumPy (models move it).
"""

from __future__ import annotations

import math

import numpy as np

from .priors_config import (  # noqa: F401 - re-exported: minissd.priors is where they are imported from
    FLOAT32_MAX,
    PriorConfig,
    box_shapes,
    boxes_per_cell,
    cell_centres,
    paper_config,
    scales,
)
from .priors_presets import PRESETS


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
