"""Pictures: boxes on images, default-box grids, matches, hard negatives, NMS, detections, PR curves.

    canvas          figures without pyplot, colours, images, boxes, grids
    default_boxes   the default boxes of chosen cells, one panel per feature map; the two centre rules
    figure1         the paper's Figure 1: a cat and a dog matched on an 8 x 8 and a 4 x 4 map
    matching        matched default boxes and kept hard negatives; the greedy bipartite step on the IoU table
    nms             NMS step by step: who removed whom, at what IoU (from minissd.nms.nms_steps)
    scenes          cartoon scenes with exact ground truth (the cat and the dog)
    evaluation      precision-recall curves
    detections      detections over an Axes, or into a PIL picture
    explain         one detection taken apart: its default box, cell, offsets as arrows, softmax, NMS
    analysis        error analysis (the paper's Fig. 3 and 4): error kinds, size / aspect sensitivity, confusion
    coverage        default-box coverage of a dataset: best-IoU and size histograms, positives per map and kind

Every function draws on a matplotlib ``Axes`` (made for you when ``ax`` is
None) and returns it, so notebooks can compose panels and the command line
can save them. matplotlib is imported lazily: the box modules never need it.
Coordinates: boxes are xyxy; pass ``normalized=True`` with ``size=(W, H)``
to draw [0, 1] boxes on a W x H picture.
"""

from .analysis import (ERROR_COLORS, error_breakdown_figure, plot_confusion_matrix, plot_error_breakdown,
                       plot_sensitivity, sensitivity_figure)
from .canvas import PALETTE, color_for, draw_boxes, draw_grid, figure_and_axes, show_image
from .coverage import compare_coverage_figure, coverage_figure, plot_best_iou, plot_object_sizes, plot_positives
from .default_boxes import box_names, cell_grid, centres_figure, default_boxes_figure, plot_default_boxes
from .detections import plot_detections, render_detections
from .evaluation import plot_pr_curves
from .explain import explain_figure
from .figure1 import FIGURE1_BOXES, Figure1Matches, figure1, figure1_matches, figure1_scene
from .matching import bipartite_steps_figure, greedy_bipartite_pairs, plot_hard_negatives, plot_matches
from .nms import nms_steps_figure, place_captions
from .scenes import TOY_KINDS, toy_scene

__all__ = [
    "explain_figure",
    "ERROR_COLORS", "error_breakdown_figure", "plot_confusion_matrix", "plot_error_breakdown", "plot_sensitivity",
    "sensitivity_figure",
    "compare_coverage_figure", "coverage_figure", "plot_best_iou", "plot_object_sizes", "plot_positives",
    "bipartite_steps_figure", "greedy_bipartite_pairs", "nms_steps_figure", "place_captions",
    "FIGURE1_BOXES", "Figure1Matches", "cell_grid", "centres_figure", "figure1", "figure1_matches", "figure1_scene",
    "PALETTE", "TOY_KINDS", "box_names", "color_for", "default_boxes_figure", "draw_boxes", "draw_grid",
    "figure_and_axes", "plot_default_boxes", "plot_detections", "plot_hard_negatives", "plot_matches",
    "plot_pr_curves", "render_detections", "show_image", "toy_scene",
]
