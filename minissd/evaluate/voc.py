"""PASCAL VOC average precision: VOC2007 11-point and VOC2010+ all-point AP.

For one class c, take every detection of c in every image and sort them by
score, highest first (ties keep their input order: image by image, then as
given). Walk down the list; after the first n detections

    precision(n) = TP(n) / n          recall(n) = TP(n) / P

where TP(n) counts the true positives among them and P is the number of
objects of class c that are not "difficult". A detection is judged as the
official devkit (VOCevaldet.m) judges it:

1. its candidate object is the object of class c in its own image with the
   highest IoU (any object, already detected or not; the first one on ties);
2. if that IoU >= ``iou_threshold`` (0.5):
   - the object is difficult       -> ignored: neither TP nor FP;
   - the object is not yet detected -> TP, and the object is now detected;
   - it was detected already        -> FP (a duplicate);
3. otherwise (no object, or too little overlap) -> FP.

Note rule 1: a detection whose best object is taken is a duplicate even if a
second, free object overlaps it by more than the threshold; COCO's matching
(``coco_ap``) would give it the free one. Because rule 1 never looks at which
objects are taken, the first detection (by score) whose candidate is a given
object is its TP and every later one a duplicate, so the matching is done
without a loop over detections.

IoU uses continuous coordinates, |a ∩ b| / |a ∪ b| with widths x2 - x1 (the
devkit adds 1 pixel to every width and height; we do not, so boxes in any
consistent unit work).

Average precision is the area under the precision envelope
p_interp(r) = max over n with recall(n) >= r of precision(n):

    VOC2010+ (all points):  AP = sum_k (r_k - r_(k-1)) * p_interp(r_k)   over the recalls r_k reached
    VOC2007  (11 points):   AP = (1/11) * sum over t in {0, 0.1, ..., 1} of p_interp(t)   (0 if t is not reached)

The 11 recall levels are k / 10 exactly rounded; devkit ports that build them
as arange(0, 1.1, 0.1) get 0.30000000000000004 and so differ when a recall
equals 0.3, 0.6 or 0.7 exactly.

``voc_ap`` is vectorised; ``voc_ap_reference`` is the devkit's loop, the
oracle of the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..boxes import iou
from .inputs import EvalTables, flatten_inputs

ELEVEN_RECALLS = np.arange(11) / 10  # (11,) 0, 0.1, ..., 1.0


@dataclass
class VOCResult:
    """What ``voc_ap`` measured, per class label c (the labels of the ground truth and the detections).

    ap[c]:              average precision; NaN when c has no non-difficult object.
    mAP:                mean of the finite ap values (NaN if there is none).
    precision[c], recall[c]: (n_c,) after each counted detection of c (ignored ones left out),
                        in score order; recall is NaN when c has no non-difficult object.
    num_positives[c]:   P, the non-difficult objects of c.
    true_positives[c], false_positives[c], ignored[c]: detection counts (ignored: on difficult objects).
    """

    ap: dict
    mAP: float
    precision: dict
    recall: dict
    num_positives: dict
    true_positives: dict
    false_positives: dict
    ignored: dict
    iou_threshold: float
    use_07_metric: bool

    def pr_curves(self) -> dict:
        """label -> (recall (n,), precision (n,), ap) for the classes with objects; for plotting."""
        return {c: (self.recall[c], self.precision[c], self.ap[c]) for c in self.ap if not math.isnan(self.ap[c])}


def interpolated_ap(recall, precision, use_07_metric: bool = False) -> float:
    """Area under the precision envelope of one PR curve (see the module docstring).

    recall, precision: (n,) after each detection in score order (recall non-decreasing).
    use_07_metric: VOC2007's 11-point average instead of the all-point area.
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.ndim != 1 or recall.shape != precision.shape:
        raise ValueError(f"recall and precision must be two (n,) arrays; got {recall.shape} and {precision.shape}")
    if use_07_metric:
        reached = recall[None, :] >= ELEVEN_RECALLS[:, None]  # (11, n)
        best = np.where(reached, precision[None, :], 0.0).max(axis=1, initial=0.0)  # (11,)
        return float(best.sum() / 11)
    # Sentinels: recall starts at 0 and ends at 1, where precision counts as 0.
    recall = np.concatenate([[0.0], recall, [1.0]])  # (n + 2,)
    precision = np.concatenate([[0.0], precision, [0.0]])  # (n + 2,)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or beyond
    steps = np.nonzero(recall[1:] != recall[:-1])[0]  # where recall moves on
    return float(np.sum((recall[steps + 1] - recall[steps]) * envelope[steps + 1]))


