"""One default box of an explanation: where it sits (map, cell, box in the cell) and its decoding step by step.

    locate_default_box(config, p)                  row p of the priors -> ``DefaultBox``
    decoding_steps(offsets, default_box, ...)      ``minissd.boxes.decode`` of one box -> ``Decoding``

``locate_default_box`` reads a ``PriorConfig`` (the order contract read
backwards), ``decoding_steps`` one row of loc and its default box (the
decoding equations with every intermediate value); neither knows of NMS or of
a detector. Separate from ``explain.py`` (which puts a whole explanation
together) because each answers one question on its own and is tested on its
own in tests/test_explain.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .boxes import DECODE_LOG_SIZE_CLAMP, DEFAULT_VARIANCES
from .priors import cell_centres, get_config, prior_slices
from .validate import check_last_axis, check_variances


@dataclass(frozen=True)
class DefaultBox:
    """Default box ``index`` (row p of the priors) and where it sits.

    map_index k, map_name (the stage that makes the map, when known), map_size |f_k|, step (pixels,
    None for the paper's centres); row i (y) and column j (x) of its cell; box_in_cell b of
    boxes_per_cell, shape "s_k", "s'_k", "a=2", "a=1/2", ... (the per-cell order of
    docs/conventions.md) with its nominal scale s and aspect_ratio a = w / h (w = s sqrt(a),
    h = s / sqrt(a)); cxcywh (4,): the box as the model stores it (after the config's clipping, if
    any); cell_xyxy (4,): the cell's square, normalised, centred on the cell centre; cell_spacing:
    the distance between cell centres, normalised.
    """

    index: int
    map_index: int
    map_name: str | None
    map_size: int
    step: float | None
    row: int
    column: int
    box_in_cell: int
    boxes_per_cell: int
    shape: str
    scale: float
    aspect_ratio: float
    cxcywh: np.ndarray
    cell_xyxy: np.ndarray
    cell_spacing: float


@dataclass(frozen=True)
class Decoding:
    """``minissd.boxes.decode`` for one default box, step by step (arrays in the model's dtype).

    offsets (4,): the raw loc (l_cx, l_cy, l_w, l_h); variances (v_center, v_size); default_box (4,) d, cxcywh.
    centre_shift (2,) = (l_cx v_center d_w, l_cy v_center d_h);  centre (2,) = (d_cx, d_cy) + centre_shift.
    log_size (2,) = (l_w v_size, l_h v_size);  clamped (2,) bool: log_size > log(1000 / 16), cut to it.
    size_factor (2,) = exp(min(log_size, log(1000 / 16)));  size (2,) = (d_w, d_h) * size_factor.
    xyxy (4,) = centre -/+ size / 2, before any clipping.
    clip: whether post-processing clips to [0, 1]; box (4,): the clipped xyxy (xyxy itself without
    clipping), the detection's normalised box; clipped (4,) bool: the coordinates the clip moved.
    image_size (W, H) or None; pixels (4,) = box * (W, H, W, H) (None without an image size).
    """

    offsets: np.ndarray
    variances: tuple
    default_box: np.ndarray
    centre_shift: np.ndarray
    centre: np.ndarray
    log_size: np.ndarray
    clamped: np.ndarray
    size_factor: np.ndarray
    size: np.ndarray
    xyxy: np.ndarray
    clip: bool
    box: np.ndarray
    clipped: np.ndarray
    image_size: tuple | None
    pixels: np.ndarray | None


def locate_default_box(config, index: int, priors=None, map_names=None) -> DefaultBox:
    """Where default box ``index`` of a ``PriorConfig`` (or preset name) sits, and its nominal shape.

    From ``prior_slices`` and the order contract: map k, then the cell (row i, column j) and the box b
    in the cell, p = offset_k + (i |f_k| + j) B_k + b. priors: the (P, 4) default boxes the model uses
    (default: ``default_boxes(config)``), to report the box as stored. map_names: one name per map.
    """
    from .priors import default_boxes

    config = get_config(config)
    if isinstance(index, (bool, np.bool_)) or int(index) != index or not 0 <= index < config.num_priors:
        raise ValueError(f"locate_default_box: index = {index!r} is not a default box of {config.name!r} "
                         f"(0..{config.num_priors - 1})")
    index = int(index)
    k = next(k for k, rows in enumerate(prior_slices(config)) if rows.start <= index < rows.stop)
    side, per_cell = config.feature_maps[k], config.boxes_per_cell[k]
    cell, b = divmod(index - prior_slices(config)[k].start, per_cell)
    row, column = divmod(cell, side)
    step = None if config.steps is None else float(config.steps[k])
    centres = cell_centres(side, step, config.image_size)  # (f,) float64
    spacing = (step / config.image_size) if step is not None else 1.0 / side
    cx, cy = centres[column], centres[row]
    ratios = config.aspect_ratios[k]
    if b < 2:
        shape, ratio = ("s_k", "s'_k")[b], 1.0
        scale = config.min_sizes[k] if b == 0 else math.sqrt(config.min_sizes[k] * config.max_sizes[k])
    else:
        r = float(ratios[(b - 2) // 2])
        shape, ratio = (f"a={r:g}", r) if b % 2 == 0 else (f"a=1/{r:g}", 1.0 / r)
        scale = float(config.min_sizes[k])
    stored = default_boxes(config) if priors is None else np.asarray(to_numpy(priors))
    name = None if map_names is None else str(list(map_names)[k])
    return DefaultBox(index, k, name, side, step, int(row), int(column), int(b), per_cell, shape, float(scale),
                      float(ratio), np.array(stored[index]),
                      np.array([cx - spacing / 2, cy - spacing / 2, cx + spacing / 2, cy + spacing / 2]),
                      float(spacing))


def decoding_steps(offsets, default_box, variances=DEFAULT_VARIANCES, clip: bool = True,
                   image_size=None) -> Decoding:
    """``decode`` of one default box, keeping each intermediate value.

    offsets (4,) (l_cx, l_cy, l_w, l_h); default_box (4,) cxcywh; image_size (W, H) for the pixels.
    The operations are ``decode``'s, in its order and dtype (arrays, so NumPy rounds as it does over all
    default boxes), then post-processing's clip and ``Detector.predict``'s scaling: the result is bit for
    bit the detector's box on the CPU (on a GPU, where the network's decode ran on the device, the last
    bit of exp may differ).
    """
    offsets = np.asarray(to_numpy(offsets))
    d = np.asarray(to_numpy(default_box))
    check_last_axis(offsets, "offsets", "decoding_steps", ndim=1, layout="(4,)")
    check_last_axis(d, "default_box", "decoding_steps", ndim=1, layout="(4,) cxcywh")
    v_center, v_size = check_variances(variances, "decoding_steps")
    centre_shift = offsets[:2] * v_center * d[2:]  # decode: d_cxcy + loc_cxcy * v_center * d_wh
    centre = d[:2] + centre_shift
    log_size = offsets[2:] * v_size
    size_factor = np.exp(np.minimum(log_size, DECODE_LOG_SIZE_CLAMP))
    size = d[2:] * size_factor
    half = size / 2
    xyxy = np.concatenate([centre - half, centre + half])
    box = np.clip(xyxy, 0.0, 1.0) if clip else xyxy
    pixels = box_pixels(box, image_size)
    image_size = None if image_size is None else tuple(int(v) for v in image_size)
    return Decoding(offsets.copy(), (v_center, v_size), d.copy(), centre_shift, centre, log_size,
                    log_size > DECODE_LOG_SIZE_CLAMP, size_factor, size, xyxy, bool(clip), box, box != xyxy,
                    image_size, pixels)


def box_pixels(box, image_size):
    """(4,) normalised xyxy -> float32 pixels of a (W, H) picture, as ``Detector.predict_many`` scales; None
    without an image size."""
    if image_size is None:
        return None
    width, height = image_size
    return (box * np.array([width, height, width, height], dtype=np.float32)).astype(np.float32)
