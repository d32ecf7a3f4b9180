"""The paper's Figure 1: an image with its ground truth, and the default boxes of two maps matched to it.

Liu et al. (2016), Figure 1: (a) an image with two ground-truth boxes, a cat and a dog; (b) an 8 x 8 and
(c) a 4 x 4 feature map whose cells each hold 4 default boxes of different aspect ratios. The small cat
matches default boxes of the 8 x 8 map, the large dog one of the 4 x 4 map; every other default box is a
negative. For every default box the network predicts shape offsets, loc: Δ(cx, cy, w, h), and
confidences for all classes, conf: (c1, c2, …, cp).

    figure1_scene    the built-in cartoon (``toy_scene``): the cat and the dog with exact ground truth
    figure1_matches  the matching the figure shows, returned as data so tests and notebooks assert on it
    figure1          the picture; ``figure.matches`` holds the ``Figure1Matches`` it drew

The matching is minissd's own, ``minissd.matching.match_indices`` over all default boxes of all maps at
once (as training does): each object's best default box, then every default box with IoU >= 0.5. With
the built-in scene every positive has IoU >= 0.5, so this is the paper's threshold matching exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import to_numpy
from .canvas import PALETTE, draw_boxes, figure_and_axes, show_image
from .default_boxes import CENTRE_COLOUR, _draw_cell_lines, cell_grid

# The cat sits centred on the centre of 8 x 8 cell (row 5, column 1), 0.16 x 0.22; the dog, 0.7 x 0.3,
# on the centre of 4 x 4 cell (row 2, column 2). Sizes chosen so that, as in the paper, two default boxes
# match the cat and one the dog (the wide a = 2 box of the 4 x 4 map).
FIGURE1_BOXES = np.array([[0.1075, 0.5775, 0.2675, 0.7975],   # cat
                          [0.275, 0.475, 0.975, 0.775]],      # dog
                         dtype=np.float32)  # (2, 4) xyxy, normalised
FIGURE1_CLASS_NAMES = ("background", "cat", "dog")
LOC_TEXT = "loc: Δ(cx, cy, w, h)"
CONF_TEXT = "conf: (c1, c2, …, cp)"
# Object g's colour: blue for the first (the paper's cat), red for the second (its dog), then the palette.
OBJECT_COLOURS = (PALETTE[2], PALETTE[0], PALETTE[1], PALETTE[3], PALETTE[4], PALETTE[9], PALETTE[6], PALETTE[11])
NEGATIVE_COLOUR = "#6e6e6e"


def figure1_scene(size: int = 300):
    """The built-in picture: (image (size, size, 3) uint8, gt_boxes (2, 4), labels (2,), class_names)."""
    from .scenes import toy_scene

    labels = np.array([1, 2], dtype=np.int64)
    return toy_scene(FIGURE1_BOXES, ["cat", "dog"], size=size), FIGURE1_BOXES.copy(), labels, FIGURE1_CLASS_NAMES


@dataclass(frozen=True)
class Figure1Matches:
    """What Figure 1 shows, as arrays: the default boxes, their IoU with each object, the matching.

    config:   the ``PriorConfig`` (paper's formula) of the maps drawn.
    gt_boxes: (G, 4) xyxy, normalised.       priors: (P, 4) cxcywh default boxes of all maps.
    overlaps: (G, P) IoU of each object with each default box.
    matched:  (P,) int64, the object index of each positive, -1 for a negative
              (``minissd.matching.match_indices``).
    """

    config: object
    gt_boxes: np.ndarray
    priors: np.ndarray
    overlaps: np.ndarray
    matched: np.ndarray
    iou_threshold: float

    def rows(self, map_index: int) -> slice:
        """The rows of ``priors`` that belong to map ``map_index``."""
        from ..priors import prior_slices

        return prior_slices(self.config)[map_index]

    def positives(self, g: int, map_index: int) -> np.ndarray:
        """Indices into ``priors`` of the default boxes of map ``map_index`` matched to object ``g``."""
        rows = self.rows(map_index)
        return rows.start + np.nonzero(self.matched[rows] == g)[0]

    def best_iou(self, g: int, map_index: int) -> float:
        """The highest IoU object ``g`` reaches with any default box of map ``map_index``."""
        return float(self.overlaps[g, self.rows(map_index)].max())

    def matched_maps(self, g: int) -> tuple[int, ...]:
        """Indices of the maps on which object ``g`` has at least one positive."""
        return tuple(k for k in range(len(self.config.feature_maps)) if self.positives(g, k).size)

    def centre_cell(self, g: int, map_index: int) -> tuple[int, int]:
        """(row, column) of the cell of map ``map_index`` that holds object ``g``'s centre."""
        _, edges = cell_grid(self.config, map_index)
        x1, y1, x2, y2 = (float(v) for v in self.gt_boxes[g])
        last = self.config.feature_maps[map_index] - 1

        def index(value):  # a centre on a border goes to the cell below / right of it; the 1e-6 absorbs
            # float32 corners, which put such a centre a hair to either side of the border
            return int(np.clip(np.searchsorted(edges, value + 1e-6, side="right") - 1, 0, last))

        return index((y1 + y2) / 2), index((x1 + x2) / 2)

    def cell_of(self, p: int) -> tuple[int, int, int, int]:
        """(map, row, column, box in the cell) of default box ``p``."""
        for k, side in enumerate(self.config.feature_maps):
            rows = self.rows(k)
            if rows.start <= p < rows.stop:
                cell, box = divmod(int(p) - rows.start, self.config.boxes_per_cell[k])
                return k, cell // side, cell % side, box
        raise ValueError(f"Figure1Matches.cell_of: p = {p} is not a default box index (0..{self.priors.shape[0] - 1})")

    def by_threshold_alone(self) -> bool:
        """True when every positive reaches the IoU threshold (the bipartite step added nothing)."""
        positive = self.matched >= 0
        reached = self.overlaps[self.matched[positive], np.nonzero(positive)[0]]
        return bool((reached >= self.iou_threshold).all())


def figure1_matches(gt_boxes=None, feature_maps=(8, 4), s_min: float = 0.2, s_max: float = 0.5,
                    aspect_ratios=(2,), iou_threshold: float = 0.5) -> Figure1Matches:
    """The matching Figure 1 draws: default boxes of ``feature_maps`` (the paper's formula) against ``gt_boxes``.

    gt_boxes:      (G, 4) xyxy normalised (default: the built-in cat and dog, ``FIGURE1_BOXES``).
    feature_maps:  map sides, e.g. (8, 4);  s_min, s_max: the scale formula's ends.
    aspect_ratios: the ratios a > 1 of every map: (2,) gives the paper's 4 boxes per cell
                   (s_k, s'_k, a = 2, a = 1/2).
    Matching: ``minissd.matching.match_indices`` over all maps' default boxes together, at ``iou_threshold``.
    """
    from ..boxes import cxcywh_to_xyxy, iou
    from ..matching import match_indices
    from ..priors import default_boxes, paper_config

    gt = _checked_gt_boxes(FIGURE1_BOXES if gt_boxes is None else gt_boxes, "figure1_matches")
    if isinstance(aspect_ratios, (str, bytes)) or not hasattr(aspect_ratios, "__iter__"):
        raise TypeError(f"figure1_matches: aspect_ratios = {aspect_ratios!r} must be a sequence of ratios a > 1")
    config = paper_config(tuple(feature_maps), s_min=s_min, s_max=s_max,
                          aspect_ratios=[tuple(aspect_ratios)] * len(feature_maps), name="figure 1")
    priors = default_boxes(config)  # (P, 4) cxcywh
    matched = to_numpy(match_indices(gt, priors, iou_threshold=iou_threshold))  # (P,)
    overlaps = to_numpy(iou(gt, cxcywh_to_xyxy(priors)))  # (G, P)
    return Figure1Matches(config, gt, priors, overlaps, matched, float(iou_threshold))


def _checked_gt_boxes(gt_boxes, function: str) -> np.ndarray:
    """(G, 4) float32 xyxy inside [0, 1], G >= 1, or a ValueError naming the box."""
    from ..boxes import check_boxes
    from ..validate import as_float_array, check_last_axis, format_row

    gt = np.asarray(to_numpy(as_float_array(gt_boxes, "gt_boxes", function)), dtype=np.float32)
    check_last_axis(gt, "gt_boxes", function, ndim=2, layout="(G, 4) xyxy")
    if gt.shape[0] == 0:
        raise ValueError(f"{function}: gt_boxes is empty; the figure needs at least one object")
    check_boxes(gt, "gt_boxes", function=function)
    outside = ((gt < 0) | (gt > 1)).any(axis=1)
    if outside.any():
        g = int(np.argmax(outside))
        raise ValueError(f"{function}: gt_boxes[{g}] = {format_row(gt[g])} is outside [0, 1] (boxes are xyxy "
                         "normalised by the picture's width and height)")
    return gt


def _object_names(labels, class_names, count: int) -> list[str]:
    from ..validate import as_integer_labels

    if labels is None:
        if class_names is not None:
            raise ValueError("figure1: class_names needs labels (one per box) to pick a name for each box")
        return [f"object {g + 1}" for g in range(count)]
    labels = np.asarray(to_numpy(as_integer_labels(labels, "labels", "figure1", low=1,
                                                   rule="labels are integers >= 1; 0 is the background")))
    if labels.shape != (count,):
        raise ValueError(f"figure1: labels must have shape ({count},) to go with gt_boxes; got {labels.shape}")
    if class_names is None:
        return [f"class {int(v)}" for v in labels]
    for g, label in enumerate(labels):
        if label >= len(class_names):
            raise ValueError(f"figure1: labels[{g}] = {int(label)} has no name: class_names holds "
                             f"{len(class_names)} names (index 0 is the background)")
    return [str(class_names[int(v)]) for v in labels]


def _picture(image):
    """(H, W, 3) picture and its (W, H); a (3, H, W) model input is turned around first."""
    picture = np.asarray(to_numpy(image))
    if picture.ndim == 3 and picture.shape[0] == 3 and picture.shape[-1] != 3:
        picture = picture.transpose(1, 2, 0)  # (H, W, 3)
    if picture.ndim != 3 or picture.shape[2] != 3 or min(picture.shape[:2]) < 1:
        raise ValueError(f"figure1: image must be (H, W, 3) or (3, H, W); got shape {tuple(np.shape(image))}")
    return picture, (picture.shape[1], picture.shape[0])


def figure1(image=None, gt_boxes=None, labels=None, class_names=None, feature_maps=(8, 4), s_min: float = 0.2,
            s_max: float = 0.5, aspect_ratios=(2,), iou_threshold: float = 0.5, figsize=None):
    """The paper's Figure 1 as a matplotlib Figure (drawn without pyplot; ``figure.savefig`` writes it).

    image:       (H, W, 3) picture (any size), or None for the built-in cat and dog (``figure1_scene``).
    gt_boxes:    (G, 4) xyxy normalised to [0, 1] by the picture's width and height (needed with ``image``).
    labels:      optional (G,) ints >= 1; class_names: names indexed by label (0 the background).
    feature_maps, s_min, s_max, aspect_ratios, iou_threshold: as ``figure1_matches``.

    Panels: (a) the image with its ground truth; then one per map: the default boxes of the cells that
    hold an object's centre or a positive, matched ones dashed in their object's colour, the others
    grey dashed, ground truth solid and thick, every cell centre dotted (black for the cells drawn);
    an object with no positive on a map has its best IoU written at its cell. The loc / conf note
    points at the best positive of the last map that has one. One legend below; the caption names the
    matching. ``figure.matches`` is the ``Figure1Matches`` drawn.
    """
    if gt_boxes is None:
        if image is not None or labels is not None or class_names is not None:
            raise ValueError("figure1: give gt_boxes with image, labels or class_names "
                             "(or none of them for the built-in cat and dog)")
        image, gt_boxes, labels, class_names = figure1_scene()
    gt = _checked_gt_boxes(gt_boxes, "figure1")
    names = _object_names(labels, class_names, gt.shape[0])
    if image is None:
        image = np.full((300, 300, 3), (207, 232, 247), dtype=np.uint8)  # the cartoon's sky, nothing on it
    picture, size = _picture(image)
    matches = figure1_matches(gt, feature_maps, s_min, s_max, aspect_ratios, iou_threshold)
    colours = [OBJECT_COLOURS[g % len(OBJECT_COLOURS)] for g in range(gt.shape[0])]

    count = len(matches.config.feature_maps)
    panels = 1 + count
    columns = min(panels, 4)
    rows = -(-panels // columns)
    figure, axes = figure_and_axes(rows, columns, figsize=figsize or (4.6 * columns, 5.2 * rows + 1.3))
    _fixed_margins(figure, rows)
    axes = axes.ravel()
    for ax in axes[panels:]:
        ax.set_axis_off()
    show_image(picture, ax=axes[0], title="(a) image with ground-truth boxes")
    _draw_ground_truth(axes[0], gt, names, colours, size)
    _frame(axes[0], [np.array([0.0, 0.0, 1.0, 1.0])], size)
    for k in range(count):
        _draw_map(axes[1 + k], picture, matches, k, names, colours, size, title_letter=chr(ord("b") + k))
    _annotate_prediction(axes, matches, names, size)
    _legend(figure, names, colours)
    threshold = f"{matches.iou_threshold:g}"
    figure.suptitle(
        "The SSD paper's Figure 1: each object is matched on the map whose default boxes have its size\n"
        f"positives: minissd.matching.match_indices over all {matches.config.num_priors} default boxes of the "
        f"{count} maps (each object's best box, then every box with IoU >= {threshold}); the rest are negatives",
        fontsize=10, y=0.995, va="top")
    figure.matches = matches
    return figure


def _fixed_margins(figure, rows: int, caption=0.75, legend=0.6, title=0.5, label=0.5):
    """Margins in inches: the caption and the legend outside the panels, a title above and a label below each.

    Fixed rather than tight or constrained layout: those lay out the equal-aspect panels before they
    shrink to their aspect, and let titles and labels collide; a shrinking panel only widens these gaps.
    """
    height = figure.get_size_inches()[1]
    top, bottom = caption + title, legend + label
    panel = (height - top - bottom - (rows - 1) * (label + title)) / rows
    figure.subplots_adjust(left=0.02, right=0.98, top=1 - top / height, bottom=bottom / height,
                           wspace=0.12, hspace=(label + title) / max(panel, 0.1))


def _draw_ground_truth(ax, gt, names, colours, size, linewidth=3.0):
    for g in range(gt.shape[0]):
        draw_boxes(gt[g:g + 1], ax=ax, labels=[0], class_names=[names[g]], color=colours[g], normalized=True,
                   size=size, linewidth=linewidth)


def _frame(ax, extents, size):
    """Show everything drawn (boxes stick out of the picture) with a small margin, in pixels."""
    width, height = size
    extent = np.array(extents) * np.array([width, height, width, height])  # (D, 4) px
    margin = 0.03 * max(width, height)
    ax.set_xlim(extent[:, 0].min() - margin, extent[:, 2].max() + margin)
    ax.set_ylim(extent[:, 3].max() + margin, extent[:, 1].min() - margin)
    ax.set_aspect("equal")


def _drawn_cells(matches, k) -> list[tuple[int, int]]:
    """The cells of map k whose boxes the figure draws: those holding an object's centre or a positive."""
    cells = []
    for g in range(matches.gt_boxes.shape[0]):
        cells.append(matches.centre_cell(g, k))
        cells += [matches.cell_of(p)[1:3] for p in matches.positives(g, k)]
    return list(dict.fromkeys(cells))  # unique, in order


def _draw_map(ax, picture, matches, k, names, colours, size, title_letter):
    from ..boxes import cxcywh_to_xyxy

    width, height = size
    config = matches.config
    side, per_cell = config.feature_maps[k], config.boxes_per_cell[k]
    show_image(picture, ax=ax, title=f"({title_letter}) {side} x {side} feature map\n"
                                     f"s = {config.min_sizes[k]:.2f}, {per_cell} boxes per cell")
    ax.images[-1].set_alpha(0.4)  # the picture stays readable, the boxes lead
    centres, edges = cell_grid(config, k)
    _draw_cell_lines(ax, edges, size)
    grid_y, grid_x = np.meshgrid(centres * height, centres * width, indexing="ij")  # (f, f) each
    ax.plot(grid_x.ravel(), grid_y.ravel(), linestyle="none", marker="o", markersize=1.6, color="#8a8a8a")
    corners = cxcywh_to_xyxy(matches.priors).astype(np.float64)  # (P, 4)
    cells = _drawn_cells(matches, k)
    rows = matches.rows(k)
    extents = [np.array([0.0, 0.0, 1.0, 1.0]), np.array([edges[0], edges[0], edges[-1], edges[-1]])]
    boxes_of = {cell: range(rows.start + (cell[0] * side + cell[1]) * per_cell,
                            rows.start + (cell[0] * side + cell[1] + 1) * per_cell) for cell in cells}
    drawn = sorted({p for indices in boxes_of.values() for p in indices})
    negatives = [p for p in drawn if matches.matched[p] < 0]
    draw_boxes(corners[negatives], ax=ax, color=NEGATIVE_COLOUR, normalized=True, size=size, linewidth=1.1,
               linestyle="--", text=False)
    for g in range(matches.gt_boxes.shape[0]):
        mine = [p for p in drawn if matches.matched[p] == g]
        draw_boxes(corners[mine], ax=ax, color=colours[g], normalized=True, size=size, linewidth=2.4,
                   linestyle="--", text=False)
    extents += [corners[p] for p in drawn]
    for row, column in cells:
        ax.plot([centres[column] * width], [centres[row] * height], linestyle="none", marker="o", markersize=5,
                color=CENTRE_COLOUR, zorder=4)
    _draw_ground_truth(ax, matches.gt_boxes, names, colours, size)
    lines = []
    for g, name in enumerate(names):
        positives = matches.positives(g, k)
        if positives.size:
            values = matches.overlaps[g, positives]  # (n,)
            listed = (", ".join(f"{v:.2f}" for v in values) if values.size <= 4
                      else f"{values.min():.2f} to {values.max():.2f}")  # a big object on a fine map: many
            lines.append(f"{name}: {positives.size} positive{'s' if positives.size > 1 else ''} (IoU {listed})")
            continue
        best = matches.best_iou(g, k)
        lines.append(f"{name}: none, best IoU {best:.2f} < {matches.iou_threshold:g}")
        row, column = matches.centre_cell(g, k)
        ax.annotate(f"{name}: best IoU {best:.2f} < {matches.iou_threshold:g}",
                    (centres[column] * width, centres[row] * height), textcoords="offset points",
                    xytext=(0, -14 - 12 * g), ha="center", va="top", fontsize=8, color="#222222", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor=NEGATIVE_COLOUR, alpha=0.9))
    ax.set_axis_on()  # for the x label, which tight_layout makes room for; no ticks, no frame
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("\n".join(lines), fontsize=8.5)
    _frame(ax, extents, size)


def _annotate_prediction(axes, matches, names, size):
    """The paper's note, loc: Δ(cx, cy, w, h) and conf: (c1, ..., cp), pointing at one positive."""
    from ..boxes import cxcywh_to_xyxy, encode

    width, height = size  # pixels
    for k in reversed(range(len(matches.config.feature_maps))):
        rows = matches.rows(k)
        positive = np.nonzero(matches.matched[rows] >= 0)[0] + rows.start
        if positive.size:
            break
    else:
        return  # nothing matched anywhere: no box to point at
    p = int(max(positive, key=lambda q: matches.overlaps[matches.matched[q], q]))
    g = int(matches.matched[p])
    _, y1, x2, _ = cxcywh_to_xyxy(matches.priors[p:p + 1].astype(np.float64))[0]  # the arrow ends at its top right
    target = encode(matches.gt_boxes[g:g + 1], matches.priors[p:p + 1])[0]  # (4,) with variances 0.1, 0.2
    values = ", ".join(f"{float(v):.2f}" for v in target)
    axes[1 + k].annotate(
        f"{LOC_TEXT}\n{CONF_TEXT}\nthis box's targets: Δ = ({values}), class {names[g]}",
        xy=(x2 * width, y1 * height), xycoords="data", xytext=(0.03, 0.97), textcoords="axes fraction",
        ha="left", va="top", fontsize=8, zorder=6,
        bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor="#333333", alpha=0.92),
        arrowprops=dict(arrowstyle="->", color="#333333", linewidth=1.2))


def _legend(figure, names, colours):
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for name, colour in zip(names, colours):
        handles += [Line2D([], [], color=colour, linewidth=3.0), Line2D([], [], color=colour, linewidth=2.4,
                                                                        linestyle="--")]
        labels += [f"{name}: ground truth", f"default box matched to {name}"]
    handles += [Line2D([], [], color=NEGATIVE_COLOUR, linewidth=1.1, linestyle="--"),
                Line2D([], [], color=CENTRE_COLOUR, marker="o", markersize=5, linestyle="none")]
    labels += ["other default boxes of those cells (negatives)", "cell centre (black: a cell drawn)"]
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8.5, frameon=False)
