"""Box algebra: formats, area, IoU, and SSD's offset encoding.

Formats (docs/conventions.md):
    xyxy    (x1, y1, x2, y2): corners; ground truth, decoded detections, IoU, NMS.
    cxcywh  (cx, cy, w, h):   centre and size; default boxes (priors).
Inside the model every coordinate is normalised to [0, 1] by the image size;
pixels appear only at the edges (annotations in, detections out, plots).

Encoding (Liu et al. 2016, eq. 2) of a ground-truth box g against a default
box d, with the "variances" that every implementation divides by:

    g_hat_cx = (g_cx - d_cx) / (d_w * v_center)
    g_hat_cy = (g_cy - d_cy) / (d_h * v_center)
    g_hat_w  = log(g_w / d_w) / v_size
    g_hat_h  = log(g_h / d_h) / v_size

with (v_center, v_size) = (0.1, 0.2) by default. ``decode`` inverts it.
"""

from __future__ import annotations

import math

from .backend import get_array_module
from .validate import as_float_array, check_finite, check_last_axis, check_variances, first_true, format_row

DEFAULT_VARIANCES = (0.1, 0.2)

# decode clamps the size exponent l_w * v_size (= log(w / d_w)) at log(1000 / 16), as torchvision's
# BoxCoder does: a decoded box is at most 62.5 times its default box, and exp never overflows.
DECODE_LOG_SIZE_CLAMP = math.log(1000.0 / 16)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

def check_boxes(boxes, name: str = "boxes", fmt: str = "xyxy", function: str | None = None):
    """Raise ValueError unless ``boxes`` is a valid (..., 4) array of boxes.

    Valid: last axis of length 4, every coordinate finite, and (xyxy)
    x2 >= x1 and y2 >= y1, or (cxcywh) w >= 0 and h >= 0. Zero-area boxes are
    allowed. The message names the first offending box by its index, after
    ``function`` when given: "iou: a[2] = [0.5, 0.1, 0.4, 0.9] breaks x2 >= x1 ...".
    Returns ``boxes`` (a list or an integer array converted to float32) so
    calls can be chained. One host sync on a GPU.
    """
    prefix = f"{function}: " if function else ""
    if fmt not in ("xyxy", "cxcywh"):
        raise ValueError(f"{prefix}unknown box format {fmt!r}: expected 'xyxy' or 'cxcywh'")
    boxes = as_float_array(boxes, name, function or "check_boxes")
    xp = get_array_module(boxes)
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{prefix}{name} must have shape (..., 4); got {tuple(boxes.shape)}")
    if boxes.size == 0:
        return boxes
    finite = xp.isfinite(boxes).all(axis=-1)
    if fmt == "xyxy":
        ordered = (boxes[..., 2] >= boxes[..., 0]) & (boxes[..., 3] >= boxes[..., 1])
        rule = "x2 >= x1 and y2 >= y1"
    else:
        ordered = (boxes[..., 2] >= 0) & (boxes[..., 3] >= 0)
        rule = "w >= 0 and h >= 0"
    index = first_true(~(finite & ordered))  # one host sync; validation is for user data, not hot loops
    if index is not None:
        where = index[0] if len(index) == 1 else index
        why = "is not finite" if not bool(finite[index]) else f"breaks {rule}"
        raise ValueError(f"{prefix}{name}[{where}] = {format_row(boxes[index])} {why} ({fmt} format)")
    return boxes


def _pair(a, b, function: str, names=("a", "b")):
    """Both arguments as float arrays of one device, each (A, 4) / (B, 4)."""
    xp = get_array_module(a, b)
    a = as_float_array(a, names[0], function, xp)
    b = as_float_array(b, names[1], function, xp)
    for name, array, letter in ((names[0], a, "A"), (names[1], b, "B")):
        check_last_axis(array, name, function)
        check_last_axis(array, name, function, ndim=2, layout=f"({letter}, 4)")
    return a, b


# --------------------------------------------------------------------------
# formats and area
# --------------------------------------------------------------------------

