"""Drawing for the synthetic shapes dataset: silhouettes, backgrounds, clutter.

Every function draws with NumPy on a float32 (3, H, W) canvas in 0..255 and
takes its randomness from an explicit ``numpy.random.Generator``. Speed is the
point (a tiny detector trains on these pictures for minutes on two cores), so
a shape is rasterised only inside its own window, never over the whole image.

Silhouettes are defined in the object's own frame (u, v), both in [-1, 1]
across the shape's width and height, v pointing down:

    circle    u^2 + v^2 <= 1
    square    |u| <= 1 and |v| <= 1
    triangle  |u| <= (v + 1) / 2              (apex up, base down)
    diamond   |u| + |v| <= 1
    cross     (|u| <= t, |v| <= 1) or (|v| <= t, |u| <= 1),  t = 0.34
    star      five points: r <= r(theta), straight edges between the outer
              radius 1 and the inner radius 0.45
    ring      0.55 <= u^2 + v^2 <= 1 (radii)

A pixel (column x, row y) is tested at its centre (x + 0.5, y + 0.5), rotated
by the shape's angle into the (u, v) frame.

The canvas is channel-first while drawing: NumPy is several times slower on
(H, W, 3) arrays broadcast against a length-3 colour (the innermost loop has
three steps) than on three (H, W) planes. The dataset transposes once at the end.
"""

from __future__ import annotations

import math

import numpy as np

CROSS_HALF_THICKNESS = 0.34
STAR_INNER_RADIUS = 0.45
RING_INNER_RADIUS = 0.55


def _star_inside(u, v):
    # Fold the angle into one half-spike: 0 at an outer point, pi/5 at an inner one;
    # the edge there is the line through (1, angle 0) and (inner, angle pi/5).
    radius = np.sqrt(u * u + v * v)
    angle = np.arctan2(u, -v)  # 0 straight up, where the top point is
    sector = 2 * math.pi / 5
    phase = np.mod(angle, sector)
    folded = sector / 2 - np.abs(phase - sector / 2)
    px, py = STAR_INNER_RADIUS * math.cos(sector / 2), STAR_INNER_RADIUS * math.sin(sector / 2)
    normal_x, normal_y = py, 1.0 - px  # perpendicular to (px - 1, py), pointing outwards
    offset = normal_x * 1.0  # the line passes through (1, 0)
    return radius * (normal_x * np.cos(folded) + normal_y * np.sin(folded)) <= offset


def _cross_inside(u, v):
    au, av = np.abs(u), np.abs(v)
    t = CROSS_HALF_THICKNESS
    return ((au <= t) & (av <= 1)) | ((av <= t) & (au <= 1))


def _ring_inside(u, v):
    r2 = u * u + v * v
    return (r2 <= 1) & (r2 >= RING_INNER_RADIUS**2)


SHAPES = {
    "circle": lambda u, v: u * u + v * v <= 1,
    "square": lambda u, v: (np.abs(u) <= 1) & (np.abs(v) <= 1),
    "triangle": lambda u, v: (np.abs(u) <= (v + 1) / 2) & (v <= 1),
    "diamond": lambda u, v: np.abs(u) + np.abs(v) <= 1,
    "cross": _cross_inside,
    "star": _star_inside,
    "ring": _ring_inside,
}
# Shapes that look the same after any rotation are drawn upright.
ROUND_SHAPES = ("circle", "ring")


def shape_window(width: float, height: float, angle: float) -> tuple[float, float]:
    """Half extents (hx, hy) in pixels of a width x height shape rotated by ``angle`` radians."""
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    return (c * width + s * height) / 2, (s * width + c * height) / 2


def shape_frame(cx: float, cy: float, width: float, height: float, angle: float,
                x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """The (u, v) object-frame coordinates of the pixel centres in rows y0:y1, columns x0:x1.

    The shape has centre (cx, cy), size width x height (pixels, before the
    rotation) and is rotated by ``angle`` radians; u and v are -1..1 across
    its width and height. Returns two (y1 - y0, x1 - x0) float32 arrays.
    """
    dx = (np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - cx))[None, :]  # (1, w)
    dy = (np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - cy))[:, None]  # (h, 1)
    c, s = math.cos(angle), math.sin(angle)
    u = (dx * np.float32(c) + dy * np.float32(s)) * np.float32(2.0 / width)  # (h, w)
    v = (dy * np.float32(c) - dx * np.float32(s)) * np.float32(2.0 / height)  # (h, w)
    return u, v


