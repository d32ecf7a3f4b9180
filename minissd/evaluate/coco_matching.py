"""COCO's greedy matching of detections to objects, as pycocotools' ``evaluateImg`` does it.

Within one image and one class, for every IoU threshold t separately, walk
the detections from the highest score down. A detection takes, among the
objects still free whose IoU with it is >= t,

1. the regular object of highest IoU (regular: counted in this area range);
2. only if there is none, the ignored object of highest IoU (a crowd region,
   or an object whose area lies outside the area range);

on equal IoU the later object wins (pycocotools scans the objects and
replaces its choice on >=). A taken object is no longer free, except a crowd
region, which may absorb any number of detections. A detection matched to an
ignored object is ignored (neither TP nor FP); an unmatched one is an FP.

Unlike the VOC devkit's rule, a detection whose best object is taken moves on
to the next free one. The state (which objects are taken) makes the walk
sequential over detections; ``greedy_match`` keeps that one loop and runs it
for many images, all area ranges and all thresholds at once.
``greedy_match_reference`` is pycocotools' triple loop, the oracle.
"""

from __future__ import annotations

import numpy as np

# The 10 thresholds 0.50, 0.55, ..., 0.95, built exactly as pycocotools builds
# them, so that an IoU equal to a threshold is judged the same way.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)  # (T,)

# pycocotools compares against min(t, 1 - 1e-10): a threshold of 1 still accepts a perfect match.
_HIGHEST_LIMIT = 1 - 1e-10


def greedy_match(ious, gt_regular, gt_crowd, thresholds=IOU_THRESHOLDS):
    """Greedy matching of B groups (image and class) at once.

    ious:       (B, D, G) IoU of each detection (rows, in descending score order) with each
                object; entries below every threshold (use -1) pad a group or mark another class.
    gt_regular: (B, A, G) bool: the object counts in area range a; False: ignored (or padding).
    gt_crowd:   (B, G) bool: a crowd region, never used up.
    thresholds: (T,) IoU thresholds.
    Returns (B, A, T, D) int64: the column of the object each detection took, or -1.
    """
    ious = np.asarray(ious, dtype=np.float64)
    num_groups, num_dets, num_gts = ious.shape
    num_areas = gt_regular.shape[1]
    limits = np.minimum(np.asarray(thresholds, dtype=np.float64), _HIGHEST_LIMIT)  # (T,)
    matched = np.full((num_groups, num_areas, limits.shape[0], num_dets), -1, dtype=np.int64)
    if num_gts == 0:
        return matched
    taken = np.zeros((num_groups, num_areas, limits.shape[0], num_gts), dtype=bool)  # (B, A, T, G)
    regular = gt_regular[:, :, None, :]  # (B, A, 1, G)
    crowd = gt_crowd[:, None, None, :]  # (B, 1, 1, G)
    for d in range(num_dets):
        row = ious[:, d, None, None, :]  # (B, 1, 1, G)
        allowed = (row >= limits[:, None]) & (~taken | crowd)  # (B, A, T, G)
        preferred = allowed & regular
        pool = np.where(preferred.any(axis=-1, keepdims=True), preferred, allowed)  # (B, A, T, G)
        # The highest IoU in the pool, the last column on ties: argmax over reversed columns.
        score = np.where(pool, row, -np.inf)  # (B, A, T, G)
        column = num_gts - 1 - np.argmax(score[..., ::-1], axis=-1)  # (B, A, T)
        found = pool.any(axis=-1)  # (B, A, T)
        matched[..., d] = np.where(found, column, -1)
        group, area, threshold = np.nonzero(found)
        taken[group, area, threshold, column[found]] = True
    return matched


def greedy_match_reference(ious, gt_regular, gt_crowd, thresholds=IOU_THRESHOLDS):
    """pycocotools' loops for one group (slow): the oracle of ``greedy_match``.

    ious: (D, G).  gt_regular: (A, G) bool.  gt_crowd: (G,) bool.
    Returns (A, T, D) int64 columns of the matched objects, -1 for none.
    """
    ious = np.asarray(ious, dtype=np.float64).tolist()
    num_dets, num_gts = len(ious), (len(ious[0]) if ious else np.shape(gt_crowd)[0])
    matched = np.full((len(gt_regular), len(thresholds), num_dets), -1, dtype=np.int64)
    for area, regular in enumerate(np.asarray(gt_regular, dtype=bool).tolist()):
        order = sorted(range(num_gts), key=lambda g: not regular[g])  # regular first, stable
        for t_index, threshold in enumerate(thresholds):
            taken = [False] * num_gts
            for d in range(num_dets):
                best, choice = min(float(threshold), _HIGHEST_LIMIT), -1
                for g in order:
                    if taken[g] and not gt_crowd[g]:
                        continue
                    if choice > -1 and regular[choice] and not regular[g]:
                        break  # a regular object was found; ignored ones come after it
                    if ious[d][g] < best:
                        continue
                    best, choice = ious[d][g], g
                if choice > -1:
                    matched[area, t_index, d] = choice
                    taken[choice] = True
    return matched