def _xyxy_to_cxcywh(boxes, xp):
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    size = boxes[..., 2:] - boxes[..., :2]
    return xp.concatenate([centre, size], axis=-1)


def _cxcywh_to_xyxy(boxes, xp):
    half = boxes[..., 2:] / 2
    return xp.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def _area(boxes, xp):
    width = xp.clip(boxes[..., 2] - boxes[..., 0], 0, None)
    height = xp.clip(boxes[..., 3] - boxes[..., 1], 0, None)
    return width * height


def xyxy_to_cxcywh(boxes, validate: bool = True):
    """(..., 4) corners -> (..., 4) centre and size.

    Lists and integer arrays become float32. ``validate`` checks that every
    box is finite with x2 >= x1, y2 >= y1 (one host sync on a GPU); the
    library's own calls on boxes it made pass False.
    """
    boxes = as_float_array(boxes, "boxes", "xyxy_to_cxcywh")
    check_last_axis(boxes, "boxes", "xyxy_to_cxcywh")
    if validate:
        check_boxes(boxes, "boxes", "xyxy", function="xyxy_to_cxcywh")
    return _xyxy_to_cxcywh(boxes, get_array_module(boxes))


def cxcywh_to_xyxy(boxes, validate: bool = True):
    """(..., 4) centre and size -> (..., 4) corners.

    Lists and integer arrays become float32. ``validate`` checks that every
    box is finite with w >= 0, h >= 0 (one host sync on a GPU).
    """
    boxes = as_float_array(boxes, "boxes", "cxcywh_to_xyxy")
    check_last_axis(boxes, "boxes", "cxcywh_to_xyxy")
    if validate:
        check_boxes(boxes, "boxes", "cxcywh", function="cxcywh_to_xyxy")
    return _cxcywh_to_xyxy(boxes, get_array_module(boxes))


def area(boxes, validate: bool = True):
    """(..., 4) xyxy -> (...) area; zero for boxes of zero width or height.

    ``validate`` refuses non-finite and inverted (x2 < x1) boxes; without it
    an inverted box has area 0.
    """
    boxes = as_float_array(boxes, "boxes", "area")
    check_last_axis(boxes, "boxes", "area")
    if validate:
        check_boxes(boxes, "boxes", "xyxy", function="area")
    return _area(boxes, get_array_module(boxes))


def clip_boxes(boxes, low: float = 0.0, high: float = 1.0):
    """(..., 4) xyxy with every coordinate clipped to [low, high]."""
    boxes = as_float_array(boxes, "boxes", "clip_boxes")
    check_last_axis(boxes, "boxes", "clip_boxes")
    if not low <= high:
        raise ValueError(f"clip_boxes: need low <= high; got low = {low}, high = {high}")
    return get_array_module(boxes).clip(boxes, low, high)


# --------------------------------------------------------------------------
# IoU
# --------------------------------------------------------------------------

def _intersection(a, b, xp):
    """(A, 4), (B, 4) xyxy -> (A, B) overlap areas.

    Coordinate by coordinate, (A, 1) columns against (B,) rows: the same operations on the same
    numbers as clip(min(corners) - max(corners), 0) on (A, B, 2) arrays, 4-8x faster (no 2-wide
    last axis to stride through).
    """
    width = xp.minimum(a[:, 2:3], b[:, 2]) - xp.maximum(a[:, 0:1], b[:, 0])  # (A, B)
    height = xp.minimum(a[:, 3:4], b[:, 3]) - xp.maximum(a[:, 1:2], b[:, 1])  # (A, B)
    xp.maximum(width, 0, out=width)  # no overlap: 0, not a negative width
    xp.maximum(height, 0, out=height)
    width *= height
    return width


def intersection(a, b, validate: bool = True):
    """Pairwise intersection area: (A, 4), (B, 4) xyxy -> (A, B)."""
    a, b = _pair(a, b, "intersection")
    if validate:
        check_boxes(a, "a", function="intersection")
        check_boxes(b, "b", function="intersection")
    return _intersection(a, b, get_array_module(a, b))


