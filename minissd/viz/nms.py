"""NMS drawn step by step: which reference box removed which box, and at what IoU.

``nms_steps_figure`` turns ``minissd.nms.nms_steps`` into panels: "before"
(every box, and those the score rule removes first), one panel per reference
box (the reference, each box it removes with its IoU written on it, the boxes
kept earlier and those still waiting), and "after" (the kept boxes, and each
removed one with the reference that removed it). Colours carry the roles; a
legend under the panels names them.

Captions never hide one another: each is placed at the first of a list of
spots around its box (its inner corners, then outside above, below and to
the sides) where it overlaps no caption already placed, measured with the
Agg renderer on the final layout. That is why the figure is laid out by hand
(no ``tight_layout`` afterwards: moving the panels would move the captions).
"""

from __future__ import annotations

import math
import textwrap

import numpy as np

from ..backend import to_numpy

ROLE_STYLES = {
    "reference": dict(color="#4363d8", linewidth=3.0, linestyle="-"),
    "removed": dict(color="#e6194b", linewidth=2.0, linestyle="--"),
    "kept": dict(color="#3cb44b", linewidth=2.2, linestyle="-"),
    "waiting": dict(color="#808080", linewidth=1.2, linestyle="-"),
    "below_score": dict(color="#6e6e6e", linewidth=1.5, linestyle=":"),
}
MAX_PANELS = 24  # a picture for hand-sized examples; more panels are unreadable
_PAD_PT = 1.5  # caption padding, points (the coloured patch around the text)
_GAP_PX = 2.0  # pixels kept free between captions, and between a caption and its box edge


def nms_steps_figure(
    boxes,
    scores,
    iou_threshold: float,
    score_threshold: float | None = None,
    image=None,
    names=None,
    normalized: bool = False,
    size=None,
    columns: int | None = None,
    panel_width: float = 4.2,
    fontsize: float = 7.0,
):
    """The slides' NMS as panels, one per reference box, from ``minissd.nms.nms_steps``.

    boxes:  (D, 4) xyxy, in pixels of ``image`` (or [0, 1] with ``normalized=True``).
    scores: (D,).   iou_threshold, score_threshold: as for ``minissd.nms.nms``.
    image:  optional (H, W, 3) picture (or a (3, H, W) model input) drawn under the boxes.
    names:  D captions (default "#i score"), e.g. ["0.9", "0.8", ..., "0.6 left", "0.6 right"].
    normalized + size=(W, H): scale [0, 1] boxes to pixels (size defaults to the image's).
    columns: panels per row (default 2 up to four panels, else 3).

    Panels: "before", then one per step of ``nms_steps`` (reference blue,
    the boxes it removes red and dashed with "IoU x.xx", boxes kept earlier
    green, boxes still waiting grey), then "after". Boxes whose score is at or
    below ``score_threshold`` are dotted in "before" and take no part after.
    Every caption is a Text artist whose gid says "role:index" (e.g.
    "removed:2", "reference:0"), so a test can read the picture back.
    Returns a matplotlib Figure without pyplot (a cell that ends with it shows
    it; ``figure.savefig(path)`` writes it).
    """
    from ..nms import nms_steps

    steps = nms_steps(boxes, scores, iou_threshold, score_threshold)  # checks every argument
    boxes = np.asarray(to_numpy(boxes), dtype=np.float64).reshape(-1, 4)  # (D, 4)
    scores = np.asarray(to_numpy(scores), dtype=np.float64).reshape(-1)  # (D,)
    names = _names(names, scores)
    picture, width, height = _canvas(image, boxes, normalized, size)
    if normalized:
        boxes = boxes * np.array([width, height, width, height])
    panels = _panels(steps, scores, names, iou_threshold, score_threshold)
    if len(panels) > MAX_PANELS:
        raise ValueError(
            f"nms_steps_figure: {len(steps)} reference boxes would need {len(panels)} panels (at most "
            f"{MAX_PANELS} are drawn); give fewer boxes, a higher score_threshold or a lower iou_threshold"
        )
    if columns is None:
        columns = 2 if len(panels) <= 4 else 3
    if int(columns) != columns or columns < 1:
        raise ValueError(f"nms_steps_figure: columns = {columns!r} must be an integer >= 1")
    below_score = any(role == "below_score" for _, items in panels for _, role, _ in items)
    legend = _legend_labels(iou_threshold, score_threshold, below_score)
    figure, axes, legend_columns = _layout(len(panels), int(columns), panel_width, width, height,
                                           [title for title, _ in panels], fontsize, legend)
    for ax, (_, items) in zip(axes, panels):
        _draw_panel(ax, picture, width, height, boxes, items, fontsize)
    _legend(figure, legend, legend_columns)
    return figure


