"""Fig. 4 of the error analysis: per class, recall and (normalised) AP in five bins of object size and aspect.

Per class, its non-difficult objects fall into five bins by box area (XS, S, M, L, XL) and
by aspect ratio w / h (XT extra tall, T, M, W, XW extra wide). The bin edges are the class's own
10th, 30th, 70th and 90th percentiles, as Hoiem's code takes them: with n objects sorted, edge k is
the value at rank round(p_k * n) (1-based, at least 1), and an object's bin is the number of edges its
value exceeds; ten objects of distinct areas split 1, 2, 4, 2, 1. Per bin: the recall (objects of the
bin found by a Cor detection, over all detections) and the AP of the class against the objects of the
bin only (Cor detections of objects of other bins are left out, neither right nor wrong), plain and
normalised. Normalised precision (Hoiem) replaces the true positives TP by TP * N / P so that classes
and bins with few or many objects compare:

    P_N = R * N / (R * N + FP)       R = TP / P (recall),  FP the false positives so far,

with N one constant for every class and bin: by default the mean P_c over the classes with objects
(Hoiem et al. fix N near the average number of objects per class). AP and AP_N are the all-point area
under the envelope (``interpolated_ap``).

Separate from ``analysis.py`` (which sorts every detection into Cor, Loc, Sim,
Oth, BG) because these are the statistics drawn from that sorting for one
class: given its ranked detections and the objects they took, they need
nothing else. ``_aps`` also gives ``error_analysis`` each class's overall AP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .voc import interpolated_ap

SIZE_BINS = ("XS", "S", "M", "L", "XL")
ASPECT_BINS = ("XT", "T", "M", "W", "XW")
BIN_PERCENTILES = (10, 30, 70, 90)  # Hoiem's edges, in percent


@dataclass
class Sensitivity:
    """Fig. 4 for one class and one characteristic (area or aspect ratio): 5 bins.

    edges (4,): the bin edges (NaN without objects); objects (5,) non-difficult objects per bin;
    recall, ap, ap_normalized (5,): NaN for an empty bin.
    """

    edges: np.ndarray
    objects: np.ndarray
    recall: np.ndarray
    ap: np.ndarray
    ap_normalized: np.ndarray


def _bins(values):
    """(edges (4,), bin (n,) in 0..4) of ``values`` by Hoiem's percentile rule (module docstring)."""
    ordered = np.sort(values)
    ranks = np.maximum((np.array(BIN_PERCENTILES) * len(values) + 50) // 100, 1) - 1  # round half up, 1-based
    edges = ordered[ranks]
    return edges, (values[:, None] > edges[None, :]).sum(axis=1)


def _aps(is_tp, counted, positives, normalized_count):
    """(AP, normalised AP) of a ranked list: is_tp, counted (n,) bools (uncounted: neither TP nor FP)."""
    if positives == 0:
        return math.nan, math.nan
    hits = is_tp[counted]
    tp, fp = np.cumsum(hits), np.cumsum(~hits)  # (n',)
    recall = tp / positives
    precision = tp / np.maximum(tp + fp, 1)
    scaled = tp * (normalized_count / positives)
    normalized = np.divide(scaled, scaled + fp, out=np.zeros_like(recall), where=(scaled + fp) > 0)
    return interpolated_ap(recall, precision), interpolated_ap(recall, normalized)


def _sensitivity(values, matched_objects, found, is_tp, matched, normalized_count):
    """``Sensitivity`` of one class: values (n,) of its non-difficult objects (rows ``matched_objects``),
    found (n,) bools; is_tp, matched (r,) over its ranked detections."""
    nan5 = np.full(5, np.nan)
    if values.size == 0:
        return Sensitivity(np.full(4, np.nan), np.zeros(5, np.int64), nan5, nan5.copy(), nan5.copy())
    edges, bin_of_object = _bins(values)
    bin_of = dict(zip(matched_objects.tolist(), bin_of_object.tolist()))
    detection_bin = np.array([bin_of.get(m, -1) for m in matched.tolist()], dtype=np.int64)  # (r,) -1: not TP
    objects = np.bincount(bin_of_object, minlength=5)
    recall, ap, ap_n = nan5.copy(), nan5.copy(), nan5.copy()
    for b in range(5):
        if objects[b] == 0:
            continue
        recall[b] = np.count_nonzero(found & (bin_of_object == b)) / objects[b]
        counted = ~is_tp | (detection_bin == b)  # TPs of other bins' objects are left out
        ap[b], ap_n[b] = _aps(is_tp & counted, counted, int(objects[b]), normalized_count)
    return Sensitivity(edges, objects, recall, ap, ap_n)
