"""Cartoon scenes whose ground truth is exact: the cat and the dog of the paper's Figure 1, and friends."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy

TOY_KINDS = ("cat", "dog", "ball")
_TOY_COLOURS = {"cat": "#7f7f7f", "dog": "#b07a3c", "ball": "#d6453d"}


def toy_scene(boxes, kinds, size=300):
    """A cartoon picture with one simple animal (or ball) filling each box.

    boxes: (G, 4) xyxy, normalised to [0, 1]; each object is drawn to touch
           its box on all four sides, so the box is its exact ground truth.
    kinds: G names from ``TOY_KINDS``: "cat" (pointed ears), "dog" (floppy
           ears) or "ball" (a disc, handy as an unlabelled distractor).
    size:  side in pixels, or (width, height).
    Returns an (H, W, 3) uint8 RGB image: sky above, grass below, the objects
    painted in the order given (later ones on top).
    """
    from PIL import Image, ImageDraw

    width, height = (size, size) if np.isscalar(size) else size
    boxes = np.asarray(to_numpy(boxes), dtype=np.float64).reshape(-1, 4)
    if len(kinds) != boxes.shape[0]:
        raise ValueError(f"toy_scene: {boxes.shape[0]} boxes but {len(kinds)} kinds")
    picture = Image.new("RGB", (int(width), int(height)), "#cfe8f7")
    draw = ImageDraw.Draw(picture)
    draw.rectangle([0, 0.8 * height, width, height], fill="#9bc98a")
    for index, (box, kind) in enumerate(zip(boxes, kinds)):
        if kind not in TOY_KINDS:
            raise ValueError(f"toy_scene: kinds[{index}] = {kind!r}; expected one of {TOY_KINDS}")
        x1, y1, x2, y2 = (box * [width, height, width, height]).tolist()
        if kind == "ball":
            draw.ellipse([x1, y1, x2, y2], fill=_TOY_COLOURS[kind])
            continue
        _draw_animal(draw, x1, y1, x2 - x1, y2 - y1, _TOY_COLOURS[kind], pointed_ears=kind == "cat")
    return np.asarray(picture)


def _draw_animal(draw, x1, y1, w, h, colour, pointed_ears):
    # Fractions of the box, so the silhouette touches all four sides: the ears
    # reach the top, the head the left, the body the right, the legs the bottom.
    def at(u, v):
        return (x1 + u * w, y1 + v * h)

    draw.ellipse([at(0.0, 0.35), at(1.0, 0.9)], fill=colour)  # body
    for left in (0.14, 0.7):
        draw.rectangle([at(left, 0.7), at(left + 0.16, 1.0)], fill=colour)  # legs
    draw.ellipse([at(0.0, 0.1), at(0.48, 0.52)], fill=colour)  # head
    if pointed_ears:
        draw.polygon([at(0.04, 0.22), at(0.1, 0.0), at(0.2, 0.16)], fill=colour)
        draw.polygon([at(0.44, 0.22), at(0.38, 0.0), at(0.28, 0.16)], fill=colour)
    else:
        draw.ellipse([at(0.0, 0.0), at(0.1, 0.34)], fill="#5a3a1a")
        draw.ellipse([at(0.38, 0.0), at(0.48, 0.34)], fill="#5a3a1a")
    radius = max(1.0, 0.025 * w)
    for u in (0.19, 0.29):
        eye_x, eye_y = at(u, 0.3)
        draw.ellipse([eye_x - radius, eye_y - radius, eye_x + radius, eye_y + radius], fill="black")
