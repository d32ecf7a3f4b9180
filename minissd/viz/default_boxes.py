"""Default boxes drawn: the boxes of chosen cells of a feature map, one panel per map."""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .canvas import PALETTE, _axes, draw_boxes, draw_grid, show_image

def box_names(aspect_ratios) -> list[str]:
    """Names of one cell's default boxes in per-cell order: s_k, s'_k, a=2, a=1/2, ..."""
    names = ["s_k (a=1)", "s'_k (a=1)"]
    for ratio in aspect_ratios:
        names += [f"a={ratio:g}", f"a=1/{ratio:g}"]
    return names


def plot_default_boxes(
    config,
    map_index: int,
    cells=None,
    image=None,
    ax=None,
    positive=None,
    title: str | None = None,
):
    """Default boxes of one feature map of a ``PriorConfig`` over a picture.

    cells: list of (row, column) cells whose boxes to draw (default: the
    centre cell). positive: optional (P,) bool over all default boxes of the
    config; positives are drawn solid and thick, the others dashed.
    """
    from ..boxes import cxcywh_to_xyxy
    from ..priors import default_boxes, prior_slices

    ax = _axes(ax)
    size_px = config.image_size
    if image is None:
        image = np.full((size_px, size_px, 3), 235, dtype=np.uint8)
    picture = to_numpy(image)
    height, width = picture.shape[:2]
    show_image(picture, ax=ax)
    cells_per_side = config.feature_maps[map_index]
    draw_grid(cells_per_side, ax=ax, size=(width, height), color="#555555")
    boxes = cxcywh_to_xyxy(default_boxes(config))  # (P, 4)
    rows = prior_slices(config)[map_index]
    per_cell = config.boxes_per_cell[map_index]
    if cells is None:
        cells = [(cells_per_side // 2, cells_per_side // 2)]
    names = box_names(config.aspect_ratios[map_index])
    drawn = [np.array([0.0, 0.0, width, height])]
    for cell_number, (row, column) in enumerate(cells):
        if not (0 <= row < cells_per_side and 0 <= column < cells_per_side):
            raise ValueError(
                f"cell ({row}, {column}) is outside the {cells_per_side} x {cells_per_side} feature map"
            )
        first = rows.start + (row * cells_per_side + column) * per_cell
        for b in range(first, first + per_cell):
            hit = positive is not None and bool(positive[b])
            draw_boxes(
                boxes[b:b + 1], ax=ax, normalized=True, size=(width, height),
                color=PALETTE[b - first], linewidth=3.0 if hit else 1.2,
                linestyle="-" if hit or positive is None else "--", text=False,
            )
            if cell_number == 0:
                ax.patches[-1].set_label(names[b - first])
            drawn.append(boxes[b] * np.array([width, height, width, height]))
        cx = (column + 0.5) / cells_per_side * width
        cy = (row + 0.5) / cells_per_side * height
        ax.plot([cx], [cy], marker="o", color="black", markersize=3)
    extent = np.array(drawn)
    margin = 0.03 * max(width, height)
    ax.set_xlim(extent[:, 0].min() - margin, extent[:, 2].max() + margin)
    ax.set_ylim(extent[:, 3].max() + margin, extent[:, 1].min() - margin)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or f"{cells_per_side} x {cells_per_side} feature map: {per_cell} default boxes per cell")
    return ax


def default_boxes_figure(feature_maps=(8, 4), preset=None, image=None, cells=None, s_min=0.2, s_max=0.5):
    """A figure with one panel per feature map, each showing its default boxes.

    feature_maps: map sides for the paper's formula (e.g. 8 x 8 and 4 x 4,
    as Figure 1 of the paper); or ``preset``: a preset name, one panel per map.
    cells: (row, column) cells to draw; on a map a cell does not fit, it is
    left out (and a map with none left shows its centre cell).
    """
    cells = None if cells is None else list(cells)
    if cells is not None and not cells:
        raise ValueError("cells is empty: give at least one (row, column) or None")
    import matplotlib.pyplot as plt

    from ..priors import get_config, paper_config

    if preset is not None:
        config = get_config(preset)
    else:
        config = paper_config(tuple(feature_maps), s_min=s_min, s_max=s_max,
                              aspect_ratios=[(2,)] * len(feature_maps),
                              name="maps " + ", ".join(f"{f} x {f}" for f in feature_maps))
    count = len(config.feature_maps)
    columns = min(count, 3)
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5.4 * columns, 4.2 * rows), squeeze=False)
    for k in range(rows * columns):
        ax = axes[k // columns][k % columns]
        if k >= count:
            ax.set_axis_off()
            continue
        side = config.feature_maps[k]
        fitting = None if cells is None else [(r, c) for r, c in cells if 0 <= r < side and 0 <= c < side]
        plot_default_boxes(config, k, cells=fitting or None, image=image, ax=ax,
                           title=f"{config.feature_maps[k]} x {config.feature_maps[k]} map, "
                                 f"s = {config.min_sizes[k]:.2f}")
    figure.suptitle(f"default boxes: {config.name}, {config.num_priors} in all")
    figure.tight_layout()
    return figure
