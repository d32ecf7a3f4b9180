"""Evaluation drawn: precision-recall curves."""

from __future__ import annotations

from .canvas import _axes, color_for

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
