"""``minissd.nms.postprocess`` of one image in plain steps that keep every candidate's default-box index.

    trace_postprocess(loc, conf, priors, ...) -> Trace    the detections, each with its default box,
                                                          its class's NMS candidates and what it removed

Separate from ``explain.py``: this is the post-processing itself, re-done on
the host so that each detection leads back to the default box that made it
exactly, and tested against ``postprocess`` on its own (same boxes, scores,
labels and order); ``explain.py`` only dresses its result up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import get_array_module, to_numpy
from .boxes import DEFAULT_VARIANCES, decode, iou
from .loss import softmax
from .nms import NOT_FINITE_RULE, check_detection_inputs
from .validate import as_float_array, check_finite


@dataclass(frozen=True)
class TracedDetection:
    """One detection of ``trace_postprocess``: default box ``prior``, ``label``, ``score`` (model dtype),
    ``candidates`` (D,) the default boxes of its class that entered NMS (best first), ``above_threshold``
    (how many scored above the threshold before the top_k cut), ``removed``: [(prior, IoU), ...] it removed."""

    prior: int
    label: int
    score: np.floating
    candidates: np.ndarray
    above_threshold: int
    removed: list


@dataclass(frozen=True)
class Trace:
    """``trace_postprocess``'s result: boxes (P, 4) xyxy decoded (and clipped) of every default box,
    probabilities (P, L), both NumPy; detections: [TracedDetection, ...] by descending score, exactly
    ``postprocess``'s order."""

    boxes: np.ndarray
    probabilities: np.ndarray
    detections: list


def trace_postprocess(loc, conf, priors, score_threshold: float = 0.01, iou_threshold: float = 0.45,
                      top_k: int = 400, keep_top_k: int = 200, variances=DEFAULT_VARIANCES, clip: bool = True,
                      function: str = "trace_postprocess") -> Trace:
    """``minissd.nms.postprocess`` of one image in plain steps that keep each candidate's default-box index.

    loc (P, 4) offsets, conf (P, L) logits (class 0 the background), priors (P, 4) cxcywh.
    1. decode and clip every default box, softmax every row (the same calls as ``postprocess``);
    2. per class c in 1..L-1: the default boxes scoring > score_threshold, by descending score (stable:
       ties by lower index), the best top_k;
    3. greedy NMS over them in float IoU, as ``nms``: the best box left is kept and removes every later
       box with IoU >= iou_threshold; each removal is recorded with the box that caused it;
    4. the kept boxes of all classes (class by class, best first), stable-sorted by descending score,
       the best keep_top_k.
    The detections are ``postprocess``'s (boxes, scores, labels, order) exactly; the arguments are
    checked as it checks them.
    """
    xp = get_array_module(loc, conf, priors)
    loc, conf, priors = (as_float_array(a, name, function, xp) for a, name in ((loc, "loc"), (conf, "conf"),
                                                                              (priors, "priors")))
    if loc.ndim != 2 or conf.ndim != 2:
        raise ValueError(f"{function}: loc (P, 4) and conf (P, L) are one image's outputs; "
                         f"got {tuple(loc.shape)} and {tuple(conf.shape)}")
    check_finite({"loc": loc, "conf": conf, "priors": priors}, function,
                 {"loc": NOT_FINITE_RULE, "conf": NOT_FINITE_RULE, "priors": "default boxes must be finite"})
    _, _, _, score_threshold, iou_threshold, top_k, keep_top_k, variances = check_detection_inputs(
        loc[None], conf[None], priors, score_threshold, iou_threshold, top_k, keep_top_k, variances, function,
        check_values=False)
    boxes = decode(loc, priors, variances, validate=False)  # (P, 4)
    if clip:
        boxes = xp.clip(boxes, 0.0, 1.0)
    boxes, probabilities = to_numpy(boxes), to_numpy(softmax(conf))  # (P, 4), (P, L)

    kept = []  # (prior, label, score, candidates, above, removed), class by class, best first
    for label in range(1, probabilities.shape[1]):
        scores = probabilities[:, label]  # (P,)
        above = np.nonzero(scores > score_threshold)[0]
        candidates = above[np.argsort(-scores[above], kind="stable")][:top_k]  # (D,) best first
        for position, removed in _greedy_nms(boxes[candidates], iou_threshold):
            kept.append((int(candidates[position]), label, scores[candidates[position]], candidates, len(above),
                         [(int(candidates[j]), overlap) for j, overlap in removed]))
    if not kept:
        return Trace(boxes, probabilities, [])
    kept_scores = np.array([item[2] for item in kept], dtype=probabilities.dtype)
    best = np.argsort(-kept_scores, kind="stable")[:keep_top_k]
    return Trace(boxes, probabilities, [TracedDetection(*kept[i]) for i in best])


def _greedy_nms(boxes, iou_threshold: float):
    """[(kept position, [(removed position, IoU), ...]), ...] over score-sorted (D, 4) boxes.

    The IoU table is ``minissd.boxes.iou`` in the boxes' dtype, compared as ``nms`` compares it,
    so the kept boxes are ``nms``'s to the bit, ties included.
    """
    count = boxes.shape[0]
    if count == 0:
        return []
    overlaps = iou(boxes, boxes, validate=False)  # (D, D)
    alive = np.ones(count, dtype=bool)
    steps = []
    for i in range(count):
        if not alive[i]:
            continue
        hit = alive[i + 1:] & (overlaps[i, i + 1:] >= iou_threshold)  # (D-i-1,) removed by box i now
        gone = np.nonzero(hit)[0] + i + 1
        alive[gone] = False
        steps.append((i, [(int(j), float(overlaps[i, j])) for j in gone]))
    return steps
