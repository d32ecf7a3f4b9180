"""One detection taken apart, as a picture: ``explain_figure(explanation, image)``.

Three panels from a ``minissd.explain.Explanation``:

    picture   the grid of the detection's feature map, its cell (shaded) and the cell's centre, the
              default box (dashed), the detection (solid, its class colour; dotted where the clip to
              [0, 1] cut it), the offsets as arrows (the centre shift, and the size change of the right
              and bottom edges), the boxes NMS removed because of it (red, dashed, "IoU x.xx");
    classes   the softmax over all L classes as bars (the detection's class in its colour, the
              background grey), the score threshold as a dotted line;
    decoding  decode's arithmetic, step by step, as text.

Artists carry gids a test can read back: "cell", "cell_centre", "default_box", "detection",
"unclipped", "suppressed:<p>", "arrow:centre", "arrow:width", "arrow:height", "class:<label>",
"threshold", "decoding". Drawn without pyplot: ``figure.savefig(path)`` writes it.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from .canvas import color_for
from .default_boxes import _draw_cell_lines
from .nms import ROLE_STYLES, place_captions

DEFAULT_BOX_STYLE = dict(color="#1a1a1a", linewidth=1.8, linestyle="--")
SUPPRESSED_STYLE = ROLE_STYLES["removed"]
CELL_COLOUR = "#ffd21f"
CELL_ALPHA = 0.3
ARROW_COLOUR = "black"
BACKGROUND_BAR = "#8c8c8c"
OTHER_BAR = "#cfcfcf"
BLANK = (238, 238, 238)  # the canvas when no picture is given


def explain_figure(explanation, image=None, zoom: bool = True, max_captions: int = 8, figsize=(12.5, 6.2),
                   fontsize: float = 8.0):
    """The anatomy of one detection (an ``Explanation``) as a matplotlib Figure; see the module docstring.

    image: the (H, W, 3) picture the detection was found in (or a (3, H, W) array); None draws on a
    blank canvas of the explanation's image size. Boxes are normalised, so they are drawn at the
    picture's size; a picture of another size than the explanation's is an error (the wrong picture).
    zoom: show the part of the picture around the detection, its default box, cell and suppressed
    boxes (False: the whole picture). max_captions: the suppressed boxes captioned with their IoU (all
    are drawn), best first.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    e = explanation
    picture, width, height = _picture(image, e)
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)  # a renderer for the captions' placement, and savefig
    grid = figure.add_gridspec(2, 2, width_ratios=(1.1, 1.0), height_ratios=(1.0, 1.0), left=0.03, right=0.985,
                               top=0.88, bottom=0.1, wspace=0.28, hspace=0.32)
    picture_ax = figure.add_subplot(grid[:, 0])
    bars_ax = figure.add_subplot(grid[0, 1])
    text_ax = figure.add_subplot(grid[1, 1])
    box = e.default_box
    where = f"map {box.map_index}" + (f" ({box.map_name})" if box.map_name else "")
    figure.suptitle(f"detection {e.index} of {e.count}: {e.class_name} {float(e.score):.3f}, from default box "
                    f"{box.index}: {where}, {box.map_size} x {box.map_size} cells, cell (row {box.row}, column "
                    f"{box.column}), box {box.box_in_cell} {box.shape}", fontsize=fontsize + 3)
    _draw_picture(picture_ax, picture, width, height, e, zoom, max_captions, fontsize)
    _draw_classes(bars_ax, e, fontsize)
    _draw_decoding(text_ax, e, fontsize)
    _legend(figure, e)
    return figure


def _picture(image, e):
    """(picture (H, W, 3), W, H): the given one, checked against the explanation, or a blank canvas."""
    size = e.decoding.image_size
    if image is None:
        width, height = size if size is not None else (300, 300)
        return np.full((height, width, 3), BLANK, dtype=np.uint8), float(width), float(height)
    picture = np.asarray(to_numpy(image))
    if picture.ndim == 3 and picture.shape[0] == 3 and picture.shape[-1] != 3:
        picture = picture.transpose(1, 2, 0)  # (H, W, 3)
    if picture.ndim != 3 or picture.shape[2] != 3 or min(picture.shape[:2]) < 1:
        raise ValueError(f"explain_figure: image must be (H, W, 3) or (3, H, W); got shape {np.shape(image)}")
    height, width = picture.shape[:2]
    if size is not None and tuple(size) != (width, height):
        raise ValueError(f"explain_figure: the image is {width} x {height} but the detection was found in a "
                         f"{size[0]} x {size[1]} picture; pass the picture it explains")
    if picture.dtype != np.uint8:
        low, high = float(picture.min()), float(picture.max())
        picture = (picture - low) / max(high - low, 1e-12)
    return picture, float(width), float(height)


