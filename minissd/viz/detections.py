"""Detections drawn: over a matplotlib Axes, or straight into a PIL picture (fast, for many files)."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .canvas import color_for, draw_boxes, show_image

def plot_detections(image, boxes, labels, scores=None, class_names=None, ax=None, normalized=False, title=None):
    """An image with its detections (or ground truth when scores is None)."""
    ax = show_image(image, ax=ax, title=title)
    picture = to_numpy(image)
    height, width = (picture.shape[1:] if picture.shape[0] == 3 and picture.shape[-1] != 3 else picture.shape[:2])
    draw_boxes(boxes, ax=ax, labels=labels, scores=scores, class_names=class_names,
               normalized=normalized, size=(width, height))
    return ax


def render_detections(image, detections, line_width: int | None = None):
    """A PIL image of ``image`` (H, W, 3) uint8 with ``detections`` drawn (boxes, "name score").

    Uses Pillow only (no matplotlib), so the command line can write many
    pictures quickly. ``detections`` is a ``minissd.detect.Detections``.
    """
    from PIL import Image, ImageDraw

    picture = Image.fromarray(np.asarray(to_numpy(image), dtype=np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = line_width or max(1, round(max(picture.size) / 200))
    for box, score, label, name in zip(detections.boxes, detections.scores, detections.labels, detections.names):
        colour = color_for(int(label))
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        caption = f"{name} {float(score):.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), caption)
        lift = bottom - top + 2
        text_y = y1 - lift if y1 - lift >= 0 else y1
        draw.rectangle([x1, text_y, x1 + (right - left) + 4, text_y + lift], fill=colour)
        draw.text((x1 + 2, text_y), caption, fill="white")
    return picture
