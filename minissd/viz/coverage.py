"""Default-box coverage drawn (from ``minissd.coverage.coverage``): histograms of how well a preset fits.

    plot_best_iou            the best-IoU distribution, stacked by the map the best box comes from,
                             with the matching threshold and 0.3 marked
    plot_object_sizes        object sizes sqrt(w h) against each map's scales s_k (solid) and s'_k (dotted),
                             stacked by how well each object is covered
    plot_positives           positives per object, by feature map or by box kind
    coverage_figure          the four panels of one preset
    compare_coverage_figure  two presets side by side: one column each, the same axes per row
"""

from __future__ import annotations

import math

import numpy as np

from .canvas import PALETTE, _axes

THRESHOLD_COLOUR, LOW_COLOUR, COVERED_COLOUR = PALETTE[0], PALETTE[3], PALETTE[1]  # red, orange, green
# maps in blues, purples and browns, kinds in pairs (a and 1/a share a hue): neither clashes with the three above
MAP_COLOURS = ("#4363d8", "#911eb4", "#42d4f4", "#469990", "#000075", "#9a6324", "#808000", "#a9a9a9")
KIND_COLOURS = ("#4363d8", "#8fa8ef", "#9a6324", "#d2a679", "#911eb4", "#cf9ee0", "#469990", "#9ccfc9")
SIZE_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def _map_colour(k: int) -> str:
    return MAP_COLOURS[k % len(MAP_COLOURS)]


def _map_name(config, k: int) -> str:
    side = config.feature_maps[k]
    return f"{side}x{side}"


def plot_best_iou(cov, ax=None, bins: int = 20, title: str | None = None):
    """Histogram of each object's best IoU with any default box, one colour per map that box is on.

    The dashed red line is the matching threshold T, the dotted orange one 0.3; the legend gives
    the share of objects below each (objects below T get only the bipartite step's one box).
    """
    from ..coverage import LOW_IOU

    ax = _axes(ax, figsize=(5, 3.6))
    config = cov.config
    edges = np.linspace(0.0, 1.0, bins + 1)
    groups = [cov.best_iou[cov.best_map == k] for k in range(len(config.feature_maps))]
    ax.hist(groups, bins=edges, stacked=True, color=[_map_colour(k) for k in range(len(groups))],
            label=[f"best box on {_map_name(config, k)}" for k in range(len(groups))], edgecolor="white",
            linewidth=0.5)
    ax.axvline(cov.iou_threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.5, zorder=3,
               label=f"T = {cov.iou_threshold:g}: {100 * cov.share_below_threshold:.0f} % below")
    ax.axvline(LOW_IOU, color=LOW_COLOUR, linestyle=":", linewidth=1.8, zorder=3,
               label=f"{LOW_IOU:g}: {100 * cov.share_below_low:.0f} % below")
    ax.set_xlim(0, 1)
    ax.set_xlabel("best IoU of an object with any default box")
    ax.set_ylabel("objects")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or f"{config.name}: best IoU of {cov.num_objects} objects", fontsize=10)
    return ax


def size_bins(*coverages, count: int = 30) -> np.ndarray:
    """Log-spaced edges (count + 1,) spanning the objects' sizes and the scales of every coverage given."""
    low = min(min(float(c.object_sizes.min()), min(c.config.min_sizes)) for c in coverages)
    high = max(max(float(c.object_sizes.max()), max(_extra_scales(c.config))) for c in coverages)
    return np.geomspace(max(low, 1e-4) / 1.15, min(high, 2.0) * 1.15, count + 1)


def _extra_scales(config) -> list[float]:
    return [math.sqrt(s * t) for s, t in zip(config.min_sizes, config.max_sizes)]


def plot_object_sizes(cov, ax=None, bins=None, title: str | None = None):
    """Object sizes sqrt(w h) (log axis), stacked by best IoU (>= T, 0.3..T, < 0.3), and the maps' scales.

    Each map's s_k is a solid vertical line in the map's colour, its s'_k = sqrt(s_k s_(k+1)) a dotted
    one: objects far from every line are the ones no default box fits. ``bins``: edges or None (30 bins).
    """
    from ..coverage import LOW_IOU

    ax = _axes(ax, figsize=(5, 3.6))
    config = cov.config
    edges = size_bins(cov) if bins is None else np.asarray(bins, dtype=np.float64)
    sizes = cov.object_sizes
    threshold = np.float32(cov.iou_threshold)
    groups = [sizes[cov.best_iou >= threshold], sizes[(cov.best_iou < threshold) & (cov.best_iou >= LOW_IOU)],
              sizes[cov.best_iou < np.float32(LOW_IOU)]]
    ax.hist(groups, bins=edges, stacked=True, color=[COVERED_COLOUR, LOW_COLOUR, THRESHOLD_COLOUR],
            label=[f"best IoU >= {cov.iou_threshold:g}", f"{LOW_IOU:g} <= best IoU < {cov.iou_threshold:g}",
                   f"best IoU < {LOW_IOU:g}"], edgecolor="white", linewidth=0.5)
    ax.set_xscale("log")
    for k, (scale, extra) in enumerate(zip(config.min_sizes, _extra_scales(config))):
        colour = _map_colour(k)
        ax.axvline(scale, color=colour, linewidth=1.4, zorder=3)
        ax.axvline(extra, color=colour, linewidth=1.2, linestyle=":", zorder=3)
    ax.set_xlim(edges[0], edges[-1])
    _size_ticks(ax, edges)
    _map_names_on_top(ax, config)
    ax.set_xlabel("object size sqrt(w h) (solid: s_k, dotted: s'_k of each map)")
    ax.set_ylabel("objects")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or f"{config.name}: object sizes against the scales", fontsize=10)
    return ax


