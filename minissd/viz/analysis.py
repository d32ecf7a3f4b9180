"""Error analysis drawn (``minissd.evaluate.analysis``): the SSD paper's Fig. 3 (top row) and Fig. 4, and a
confusion matrix.

    plot_error_breakdown(analysis, "animals")   cumulative Cor / Loc / Sim / Oth / BG shares, recall lines
    error_breakdown_figure(analysis)            one such panel per group
    plot_sensitivity(analysis, "size")          per class, normalised AP (or recall) per XS ... XL bin
    sensitivity_figure(analysis, "aspect")      normalised AP above, recall below
    plot_confusion_matrix(analysis)             detected class x the class it lies on (+ background)
"""

from __future__ import annotations

import math

import numpy as np

from .canvas import _axes, figure_and_axes

# The colours of Hoiem et al.'s plots (white for correct), so the pictures read like the paper's.
ERROR_COLORS = {"Cor": "#ffffff", "Loc": "#4f81bd", "Sim": "#c0504d", "Oth": "#5cc060", "BG": "#8064a2"}
RECALL_COLOR = "#d62728"
WEAK_RECALL_COLOR = "#7f0000"  # darker, so the dashes show where the two recalls agree


def plot_error_breakdown(analysis, group: str, ax=None, title: str | None = None, legend: bool = True):
    """Fig. 3 (top row) for one group: the share of each kind among the top detections, stacked, against the
    number of detections per class (log axis, in units of the group's mean number of objects per class),
    with the recall at IoU 0.5 (solid) and 0.1 (dashed). Returns the Axes."""
    from ..evaluate.analysis import CATEGORIES

    if group not in analysis.trends:
        raise ValueError(f"plot_error_breakdown: no group {group!r}; the groups are {', '.join(analysis.trends)}")
    ax = _axes(ax, figsize=(5, 4))
    trend = analysis.trends[group]
    x = trend.multiples
    shown = ~np.isnan(trend.fractions).any(axis=1)  # (T,) multiples with at least one detection
    if shown.any():
        ax.stackplot(x[shown], (100 * trend.fractions[shown]).T, labels=CATEGORIES,
                     colors=[ERROR_COLORS[name] for name in CATEGORIES], edgecolor="#555555", linewidth=0.4)
        ax.plot(x, 100 * trend.recall_strong, color=RECALL_COLOR, linewidth=2.2, label="recall (IoU 0.5)")
        ax.plot(x, 100 * trend.recall_weak, color=WEAK_RECALL_COLOR, linewidth=1.6, linestyle="--",
                label="recall (IoU 0.1)")
    else:
        ax.text(0.5, 0.5, "no detections" if not math.isnan(trend.mean_objects) else "no objects",
                transform=ax.transAxes, ha="center", va="center", color="#555555")
    ax.set_xscale("log", base=2)
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8) if x.min() <= t <= x.max()]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlim(x.min(), x.max())
    ax.set_ylim(0, 100)
    unit = "?" if math.isnan(trend.mean_objects) else f"{trend.mean_objects:.0f}"
    ax.set_xlabel(f"total detections (x {unit})")
    ax.set_ylabel("percentage of each type")
    ax.set_title(group if title is None else title)
    if legend and shown.any():
        ax.legend(loc="lower right", fontsize="x-small", framealpha=0.9)
    return ax


def error_breakdown_figure(analysis, groups=None, columns: int = 3, panel_size=(4.2, 3.4)):
    """A Figure with ``plot_error_breakdown`` for each of ``groups`` (default: every group with objects)."""
    if groups is None:
        groups = [g for g, trend in analysis.trends.items() if not math.isnan(trend.mean_objects)] or \
            list(analysis.trends)
    groups = list(groups)
    columns = max(1, min(columns, len(groups)))
    rows = math.ceil(len(groups) / columns)
    figure, axes = figure_and_axes(rows, columns, figsize=(panel_size[0] * columns, panel_size[1] * rows))
    for k, ax in enumerate(axes.reshape(-1)):
        if k < len(groups):
            plot_error_breakdown(analysis, groups[k], ax=ax, legend=k == 0)
        else:
            ax.set_axis_off()
    figure.tight_layout()
    return figure