def best_ground_truth(tables: EvalTables):
    """For each detection, its devkit candidate object: the same-class object of highest IoU in its image.

    Returns best_gt (D,) int64 row of ``tables.gt_*`` (-1: none) and best_iou (D,) float64 (-inf: none).
    """
    count = tables.det_labels.shape[0]
    best_gt = np.full(count, -1, dtype=np.int64)
    best_iou = np.full(count, -np.inf)
    for image in range(tables.num_images):
        d0, d1 = tables.det_offsets[image], tables.det_offsets[image + 1]
        g0, g1 = tables.gt_offsets[image], tables.gt_offsets[image + 1]
        if d1 == d0 or g1 == g0:
            continue
        overlaps = iou(tables.det_boxes[d0:d1], tables.gt_boxes[g0:g1], validate=False)  # (D_i, G_i)
        same_class = tables.det_labels[d0:d1, None] == tables.gt_labels[None, g0:g1]  # (D_i, G_i)
        overlaps = np.where(same_class, overlaps, -1.0)  # another class's object is never a candidate
        column = overlaps.argmax(axis=1)  # (D_i,) the first best on ties, as the devkit
        best_iou[d0:d1] = overlaps[np.arange(d1 - d0), column]
        best_gt[d0:d1] = g0 + column
    return best_gt, best_iou


def voc_ap(
    pred_boxes,
    pred_labels,
    pred_scores,
    gt_boxes,
    gt_labels,
    gt_difficult=None,
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
) -> VOCResult:
    """PASCAL VOC average precision per class, and their mean (mAP).

    pred_boxes[i]:  (D_i, 4) xyxy detections of image i (pixels, or any unit shared with gt_boxes).
    pred_labels[i]: (D_i,) ints in 1..L-1.        pred_scores[i]: (D_i,) confidences.
    gt_boxes[i]:    (G_i, 4) xyxy objects.          gt_labels[i]: (G_i,) ints in 1..L-1.
    gt_difficult[i]: (G_i,) bools, or None (no object is difficult).
    iou_threshold:  a detection can only be a TP above this overlap (IoU >= threshold).
    use_07_metric:  VOC2007 11-point AP instead of the VOC2010+ all-point AP.

    Every list has one entry per image (empty arrays for an image without
    boxes). The rules are in the module docstring. Returns a ``VOCResult``.
    """
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1]; got {iou_threshold}")
    tables = flatten_inputs(
        pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_difficult=(gt_difficult, "flag")
    )
    difficult = tables.gt_extra["gt_difficult"]
    if difficult is None:
        difficult = np.zeros(tables.gt_labels.shape, dtype=bool)

    best_gt, best_iou = best_ground_truth(tables)
    hit = best_iou >= iou_threshold  # (D,)
    ignored = np.zeros_like(hit)
    ignored[hit] = difficult[best_gt[hit]]

    # Class by class, highest score first; lexsort is stable, so ties keep the input order.
    order = np.lexsort((-tables.det_scores, tables.det_labels))  # (D,)
    labels_sorted = tables.det_labels[order]
    ignored_sorted = ignored[order]
    # The first detection of each object (in this order) is its TP; later ones are duplicates.
    candidates = np.nonzero(hit[order] & ~ignored_sorted)[0]
    _, first = np.unique(best_gt[order][candidates], return_index=True)
    true_positive = np.zeros(order.shape, dtype=bool)
    true_positive[candidates[first]] = True

    classes = tables.labels()
    starts = np.searchsorted(labels_sorted, classes, side="left")
    ends = np.searchsorted(labels_sorted, classes, side="right")
    result = VOCResult({}, math.nan, {}, {}, {}, {}, {}, {}, float(iou_threshold), bool(use_07_metric))
    for label, start, end in zip(classes.tolist(), starts, ends):
        counted = ~ignored_sorted[start:end]
        is_tp = true_positive[start:end][counted]  # (n,) counted detections in score order
        tp = np.cumsum(is_tp)  # (n,)
        fp = np.cumsum(~is_tp)  # (n,)
        positives = int(np.count_nonzero((tables.gt_labels == label) & ~difficult))
        result.precision[label] = tp / np.maximum(tp + fp, 1)
        result.recall[label] = tp / positives if positives else np.full(tp.shape, np.nan)
        result.ap[label] = (
            interpolated_ap(result.recall[label], result.precision[label], use_07_metric) if positives else math.nan
        )
        result.num_positives[label] = positives
        result.true_positives[label] = int(tp[-1]) if tp.size else 0
        result.false_positives[label] = int(fp[-1]) if fp.size else 0
        result.ignored[label] = int(end - start - is_tp.size)
    finite = [ap for ap in result.ap.values() if not math.isnan(ap)]
    result.mAP = float(np.mean(finite)) if finite else math.nan
    return result


