"""What ``error_analysis`` returns: the category codes, ``GroupTrend`` (Fig. 3) and ``ErrorAnalysis``,
with its one-line summary and its JSON form.

    CATEGORIES = ("Cor", "Loc", "Sim", "Oth", "BG"), coded COR .. BG = 0 .. 4, IGNORED = -1
    STRONG_IOU = 0.5 (a correct detection), WEAK_IOU = 0.1 (an overlap at all)

Separate from ``analysis.py`` (the computation) so that a reader of the numbers
(``minissd analyze``'s analysis.json, the plots of ``minissd.viz.analysis``)
finds every field and its shape without reading the algorithm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .analysis_bins import ASPECT_BINS, SIZE_BINS, Sensitivity

CATEGORIES = ("Cor", "Loc", "Sim", "Oth", "BG")
COR, LOC, SIM, OTH, BG = range(5)
IGNORED = -1  # a detection on a difficult object: no category, no rank
STRONG_IOU, WEAK_IOU = 0.5, 0.1


@dataclass
class GroupTrend:
    """Fig. 3 (top row) for one group. T multiples m of the number of objects.

    classes: its labels; mean_objects: the mean P_c (the x axis unit); multiples (T,);
    counts (T, 5) pooled Cor/Loc/Sim/Oth/BG counts; fractions (T, 5) = counts / their row sum (NaN: none);
    recall_strong, recall_weak (T,): mean over the classes of recall at IoU 0.5 / 0.1.
    """

    classes: tuple
    mean_objects: float
    multiples: np.ndarray
    counts: np.ndarray
    fractions: np.ndarray
    recall_strong: np.ndarray
    recall_weak: np.ndarray


@dataclass
class ErrorAnalysis:
    """What ``error_analysis`` found; labels index ``class_names`` (background at 0).

    category (D,) int: Cor..BG codes (0..4, ``CATEGORIES``) of every detection, -1 ignored, in the flat
    order of the inputs (image by image); ``per_image()`` splits it back.
    ranked[c] (n_c,): the codes of c's counted detections in rank order; recall_strong[c], recall_weak[c]
    (n_c,) after each of them; num_positives[c]: P_c; ignored[c]: detections left out (difficult).
    ap[c], ap_normalized[c]: the class's AP and normalised AP (NaN without objects).
    trends[group]: ``GroupTrend``; size[c], aspect[c]: ``Sensitivity``.
    confusion (K, K + 1) int64: rows and the first K columns are ``confusion_labels``, the last
    column the background (``minissd.evaluate.analysis``'s docstring).
    """

    class_names: list
    groups: dict
    category: np.ndarray
    det_offsets: np.ndarray
    ranked: dict
    recall_strong: dict
    recall_weak: dict
    num_positives: dict
    ignored: dict
    ap: dict
    ap_normalized: dict
    trends: dict
    size: dict
    aspect: dict
    confusion: np.ndarray
    confusion_labels: list
    normalized_count: float
    confusion_multiple: float
    at_objects: dict = field(default_factory=dict)  # group -> (5,) fractions among the top N = P_c

    def per_image(self) -> list:
        """[(D_i,) category codes of image i's detections, in their input order]."""
        return [self.category[a:b] for a, b in zip(self.det_offsets[:-1], self.det_offsets[1:])]

    def shares_at(self, group: str) -> dict:
        """{category: fraction} among each class's top N = P_c detections, pooled over ``group``."""
        return {name: float(value) for name, value in zip(CATEGORIES, self.at_objects[group])}

    def summary(self) -> str:
        """One line per group: its share of each kind at N = objects."""
        lines = []
        for group, labels in self.groups.items():
            trend, shares = self.trends[group], self.at_objects[group]
            head = f"{group} ({len(labels)} class{'es' if len(labels) > 1 else ''}"
            if math.isnan(trend.mean_objects):
                lines.append(f"{head}): no objects")
                continue
            head += f", {trend.mean_objects:.4g} objects per class)"
            if np.isnan(shares).all():
                lines.append(f"{head}: no detections")
                continue
            lines.append(f"{head}: " + "  ".join(f"{n} {100 * v:.1f}%" for n, v in zip(CATEGORIES, shares)))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain JSON-ready numbers (NaN as None), keyed by class and group names."""
        names = self.class_names
        out = {"categories": list(CATEGORIES), "iou_strong": STRONG_IOU, "iou_weak": WEAK_IOU,
               "precedence": "Cor > Loc > Sim > Oth > BG", "normalized_count": _number(self.normalized_count),
               "groups": {}, "classes": {}}
        for group, labels in self.groups.items():
            trend = self.trends[group]
            out["groups"][group] = {
                "classes": [names[c] for c in labels], "mean_objects": _number(trend.mean_objects),
                "at_objects": dict(zip(CATEGORIES, _numbers(self.at_objects[group]))),
                "multiples": _numbers(trend.multiples),
                "fractions": {n: _numbers(trend.fractions[:, k]) for k, n in enumerate(CATEGORIES)},
                "recall_strong": _numbers(trend.recall_strong), "recall_weak": _numbers(trend.recall_weak),
            }
        for label in range(1, len(names)):
            codes = self.ranked[label]
            top = codes[:self.num_positives[label]]
            out["classes"][names[label]] = {
                "objects": self.num_positives[label], "detections": int(codes.size), "ignored": self.ignored[label],
                "counts_at_objects": {n: int(np.count_nonzero(top == k)) for k, n in enumerate(CATEGORIES)},
                "recall": (_number(self.recall_strong[label][-1]) if codes.size else 0.0)
                if self.num_positives[label] else None,
                "ap": _number(self.ap[label]), "ap_normalized": _number(self.ap_normalized[label]),
                "size": _sensitivity_dict(self.size[label], SIZE_BINS),
                "aspect": _sensitivity_dict(self.aspect[label], ASPECT_BINS),
            }
        out["confusion"] = {"rows": [names[c] for c in self.confusion_labels],
                            "columns": [names[c] for c in self.confusion_labels] + ["background"],
                            "multiple": self.confusion_multiple, "counts": self.confusion.tolist()}
        return out


def _number(value):
    value = float(value)
    return value if math.isfinite(value) else None  # JSON has no NaN (no value) nor infinity (a zero height)


def _numbers(values) -> list:
    return [_number(v) for v in np.asarray(values).reshape(-1)]


def _sensitivity_dict(s: Sensitivity, bins) -> dict:
    return {"bins": list(bins), "edges": _numbers(s.edges), "objects": s.objects.tolist(),
            "recall": _numbers(s.recall), "ap": _numbers(s.ap), "ap_normalized": _numbers(s.ap_normalized)}
