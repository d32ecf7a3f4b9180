"""Matching and hard negatives drawn: which default boxes answer for which object, and which negatives count."""

from __future__ import annotations

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