def iou(a, b, validate: bool = True):
    """Pairwise intersection over union: (A, 4), (B, 4) xyxy -> (A, B).

        IoU(a, b) = |a ∩ b| / (|a| + |b| - |a ∩ b|)

    A pair whose union is empty (two zero-area boxes) has IoU 0, so a
    zero-area box never matches anything. Lists and integer arrays become
    float32 (an integer IoU would be 0 or 1). ``validate=False`` skips the
    value check (one host sync on a GPU) for boxes already known to be valid;
    shapes are always checked.
    """
    a, b = _pair(a, b, "iou")
    if validate:
        check_boxes(a, "a", function="iou")
        check_boxes(b, "b", function="iou")
    return iou_unchecked(a, b)


def iou_unchecked(a, b, area_b=None):
    """``iou`` without any check: (A, 4), (B, 4) xyxy float arrays -> (A, B).

    area_b: (B,) ``area(b)`` when the caller has it already (matching many images against the
    same default boxes computes it once); the result is the same either way.
    """
    xp = get_array_module(a, b)
    inter = _intersection(a, b, xp)  # (A, B)
    area_b = _area(b, xp) if area_b is None else area_b  # (B,)
    union = _area(a, xp)[:, None] + area_b[None, :] - inter  # (A, B)
    positive = union > 0
    return xp.where(positive, inter / xp.where(positive, union, 1), 0).astype(
        xp.result_type(a.dtype, b.dtype), copy=False
    )


# --------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------

def _boxes_and_priors(boxes, priors, function: str, boxes_name: str):
    """(..., P, 4) boxes and (P, 4) priors as float arrays of one device, shapes checked."""
    xp = get_array_module(boxes, priors)
    boxes = as_float_array(boxes, boxes_name, function, xp)
    priors = as_float_array(priors, "priors_cxcywh", function, xp)
    check_last_axis(priors, "priors_cxcywh", function, ndim=2, layout="(P, 4)")
    count = priors.shape[0]
    if boxes.ndim < 2 or boxes.shape[-1] != 4 or boxes.shape[-2] != count:
        raise ValueError(f"{function}: {boxes_name} must have shape (..., P, 4) with P = {count}, one row per "
                         f"default box of priors_cxcywh; got {tuple(boxes.shape)}")
    return boxes, priors, xp


def encode(boxes_xyxy, priors_cxcywh, variances=DEFAULT_VARIANCES, validate: bool = True):
    """Offsets g_hat of ground-truth boxes relative to default boxes.

    boxes_xyxy:    (..., P, 4) or (P, 4) ground truth, one per default box.
    priors_cxcywh: (P, 4) default boxes.
    Returns (..., P, 4) offsets (g_hat_cx, g_hat_cy, g_hat_w, g_hat_h).

    The log of the size ratio needs boxes and default boxes of positive
    width and height; a zero-size one raises ValueError naming it (matching
    never assigns one). ``validate=False`` skips the value checks (a host
    sync on a GPU); shapes and variances are always checked.
    """
    boxes_xyxy, priors_cxcywh, xp = _boxes_and_priors(boxes_xyxy, priors_cxcywh, "encode", "boxes_xyxy")
    v_center, v_size = check_variances(variances, "encode")
    if validate:
        check_boxes(boxes_xyxy, "boxes_xyxy", function="encode")
        check_boxes(priors_cxcywh, "priors_cxcywh", fmt="cxcywh", function="encode")
        for name, degenerate in (
            ("boxes_xyxy", (boxes_xyxy[..., 2] <= boxes_xyxy[..., 0]) | (boxes_xyxy[..., 3] <= boxes_xyxy[..., 1])),
            ("priors_cxcywh", (priors_cxcywh[:, 2] <= 0) | (priors_cxcywh[:, 3] <= 0)),
        ):
            index = first_true(degenerate)
            if index is not None:
                raise ValueError(
                    f"encode: {name}[{index[0] if len(index) == 1 else index}] has zero width or "
                    "height; its log size ratio is undefined, so it cannot be encoded"
                )
    g = _xyxy_to_cxcywh(boxes_xyxy, xp)  # (..., P, 4)
    d = priors_cxcywh
    centre = (g[..., :2] - d[:, :2]) / (d[:, 2:] * v_center)
    size = xp.log(g[..., 2:] / d[:, 2:]) / v_size
    return xp.concatenate([centre, size], axis=-1)


