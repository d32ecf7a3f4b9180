"""Default boxes drawn: the boxes of chosen cells of a feature map, and the two rules for their centres.

    plot_default_boxes    one feature map's cells and their boxes over a picture
    default_boxes_figure  one such panel per map, for feature-map sides or a preset
    centres_figure        the paper's centres (i + 0.5) / |f_k| against Caffe's (i + 0.5) * step / size

Grid lines and centre dots come from the default boxes themselves (``cell_grid``), so a preset with
Caffe's pixel steps shows each dot where its boxes are centred, not where the paper's rule would put it.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .canvas import PALETTE, _axes, draw_boxes, show_image

CENTRE_COLOUR = "black"
GRID_COLOUR = "#555555"
PAPER_COLOUR, STEP_COLOUR = PALETTE[2], PALETTE[3]  # blue: the paper's rule; orange: Caffe's steps


def box_names(aspect_ratios) -> list[str]:
    """Names of one cell's default boxes in per-cell order: s_k, s'_k, a=2, a=1/2, ..."""
    names = ["s_k (a=1)", "s'_k (a=1)"]
    for ratio in aspect_ratios:
        names += [f"a={ratio:g}", f"a=1/{ratio:g}"]
    return names


def cell_grid(config, map_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(centres (f,), edges (f + 1,)) along one axis of map ``map_index``, normalised, from its boxes.

    centres: the cx of the boxes of row 0 (the same along y: the maps are square), read from
    ``default_boxes(config, clip=False)``, so they follow whichever centre rule the config uses.
    edges:   the cell borders, half a spacing either side of each centre: k / |f_k| for the paper's
    rule, k * step / image_size for Caffe's (on SSD300's 10 x 10 map the last edge is 320 / 300).
    """
    from ..priors import default_boxes, get_config, prior_slices

    config = get_config(config)
    side = config.feature_maps[map_index]
    per_cell = config.boxes_per_cell[map_index]
    rows = prior_slices(config)[map_index]
    boxes = default_boxes(config, clip=False)[rows]  # (f*f*B, 4); unclipped, so centres are the cells'
    centres = boxes[:side * per_cell:per_cell, 0].astype(np.float64)  # (f,) the cx of row 0, box 0 of each cell
    spacing = centres[1] - centres[0] if side > 1 else 2 * centres[0]
    edges = centres[0] - spacing / 2 + spacing * np.arange(side + 1)  # (f + 1,)
    return centres, edges