def _rectangle(ax, xyxy, scale, gid, zorder, fill=None, **style):
    from matplotlib.patches import Rectangle

    x1, y1, x2, y2 = np.asarray(xyxy, dtype=np.float64) * scale
    patch = Rectangle((x1, y1), x2 - x1, y2 - y1, fill=fill is not None, facecolor=fill or "none",
                      edgecolor=style.get("color"), linewidth=style.get("linewidth", 1.5),
                      linestyle=style.get("linestyle", "-"), zorder=zorder, gid=gid)
    ax.add_patch(patch)
    return patch


def _arrow(ax, start, end, gid):
    from matplotlib import patheffects
    from matplotlib.patches import FancyArrowPatch

    # black with a white outline: readable on dark and light pictures alike
    ax.add_patch(FancyArrowPatch(tuple(start), tuple(end), arrowstyle="-|>", mutation_scale=14, linewidth=1.8,
                                 color=ARROW_COLOUR, zorder=8, gid=gid, shrinkA=0, shrinkB=0,
                                 path_effects=[patheffects.withStroke(linewidth=3.5, foreground="white")]))


def _view(e, zoom: bool):
    """The part of the picture to show, normalised xyxy: all of it, or the drawn boxes with a margin."""
    if not zoom:
        return np.array([0.0, 0.0, 1.0, 1.0])
    d_cx, d_cy, d_w, d_h = (float(v) for v in e.default_box.cxcywh)
    drawn = [e.box, e.decoding.xyxy, e.default_box.cell_xyxy, [d_cx - d_w / 2, d_cy - d_h / 2, d_cx + d_w / 2,
                                                               d_cy + d_h / 2]]
    drawn = np.array(drawn + [s.box for s in e.suppressed], dtype=np.float64)  # (B, 4)
    low, high = drawn[:, :2].min(axis=0), drawn[:, 2:].max(axis=0)
    margin = 0.25 * float((high - low).max()) + e.default_box.cell_spacing
    low, high = np.maximum(low - margin, 0.0), np.minimum(high + margin, 1.0)
    return np.concatenate([low, high]) if (high > low).all() else np.array([0.0, 0.0, 1.0, 1.0])


