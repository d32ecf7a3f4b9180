"""Pictures: boxes on images, default-box grids, matches, detections.

Every function draws on a matplotlib ``Axes`` (made for you when ``ax`` is
None) and returns it, so notebooks can compose panels and the command line
can save them. matplotlib is imported lazily: the box modules never need it.
Coordinates: boxes are xyxy; pass ``normalized=True`` with ``size=(W, H)``
to draw [0, 1] boxes on a W x H picture.
"""

from __future__ import annotations

import numpy as np

from .backend import to_numpy

# A qualitative palette, readable on light and dark images.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4",
    "#f032e6", "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324",
    "#fffac8", "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075",
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
    from .priors import default_boxes, prior_slices
    from .boxes import cxcywh_to_xyxy

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

    from .priors import get_config, paper_config

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


def plot_detections(image, boxes, labels, scores=None, class_names=None, ax=None, normalized=False, title=None):
    """An image with its detections (or ground truth when scores is None)."""
    ax = show_image(image, ax=ax, title=title)
    picture = to_numpy(image)
    height, width = (picture.shape[1:] if picture.shape[0] == 3 and picture.shape[-1] != 3 else picture.shape[:2])
    draw_boxes(boxes, ax=ax, labels=labels, scores=scores, class_names=class_names,
               normalized=normalized, size=(width, height))
    return ax


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
    from .boxes import cxcywh_to_xyxy

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


def _frame_to_image(ax, width, height):
    # Grid lines and boxes that stick out would otherwise widen the view past the picture.
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)


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

    from .boxes import cxcywh_to_xyxy

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


def plot_pr_curves(result, class_names=None, ax=None, title: str | None = None):
    """Precision-recall curves, one per class, with each class's AP in the legend.

    result: a ``minissd.evaluate.VOCResult``: the raw curve, one point
            (recall(n), precision(n)) per counted detection n in score order;
            or a ``COCOResult``: the interpolated precision at the 101 recall
            levels 0, 0.01, ..., 1, at IoU 0.5 (its AP50 per class).
    class_names: optional names, indexed by label (a sequence or a dict).
    Classes without ground truth (AP NaN) are left out. Returns the Axes.
    """
    ax = _axes(ax, figsize=(5, 4))
    for label, (recall, precision, ap) in sorted(result.pr_curves().items()):
        name = class_names[label] if class_names is not None else f"class {label}"
        ax.plot(recall, precision, color=color_for(label), linewidth=1.5, label=f"{name} (AP {ap:.3f})")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    if title is None:
        title = f"mAP {result.mAP:.3f}" if hasattr(result, "mAP") else f"AP50 {result.AP50:.3f}"
    ax.set_title(title)
    if ax.get_lines():
        ax.legend(loc="lower left", fontsize="small")
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
