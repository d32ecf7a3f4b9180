"""An ``Explanation`` rendered: as readable text (``explanation_text``) and as JSON-ready values
(``explanation_dict``).

``Explanation.text()`` and ``Explanation.to_dict()`` call these. Separate from
``explain.py`` (what an explanation holds and how it is computed): every
number comes ready from the ``Explanation``; this module only words, formats
and lays them out, so changing the text never touches the computation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .boxes import DECODE_LOG_SIZE_CLAMP

if TYPE_CHECKING:
    from .explain import Explanation


def explanation_dict(e: Explanation) -> dict:
    """``Explanation.to_dict``: JSON-ready values (floats at full precision; boxes normalised xyxy unless
    named pixels)."""
    d, box = e.decoding, e.default_box
    floats = _floats
    return {
        "index": e.index, "count": e.count, "label": e.label, "class_name": e.class_name,
        "score": float(e.score), "box": floats(e.box),
        "box_pixels": None if e.box_pixels is None else floats(e.box_pixels),
        "default_box": {
            "index": box.index, "map_index": box.map_index, "map_name": box.map_name,
            "map_size": box.map_size, "step": box.step, "row": box.row, "column": box.column,
            "box_in_cell": box.box_in_cell, "boxes_per_cell": box.boxes_per_cell, "shape": box.shape,
            "scale": box.scale, "aspect_ratio": box.aspect_ratio, "cxcywh": floats(box.cxcywh),
            "cell_xyxy": floats(box.cell_xyxy),
        },
        "decoding": {
            "offsets": floats(d.offsets), "variances": list(d.variances), "centre_shift": floats(d.centre_shift),
            "centre": floats(d.centre), "log_size": floats(d.log_size), "clamped": [bool(v) for v in d.clamped],
            "log_size_clamp": DECODE_LOG_SIZE_CLAMP, "size_factor": floats(d.size_factor),
            "size": floats(d.size), "xyxy": floats(d.xyxy), "clip": d.clip, "box": floats(d.box),
            "clipped": [bool(v) for v in d.clipped],
            "image_size": None if d.image_size is None else list(d.image_size),
            "pixels": None if d.pixels is None else floats(d.pixels),
        },
        "classes": [{"label": k, "name": str(name), "logit": float(e.logits[k]),
                     "probability": float(e.probabilities[k])} for k, name in enumerate(e.class_names)],
        "nms": {
            "score_threshold": e.score_threshold, "iou_threshold": e.iou_threshold,
            "top_k": e.top_k, "keep_top_k": e.keep_top_k, "above_threshold": e.above_threshold,
            "candidates": [int(p) for p in e.candidates],
            "suppressed": [{"prior": s.prior, "score": s.score, "iou": s.iou, "box": floats(s.box)}
                           for s in e.suppressed],
        },
    }


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values).reshape(-1)]


def _f(value, digits: int = 4) -> str:
    """A number as the text shows it: 4 decimals (0.1 not 0.1000), never '-0'."""
    text = f"{float(value):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _term(value, digits: int = 4) -> str:
    """A factor inside a formula: a negative one in parentheses (0.5 + (-1.2) * 0.1, not 0.5 + -1.2 * 0.1)."""
    text = _f(value, digits)
    return f"({text})" if text.startswith("-") else text


def _p(value) -> str:
    """A probability: 4 decimals; two significant digits below 0.00005 (2.3e-05, not 0); all the digits
    it needs just below 1 (0.99999994, not 1)."""
    value = float(value)
    if 0 < value < 5e-5:
        return f"{value:.1e}"
    if 1 - 5e-5 < value < 1:
        return np.format_float_positional(np.float32(value))
    return _f(value)


def _tuple(values, digits: int = 4) -> str:
    return "(" + ", ".join(_f(v, digits) for v in np.asarray(values).reshape(-1)) + ")"


def explanation_text(e: Explanation, top_classes: int = 5, most_suppressed: int = 10) -> str:
    """``Explanation.text``: map, cell, default box, offsets, the decoding step by step, classes, NMS."""
    d, box = e.decoding, e.default_box
    (l_cx, l_cy, l_w, l_h), (v_c, v_s) = d.offsets, d.variances
    lines = [f"detection {e.index} of {e.count}: {e.class_name}, score {_p(e.score)}"]
    if e.box_pixels is not None:
        width, height = d.image_size
        lines.append(f"  box (x1, y1, x2, y2) = {_tuple(e.box_pixels, 1)} px in the {width} x {height} picture, "
                     f"{_tuple(e.box)} normalised")
    else:
        lines.append(f"  box (x1, y1, x2, y2) = {_tuple(e.box)} normalised")
    where = f" ({box.map_name}" if box.map_name else " ("
    where += f"{', ' if box.map_name else ''}{box.map_size} x {box.map_size} cells"
    where += f", step {box.step:g} px)" if box.step is not None else ")"
    lines.append(f"default box {box.index}: feature map {box.map_index}{where}, cell row {box.row}, "
                 f"column {box.column}, box {box.box_in_cell} of the cell's {box.boxes_per_cell} (from 0)")
    lines.append(f"  shape {box.shape}: scale s = {_f(box.scale)}, aspect ratio a = w / h = {_f(box.aspect_ratio)} "
                 f"(w = s sqrt(a), h = s / sqrt(a))")
    cell_cx, cell_cy = (box.cell_xyxy[:2] + box.cell_xyxy[2:]) / 2
    lines.append(f"  (d_cx, d_cy, d_w, d_h) = {_tuple(box.cxcywh)}; the cell's centre is "
                 f"{_tuple((cell_cx, cell_cy))}, its side {_f(box.cell_spacing)}")
    lines.append(f"offsets (l_cx, l_cy, l_w, l_h) = {_tuple(d.offsets)}, variances (v_center, v_size) = "
                 f"({v_c:g}, {v_s:g})")
    lines.append("decoding:")
    dx, dy, dw, dh = d.default_box
    lines.append(f"  cx = d_cx + l_cx * v_center * d_w = {_f(dx)} + {_term(l_cx)} * {v_c:g} * {_f(dw)} = "
                 f"{_f(d.centre[0])}")
    lines.append(f"  cy = d_cy + l_cy * v_center * d_h = {_f(dy)} + {_term(l_cy)} * {v_c:g} * {_f(dh)} = "
                 f"{_f(d.centre[1])}")
    for axis, (name, default, offset) in enumerate((("w", dw, l_w), ("h", dh, l_h))):
        exponent = f"l_{name} * v_size"
        if d.clamped[axis]:
            lines.append(f"  {name}  = d_{name} * exp(min({exponent}, log(1000 / 16))) = {_f(default)} * exp(min("
                         f"{_f(d.log_size[axis])}, {_f(DECODE_LOG_SIZE_CLAMP)})) = {_f(d.size[axis])}   "
                         f"clamped: {exponent} is above log(1000 / 16), the box would be over 62.5 times its "
                         "default box")
        else:
            lines.append(f"  {name}  = d_{name} * exp({exponent}) = {_f(default)} * exp({_term(offset)} * {v_s:g}) = "
                         f"{_f(default)} * {_f(d.size_factor[axis])} = {_f(d.size[axis])}")
    x1, y1, x2, y2 = d.xyxy
    lines.append(f"  x1 = cx - w / 2 = {_f(x1)}, y1 = cy - h / 2 = {_f(y1)}, x2 = cx + w / 2 = {_f(x2)}, "
                 f"y2 = cy + h / 2 = {_f(y2)}")
    if not d.clip:
        lines.append("  no clip: the post-processing keeps the boxes as decoded")
    elif d.clipped.any():
        moved = [f"{name} {_f(before)} -> {_f(after)}" for name, before, after, hit
                 in zip(("x1", "y1", "x2", "y2"), d.xyxy, d.box, d.clipped) if hit]
        lines.append(f"  clip to [0, 1]: {', '.join(moved)}")
    else:
        lines.append("  clip to [0, 1]: inside already, nothing moves")
    if d.pixels is not None:
        width, height = d.image_size
        lines.append(f"  pixels: (x1 * {width}, y1 * {height}, x2 * {width}, y2 * {height}) = {_tuple(d.pixels, 1)}")
    classes = ", ".join(f"{name} {_p(p)}" for _, name, p in e.top_classes(top_classes))
    more = "" if top_classes >= len(e.class_names) else f" (the best {top_classes})"
    lines.append(f"classes, softmax over the {len(e.class_names)} logits{more}: {classes}")
    if e.label != int(np.argmax(e.probabilities)):
        best = e.class_names[int(np.argmax(e.probabilities))]
        lines.append(f"  {e.class_name} is not this default box's most probable class ({best}): every class "
                     "above the threshold gets its own detections")
    took_part = f"{e.class_name} boxes above {e.score_threshold:g}: {len(e.candidates)}"
    if e.above_threshold > len(e.candidates):
        took_part = (f"{e.class_name} boxes above {e.score_threshold:g}: {e.above_threshold}, the best "
                     f"{len(e.candidates)} (top_k) take part")
    if e.suppressed:
        shown = ", ".join(f"default box {s.prior} (score {_p(s.score)}, IoU {_f(s.iou, 3)})"
                          for s in e.suppressed[:most_suppressed])
        if len(e.suppressed) > most_suppressed:
            shown += f" and {len(e.suppressed) - most_suppressed} more"
        lines.append(f"NMS (IoU >= {e.iou_threshold:g} removes): {took_part}; this detection removed "
                     f"{len(e.suppressed)}: {shown}")
    else:
        lines.append(f"NMS (IoU >= {e.iou_threshold:g} removes): {took_part}; this detection removed none")
    return "\n".join(lines)