# --------------------------------------------------------------------------
# the oracle: the devkit's loops, one detection and one object at a time
# --------------------------------------------------------------------------

def _iou_plain(a, b) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _interpolated_ap_plain(recall: list, precision: list, use_07_metric: bool) -> float:
    if use_07_metric:
        total = 0.0
        for k in range(11):
            reached = [p for r, p in zip(recall, precision) if r >= k / 10]
            total += (max(reached) if reached else 0.0) / 11
        return total
    recall = [0.0] + recall + [1.0]
    precision = [0.0] + precision + [0.0]
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    steps = [i for i in range(len(recall) - 1) if recall[i + 1] != recall[i]]
    return sum((recall[i + 1] - recall[i]) * precision[i + 1] for i in steps)


def voc_ap_reference(
    pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_difficult=None,
    iou_threshold: float = 0.5, use_07_metric: bool = False,
) -> dict:
    """label -> AP by the devkit's plain loops (slow, simple): the oracle of ``voc_ap``. NumPy inputs only."""
    gt_boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4).tolist() for b in gt_boxes]
    gt_labels = [np.asarray(g).reshape(-1).tolist() for g in gt_labels]
    if gt_difficult is None:
        gt_difficult = [[False] * len(g) for g in gt_labels]
    gt_difficult = [[bool(x) for x in np.asarray(g).reshape(-1)] for g in gt_difficult]
    detections = []  # (score, image, box, label) in image order, then input order
    for image, (boxes, labels, scores) in enumerate(zip(pred_boxes, pred_labels, pred_scores)):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).tolist()
        for box, label, score in zip(boxes, np.asarray(labels).reshape(-1), np.asarray(scores).reshape(-1)):
            detections.append((float(score), image, box, int(label)))
    classes = sorted({int(c) for g in gt_labels for c in g} | {d[3] for d in detections})
    result = {}
    for label in classes:
        positives = sum(1 for g, h in zip(gt_labels, gt_difficult) for c, d in zip(g, h) if c == label and not d)
        mine = sorted([d for d in detections if d[3] == label], key=lambda d: -d[0])  # stable
        detected = set()
        flags = []  # True for TP, False for FP; ignored detections add nothing
        for score, image, box, _ in mine:
            best, best_j = -math.inf, -1
            for j, (gt_box, gt_label) in enumerate(zip(gt_boxes[image], gt_labels[image])):
                overlap = _iou_plain(box, gt_box) if gt_label == label else -1.0
                if overlap > best:
                    best, best_j = overlap, j
            if best >= iou_threshold:
                if gt_difficult[image][best_j]:
                    continue
                flags.append((image, best_j) not in detected)
                detected.add((image, best_j))
            else:
                flags.append(False)
        if positives == 0:
            result[label] = math.nan
            continue
        recall, precision, tp = [], [], 0
        for n, flag in enumerate(flags, start=1):
            tp += flag
            recall.append(tp / positives)
            precision.append(tp / n)
        result[label] = _interpolated_ap_plain(recall, precision, use_07_metric)
    return result