def decode(loc, priors_cxcywh, variances=DEFAULT_VARIANCES, validate: bool = True):
    """Boxes from predicted offsets: the inverse of ``encode``.

    loc:           (..., P, 4) offsets (l_cx, l_cy, l_w, l_h).
    priors_cxcywh: (P, 4) default boxes.
    Returns (..., P, 4) xyxy boxes:
        cx = d_cx + l_cx * v_center * d_w,   w = d_w * exp(min(l_w * v_size, log(1000 / 16)))

    The size exponent is clamped at ``DECODE_LOG_SIZE_CLAMP`` = log(1000 / 16),
    as torchvision does: a box is at most 62.5 times its default box wide or
    tall, and an untrained or diverging network's huge l_w gives a finite box
    instead of an overflow in exp. Below the clamp decode inverts encode exactly.
    ``validate`` checks that loc is finite and the default boxes valid (one
    host sync on a GPU); post-processing, which has checked them, passes False.
    """
    loc, priors_cxcywh, xp = _boxes_and_priors(loc, priors_cxcywh, "decode", "loc")
    v_center, v_size = check_variances(variances, "decode")
    if validate:
        check_finite({"loc": loc}, "decode", "offsets must be finite")
        check_boxes(priors_cxcywh, "priors_cxcywh", fmt="cxcywh", function="decode")
    d = priors_cxcywh
    centre = d[:, :2] + loc[..., :2] * v_center * d[:, 2:]
    size = d[:, 2:] * xp.exp(xp.minimum(loc[..., 2:] * v_size, DECODE_LOG_SIZE_CLAMP))
    return _cxcywh_to_xyxy(xp.concatenate([centre, size], axis=-1), xp)


def iou_batched(a, b):
    """Pairwise IoU within each batch entry: (..., A, 4), (..., B, 4) xyxy -> (..., A, B).

    The same arithmetic as ``iou``, operation for operation, so each entry is
    bit-identical to ``iou(a[n], b[n])``; leading axes broadcast. No input
    check (no host sync): the batched matching and NMS call it on boxes they
    have produced or checked themselves. The coordinates are taken apart into
    contiguous (..., A) / (..., B) arrays and the (..., A, B) temporaries are
    reused in place: for NMS's (G, 400, 400) tables that is several times faster
    than broadcasting strided (..., A, 1, 4) slices.
    """
    xp = get_array_module(a, b)
    a_x1, a_y1, a_x2, a_y2 = (xp.ascontiguousarray(a[..., i])[..., :, None] for i in range(4))  # (..., A, 1)
    b_x1, b_y1, b_x2, b_y2 = (xp.ascontiguousarray(b[..., i])[..., None, :] for i in range(4))  # (..., 1, B)
    inter = xp.minimum(a_x2, b_x2)  # (..., A, B), becomes the width, then the intersection
    inter -= xp.maximum(a_x1, b_x1)
    xp.clip(inter, 0, None, out=inter)
    height = xp.minimum(a_y2, b_y2)  # (..., A, B)
    height -= xp.maximum(a_y1, b_y1)
    xp.clip(height, 0, None, out=height)
    inter *= height
    union = height  # reuse the buffer: |a| + |b| - |a n b|, summed in iou's order
    xp.add(_area(a, xp)[..., :, None], _area(b, xp)[..., None, :], out=union)
    union -= inter
    positive = union > 0
    return xp.where(positive, inter / xp.where(positive, union, 1), 0).astype(
        xp.result_type(a.dtype, b.dtype), copy=False
    )
