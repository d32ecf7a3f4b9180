"""Matching and hard negatives drawn: which default boxes answer for which object, and which negatives count.

``bipartite_steps_figure`` draws the greedy bipartite step on the IoU table itself.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np

from ..backend import to_numpy
from .canvas import PALETTE, _frame_to_image, color_for, draw_boxes, draw_grid, show_image


def plot_matches(
    image,
    gt_boxes,
    priors,
    matched,
    ax=None,
    others=None,
    gt_labels=None,
    class_names=None,
    grid: int | None = None,
    title: str | None = None,
):
    """Ground-truth boxes and the default boxes matched to each, over an image.

    image:     (H, W, 3) picture, or a (3, H, W) model input.
    gt_boxes:  (G, 4) xyxy, normalised to [0, 1].
    priors:    (P, 4) cxcywh default boxes, normalised.
    matched:   (P,) int, the ground-truth index of each default box or -1 for
               background (``minissd.matching.match_indices``).
    others:    optional (P,) bool, unmatched default boxes to draw dashed grey
               (for instance the other boxes of the cells that hold a match).
    gt_labels: optional (G,) labels for colours and captions (default: one
               colour per ground-truth index).
    grid:      optional feature-map side |f_k|, to draw its cell lines.

    Ground truth is drawn thick and lightly filled, each positive default box
    solid in its ground truth's colour. The Axes holds G + positives + others
    rectangles, in that reverse order (others first, ground truth on top).
    """
    from ..boxes import cxcywh_to_xyxy

    ax = show_image(image, ax=ax, title=title)
    picture = to_numpy(image)
    height, width = (picture.shape[1:] if picture.shape[0] == 3 and picture.shape[-1] != 3 else picture.shape[:2])
    corners = cxcywh_to_xyxy(np.asarray(to_numpy(priors), dtype=np.float64))  # (P, 4)
    matched = np.asarray(to_numpy(matched)).reshape(-1)
    gt_boxes = np.asarray(to_numpy(gt_boxes), dtype=np.float64).reshape(-1, 4)
    if matched.shape[0] != corners.shape[0]:
        raise ValueError(f"matched has {matched.shape[0]} entries but there are {corners.shape[0]} priors")
    if matched.size and matched.max() >= gt_boxes.shape[0]:
        raise ValueError(f"matched points at ground truth {int(matched.max())}, but only {gt_boxes.shape[0]} are given")
    labels = None if gt_labels is None else np.asarray(to_numpy(gt_labels)).reshape(-1)
    colours = [color_for(labels[g]) if labels is not None else PALETTE[g % len(PALETTE)]
               for g in range(gt_boxes.shape[0])]
    if grid is not None:
        draw_grid(int(grid), ax=ax, size=(width, height), color="#555555")
    if others is not None:
        rest = np.asarray(to_numpy(others), dtype=bool).reshape(-1) & (matched < 0)
        draw_boxes(corners[rest], ax=ax, color="#666666", normalized=True, size=(width, height),
                   linewidth=1.0, linestyle="--", text=False)
    for g in range(gt_boxes.shape[0]):
        draw_boxes(corners[matched == g], ax=ax, color=colours[g], normalized=True,
                   size=(width, height), linewidth=1.5, text=False)
    for g in range(gt_boxes.shape[0]):
        caption = None if labels is None else labels[g:g + 1]
        draw_boxes(gt_boxes[g:g + 1], ax=ax, labels=caption, class_names=class_names, color=colours[g],
                   normalized=True, size=(width, height), linewidth=3.0, fill_alpha=0.12)
    _frame_to_image(ax, width, height)
    return ax


def plot_hard_negatives(image, priors, positive, negative, gt_boxes=None, ax=None, title: str | None = None):
    """Positive default boxes (solid green) and the kept hard negatives (dashed red).

    image:    (H, W, 3) picture, or a (3, H, W) model input.
    priors:   (P, 4) cxcywh default boxes, normalised.
    positive: (P,) bool, matched default boxes, or None to draw the negatives alone.
    negative: (P,) bool, the negatives hard negative mining keeps
              (``MultiBoxLossResult.negative_mask[n]``).
    gt_boxes: optional (G, 4) xyxy normalised ground truth, drawn thick black.
    The Axes holds G + positives + negatives rectangles.
    """
    from matplotlib.lines import Line2D

    from ..boxes import cxcywh_to_xyxy

    ax = show_image(image, ax=ax, title=title)
    picture = to_numpy(image)
    height, width = (picture.shape[1:] if picture.shape[0] == 3 and picture.shape[-1] != 3 else picture.shape[:2])
    corners = cxcywh_to_xyxy(np.asarray(to_numpy(priors), dtype=np.float64))  # (P, 4)
    negative = np.asarray(to_numpy(negative), dtype=bool).reshape(-1)
    show_positives = positive is not None
    positive = np.asarray(to_numpy(positive), dtype=bool).reshape(-1) if show_positives else np.zeros_like(negative)
    if not positive.shape == negative.shape == (corners.shape[0],):
        raise ValueError(
            f"positive and negative must have shape ({corners.shape[0]},) like the priors; "
            f"got {positive.shape} and {negative.shape}"
        )
    negative_colour, positive_colour = PALETTE[0], PALETTE[1]
    draw_boxes(corners[negative], ax=ax, color=negative_colour, normalized=True, size=(width, height),
               linewidth=1.2, linestyle="--", text=False)
    draw_boxes(corners[positive], ax=ax, color=positive_colour, normalized=True, size=(width, height),
               linewidth=1.5, text=False)
    handles = []
    if show_positives:
        handles.append(Line2D([], [], color=positive_colour, linewidth=1.5, label=f"positives ({int(positive.sum())})"))
    handles.append(Line2D([], [], color=negative_colour, linewidth=1.2, linestyle="--",
                          label=f"kept hard negatives ({int(negative.sum())})"))
    if gt_boxes is not None:
        draw_boxes(gt_boxes, ax=ax, color="black", normalized=True, size=(width, height), linewidth=3.0, text=False)
        handles.append(Line2D([], [], color="black", linewidth=3.0, label="ground truth"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
              fontsize=8, frameon=False)
    _frame_to_image(ax, width, height)
    return ax


# --------------------------------------------------------------------------
# the greedy bipartite step, drawn on the IoU table
# --------------------------------------------------------------------------

MAX_TABLE_ROWS, MAX_TABLE_COLUMNS = 12, 24  # beyond this the numbers in the cells are unreadable


def bipartite_steps_figure(iou_table, gt_names=None, prior_names=None, iou_threshold: float = 0.5,
                           columns: int | None = None, cell_size: float = 0.55):
    """The greedy bipartite step on a G x P IoU table, one panel per pick, then the result.

    iou_table:   (G, P) IoU of every ground truth (rows) with every default box
                 (columns), e.g. ``minissd.boxes.iou(gt_boxes, cxcywh_to_xyxy(priors))``.
    gt_names:    G row names (default "GT 0", ...); prior_names: P column names ("d0", ...).
    iou_threshold: the threshold step's bar, for the result panel (0.5 in SSD).

    Panel k: the table as a heat map with its numbers, the rows and columns
    struck out by picks 1..k-1 greyed, and pick k, the highest IoU left,
    circled in red with its row and column struck through. The last panel:
    every pick circled and numbered in order, each default box the threshold
    step adds (still free, best IoU >= iou_threshold) in a green square, and
    under each column what it ended up as. The picks are those of
    ``minissd.matching.match_indices`` (ties: the first in row-major order;
    a pick needs IoU > 0). The circles carry gid "pick:g:p", the squares
    "threshold:g:p". Returns a matplotlib Figure without pyplot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    table = _check_table(iou_table)
    num_gt, num_priors = table.shape
    iou_threshold = _check_fraction(iou_threshold)
    gt_names = _table_names(gt_names, num_gt, "gt_names", "GT {}")
    prior_names = _table_names(prior_names, num_priors, "prior_names", "d{}")
    picks = greedy_bipartite_pairs(table)
    assignment = _assignment(table, picks, iou_threshold)  # (P,) ground truth or -1
    panels = len(picks) + 1
    if columns is None:
        columns = 2 if panels == 4 else min(panels, 3)
    if int(columns) != columns or columns < 1:
        raise ValueError(f"bipartite_steps_figure: columns = {columns!r} must be an integer >= 1")
    columns = int(columns)
    rows = math.ceil(panels / columns)
    panel_width = max(cell_size * num_priors + 1.0, 3.0)
    panel_height = cell_size * num_gt + 1.6
    figure = Figure(figsize=(columns * panel_width, rows * panel_height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).reshape(-1)
    for step in range(len(picks)):
        g, p = picks[step]
        _draw_table(axes[step], table, gt_names, prior_names)
        for earlier, (eg, ep) in enumerate(picks[:step]):
            _strike(axes[step], eg, ep, num_gt, num_priors, colour="#9a9a9a", now=False)
            _circle(axes[step], eg, ep, "#222222", f"pick:{eg}:{ep}", number=earlier + 1)
        _strike(axes[step], g, p, num_gt, num_priors, colour=PALETTE[0], now=True)
        _circle(axes[step], g, p, PALETTE[0], f"pick:{g}:{p}", number=step + 1)
        axes[step].set_title(f"step {step + 1}: best pair left {gt_names[g]}\u2013{prior_names[p]} "
                             f"(IoU {table[g, p]:.2f});\nstrike out row {gt_names[g]}, column {prior_names[p]}",
                             fontsize=8.5)
    result = axes[len(picks)]
    _draw_table(result, table, gt_names, prior_names)
    for number, (g, p) in enumerate(picks, 1):
        _circle(result, g, p, "#222222", f"pick:{g}:{p}", number=number)
    taken = {p for _, p in picks}
    added = [(int(assignment[p]), p) for p in range(num_priors) if assignment[p] >= 0 and p not in taken]
    for g, p in added:
        _square(result, g, p, PALETTE[1], f"threshold:{g}:{p}")
    result.set_xticks(range(num_priors), [
        f"{prior_names[p]}\n\u2192 {gt_names[assignment[p]] if assignment[p] >= 0 else 'bg'}"
        for p in range(num_priors)], fontsize=8)
    added_text = ", ".join(f"{prior_names[p]} \u2192 {gt_names[g]}" for g, p in added) or "nothing"
    order = ", ".join(f"{gt_names[g]}\u2013{prior_names[p]}" for g, p in picks) or "none"
    result.set_title(textwrap.fill(f"result: picks {order}; then IoU \u2265 {iou_threshold:g} adds {added_text}",
                                   int(panel_width * 12)), fontsize=8.5)
    for ax in axes[panels:]:
        ax.set_axis_off()
    return figure


def greedy_bipartite_pairs(iou_table) -> list[tuple[int, int]]:
    """The (ground truth, default box) pairs of the greedy bipartite step, in the order they are taken.

    iou_table: (G, P). Repeatedly the highest IoU left (the first in
    row-major order on ties) is taken and its row and column struck out,
    until every row is taken or nothing left overlaps (IoU <= 0): the loop of
    ``minissd.matching.match_indices``, kept here with its order for the picture.
    """
    table = np.array(_check_table(iou_table), dtype=np.float64)  # (G, P), a copy we strike out
    num_gt, num_priors = table.shape
    pairs = []
    for _ in range(min(num_gt, num_priors)):
        g, p = divmod(int(table.argmax()), num_priors)
        if table[g, p] <= 0:
            break
        pairs.append((g, p))
        table[g, :] = -1
        table[:, p] = -1
    return pairs


def _assignment(table, picks, iou_threshold):
    """(P,) the ground truth of each default box after both steps, or -1 (as match_indices)."""
    best = table.argmax(axis=0) if table.shape[0] else np.zeros(table.shape[1], dtype=np.int64)
    best_overlap = table.max(axis=0) if table.shape[0] else np.zeros(table.shape[1])
    assignment = np.where((best_overlap >= iou_threshold) & (best_overlap > 0), best, -1)
    for g, p in picks:
        assignment[p] = g
    return assignment


def _check_table(iou_table):
    table = np.asarray(to_numpy(iou_table), dtype=np.float64)
    if table.ndim != 2 or table.shape[1] == 0:
        raise ValueError(f"bipartite_steps_figure: iou_table must have shape (G, P) with P >= 1; "
                         f"got {table.shape}")
    if table.shape[0] > MAX_TABLE_ROWS or table.shape[1] > MAX_TABLE_COLUMNS:
        raise ValueError(
            f"bipartite_steps_figure: iou_table has shape {table.shape}; a readable table has at most "
            f"{MAX_TABLE_ROWS} rows and {MAX_TABLE_COLUMNS} columns: pass the default boxes of interest")
    bad = np.argwhere(~(np.isfinite(table) & (table >= 0) & (table <= 1)))
    if bad.size:
        g, p = (int(v) for v in bad[0])
        raise ValueError(f"bipartite_steps_figure: iou_table[{g}, {p}] = {float(table[g, p])!r} is not an IoU "
                         "(a number in [0, 1])")
    return table


def _check_fraction(value):
    if not isinstance(value, (int, float, np.floating, np.integer)) or not 0 <= float(value) <= 1:
        raise ValueError(f"bipartite_steps_figure: iou_threshold = {value!r} must be a number in [0, 1]")
    return float(value)


def _table_names(names, count, argument, pattern):
    if names is None:
        return [pattern.format(i) for i in range(count)]
    names = [str(name) for name in names]
    if len(names) != count:
        raise ValueError(f"bipartite_steps_figure: {argument} has {len(names)} names for {count} "
                         f"{'rows' if argument == 'gt_names' else 'columns'} of iou_table")
    return names


def _draw_table(ax, table, gt_names, prior_names):
    num_gt, num_priors = table.shape
    ax.imshow(table, cmap="Blues", vmin=0.0, vmax=1.0)
    for g in range(num_gt):
        for p in range(num_priors):
            value = table[g, p]
            ax.text(p, g, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 0.55 else "black", zorder=8)  # above the strike lines
    ax.set_xticks(range(num_priors), prior_names, fontsize=8)
    ax.set_yticks(range(num_gt), gt_names, fontsize=8)
    ax.tick_params(length=0)
    ax.set_xlim(-0.5, num_priors - 0.5)
    ax.set_ylim(num_gt - 0.5, -0.5)
    ax.set_xlabel("default boxes", fontsize=8)


def _strike(ax, g, p, num_gt, num_priors, colour, now):
    """Row g and column p struck out: a coloured band now (the numbers stay legible), greyed afterwards."""
    from matplotlib.patches import Rectangle

    bands = (((-0.5, g - 0.5), num_priors, 1), ((p - 0.5, -0.5), 1, num_gt))
    for corner, width, height in bands:
        if now:
            ax.add_patch(Rectangle(corner, width, height, facecolor=colour, alpha=0.18, edgecolor="none", zorder=5))
            ax.add_patch(Rectangle(corner, width, height, fill=False, edgecolor=colour, linewidth=1.5,
                                   linestyle="--", zorder=6))
        else:  # struck out earlier: greyed and crossed by a thin line, so what is left stands out
            ax.add_patch(Rectangle(corner, width, height, facecolor="white", alpha=0.6, edgecolor="none", zorder=5))
    if not now:
        style = dict(color=colour, linewidth=1.0, alpha=0.7, zorder=6)
        ax.plot([-0.5, num_priors - 0.5], [g, g], **style)
        ax.plot([p, p], [-0.5, num_gt - 0.5], **style)


def _circle(ax, g, p, colour, gid, number):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((p, g), 0.44, fill=False, edgecolor=colour, linewidth=2.2, zorder=7, gid=gid))
    # the pick's number sits on the circle's upper-left, inside the cell (never clipped by the frame)
    ax.text(p - 0.3, g - 0.3, str(number), ha="center", va="center", fontsize=6.5, color="white", zorder=9,
            gid=f"order:{number}", bbox=dict(facecolor=colour, edgecolor="none", boxstyle="circle,pad=0.25"))


def _square(ax, g, p, colour, gid):
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((p - 0.44, g - 0.44), 0.88, 0.88, fill=False, edgecolor=colour, linewidth=2.2,
                           zorder=7, gid=gid))
