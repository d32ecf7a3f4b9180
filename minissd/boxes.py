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

from .backend import get_array_module

DEFAULT_VARIANCES = (0.1, 0.2)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

def check_boxes(boxes, name: str = "boxes", fmt: str = "xyxy"):
    """Raise ValueError unless ``boxes`` is a valid (..., 4) array of boxes.

    Valid: last axis of length 4, every coordinate finite, and (xyxy)
    x2 >= x1 and y2 >= y1, or (cxcywh) w >= 0 and h >= 0. Zero-area boxes are
    allowed. The message names the first offending box by its index.
    Returns ``boxes`` unchanged so calls can be chained.
    """
    xp = get_array_module(boxes)
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4); got {tuple(boxes.shape)}")
    if boxes.size == 0:
        return boxes
    finite = xp.isfinite(boxes).all(axis=-1)
    if fmt == "xyxy":
        ordered = (boxes[..., 2] >= boxes[..., 0]) & (boxes[..., 3] >= boxes[..., 1])
        rule = "x2 >= x1 and y2 >= y1"
    elif fmt == "cxcywh":
        ordered = (boxes[..., 2] >= 0) & (boxes[..., 3] >= 0)
        rule = "w >= 0 and h >= 0"
    else:
        raise ValueError(f"unknown box format {fmt!r}: expected 'xyxy' or 'cxcywh'")
    bad = ~(finite & ordered)
    if bool(bad.any()):  # one host sync; validation is for user data, not hot loops
        flat = int(xp.argmax(bad.reshape(-1)))
        index = tuple(int(i) for i in _unravel(flat, bad.shape))
        where = index[0] if len(index) == 1 else index
        values = [float(v) for v in boxes[index]]
        why = "is not finite" if not bool(finite[index]) else f"breaks {rule}"
        raise ValueError(f"{name}[{where}] = {values} {why} ({fmt} format)")
    return boxes


def _unravel(flat_index: int, shape) -> list[int]:
    index = []
    for size in reversed(shape):
        index.append(flat_index % size)
        flat_index //= size
    return index[::-1]


# --------------------------------------------------------------------------
# formats and area
# --------------------------------------------------------------------------

def xyxy_to_cxcywh(boxes):
    """(..., 4) corners -> (..., 4) centre and size."""
    xp = get_array_module(boxes)
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    size = boxes[..., 2:] - boxes[..., :2]
    return xp.concatenate([centre, size], axis=-1)


def cxcywh_to_xyxy(boxes):
    """(..., 4) centre and size -> (..., 4) corners."""
    xp = get_array_module(boxes)
    half = boxes[..., 2:] / 2
    return xp.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def area(boxes):
    """(..., 4) xyxy -> (...) area; zero for degenerate boxes."""
    xp = get_array_module(boxes)
    width = xp.clip(boxes[..., 2] - boxes[..., 0], 0, None)
    height = xp.clip(boxes[..., 3] - boxes[..., 1], 0, None)
    return width * height


def clip_boxes(boxes, low: float = 0.0, high: float = 1.0):
    """(..., 4) xyxy with every coordinate clipped to [low, high]."""
    xp = get_array_module(boxes)
    return xp.clip(boxes, low, high)


# --------------------------------------------------------------------------
# IoU
# --------------------------------------------------------------------------

def intersection(a, b):
    """Pairwise intersection area: (A, 4), (B, 4) xyxy -> (A, B)."""
    xp = get_array_module(a, b)
    top_left = xp.maximum(a[:, None, :2], b[None, :, :2])  # (A, B, 2)
    bottom_right = xp.minimum(a[:, None, 2:], b[None, :, 2:])  # (A, B, 2)
    size = xp.clip(bottom_right - top_left, 0, None)  # (A, B, 2)
    return size[..., 0] * size[..., 1]


def iou(a, b, validate: bool = True):
    """Pairwise intersection over union: (A, 4), (B, 4) xyxy -> (A, B).

        IoU(a, b) = |a ∩ b| / (|a| + |b| - |a ∩ b|)

    A pair whose union is empty (two zero-area boxes) has IoU 0, so a
    zero-area box never matches anything. ``validate=False`` skips the input
    check (one host sync on a GPU) for boxes already known to be valid.
    """
    xp = get_array_module(a, b)
    if validate:
        check_boxes(a, "a")
        check_boxes(b, "b")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"iou expects (A, 4) and (B, 4); got {tuple(a.shape)} and {tuple(b.shape)}")
    inter = intersection(a, b)  # (A, B)
    union = area(a)[:, None] + area(b)[None, :] - inter  # (A, B)
    positive = union > 0
    return xp.where(positive, inter / xp.where(positive, union, 1), 0).astype(
        xp.result_type(a.dtype, b.dtype), copy=False
    )


# --------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------

def encode(boxes_xyxy, priors_cxcywh, variances=DEFAULT_VARIANCES, validate: bool = True):
    """Offsets g_hat of ground-truth boxes relative to default boxes.

    boxes_xyxy:    (..., P, 4) or (P, 4) ground truth, one per default box.
    priors_cxcywh: (P, 4) default boxes.
    Returns (..., P, 4) offsets (g_hat_cx, g_hat_cy, g_hat_w, g_hat_h).

    The log of the size ratio needs boxes of positive width and height; a
    zero-size box raises ValueError naming it (matching never assigns one).
    """
    xp = get_array_module(boxes_xyxy, priors_cxcywh)
    v_center, v_size = variances
    if validate:
        check_boxes(boxes_xyxy, "boxes_xyxy")
        check_boxes(priors_cxcywh, "priors_cxcywh", fmt="cxcywh")
        degenerate = (boxes_xyxy[..., 2] <= boxes_xyxy[..., 0]) | (
            boxes_xyxy[..., 3] <= boxes_xyxy[..., 1]
        )
        if bool(degenerate.any()):
            flat = int(xp.argmax(degenerate.reshape(-1)))
            index = tuple(_unravel(flat, degenerate.shape))
            raise ValueError(
                f"boxes_xyxy[{index[0] if len(index) == 1 else index}] has zero width or "
                "height; its log size ratio is undefined, so it cannot be encoded"
            )
    g = xyxy_to_cxcywh(boxes_xyxy)  # (..., P, 4)
    d = priors_cxcywh
    centre = (g[..., :2] - d[:, :2]) / (d[:, 2:] * v_center)
    size = xp.log(g[..., 2:] / d[:, 2:]) / v_size
    return xp.concatenate([centre, size], axis=-1)


def decode(loc, priors_cxcywh, variances=DEFAULT_VARIANCES):
    """Boxes from predicted offsets: the inverse of ``encode``.

    loc:           (..., P, 4) offsets (l_cx, l_cy, l_w, l_h).
    priors_cxcywh: (P, 4) default boxes.
    Returns (..., P, 4) xyxy boxes:
        cx = d_cx + l_cx * v_center * d_w,   w = d_w * exp(l_w * v_size)
    """
    xp = get_array_module(loc, priors_cxcywh)
    v_center, v_size = variances
    d = priors_cxcywh
    centre = d[:, :2] + loc[..., :2] * v_center * d[:, 2:]
    size = d[:, 2:] * xp.exp(loc[..., 2:] * v_size)
    return cxcywh_to_xyxy(xp.concatenate([centre, size], axis=-1))


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
    xp.add(area(a)[..., :, None], area(b)[..., None, :], out=union)
    union -= inter
    positive = union > 0
    return xp.where(positive, inter / xp.where(positive, union, 1), 0).astype(
        xp.result_type(a.dtype, b.dtype), copy=False
    )