def shape_mask(shape: str, cx: float, cy: float, width: float, height: float, angle: float,
               x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Which pixels of the window rows y0:y1, columns x0:x1 the shape covers: (y1 - y0, x1 - x0) bool.

    Arguments as ``shape_frame``; ``shape`` is a key of ``SHAPES``.
    """
    return SHAPES[shape](*shape_frame(cx, cy, width, height, angle, x0, y0, x1, y1))


# --------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------

def unit_steps(count: int) -> np.ndarray:
    """``count`` evenly spaced float32 values from 0 to 1 (np.linspace costs 10x more for small counts)."""
    return np.arange(count, dtype=np.float32) * np.float32(1.0 / max(count - 1, 1))


def _ramp(height: int, width: int, angle: float) -> np.ndarray:
    # A linear ramp from 0 to 1 along direction ``angle``: (H, W).
    x = unit_steps(width)[None, :] * np.float32(math.cos(angle))
    y = unit_steps(height)[:, None] * np.float32(math.sin(angle))
    ramp = x + y  # (H, W)
    # the extremes sit in the corners, so they are known without a pass over the array
    low = min(0.0, math.cos(angle)) + min(0.0, math.sin(angle))
    high = max(0.0, math.cos(angle)) + max(0.0, math.sin(angle))
    return (ramp - np.float32(low)) * np.float32(1 / max(high - low, 1e-6))


def background(rng: np.random.Generator, height: int, width: int, texture_contrast: float) -> np.ndarray:
    """A textured background (3, H, W) float32 in 0..255.

    One of: a two-colour gradient; stripes or checks (a base colour +- an
    amplitude up to ``texture_contrast``); smooth blotches (a 4 x 4 grid of
    colours, interpolated). The colours are kept away from the extremes so
    that both darker and lighter objects stand out.
    """
    kind = int(rng.integers(4))
    base = rng.uniform(40, 215, size=(3, 1, 1)).astype(np.float32)
    if kind == 0:  # gradient between two colours
        other = np.clip(base + rng.uniform(-70, 70, size=(3, 1, 1)), 20, 235).astype(np.float32)
        t = _ramp(height, width, rng.uniform(0, 2 * math.pi))  # (H, W)
        return base + t * (other - base)  # (3, H, W)
    amplitude = np.float32(rng.uniform(0.3, 1.0) * texture_contrast)
    tint = rng.uniform(0.5, 1.0, size=(3, 1, 1)).astype(np.float32)  # the texture's colour cast
    if kind == 1:  # stripes: a soft square wave along a random direction
        angle, period = rng.uniform(0, math.pi), rng.uniform(6, 24)
        phase = _ramp(height, width, angle) * (math.hypot(height, width) / period) * 2 * math.pi
        wave = np.clip(2.5 * np.sin(phase + rng.uniform(0, 2 * math.pi)), -1, 1)  # (H, W)
    elif kind == 2:  # checks
        cell = int(rng.integers(5, 20))
        ys = (np.arange(height) // cell)[:, None]
        xs = (np.arange(width) // cell)[None, :]
        wave = (((ys + xs) % 2) * 2 - 1).astype(np.float32)  # (H, W)
    else:  # smooth blotches: bilinear interpolation of a coarse random grid
        grid = rng.uniform(-1, 1, size=(4, 4)).astype(np.float32)
        rows = _interpolation_matrix(height, 4)  # (H, 4)
        cols = _interpolation_matrix(width, 4)  # (W, 4)
        wave = rows @ grid @ cols.T  # (H, W)
    return base + (amplitude * wave) * tint  # (3, H, W)


_INTERPOLATION_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _interpolation_matrix(size: int, knots: int) -> np.ndarray:
    """(size, knots) weights that linearly interpolate ``knots`` values onto ``size`` pixels."""
    key = (size, knots)
    if key not in _INTERPOLATION_CACHE:
        position = np.linspace(0, knots - 1, size)
        low = np.minimum(np.floor(position).astype(int), knots - 2)
        frac = position - low
        matrix = np.zeros((size, knots), dtype=np.float32)
        matrix[np.arange(size), low] = 1 - frac
        matrix[np.arange(size), low + 1] = frac
        _INTERPOLATION_CACHE[key] = matrix
    return _INTERPOLATION_CACHE[key]


# --------------------------------------------------------------------------
# clutter: marks that belong to no class
# --------------------------------------------------------------------------

def draw_path(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray, colour, thickness: int) -> None:
    """Stamp a ``thickness`` x ``thickness`` pen at every point (xs[i], ys[i]), in place.

    canvas: (3, H, W) float32.   xs, ys: (T,) pixel coordinates, consecutive
    points at most one pixel apart so the stroke has no gaps.   colour: (3,).
    """
    height, width = canvas.shape[1:]
    columns = np.clip(xs, 0, width - thickness).astype(np.intp)  # (T,)
    rows = np.clip(ys, 0, height - thickness).astype(np.intp)  # (T,)
    colour = np.asarray(colour, dtype=np.float32)[:, None]  # (3, 1)
    for dy in range(thickness):
        for dx in range(thickness):
            canvas[:, rows + dy, columns + dx] = colour


def line_points(xa: float, ya: float, xb: float, yb: float) -> tuple[np.ndarray, np.ndarray]:
    """Points one pixel apart (along the longer axis) from (xa, ya) to (xb, yb): two (T,) arrays."""
    count = int(max(abs(xb - xa), abs(yb - ya))) + 1
    t = unit_steps(count)
    return xa + 0.5 + t * (xb - xa), ya + 0.5 + t * (yb - ya)


def scribble_points(rng: np.random.Generator, x: float, y: float, length: int) -> tuple[np.ndarray, np.ndarray]:
    """A wandering stroke of ``length`` unit steps from (x, y): the heading drifts randomly."""
    heading = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.35, size=length))  # (T,)
    return x + np.cumsum(np.cos(heading)), y + np.cumsum(np.sin(heading))


def draw_clutter(canvas: np.ndarray, rng: np.random.Generator, count: int, max_dot: int) -> None:
    """Draw ``count`` distractors on a (3, H, W) canvas in place: lines, scribbles, dot clusters.

    Lines and scribbles are 1-2 px wide, dots at most ``max_dot`` px across:
    thinner and smaller than any object, so none of them looks like a class.
    """
    height, width = canvas.shape[1:]
    for _ in range(count):
        kind, thickness = int(rng.integers(3)), int(rng.integers(1, 3))
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        xa, ya, xb, yb = (rng.uniform(0, 1, size=4) * (width - 1, height - 1, width - 1, height - 1)).tolist()
        if kind == 0:  # a straight line
            draw_path(canvas, *line_points(xa, ya, xb, yb), colour, thickness)
        elif kind == 1:  # a scribble
            draw_path(canvas, *scribble_points(rng, xa, ya, int(rng.integers(20, 80))), colour, 1)
        else:  # a cluster of small square dots
            dots = int(rng.integers(3, 9))
            spread = rng.normal(0, 0.08 * min(height, width), size=(2, dots))  # (2, D)
            side = min(max_dot, int(rng.integers(1, max_dot + 1)))
            draw_path(canvas, xa + spread[0], ya + spread[1], colour, side)


def contrasting_colour(rng: np.random.Generator, under, min_distance: float) -> np.ndarray:
    """A random RGB colour (3,) at least ``min_distance`` (Euclidean, 0..255 units) from ``under`` (3,).

    Draws up to 8 random colours and takes the first that is far enough; if
    none is, moves the colour under it towards black or white, whichever is
    further, so the object still shows. (Plain Python floats: three numbers
    are cheaper without NumPy's per-call overhead.)
    """
    under = [float(c) for c in under]
    for _ in range(8):
        colour = rng.uniform(0, 255, size=3).tolist()
        if sum((a - b) ** 2 for a, b in zip(colour, under)) >= min_distance**2:
            return np.array(colour, dtype=np.float32)
    if sum(under) / 3 > 127:
        return np.array([c * 0.25 for c in under], dtype=np.float32)
    return np.array([c + (255 - c) * 0.75 for c in under], dtype=np.float32)
