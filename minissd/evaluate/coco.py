"""COCO-style average precision, computed as pycocotools' COCOeval computes it (iouType 'bbox').

For each class k, area range a, IoU threshold t and detection budget m:

1. per image, the m best-scored detections of class k are matched greedily
   to its objects (``coco_matching``); crowd regions and objects whose area
   lies outside the range are "ignored": a detection on one of them counts
   neither way, and so does an unmatched detection whose own area lies
   outside the range;
2. all images' counted detections, sorted by score, give
   recall(n) = TP(n) / P and precision(n) = TP(n) / (TP(n) + FP(n)),
   P the number of regular (not ignored) objects of class k;
3. precision is replaced by its envelope, p_interp(r) = max over n with
   recall(n) >= r of precision(n), and read at the 101 recall levels
   r = 0, 0.01, ..., 1 (0 where r is never reached):

       AP(t, k, a, m) = (1/101) * sum over r of p_interp(r)

Reported: AP = the mean over t in {0.50, 0.55, ..., 0.95} and over the
classes with objects (area 'all', m = max_dets); AP50, AP75 at one
threshold; AP_small / _medium / _large for areas < 32^2, 32^2..96^2,
> 96^2 (bounds belong to both neighbours, as in pycocotools); AR = the
final recall, averaged the same way, for m in 1, 10, max_dets.

Boxes are xyxy (pycocotools reads xywh). IoU has no +1. With a crowd
region g the overlap is |d ∩ g| / |d|, the part of the detection inside it.
Areas: a detection's area is its box area; an object's area, which decides
its size range, is ``gt_areas`` when given (COCO annotations carry the
segmentation area in their 'area' field: pass it to reproduce official
numbers) and its box area otherwise.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..boxes import area, intersection
from .coco_matching import IOU_THRESHOLDS, greedy_match
from .inputs import EvalTables, flatten_inputs

RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)  # (R,)
AREA_RANGES = {  # name -> (low, high) in squared pixels, both bounds inclusive
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
_BATCH_ELEMENTS = 1 << 22  # bound on B * A * T * G for one greedy_match call


def _mean_defined(values) -> float:
    """Mean over the entries that are not NaN (pycocotools: over entries > -1); NaN if none."""
    defined = values[~np.isnan(values)]
    return float(np.mean(defined)) if defined.size else math.nan


@dataclass
class COCOResult:
    """What ``coco_ap`` measured. NaN marks "no object to find" (pycocotools writes -1).

    precision: (T, R, K, A, M) interpolated precision at IoU threshold t, recall level r,
               class labels[k], area range a (all, small, medium, large), budget max_dets[m].
    recall:    (T, K, A, M) the final recall.
    per_class_ap: label -> AP@[.5:.95] of that class (area all, max_dets).
    """

    AP: float
    AP50: float
    AP75: float
    AP_small: float
    AP_medium: float
    AP_large: float
    AR: dict  # max detections -> AR (area all)
    AR_small: float
    AR_medium: float
    AR_large: float
    per_class_ap: dict
    precision: np.ndarray
    recall: np.ndarray
    labels: np.ndarray
    max_dets: tuple
    iou_thresholds: np.ndarray = field(default_factory=IOU_THRESHOLDS.copy)  # (T,)
    recall_thresholds: np.ndarray = field(default_factory=RECALL_THRESHOLDS.copy)  # (R,)
    area_names: tuple = tuple(AREA_RANGES)

    def stats(self) -> dict:
        """The 12 numbers of COCOeval.summarize(), by name ('AR@100' for AR with 100 detections)."""
        numbers = {"AP": self.AP, "AP50": self.AP50, "AP75": self.AP75, "AP_small": self.AP_small,
                   "AP_medium": self.AP_medium, "AP_large": self.AP_large}
        numbers.update({f"AR@{m}": value for m, value in self.AR.items()})
        numbers.update({"AR_small": self.AR_small, "AR_medium": self.AR_medium, "AR_large": self.AR_large})
        return numbers

    def summary(self) -> str:
        return "\n".join(f"{name:>10s} = {value:.3f}" for name, value in self.stats().items())

    def pr_curves(self, iou_threshold: float = 0.5) -> dict:
        """label -> (recall levels (R,), interpolated precision (R,), AP) at one IoU threshold (area all)."""
        t = int(np.argmin(np.abs(self.iou_thresholds - iou_threshold)))
        curves = {}
        for k, label in enumerate(self.labels.tolist()):
            precision = self.precision[t, :, k, 0, -1]  # (R,)
            if not np.isnan(precision).any():
                curves[label] = (self.recall_thresholds, precision, float(precision.mean()))
        return curves


def coco_iou(det_boxes, gt_boxes, gt_crowd):
    """(D, 4), (G, 4) xyxy, (G,) bool -> (D, G): IoU, or |d ∩ g| / |d| where g is a crowd region."""
    inter = intersection(det_boxes, gt_boxes)  # (D, G)
    det_area = area(det_boxes)[:, None]  # (D, 1)
    union = np.where(gt_crowd[None, :], det_area, det_area + area(gt_boxes)[None, :] - inter)  # (D, G)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _order_in_groups(tables: EvalTables):
    """Detections grouped by image, then class, then by descending score (stable: ties keep input order).

    Returns order (D,), the row indices in that order, and rank (D,), each detection's place
    among those of its image and class (0 = best).
    """
    order = np.lexsort((-tables.det_scores, tables.det_labels, tables.det_image))  # (D,)
    image, label = tables.det_image[order], tables.det_labels[order]
    new_group = np.ones(order.shape, dtype=bool)
    new_group[1:] = (image[1:] != image[:-1]) | (label[1:] != label[:-1])
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(order.size), 0))
    rank = np.empty(order.shape, dtype=np.int64)
    rank[order] = np.arange(order.size) - group_start
    return order, rank


def _match_images(tables: EvalTables, order, gt_regular, gt_crowd) -> np.ndarray:
    """Greedy matching in every image of the detections ``order`` lists (image, class, score order).

    Returns (A, T, D) int64: the row of the object each detection took, or -1.
    Classes never compete for an object, so all classes of an image form one group.
    """
    num_areas, num_thresholds = gt_regular.shape[0], IOU_THRESHOLDS.shape[0]
    matched = np.full((num_areas, num_thresholds, tables.det_labels.shape[0]), -1, dtype=np.int64)
    starts = np.searchsorted(tables.det_image[order], np.arange(tables.num_images + 1))
    buckets = defaultdict(list)
    for image in range(tables.num_images):
        dets = order[starts[image]:starts[image + 1]]
        g0, g1 = tables.gt_offsets[image], tables.gt_offsets[image + 1]
        if dets.size == 0 or g1 == g0:
            continue
        ious = coco_iou(tables.det_boxes[dets], tables.gt_boxes[g0:g1], gt_crowd[g0:g1])  # (D_i, G_i)
        ious = np.where(tables.det_labels[dets, None] == tables.gt_labels[None, g0:g1], ious, -1.0)
        # A detection below the lowest threshold with every object can take none; skipping it
        # leaves the others' matches unchanged and shortens the sequential walk.
        reach = ious.max(axis=1) >= IOU_THRESHOLDS.min()
        if reach.any():
            key = (1 << int(reach.sum() - 1).bit_length(), 1 << int(g1 - g0 - 1).bit_length())
            buckets[key].append((dets[reach], g0, g1, ious[reach]))
    for (rows, columns), groups in buckets.items():  # padded to powers of two: few shapes, little padding
        per_call = max(1, _BATCH_ELEMENTS // (num_areas * num_thresholds * columns))
        for first in range(0, len(groups), per_call):
            chunk = groups[first:first + per_call]
            ious = np.full((len(chunk), rows, columns), -1.0)  # (B, D, G)
            regular = np.zeros((len(chunk), num_areas, columns), dtype=bool)  # (B, A, G)
            crowd = np.zeros((len(chunk), columns), dtype=bool)  # (B, G)
            for b, (dets, g0, g1, group_ious) in enumerate(chunk):
                ious[b, :dets.size, :g1 - g0] = group_ious
                regular[b, :, :g1 - g0] = gt_regular[:, g0:g1]
                crowd[b, :g1 - g0] = gt_crowd[g0:g1]
            columns_taken = greedy_match(ious, regular, crowd)  # (B, A, T, D)
            for b, (dets, g0, _, _) in enumerate(chunk):
                taken = columns_taken[b, :, :, :dets.size]  # (A, T, D_b)
                matched[:, :, dets] = np.where(taken >= 0, g0 + taken, -1)
    return matched


def coco_ap(
    pred_boxes,
    pred_labels,
    pred_scores,
    gt_boxes,
    gt_labels,
    gt_iscrowd=None,
    gt_areas=None,
    max_dets: int = 100,
) -> COCOResult:
    """COCO-style AP@[.5:.95], AP50, AP75, AP by object size and AR, as pycocotools computes them.

    pred_boxes[i]:  (D_i, 4) xyxy detections of image i, in pixels (the size ranges are in pixels).
    pred_labels[i]: (D_i,) ints in 1..L-1.          pred_scores[i]: (D_i,) confidences.
    gt_boxes[i]:    (G_i, 4) xyxy objects.            gt_labels[i]: (G_i,) ints in 1..L-1.
    gt_iscrowd[i]:  (G_i,) bools, or None (no crowd regions).
    gt_areas[i]:    (G_i,) object areas for the size ranges, or None (box areas).
    max_dets:       detections per image and class that are evaluated (the best-scored ones).

    The rules are in the module docstring. Returns a ``COCOResult``.
    """
    if int(max_dets) != max_dets or max_dets < 1:
        raise ValueError(f"max_dets must be a positive integer; got {max_dets!r}")
    max_dets = int(max_dets)
    tables = flatten_inputs(
        pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels,
        gt_iscrowd=(gt_iscrowd, "flag"), gt_areas=(gt_areas, "number"),
    )
    gt_crowd = tables.gt_extra["gt_iscrowd"]
    if gt_crowd is None:
        gt_crowd = np.zeros(tables.gt_labels.shape, dtype=bool)
    gt_area = tables.gt_extra["gt_areas"]
    if gt_area is None:
        gt_area = area(tables.gt_boxes)
    ranges = np.array(list(AREA_RANGES.values()))  # (A, 2)
    gt_regular = ~gt_crowd & (gt_area >= ranges[:, :1]) & (gt_area <= ranges[:, 1:])  # (A, G)
    det_area = area(tables.det_boxes)
    det_outside = (det_area < ranges[:, :1]) | (det_area > ranges[:, 1:])  # (A, D)

    budgets = tuple(sorted({m for m in (1, 10, max_dets) if m <= max_dets}))  # (M,)
    order, rank = _order_in_groups(tables)
    matched = _match_images(tables, order[rank[order] < max_dets], gt_regular, gt_crowd)  # (A, T, D)
    is_matched = matched >= 0
    a, t, d = np.nonzero(is_matched)
    true_positive = np.zeros(matched.shape, dtype=bool)  # (A, T, D): matched to a regular object
    true_positive[a, t, d] = gt_regular[a, matched[a, t, d]]
    false_positive = ~is_matched & ~det_outside[:, None, :]  # (A, T, D); on an ignored object: neither

    labels = tables.labels()
    precision, recall = _accumulate(tables, labels, rank, budgets, true_positive, false_positive, gt_regular)
    areas = {name: a for a, name in enumerate(AREA_RANGES)}
    return COCOResult(
        AP=_mean_defined(precision[:, :, :, 0, -1]),
        AP50=_mean_defined(precision[0, :, :, 0, -1]),
        AP75=_mean_defined(precision[int(np.argmin(np.abs(IOU_THRESHOLDS - 0.75))), :, :, 0, -1]),
        AP_small=_mean_defined(precision[:, :, :, areas["small"], -1]),
        AP_medium=_mean_defined(precision[:, :, :, areas["medium"], -1]),
        AP_large=_mean_defined(precision[:, :, :, areas["large"], -1]),
        AR={m: _mean_defined(recall[:, :, 0, i]) for i, m in enumerate(budgets)},
        AR_small=_mean_defined(recall[:, :, areas["small"], -1]),
        AR_medium=_mean_defined(recall[:, :, areas["medium"], -1]),
        AR_large=_mean_defined(recall[:, :, areas["large"], -1]),
        per_class_ap={label: _mean_defined(precision[:, :, k, 0, -1]) for k, label in enumerate(labels.tolist())},
        precision=precision,
        recall=recall,
        labels=labels,
        max_dets=budgets,
    )


def _accumulate(tables, labels, rank, budgets, true_positive, false_positive, gt_regular):
    """Precision (T, R, K, A, M) at the recall levels and final recall (T, K, A, M); NaN: no object."""
    num_areas, num_thresholds = gt_regular.shape[0], IOU_THRESHOLDS.shape[0]
    shape = (num_thresholds, RECALL_THRESHOLDS.shape[0], labels.shape[0], num_areas, len(budgets))
    precision = np.full(shape, np.nan)
    recall = np.full((num_thresholds, labels.shape[0], num_areas, len(budgets)), np.nan)
    # All images together, highest score first; rows are stored image by image, so a stable
    # sort breaks ties by image, then by input order, as pycocotools' mergesort does.
    order = np.argsort(-tables.det_scores, kind="stable")
    for k, label in enumerate(labels.tolist()):
        of_class = order[tables.det_labels[order] == label]
        objects = np.count_nonzero(gt_regular & (tables.gt_labels == label), axis=1)  # (A,)
        for m, budget in enumerate(budgets):
            rows = of_class[rank[of_class] < budget]  # (n,)
            for a in range(num_areas):
                if objects[a] == 0:
                    continue
                if rows.size == 0:  # objects but no detection: recall 0, precision 0 everywhere
                    precision[:, :, k, a, m] = 0.0
                    recall[:, k, a, m] = 0.0
                    continue
                tp = np.cumsum(true_positive[a][:, rows], axis=1).astype(float)  # (T, n)
                fp = np.cumsum(false_positive[a][:, rows], axis=1).astype(float)  # (T, n)
                rc = tp / objects[a]
                pr = tp / (fp + tp + np.spacing(1))  # eps as pycocotools: 0 before the first counted one
                envelope = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # (T, n)
                recall[:, k, a, m] = rc[:, -1]
                for t in range(num_thresholds):
                    at = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")  # (R,) first n reaching r
                    reached = at < rows.size
                    precision[t, :, k, a, m] = np.where(reached, envelope[t, np.minimum(at, rows.size - 1)], 0.0)
    return precision, recall