def _draw_cell_lines(ax, edges, size, color=GRID_COLOUR, linewidth=0.8):
    """Cell borders at normalised ``edges`` (both axes), drawn over a picture of size (W, H)."""
    width, height = size
    low, high = edges[0], edges[-1]
    for edge in edges:
        ax.plot([low * width, high * width], [edge * height] * 2, color=color, linewidth=linewidth, alpha=0.7)
        ax.plot([edge * width] * 2, [low * height, high * height], color=color, linewidth=linewidth, alpha=0.7)


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
    The grid and the black centre dot of each drawn cell come from the boxes
    (``cell_grid``): with Caffe's steps they sit where the boxes are centred.
    A legend names each box (its colour) and the centre dot.
    """
    from matplotlib.lines import Line2D

    from ..boxes import cxcywh_to_xyxy
    from ..priors import default_boxes, get_config, prior_slices

    config = get_config(config)
    ax = _axes(ax)
    size_px = config.image_size
    if image is None:
        image = np.full((size_px, size_px, 3), 235, dtype=np.uint8)
    picture = to_numpy(image)
    height, width = picture.shape[:2]
    show_image(picture, ax=ax)
    cells_per_side = config.feature_maps[map_index]
    centres, edges = cell_grid(config, map_index)
    _draw_cell_lines(ax, edges, (width, height))
    boxes = cxcywh_to_xyxy(default_boxes(config))  # (P, 4) as the config draws them (clipped or not)
    rows = prior_slices(config)[map_index]
    per_cell = config.boxes_per_cell[map_index]
    if cells is None:
        cells = [(cells_per_side // 2, cells_per_side // 2)]
    names = box_names(config.aspect_ratios[map_index])
    scale = np.array([width, height, width, height])
    drawn = [np.array([0.0, 0.0, width, height]),
             np.array([edges[0] * width, edges[0] * height, edges[-1] * width, edges[-1] * height])]
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
            drawn.append(boxes[b] * scale)
        ax.plot([centres[column] * width], [centres[row] * height], marker="o", color=CENTRE_COLOUR,
                markersize=3, linestyle="none", label="cell centre" if cell_number == 0 else None)
    extent = np.array(drawn)
    margin = 0.03 * max(width, height)
    ax.set_xlim(extent[:, 0].min() - margin, extent[:, 2].max() + margin)
    ax.set_ylim(extent[:, 3].max() + margin, extent[:, 1].min() - margin)
    ax.set_aspect("equal")
    handles, labels = ax.get_legend_handles_labels()
    if positive is not None:
        handles += [Line2D([], [], color="#333333", linewidth=3.0),
                    Line2D([], [], color="#333333", linewidth=1.2, linestyle="--")]
        labels += ["solid, thick: positive", "dashed: negative"]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    rule = "the paper's centres" if config.steps is None else f"step {config.steps[map_index]:g} px"
    ax.set_title(title or f"{cells_per_side} x {cells_per_side} feature map: {per_cell} default boxes "
                          f"per cell, {rule}")
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
        rule = "" if config.steps is None else f", step {config.steps[k]:g} px"
        plot_default_boxes(config, k, cells=fitting or None, image=image, ax=ax,
                           title=f"{config.feature_maps[k]} x {config.feature_maps[k]} map, "
                                 f"s = {config.min_sizes[k]:.2f}{rule}")
    figure.suptitle(f"default boxes: {config.name}, {config.num_priors} in all")
    figure.tight_layout()
    return figure


def centres_figure(size: int = 10, step: float = 32, image_size: int = 300):
    """The paper's centres against Caffe's steps on one |f_k| = ``size`` map: a Figure of two panels.

    (a) the map over a ``image_size`` px picture: the paper's centres ((i + 0.5) / size) * image_size
        as blue circles on its grid, Caffe's (i + 0.5) * step as orange crosses on the step grid,
        each pair joined by a line so the drift shows;
    (b) the drift along one axis, (i + 0.5) * (step - image_size / size) px, against i.
    Defaults: SSD300's 10 x 10 map, step 32 of 300 px: centres 15, 45, ..., 285 px against 16, 48,
    ..., 304 px (the last one outside the picture). Drawn without pyplot (``figure_and_axes``).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    from ..priors import cell_centres
    from .canvas import figure_and_axes

    paper = cell_centres(size) * image_size  # (f,) px
    caffe = cell_centres(size, step=step, image_size=image_size) * image_size  # (f,) px
    figure, axes = figure_and_axes(1, 2, figsize=(11.5, 5.2))
    overlay, drift = axes[0]
    for k in range(size + 1):  # the two grids: the paper's cells of image_size / size, Caffe's of step
        grid = k * image_size / size
        overlay.plot([0, image_size], [grid, grid], color=PAPER_COLOUR, linewidth=0.6, alpha=0.35)
        overlay.plot([grid, grid], [0, image_size], color=PAPER_COLOUR, linewidth=0.6, alpha=0.35)
        stretched = k * step
        overlay.plot([0, size * step], [stretched, stretched], color=STEP_COLOUR, linewidth=0.6, alpha=0.5,
                     linestyle="--")
        overlay.plot([stretched, stretched], [0, size * step], color=STEP_COLOUR, linewidth=0.6, alpha=0.5,
                     linestyle="--")
    overlay.add_patch(Rectangle((0, 0), image_size, image_size, fill=False, edgecolor="black", linewidth=2.0))
    py, px = np.meshgrid(paper, paper, indexing="ij")  # (f, f) each
    cy, cx = np.meshgrid(caffe, caffe, indexing="ij")  # (f, f) each
    for start_x, start_y, end_x, end_y in zip(px.ravel(), py.ravel(), cx.ravel(), cy.ravel()):
        overlay.plot([start_x, end_x], [start_y, end_y], color="#444444", linewidth=0.8)
    overlay.scatter(px.ravel(), py.ravel(), s=22, facecolors="none", edgecolors=PAPER_COLOUR, linewidths=1.2,
                    zorder=3, label=f"paper: (i + 0.5) / {size} x {image_size} px")
    overlay.scatter(cx.ravel(), cy.ravel(), s=22, marker="x", color=STEP_COLOUR, linewidths=1.2, zorder=3,
                    label=f"Caffe: (i + 0.5) x {step:g} px")
    reach = max(image_size, size * step)
    margin = 0.04 * reach
    overlay.set_xlim(-margin, reach + margin)
    overlay.set_ylim(reach + margin, -margin)
    overlay.set_aspect("equal")
    overlay.set_title(f"{size} x {size} map on a {image_size} px picture: last centre "
                      f"{paper[-1]:g} px (paper) vs {caffe[-1]:g} px (Caffe)", fontsize=10)
    handles, labels = overlay.get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", linewidth=2.0))
    labels.append(f"the {image_size} px picture")
    overlay.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8,
                   frameon=False)
    index = np.arange(size)
    offset = caffe - paper  # (f,) px: (i + 0.5) * (step - image_size / size)
    drift.plot(index, offset, marker="o", color=STEP_COLOUR,
               label=f"Caffe - paper = (i + 0.5) x ({step:g} - {image_size:g} / {size}) px")
    drift.axhline(0.0, color=PAPER_COLOUR, linewidth=1.0, label="paper's rule (no drift)")
    for i in sorted({0, size // 2, size - 1}):
        last = i == size - 1
        drift.annotate(f"i = {i}: {paper[i]:.4g} -> {caffe[i]:.4g} px ({offset[i]:+.3g})", (index[i], offset[i]),
                       textcoords="offset points", xytext=(-6, 4) if last else (6, -12),
                       ha="right" if last else "left", fontsize=8)
    drift.margins(x=0.08, y=0.12)
    drift.set_xlabel("cell index i (column, or row)")
    drift.set_ylabel("centre drift along that axis (px)")
    drift.set_title("the drift grows with i: zero only where step x |f_k| = image size", fontsize=10)
    drift.legend(loc="upper left", fontsize=8, frameon=False)
    figure.tight_layout()
    return figure