def _draw_picture(ax, picture, width, height, e, zoom, max_captions, fontsize):
    box, d = e.default_box, e.decoding
    scale = np.array([width, height, width, height])
    ax.imshow(picture, extent=(0, width, height, 0))
    x1, y1, x2, y2 = _view(e, zoom) * scale
    ax.set_xlim(x1, x2)
    ax.set_ylim(y2, y1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    spacing = box.cell_spacing
    edges = box.cell_xyxy[0] - box.column * spacing + spacing * np.arange(box.map_size + 1)  # (f + 1,)
    _draw_cell_lines(ax, edges, (width, height), linewidth=0.6 if box.map_size > 12 else 0.9)
    _rectangle(ax, box.cell_xyxy, scale, "cell", 2, fill=(*_rgb(CELL_COLOUR), CELL_ALPHA), color=CELL_COLOUR,
               linewidth=1.5)
    cx, cy = (box.cell_xyxy[:2] + box.cell_xyxy[2:]) / 2
    ax.plot([cx * width], [cy * height], marker="o", markersize=5, color="black", linestyle="none", zorder=9,
            gid="cell_centre")
    colour = color_for(e.label)
    d_cx, d_cy, d_w, d_h = (float(v) for v in box.cxcywh)
    default_xyxy = np.array([d_cx - d_w / 2, d_cy - d_h / 2, d_cx + d_w / 2, d_cy + d_h / 2])
    _rectangle(ax, default_xyxy, scale, "default_box", 5, **DEFAULT_BOX_STYLE)
    for s in e.suppressed:
        _rectangle(ax, s.box, scale, f"suppressed:{s.prior}", 4, **SUPPRESSED_STYLE)
    if d.clipped.any():
        _rectangle(ax, d.xyxy, scale, "unclipped", 6, color=colour, linewidth=1.4, linestyle=":")
    _rectangle(ax, e.box, scale, "detection", 7, color=colour, linewidth=2.8)
    # the offsets: the centre moves by (l_cx v d_w, l_cy v d_h); the size changes by exp(l v_size), shown
    # on the right and bottom edges: from where the default size would put them (around the new centre)
    # to where the decoded size puts them
    (new_cx, new_cy), (new_w, new_h) = (float(v) for v in d.centre), (float(v) for v in d.size)
    _arrow(ax, (d_cx * width, d_cy * height), (new_cx * width, new_cy * height), "arrow:centre")
    _arrow(ax, ((new_cx + d_w / 2) * width, new_cy * height), ((new_cx + new_w / 2) * width, new_cy * height),
           "arrow:width")
    _arrow(ax, (new_cx * width, (new_cy + d_h / 2) * height), (new_cx * width, (new_cy + new_h / 2) * height),
           "arrow:height")
    captions = [(e.box * scale, f"{e.class_name} {float(e.score):.2f}", colour, "caption:detection")]
    captions += [(s.box * scale, f"IoU {s.iou:.2f}\nscore {s.score:.2f}", SUPPRESSED_STYLE["color"],
                  f"caption:suppressed:{s.prior}") for s in e.suppressed[:max_captions]]
    place_captions(ax, captions, fontsize=fontsize - 1)
    removed = (f"; NMS removed {len(e.suppressed)} {e.class_name} box{'es' if len(e.suppressed) != 1 else ''} "
               f"(IoU \u2265 {e.iou_threshold:g})") if e.suppressed else "; NMS removed no box for it"
    zoomed = " (zoomed)" if zoom else ""
    ax.set_title(f"{box.map_size} x {box.map_size} map{zoomed}, cell ({box.row}, {box.column}), default box "
                 f"{box.shape}{removed}", fontsize=fontsize + 1)


def _rgb(colour: str):
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


def _draw_classes(ax, e, fontsize):
    count = len(e.class_names)
    positions = np.arange(count)
    colours = [BACKGROUND_BAR if k == 0 else (color_for(k) if k == e.label else OTHER_BAR) for k in range(count)]
    bars = ax.barh(positions, e.probabilities.astype(np.float64), color=colours, height=0.7)
    for k, bar in enumerate(bars):
        bar.set_gid(f"class:{k}")
        ax.text(float(e.probabilities[k]) + 0.01, k, f"{float(e.probabilities[k]):.4f}", va="center",
                fontsize=fontsize - 1, color="#222222")
    ax.set_yticks(positions, [str(name) for name in e.class_names], fontsize=fontsize)
    ax.get_yticklabels()[e.label].set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0, 1.18)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.tick_params(axis="x", labelsize=fontsize - 1)
    ax.axvline(e.score_threshold, color="#444444", linestyle=":", linewidth=1.2, gid="threshold")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"softmax over the {count} classes of default box {e.default_box.index} "
                 f"(dotted: score threshold {e.score_threshold:g})", fontsize=fontsize + 1)


def _draw_decoding(ax, e, fontsize):
    lines = e.text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("offsets"))
    stop = next(i for i, line in enumerate(lines) if line.startswith("classes"))
    shown = [_wrap(line, 92) for line in lines[start:stop]]
    ax.set_axis_off()
    ax.text(0.0, 1.0, "\n".join(shown), family="monospace", fontsize=fontsize - 1.5, va="top", ha="left",
            transform=ax.transAxes, gid="decoding")
    ax.set_title("decoding, step by step (minissd.boxes.decode)", fontsize=fontsize + 1, loc="left")


def _wrap(line: str, width: int) -> str:
    import textwrap

    indent = " " * (len(line) - len(line.lstrip()) + 4)
    return "\n".join(textwrap.wrap(line, width, subsequent_indent=indent)) or line


def _legend(figure, e):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    d = e.decoding
    handles = [
        Line2D([], [], color=color_for(e.label), linewidth=2.8, label=f"detection: {e.class_name}"),
        Line2D([], [], label=f"default box {e.default_box.index} ({e.default_box.shape})", **DEFAULT_BOX_STYLE),
        Patch(facecolor=(*_rgb(CELL_COLOUR), CELL_ALPHA), edgecolor=CELL_COLOUR, label="its cell (dot: the centre)"),
        Line2D([], [], color=ARROW_COLOUR, linewidth=1.8, marker=">", markersize=6,
               label=f"offsets: centre shift, size \u00d7{float(d.size_factor[0]):.2f} (w), "
                     f"\u00d7{float(d.size_factor[1]):.2f} (h)"),
        Line2D([], [], label=f"removed by NMS because of it (IoU \u2265 {e.iou_threshold:g})", **SUPPRESSED_STYLE),
    ]
    if d.clipped.any():
        handles.append(Line2D([], [], color=color_for(e.label), linewidth=1.4, linestyle=":",
                              label="decoded box before the clip to [0, 1]"))
    figure.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=8, bbox_to_anchor=(0.5, 0.0))