# --------------------------------------------------------------------------
# what each panel shows
# --------------------------------------------------------------------------

def _names(names, scores):
    if names is None:
        return [f"#{i} {score:.2f}" for i, score in enumerate(scores)]
    names = [str(name) for name in names]
    if len(names) != len(scores):
        raise ValueError(f"nms_steps_figure: names has {len(names)} entries but there are {len(scores)} boxes")
    return names


def _panels(steps, scores, names, iou_threshold, score_threshold):
    """[(title, [(index, role, caption), ...]), ...]: before, one per step, after."""
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    taking_part = [i for i in order if score_threshold is None or scores[i] > score_threshold]
    below = [i for i in order if i not in taking_part]
    panels = []

    if below:
        title = (f"before: score \u2264 {score_threshold:g} removes {_listing(below, names)}; "
                 f"left, by score: {_listing(taking_part, names)}")
    else:
        title = f"before: {len(taking_part)} boxes, sorted by score: {_listing(taking_part, names)}"
    items = [(i, "waiting", names[i]) for i in taking_part]
    items += [(i, "below_score", f"{names[i]} \u2264 {score_threshold:g}") for i in below]
    panels.append((title, items))

    kept, gone, removed_by = [], set(), {}
    for step, (reference, removed) in enumerate(steps, 1):
        removed_now = {index for index, _ in removed}
        listing = ", ".join(f"{names[i]} ({overlap:.2f})" for i, overlap in removed) if removed else "nothing"
        items = [(reference, "reference", f"ref {names[reference]}")]
        items += [(i, "removed", f"{names[i]}\nIoU {overlap:.2f}") for i, overlap in removed]
        items += [(i, "kept", names[i]) for i in kept]
        items += [(i, "waiting", names[i]) for i in taking_part
                  if i != reference and i not in gone and i not in removed_now and i not in kept]
        panels.append((f"step {step}: reference {names[reference]} removes {listing}", items))
        kept.append(reference)
        gone |= removed_now
        removed_by.update({i: reference for i in removed_now})

    items = [(i, "kept", names[i]) for i in kept]
    items += [(i, "removed", f"{names[i]}\nby {names[removed_by[i]]}") for i in taking_part if i in removed_by]
    panels.append((f"after (IoU \u2265 {iou_threshold:g} removed): {len(kept)} kept, {_listing(kept, names)}", items))
    return panels


def _listing(indices, names, most: int = 6) -> str:
    if not indices:
        return "none"
    shown = ", ".join(names[i] for i in indices[:most])
    return shown if len(indices) <= most else f"{shown} and {len(indices) - most} more"


# --------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------

def _canvas(image, boxes, normalized, size):
    """(picture or None, width, height) of the panel's coordinate frame, in pixels."""
    if image is not None:
        picture = np.asarray(to_numpy(image))
        if picture.ndim == 3 and picture.shape[0] == 3 and picture.shape[-1] != 3:
            picture = picture.transpose(1, 2, 0)  # (H, W, 3)
        if picture.ndim not in (2, 3):
            raise ValueError(f"nms_steps_figure: image must be (H, W, 3) or (3, H, W); got shape {picture.shape}")
        height, width = picture.shape[:2]
        if size is not None and tuple(size) != (width, height):
            raise ValueError(f"nms_steps_figure: size = {tuple(size)} but the image is {width} x {height}")
        if picture.dtype != np.uint8:
            low, high = float(picture.min()), float(picture.max())
            picture = (picture - low) / max(high - low, 1e-12)
        return picture, float(width), float(height)
    if size is not None:
        width, height = size
        return None, float(width), float(height)
    if normalized:
        raise ValueError("nms_steps_figure: normalized boxes need size=(width, height) or an image")
    if boxes.size == 0:
        return None, 1.0, 1.0
    # no picture: a frame around the boxes, with a margin for the captions outside them
    return None, float(boxes[:, 2].max()) * 1.08, float(boxes[:, 3].max()) * 1.15


