"""The canvas every picture is drawn on: figures, colours, images, boxes, grids.

Every function draws on a matplotlib ``Axes`` (made for you when ``ax`` is None) and returns it.
Coordinates: boxes are xyxy; pass ``normalized=True`` with ``size=(W, H)`` to draw [0, 1] boxes
on a W x H picture.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy

# A qualitative palette (one colour per class label, cycling), saturated enough to read on light pictures
# too: the pale tints of the usual 20-colour list vanish on a sky (VOC's cat is label 8, its dog 12).
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
    "#f032e6", "#bfef45", "#c2185b", "#469990", "#6a1b9a", "#9a6324",
    "#b8860b", "#800000", "#2e7d32", "#808000", "#e65100", "#000075",
    "#a9a9a9", "#ffe119",
)


def figure_and_axes(rows: int = 1, columns: int = 1, figsize=(6, 5)):
    """(Figure, axes (rows, columns)) without pyplot: for pictures written to files.

    It neither changes the matplotlib backend nor registers the figure with
    pyplot, so library code can save pictures while a notebook keeps its
    inline figures. ``figure.savefig(path)`` writes it.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def color_for(label: int) -> str:
    """A stable colour per class label."""
    return PALETTE[int(label) % len(PALETTE)]


def _axes(ax, figsize=(5, 5)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def show_image(image, ax=None, title: str | None = None):
    """Show an (H, W, 3) uint8/float image or a (3, H, W) model input."""
    ax = _axes(ax)
    picture = to_numpy(image)
    if picture.ndim == 3 and picture.shape[0] == 3 and picture.shape[-1] != 3:
        picture = picture.transpose(1, 2, 0)  # (H, W, 3)
    if picture.dtype != np.uint8:
        low, high = float(picture.min()), float(picture.max())
        picture = (picture - low) / max(high - low, 1e-12)
    ax.imshow(picture)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def draw_boxes(
    boxes,
    ax=None,
    labels=None,
    scores=None,
    class_names=None,
    color=None,
    normalized: bool = False,
    size=None,
    linewidth: float = 2.0,
    linestyle: str = "-",
    fill_alpha: float = 0.0,
    text: bool = True,
):
    """Draw (D, 4) xyxy boxes as rectangles, with "name score" captions.

    labels: (D,) ints picking colours and names; scores: (D,) for captions.
    normalized + size=(W, H): scale [0, 1] boxes to pixels first.
    """
    from matplotlib.patches import Rectangle

    ax = _axes(ax)
    boxes = np.asarray(to_numpy(boxes), dtype=np.float64).reshape(-1, 4)
    if normalized:
        if size is None:
            raise ValueError("normalized boxes need size=(width, height) to be drawn in pixels")
        width, height = size
        boxes = boxes * np.array([width, height, width, height])
    labels = None if labels is None else to_numpy(labels).reshape(-1)
    scores = None if scores is None else to_numpy(scores).reshape(-1)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        edge = color or (color_for(labels[i]) if labels is not None else PALETTE[2])
        ax.add_patch(Rectangle(
            (x1, y1), x2 - x1, y2 - y1, fill=fill_alpha > 0, facecolor=edge, alpha=None,
            edgecolor=edge, linewidth=linewidth, linestyle=linestyle,
        ))
        if fill_alpha > 0:
            ax.patches[-1].set_facecolor((*_rgb(edge), fill_alpha))
        caption = []
        if labels is not None and class_names is not None:
            caption.append(str(class_names[int(labels[i])]))
        elif labels is not None:
            caption.append(str(int(labels[i])))
        if scores is not None:
            caption.append(f"{float(scores[i]):.2f}")
        if text and caption:
            ax.text(x1, y1, " ".join(caption), color="white", fontsize=8, va="bottom",
                    bbox=dict(facecolor=edge, edgecolor="none", pad=1.0, alpha=0.85))
    return ax


def _rgb(color: str):
    from matplotlib.colors import to_rgb

    return to_rgb(color)


def draw_grid(cells: int, ax=None, size=(1.0, 1.0), color="white", linewidth=0.8):
    """The lines of a cells x cells feature-map grid over a picture of size (W, H)."""
    ax = _axes(ax)
    width, height = size
    for i in range(cells + 1):
        ax.plot([0, width], [i * height / cells] * 2, color=color, linewidth=linewidth, alpha=0.7)
        ax.plot([i * width / cells] * 2, [0, height], color=color, linewidth=linewidth, alpha=0.7)
    return ax


def _frame_to_image(ax, width, height):
    # Grid lines and boxes that stick out would otherwise widen the view past the picture.
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
