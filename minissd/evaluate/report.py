"""Evaluation results as text tables and JSON (for the command line and the demo report)."""

from __future__ import annotations

import math

from .coco import COCOResult
from .voc import VOCResult


def _name(class_names, label) -> str:
    label = int(label)
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return f"class {label}"


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def result_to_dict(result, class_names=None) -> dict:
    """JSON-ready numbers of a ``VOCResult`` or ``COCOResult`` (NaN written as null)."""
    if isinstance(result, VOCResult):
        return {
            "metric": "voc",
            "iou_threshold": result.iou_threshold,
            "interpolation": "11-point (VOC2007)" if result.use_07_metric else "all-point (VOC2010+)",
            "mAP": _number(result.mAP),
            "ap": {_name(class_names, c): _number(ap) for c, ap in sorted(result.ap.items())},
            "objects": {_name(class_names, c): int(n) for c, n in sorted(result.num_positives.items())},
        }
    if isinstance(result, COCOResult):
        return {
            "metric": "coco",
            **{name: _number(value) for name, value in result.stats().items()},
            "ap": {_name(class_names, c): _number(ap) for c, ap in sorted(result.per_class_ap.items())},
        }
    raise TypeError(f"expected a VOCResult or COCOResult; got {type(result).__name__}")


def result_table(result, class_names=None) -> str:
    """A small aligned text table: AP per class, then the summary numbers."""
    numbers = result_to_dict(result, class_names)
    summary = ["mAP"] if numbers["metric"] == "voc" else ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"]
    width = max([len(k) for k in numbers["ap"]] + [len(k) for k in summary] + [8])
    lines = [f"{'class':<{width}}  AP"]
    for name, ap in numbers["ap"].items():
        lines.append(f"{name:<{width}}  {'-' if ap is None else f'{ap:.4f}'}")
    if numbers["metric"] == "voc":
        lines.append(f"{'mAP':<{width}}  {numbers['mAP']:.4f}   (VOC AP@{numbers['iou_threshold']}, "
                     f"{numbers['interpolation']})")
    else:
        for key in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"):
            value = numbers[key]
            lines.append(f"{key:<{width}}  {'-' if value is None else f'{value:.4f}'}")
    return "\n".join(lines)