def plot_sensitivity(analysis, kind: str = "size", value: str = "ap_normalized", classes=None, ax=None,
                     title: str | None = None):
    """Fig. 4: per class, one bar per bin (XS ... XL for kind 'size', XT ... XW for 'aspect') of
    ``value`` ('ap_normalized', 'ap' or 'recall'); the best and worst bin of each class are printed, and a
    dashed line marks the class's overall figure. classes: names or labels (default: every class with
    objects). Returns the Axes."""
    from matplotlib.transforms import blended_transform_factory

    from ..evaluate.analysis import ASPECT_BINS, SIZE_BINS

    if kind not in ("size", "aspect"):
        raise ValueError(f"plot_sensitivity: kind must be 'size' or 'aspect'; got {kind!r}")
    if value not in ("ap_normalized", "ap", "recall"):
        raise ValueError(f"plot_sensitivity: value must be 'ap_normalized', 'ap' or 'recall'; got {value!r}")
    labels = _class_labels(analysis, classes, "plot_sensitivity")
    bins = SIZE_BINS if kind == "size" else ASPECT_BINS
    table = analysis.size if kind == "size" else analysis.aspect
    ax = _axes(ax, figsize=(max(5.0, 1.3 * len(labels)), 3.4))
    positions, names = [], []
    below = blended_transform_factory(ax.transData, ax.transAxes)
    for k, label in enumerate(labels):
        x = k * (len(bins) + 1) + np.arange(len(bins))  # (5,) a gap between classes
        heights = getattr(table[label], value)  # (5,)
        ax.bar(x, np.nan_to_num(heights), width=0.8, color="#4f81bd", edgecolor="#333333", linewidth=0.5)
        overall = _overall(analysis, label, value)
        if not math.isnan(overall):
            ax.plot([x[0] - 0.5, x[-1] + 0.5], [overall, overall], color="#333333", linestyle="--", linewidth=1)
        if not np.isnan(heights).all():
            for index in {int(np.nanargmax(heights)), int(np.nanargmin(heights))}:
                ax.text(x[index], heights[index] + 0.02, f"{heights[index]:.2f}", ha="center", va="bottom",
                        fontsize=7, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3, "alpha": 0.8})
        ax.text(x.mean(), -0.16, analysis.class_names[label], transform=below, ha="center", va="top", fontsize=9)
        positions.extend(x.tolist())
        names.extend(bins)
    ax.set_xticks(positions, names, fontsize=7)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel({"ap_normalized": "normalised AP", "ap": "AP", "recall": "recall"}[value])
    ax.set_title(title if title is not None else ("BBox area" if kind == "size" else "aspect ratio"))
    return ax


def sensitivity_figure(analysis, kind: str = "size", classes=None):
    """A Figure: ``plot_sensitivity`` of the normalised AP (top) and of the recall (bottom)."""
    count = len(_class_labels(analysis, classes, "sensitivity_figure"))
    figure, axes = figure_and_axes(2, 1, figsize=(max(5.5, 1.3 * count), 7.0))
    what = "BBox area" if kind == "size" else "aspect ratio"
    plot_sensitivity(analysis, kind, "ap_normalized", classes, ax=axes[0][0], title=f"{what}: normalised AP")
    plot_sensitivity(analysis, kind, "recall", classes, ax=axes[1][0], title=f"{what}: recall")
    figure.tight_layout()
    return figure


def plot_confusion_matrix(analysis, ax=None, normalize: bool = True, title: str | None = None):
    """The confusion matrix: rows the detected class, columns the class of the object the detection lies
    on (its own for Cor and Loc) or background; shaded by the share of the row (``normalize``), with the
    counts written in when there are at most 15 classes. Returns the Axes."""
    ax = _axes(ax, figsize=(6, 5))
    counts = analysis.confusion.astype(np.float64)  # (K, K + 1)
    totals = counts.sum(axis=1, keepdims=True)
    shade = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0) if normalize else counts
    image = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1 if normalize else max(1.0, counts.max()), aspect="auto")
    names = [analysis.class_names[c] for c in analysis.confusion_labels]
    ax.set_xticks(range(len(names) + 1), names + ["background"], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("lies on an object of (IoU >= 0.1)")
    ax.set_ylabel("detected as")
    if len(names) <= 15:
        for (row, column), count in np.ndenumerate(analysis.confusion):
            if count:
                ax.text(column, row, str(count), ha="center", va="center", fontsize=7,
                        color="white" if shade[row, column] > 0.6 else "black")
    multiple = analysis.confusion_multiple
    budget = "objects" if multiple == 1 else f"{multiple:g} x objects"
    ax.set_title(title if title is not None else f"confusion of the top N = {budget} detections per class")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row" if normalize else "count")
    return ax


def _class_labels(analysis, classes, function: str) -> list:
    names = analysis.class_names
    if classes is None:
        return [c for c in range(1, len(names)) if analysis.num_positives[c] > 0] or list(range(1, len(names)))
    labels = []
    for item in classes:
        if isinstance(item, str):
            if item not in names[1:]:
                raise ValueError(f"{function}: {item!r} is not a class ({', '.join(names[1:])})")
            labels.append(names.index(item, 1))
        elif isinstance(item, (int, np.integer)) and 1 <= int(item) < len(names):
            labels.append(int(item))
        else:
            raise ValueError(f"{function}: classes holds {item!r}; give class names or labels 1..{len(names) - 1}")
    return labels


def _overall(analysis, label: int, value: str) -> float:
    if value == "recall":
        recall = analysis.recall_strong[label]
        return float(recall[-1]) if recall.size else (0.0 if analysis.num_positives[label] else math.nan)
    return float((analysis.ap_normalized if value == "ap_normalized" else analysis.ap)[label])
