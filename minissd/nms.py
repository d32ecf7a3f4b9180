"""Non-maximum suppression and SSD's detection post-processing.

Greedy NMS as the source slides describe it:

1. remove every box whose score is at or below the score threshold (only
   scores strictly above it stay);
2. sort the rest by score, highest first;
3. take the first as reference and remove every later box whose IoU with it
   is at or above the IoU threshold (the same object, seen twice);
4. repeat with the next surviving box until every box has been compared.

A higher score threshold, or a lower IoU threshold, removes more boxes.
Every function here (``nms``, ``nms_reference``, ``nms_steps``,
``postprocess``) and ``minissd.nms_batched`` apply the same two rules:
score > score threshold stays, IoU >= IoU threshold is removed. Both
thresholds are fractions in [0, 1].

Post-processing (the reference SSD's ``DetectionOutput``): decode the offsets
against the default boxes, softmax the logits, and for every object class
keep the scores above 0.01, the best 400 of them, NMS at IoU 0.45; then the
best 200 detections of the image over all classes. Non-finite network
outputs are an error (they would come back as NaN boxes).

``nms`` is vectorised per reference box; ``nms_reference`` is the slides'
procedure written as plain loops, the oracle of the tests.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module, to_numpy
from .boxes import DEFAULT_VARIANCES, check_boxes, decode, iou
from .loss import softmax
from .validate import as_float_array, as_integer_labels, check_count, check_finite, check_threshold, \
    check_variances

SCORE_RULE = "only scores strictly above it are kept, and scores are probabilities"
IOU_RULE = "a box is removed when its IoU with a kept box is at or above it, so it is a fraction"
NOT_FINITE_RULE = "the network's output is not finite (broken or diverged weights)"
NOT_USED = object()  # check_detection_inputs: an argument the caller has no use for


def _scored_boxes(boxes, scores, function: str):
    """(D, 4) boxes and (D,) scores as float arrays of one device, shapes checked."""
    xp = get_array_module(boxes, scores)
    boxes = as_float_array(boxes, "boxes", function, xp)
    scores = as_float_array(scores, "scores", function, xp)
    if boxes.size == 0 and boxes.ndim == 1:
        boxes = boxes.reshape(0, 4)  # no boxes at all, written as []
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{function}: boxes must have shape (D, 4); got {tuple(boxes.shape)}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"{function}: scores must have shape ({boxes.shape[0]},), one per box; "
                         f"got {tuple(scores.shape)}")
    return boxes, scores, xp


def _thresholds(iou_threshold, score_threshold, function: str):
    iou_threshold = check_threshold(iou_threshold, "iou_threshold", function, rule=IOU_RULE)
    if score_threshold is not None:
        score_threshold = check_threshold(score_threshold, "score_threshold", function, rule=SCORE_RULE)
    return iou_threshold, score_threshold


def _descending(scores, xp):
    # Stable descending order: equal scores keep their input order.
    return xp.argsort(-scores, kind="stable")


def nms(boxes, scores, iou_threshold: float, score_threshold: float | None = None, validate: bool = True):
    """Greedy NMS of one set of boxes.

    boxes:  (D, 4) xyxy.   scores: (D,).
    Returns (K,) int64 indices into ``boxes`` of the kept boxes, in
    descending score order. A box is removed when its IoU with a kept,
    higher-scored box is >= ``iou_threshold``. ``score_threshold`` (optional)
    first removes every box scoring at or below it: only scores > threshold
    take part. Both thresholds are in [0, 1]. ``validate`` checks that the
    boxes are valid and the scores finite (a host sync on a GPU).
    """
    boxes, scores, xp = _scored_boxes(boxes, scores, "nms")
    iou_threshold, score_threshold = _thresholds(iou_threshold, score_threshold, "nms")
    if validate:
        check_boxes(boxes, "boxes", function="nms")
        check_finite({"scores": scores}, "nms", "scores must be finite")
    order = _descending(scores, xp)  # (D,)
    if score_threshold is not None:
        order = order[scores[order] > score_threshold]
    count = int(order.shape[0])
    if count == 0:
        return xp.zeros((0,), dtype=xp.int64)
    overlaps = iou(boxes[order], boxes[order], validate=False)  # (D', D') in score order
    suppress = overlaps >= iou_threshold
    if xp is np:
        keep = np.ones(count, dtype=bool)
        for i in range(count):
            if keep[i]:
                row = suppress[i, i + 1:]
                keep[i + 1:] &= ~row
        return order[keep].astype(np.int64)
    # CuPy: walk the same greedy loop on the host over a copied bitmask.
    suppress_host = xp.asnumpy(suppress)
    keep = np.ones(count, dtype=bool)
    for i in range(count):
        if keep[i]:
            keep[i + 1:] &= ~suppress_host[i, i + 1:]
    return order[xp.asarray(np.nonzero(keep)[0])].astype(xp.int64)


def nms_reference(boxes, scores, iou_threshold: float, score_threshold: float | None = None):
    """The slides' NMS, one pair at a time (NumPy, slow): the oracle of ``nms``.

    The same rules: scores at or below ``score_threshold`` are removed first,
    then IoU >= ``iou_threshold`` with a kept box removes a box.
    """
    iou_threshold, score_threshold = _thresholds(iou_threshold, score_threshold, "nms_reference")
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    candidates = [i for i in range(len(scores)) if score_threshold is None or scores[i] > score_threshold]
    candidates.sort(key=lambda i: -scores[i])  # Python's sort is stable
    removed = set()
    kept = []
    for position, reference in enumerate(candidates):
        if reference in removed:
            continue
        kept.append(reference)
        for later in candidates[position + 1:]:
            if later not in removed:
                overlap = iou(boxes[reference][None], boxes[later][None], validate=False)[0, 0]
                if overlap >= iou_threshold:
                    removed.add(later)
    return np.array(kept, dtype=np.int64)


def nms_steps(boxes, scores, iou_threshold: float, score_threshold: float | None = None):
    """The slides' NMS as a record of its steps: which reference removed which box.

    boxes: (D, 4) xyxy.   scores: (D,).
    Returns a list with one (reference, removed) pair per reference box, in
    the order the references are taken (descending score, ties in input
    order): ``reference`` is an index into ``boxes``; ``removed`` lists
    (index, IoU with the reference) for every later box it removes. Boxes
    scoring at or below ``score_threshold`` take no part at all. The
    references are exactly the boxes ``nms`` keeps. For teaching and
    debugging (plain loops on the host), not for speed.
    """
    boxes, scores, _ = _scored_boxes(boxes, scores, "nms_steps")
    iou_threshold, score_threshold = _thresholds(iou_threshold, score_threshold, "nms_steps")
    boxes = np.asarray(to_numpy(check_boxes(boxes, "boxes", function="nms_steps")), dtype=np.float64)
    scores = np.asarray(to_numpy(scores), dtype=np.float64)
    check_finite({"scores": scores}, "nms_steps", "scores must be finite")
    candidates = [int(i) for i in np.argsort(-scores, kind="stable")
                  if score_threshold is None or scores[i] > score_threshold]
    overlaps = iou(boxes, boxes, validate=False) if len(boxes) else np.zeros((0, 0))  # (D, D)
    removed, steps = set(), []
    for position, reference in enumerate(candidates):
        if reference in removed:
            continue
        gone = [(later, float(overlaps[reference, later])) for later in candidates[position + 1:]
                if later not in removed and overlaps[reference, later] >= iou_threshold]
        removed.update(index for index, _ in gone)
        steps.append((reference, gone))
    return steps


def batched_nms(boxes, scores, labels, iou_threshold: float, validate: bool = True):
    """NMS within each label, all labels at once.

    boxes: (D, 4) xyxy.  scores: (D,).  labels: (D,) integers.
    Boxes of different labels never suppress each other. Returns (K,) int64
    indices of the kept boxes, in descending score order over all labels.
    """
    boxes, scores, xp = _scored_boxes(boxes, scores, "batched_nms")
    iou_threshold = check_threshold(iou_threshold, "iou_threshold", "batched_nms", rule=IOU_RULE)
    labels = as_integer_labels(labels, "labels", "batched_nms", xp, validate=validate,
                               rule="labels are the integer classes that group the boxes")
    if labels.shape != scores.shape:
        raise ValueError(f"batched_nms: labels must have shape {tuple(scores.shape)}, one per box; "
                         f"got {tuple(labels.shape)}")
    if validate:
        check_boxes(boxes, "boxes", function="batched_nms")
        check_finite({"scores": scores}, "batched_nms", "scores must be finite")
    if boxes.shape[0] == 0:
        return xp.zeros((0,), dtype=xp.int64)
    kept = []
    for label in xp.unique(labels).tolist():
        members = xp.nonzero(labels == label)[0]  # (D_label,)
        keep = nms(boxes[members], scores[members], iou_threshold, validate=False)
        kept.append(members[keep])
    kept = xp.concatenate(kept)
    return kept[_descending(scores[kept], xp)].astype(xp.int64)


def check_detection_inputs(loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances,
                           function: str, check_values: bool = True):
    """The checks ``postprocess`` and ``minissd.nms_batched`` share.

    Shapes (loc (N, P, 4), conf (N, P, L) with L >= 1, priors (P, 4)), the
    thresholds in [0, 1], top_k and keep_top_k integers >= 1 (``NOT_USED``:
    a caller without that step), the variances: all at no host sync. ``check_values``: loc, conf and priors finite, one
    host sync for all three, naming the first bad entry. Returns
    (loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances),
    lists converted to arrays.
    """
    xp = get_array_module(loc, conf, priors)
    loc = as_float_array(loc, "loc", function, xp)
    conf = as_float_array(conf, "conf", function, xp)
    priors = as_float_array(priors, "priors", function, xp)
    if loc.ndim != 3 or conf.ndim != 3 or loc.shape[:2] != conf.shape[:2] or loc.shape[-1] != 4:
        raise ValueError(f"{function}: loc (N, P, 4) and conf (N, P, L) must agree; "
                         f"got {tuple(loc.shape)} and {tuple(conf.shape)}")
    if conf.shape[-1] < 1:
        raise ValueError(f"{function}: conf has no classes (L = 0); it needs at least the background")
    if priors.shape != (loc.shape[1], 4):
        raise ValueError(f"{function}: priors must have shape ({loc.shape[1]}, 4), one default box per "
                         f"row of loc; got {tuple(priors.shape)}")
    score_threshold = check_threshold(score_threshold, "score_threshold", function, rule=SCORE_RULE)
    if iou_threshold is not NOT_USED:  # select_candidates does no NMS and no final cut
        iou_threshold = check_threshold(iou_threshold, "iou_threshold", function, rule=IOU_RULE)
    top_k = check_count(top_k, "top_k", function)
    if keep_top_k is not NOT_USED:
        keep_top_k = check_count(keep_top_k, "keep_top_k", function)
    variances = check_variances(variances, function)
    if check_values:
        check_finite({"loc": loc, "conf": conf, "priors": priors}, function,
                     {"loc": NOT_FINITE_RULE, "conf": NOT_FINITE_RULE, "priors": "default boxes must be finite"})
    return loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances


def postprocess(
    loc,
    conf,
    priors,
    score_threshold: float = 0.01,
    iou_threshold: float = 0.45,
    top_k: int = 400,
    keep_top_k: int = 200,
    variances=DEFAULT_VARIANCES,
    clip: bool = True,
):
    """Detections from raw network outputs.

    loc:    (N, P, 4) predicted offsets.    conf: (N, P, L) logits, class 0 = background.
    priors: (P, 4) cxcywh default boxes.
    Per image and per class c in 1..L-1: scores softmax(conf)[:, c] strictly
    above ``score_threshold`` (a score at or below it is removed), the best
    ``top_k``, NMS at ``iou_threshold``; then the best ``keep_top_k`` over all
    classes. ``clip`` keeps decoded boxes inside the image ([0, 1]), as
    torchvision does. Thresholds are in [0, 1], top_k and keep_top_k integers
    >= 1. A non-finite entry of loc, conf or priors is a ValueError naming it
    ("postprocess: loc[0, 17, 2] is nan: the network's output is not finite ...").
    Returns a list of N tuples (boxes (D, 4) xyxy normalised, scores (D,),
    labels (D,) int64 in 1..L-1), sorted by descending score.
    """
    loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances = check_detection_inputs(
        loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances, "postprocess")
    xp = get_array_module(loc, conf, priors)
    boxes_all = decode(loc, priors, variances, validate=False)  # (N, P, 4), checked above
    if clip:
        boxes_all = xp.clip(boxes_all, 0.0, 1.0)
    probs_all = softmax(conf)  # (N, P, L)
    results = []
    for boxes, probs in zip(boxes_all, probs_all):
        kept_boxes, kept_scores, kept_labels = [], [], []
        for label in range(1, probs.shape[1]):
            scores = probs[:, label]  # (P,)
            candidates = xp.nonzero(scores > score_threshold)[0]
            if candidates.shape[0] == 0:
                continue
            candidates = candidates[_descending(scores[candidates], xp)[:top_k]]
            keep = candidates[nms(boxes[candidates], scores[candidates], iou_threshold, validate=False)]
            kept_boxes.append(boxes[keep])
            kept_scores.append(scores[keep])
            kept_labels.append(xp.full(keep.shape, label, dtype=xp.int64))
        if not kept_boxes:
            results.append((
                xp.zeros((0, 4), dtype=loc.dtype),
                xp.zeros((0,), dtype=conf.dtype),
                xp.zeros((0,), dtype=xp.int64),
            ))
            continue
        boxes_image = xp.concatenate(kept_boxes)
        scores_image = xp.concatenate(kept_scores)
        labels_image = xp.concatenate(kept_labels)
        best = _descending(scores_image, xp)[:keep_top_k]
        results.append((boxes_image[best], scores_image[best], labels_image[best]))
    return results