def _layout(count, columns, panel_width, width, height, titles, fontsize, legend):
    """(Figure, Axes, legend columns): ``count`` Axes placed by hand, each of the picture's aspect ratio."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = math.ceil(count / columns)
    title_size = fontsize + 1.5
    wrap = max(20, int(panel_width * 72 / (0.5 * title_size)))
    lines = max(len(textwrap.wrap(title, wrap)) for title in titles)
    title_height = (lines * 1.3 * title_size + 6) / 72  # inches
    image_height = panel_width * height / width
    gap, margin = 0.15, 0.1
    figure_width = columns * panel_width + (columns - 1) * gap + 2 * margin
    # legend entries: a line sample and the label (about half an em a character at 8 points)
    entry_widths = [0.6 + len(label) * 8 * 0.5 / 72 for label in legend.values()]
    legend_columns = len(entry_widths)
    while legend_columns > 1 and sum(sorted(entry_widths)[-legend_columns:]) > 0.96 * figure_width:
        legend_columns -= 1  # the widest entries side by side must fit the figure
    legend_height = 0.15 + 0.2 * math.ceil(len(entry_widths) / legend_columns)
    figure_height = rows * (title_height + image_height) + (rows - 1) * gap + legend_height + margin
    figure = Figure(figsize=(figure_width, figure_height))
    FigureCanvasAgg(figure)  # a renderer for measuring captions, and savefig
    axes = []
    for k in range(count):
        row, column = divmod(k, columns)
        left = margin + column * (panel_width + gap)
        top = figure_height - margin - row * (title_height + image_height + gap)
        bottom = top - title_height - image_height
        axes.append(figure.add_axes((left / figure_width, bottom / figure_height,
                                     panel_width / figure_width, image_height / figure_height)))
    for ax, title in zip(axes, titles):
        ax.set_title("\n".join(textwrap.wrap(title, wrap)), fontsize=title_size)
    return figure, axes, legend_columns


def _draw_panel(ax, picture, width, height, boxes, items, fontsize):
    from matplotlib.patches import Rectangle

    if picture is not None:
        ax.imshow(picture, extent=(0, width, height, 0))
    else:
        ax.set_facecolor("#f2f2f2")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    # draw waiting and below-score boxes first, so the roles that matter lie on top
    depth = {"below_score": 1, "waiting": 2, "kept": 3, "removed": 4, "reference": 5}
    for index, role, _ in sorted(items, key=lambda item: depth[item[1]]):
        x1, y1, x2, y2 = boxes[index]
        style = ROLE_STYLES[role]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=style["color"],
                               linewidth=style["linewidth"], linestyle=style["linestyle"],
                               zorder=depth[role] + 1, gid=f"{role}:{index}"))
    # captions: the important roles choose their spot first
    captions = sorted(items, key=lambda item: -depth[item[1]])
    place_captions(ax, [(boxes[index], text, _caption_colour(role), f"{role}:{index}")
                        for index, role, text in captions], fontsize=fontsize)


def _caption_colour(role: str) -> str:
    style = ROLE_STYLES[role]
    return style.get("caption", style["color"])


def _legend_labels(iou_threshold, score_threshold, below_score: bool) -> dict:
    labels = {
        "reference": "reference (the best box left)",
        "removed": f"removed: IoU with the reference \u2265 {iou_threshold:g}",
        "kept": "kept earlier",
        "waiting": "still waiting",
    }
    if below_score:
        labels["below_score"] = f"score \u2264 {score_threshold:g}: removed before NMS"
    return labels


def _legend(figure, labels: dict, columns: int):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], label=label, **_line_style(role)) for role, label in labels.items()]
    figure.legend(handles=handles, loc="lower center", ncol=columns, frameon=False, fontsize=8,
                  bbox_to_anchor=(0.5, 0.0))


def _line_style(role: str) -> dict:
    style = ROLE_STYLES[role]
    return dict(color=style["color"], linewidth=style["linewidth"], linestyle=style["linestyle"])


# --------------------------------------------------------------------------
# captions that never cover each other
# --------------------------------------------------------------------------

def place_captions(ax, captions, fontsize: float = 7.0):
    """Write each caption next to its box where it covers no caption placed before it.

    captions: [(box xyxy in data coordinates, text, colour, gid), ...], most
    important first; a fifth entry "bottom" tries the bottom corners first
    (handy to keep two sets of boxes that share a top edge apart). Each is
    tried at its box's inner top-left, top-right, bottom-left and
    bottom-right corners, then outside above, below and to the sides; the
    first spot inside the Axes that overlaps no earlier caption wins (if none
    does, the one of least overlap). The Axes must already have its final
    position and limits (lay the figure out first). Returns the Text artists.
    """
    renderer = ax.figure.canvas.get_renderer()
    ax.apply_aspect()
    frame = ax.get_window_extent(renderer)
    to_data = ax.transData.inverted()
    pad = _PAD_PT * ax.figure.dpi / 72
    placed, texts = [], []
    for box, caption, colour, gid, *prefer in captions:
        text = ax.text(0, 0, caption, fontsize=fontsize, color="white", ha="left", va="bottom", zorder=10,
                       gid=gid, linespacing=1.05,
                       bbox=dict(facecolor=colour, edgecolor="none", pad=_PAD_PT, alpha=0.9))
        extent = text.get_window_extent(renderer)
        w, h = extent.width + 2 * pad, extent.height + 2 * pad  # the coloured patch, pixels
        corners = ax.transData.transform([[box[0], box[1]], [box[2], box[3]]])
        left, right = sorted(corners[:, 0])
        bottom, top = sorted(corners[:, 1])
        best, best_overlap = None, math.inf
        spots = _spots(left, bottom, right, top, w, h, _GAP_PX)
        if prefer and prefer[0] == "bottom":
            spots = spots[2:4] + spots[:2] + spots[6:8] + spots[4:6] + spots[8:]
        for x, y in spots:
            spot = (x, y, x + w, y + h)
            if spot[0] < frame.x0 or spot[1] < frame.y0 or spot[2] > frame.x1 or spot[3] > frame.y1:
                continue
            overlap = sum(_overlap_area(spot, other) for other in placed)
            if overlap < best_overlap:
                best, best_overlap = spot, overlap
                if overlap == 0:
                    break
        if best is None:  # no spot inside the frame: the inner top-left corner, clipped by the Axes
            best = (left + _GAP_PX, top - _GAP_PX - h, left + _GAP_PX + w, top - _GAP_PX)
        text.set_position(to_data.transform((best[0] + pad, best[1] + pad)))
        placed.append(tuple(np.add(best, (-_GAP_PX / 2, -_GAP_PX / 2, _GAP_PX / 2, _GAP_PX / 2))))
        texts.append(text)
    return texts


def _spots(left, bottom, right, top, w, h, gap):
    """Lower-left corners (display pixels, y up) of the places a w x h caption may go, best first."""
    return [
        (left + gap, top - gap - h), (right - gap - w, top - gap - h),  # inside, top corners
        (left + gap, bottom + gap), (right - gap - w, bottom + gap),  # inside, bottom corners
        (left, top + gap), (right - w, top + gap),  # outside, above
        (left, bottom - gap - h), (right - w, bottom - gap - h),  # outside, below
        (left - gap - w, top - h), (right + gap, top - h),  # outside, beside the top
        (left - gap - w, bottom), (right + gap, bottom),  # outside, beside the bottom
        (left + gap, (top + bottom - h) / 2), (right - gap - w, (top + bottom - h) / 2),  # inside, middle
    ]


def _overlap_area(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0