def _size_ticks(ax, edges) -> None:
    """Plain numbers (0.05, 0.1, ...) on the log axis instead of crowded powers of ten."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    ticks = [t for t in SIZE_TICKS if edges[0] <= t <= edges[-1]]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _map_names_on_top(ax, config) -> None:
    """Each map's name above the plot, at its s_k: outside the bars and the legend."""
    from matplotlib.ticker import NullFormatter, NullLocator

    top = ax.secondary_xaxis("top")
    top.set_xscale("log")
    top.xaxis.set_minor_locator(NullLocator())
    top.xaxis.set_minor_formatter(NullFormatter())
    top.set_xticks(list(config.min_sizes), [_map_name(config, k) for k in range(len(config.feature_maps))],
                   fontsize=7, rotation=90)
    for k, label in enumerate(top.get_xticklabels()):
        label.set_color(_map_colour(k))


def plot_positives(cov, by: str = "map", ax=None, title: str | None = None):
    """Bars of positives per object (matching's, summed over the images), by ``by`` = "map" or "kind".

    The count of positives is written over each bar.
    """
    if by not in ("map", "kind"):
        raise ValueError(f"plot_positives: by = {by!r} must be 'map' or 'kind'")
    ax = _axes(ax, figsize=(5, 3.6))
    config = cov.config
    if by == "map":
        names = [_map_name(config, k) for k in range(len(config.feature_maps))]
        counts = [int(n) for n in cov.positives_per_map]
        colours = [_map_colour(k) for k in range(len(names))]
    else:
        names, counts = list(cov.positives_per_kind), list(cov.positives_per_kind.values())
        colours = [KIND_COLOURS[k % len(KIND_COLOURS)] for k in range(len(names))]
    heights = [n / cov.num_objects for n in counts]
    bars = ax.bar(range(len(names)), heights, color=colours)
    for bar, n in zip(bars, counts):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), str(n), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("feature map" if by == "map" else "box kind (per-cell order)")
    ax.set_ylabel("positives per object")
    ax.margins(y=0.15)
    ax.set_title(title or f"{config.name}: {cov.positives_per_object:.2f} positives per object, by {by}",
                 fontsize=10)
    return ax


def _panels(cov, axes, size_edges=None) -> None:
    plot_best_iou(cov, ax=axes[0])
    plot_object_sizes(cov, ax=axes[1], bins=size_edges)
    plot_positives(cov, "map", ax=axes[2])
    plot_positives(cov, "kind", ax=axes[3])


def coverage_figure(cov, figsize=(11, 7.5)):
    """One preset's coverage in four panels: best IoU, sizes against scales, positives by map and by kind."""
    from .canvas import figure_and_axes

    figure, axes = figure_and_axes(2, 2, figsize=figsize)
    _panels(cov, list(axes.flat))
    figure.suptitle(f"default-box coverage: {cov.config.name}, {cov.num_objects} objects in "
                    f"{cov.num_images} images", fontsize=11)
    figure.tight_layout()
    return figure


def compare_coverage_figure(first, second, figsize=(11, 13)):
    """Two presets side by side (one column each), the same x and y range in each row, for the same objects."""
    from .canvas import figure_and_axes

    figure, axes = figure_and_axes(4, 2, figsize=figsize)
    edges = size_bins(first, second)
    for column, cov in enumerate((first, second)):
        _panels(cov, axes[:, column], size_edges=edges)
    for row in axes:
        top = max(ax.get_ylim()[1] for ax in row)
        for ax in row:
            ax.set_ylim(0, top)
    figure.suptitle(f"default-box coverage of {first.num_objects} objects: {first.config.name} (left) and "
                    f"{second.config.name} (right)", fontsize=11)
    figure.tight_layout()
    return figure
