"""SSD's detection post-processing for a whole batch at once: no Python loop per box, class or image.

``minissd.nms.postprocess`` walks images, then classes, then (inside ``nms``)
the kept boxes one by one. That is the clearest way to read the algorithm and
the slowest way to run it on a GPU, where every small step is a kernel launch
and every ``if`` on a device value is a host synchronisation. Here the same
result comes from array operations over all (image, class) groups together:

1. decode and softmax every default box of every image: boxes (N, P, 4),
   scores (N, L-1, P) for the object classes;
2. per group (image n, class c): the K = min(top_k, P) best scores, a stable
   descending sort (ties keep the lower default-box index first, as in
   ``postprocess``); a candidate is valid when its score > ``score_threshold``
   (a score at or below the threshold is removed, the rule of ``minissd.nms``);
3. the IoU of every pair of a group's candidates, (G, K, K) with G = N (L-1),
   and the suppression mask  S[g, i, j] = IoU >= ``iou_threshold``;
4. the greedy scan in bitmask style: walking the K positions in score order,
   candidate i, if it is still kept, removes every later j with S[g, i, j];
   one vector operation over all G groups per position, K steps in all
   (``greedy_keep``);
5. per image, the best ``keep_top_k`` kept candidates over all classes, by a
   stable sort of (L-1) K scores with the dropped ones at -inf.

Step 4 is exactly ``nms``'s loop, only run for all groups side by side: a
candidate's fate depends only on the candidates before it, so position i can
be decided for every group in the same step. The result is what
``postprocess`` returns, the same boxes, scores, labels and order, ties
included (tests/test_nms_batched.py compares them on many random inputs).

``postprocess_padded`` returns fixed-shape arrays and stays on the device;
``postprocess_batched`` splits them into ``postprocess``'s list of per-image
tuples after one host transfer of the per-image counts. Both check their
arguments as ``postprocess`` does (``minissd.nms.check_detection_inputs``);
the finiteness check of the network's outputs is one host sync, which the
sync-free ``postprocess_padded(trim=False)`` leaves out unless asked.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module, to_numpy
from .boxes import DEFAULT_VARIANCES, decode, iou_batched
from .loss import softmax
from .nms import IOU_RULE, NOT_USED, check_detection_inputs
from .validate import as_float_array, check_threshold

# Bytes of one float (G, K, K) IoU temporary per chunk of groups. On the CPU
# a few groups at a time stay in cache (measured on SSD300-sized outputs: 0.23 s
# per batch of 8 at ~2 MB, 0.54 s for all groups at once); on a GPU one chunk
# holds every group of a batch of 32 (640 x 400 x 400 floats).
CHUNK_BYTES = {"numpy": 2 << 20, "cupy": 1 << 30}


def greedy_keep(suppress, valid):
    """Greedy NMS over score-sorted candidates, for many groups at once.

    suppress: (G, K, K) bool, suppress[g, i, j]: candidate i removes candidate j
              when i is kept and comes first (only j > i is read).
    valid:    (G, K) bool, the candidates taking part (False: padding).
    Returns keep (G, K) bool.

        keep[:, j] = valid[:, j] and not any over i < j of (keep[:, i] and suppress[:, i, j])

    A Python loop over the K positions (K <= top_k, 400 in SSD), each step one
    vector operation over all groups; nothing is read back to the host.
    """
    num_candidates = suppress.shape[-1]
    keep = valid.copy()  # (G, K)
    for i in range(num_candidates - 1):
        # candidate i removes later ones only if it survived the candidates before it
        removed = suppress[:, i, i + 1:] & keep[:, i:i + 1]  # (G, K-i-1)
        keep[:, i + 1:] &= ~removed
    return keep


def greedy_keep_reference(suppress, valid):
    """``greedy_keep`` one group and one pair at a time (NumPy, slow): the oracle."""
    suppress, valid = np.asarray(suppress), np.asarray(valid)
    keep = np.zeros(valid.shape, dtype=bool)
    for g in range(valid.shape[0]):
        for j in range(valid.shape[1]):
            keep[g, j] = valid[g, j] and not any(keep[g, i] and suppress[g, i, j] for i in range(j))
    return keep


def suppression_masks(boxes, iou_threshold: float):
    """Step 3: (G, K, 4) xyxy candidates -> (G, K, K) bool, IoU >= ``iou_threshold``.

    Built a chunk of groups at a time (``CHUNK_BYTES``): the float IoU table
    of a chunk is a temporary, only the boolean mask is kept.
    """
    xp = get_array_module(boxes)
    iou_threshold = check_threshold(iou_threshold, "iou_threshold", "suppression_masks", rule=IOU_RULE)
    groups, k = boxes.shape[:2]
    suppress = xp.empty((groups, k, k), dtype=bool)  # (G, K, K)
    budget = CHUNK_BYTES.get(xp.__name__, CHUNK_BYTES["numpy"])
    chunk = max(1, budget // max(1, k * k * boxes.itemsize))
    for start in range(0, groups, chunk):  # memory chunks, not a loop per image or class
        part = boxes[start:start + chunk]  # (g, K, 4)
        suppress[start:start + chunk] = iou_batched(part, part) >= iou_threshold
    return suppress


def top_candidates(scores, k: int, method: str | None = None):
    """Indices of the ``k`` best scores of each row, best first: ``argsort(-scores, stable)[..., :k]``.

    scores: (..., P).  Returns (..., k) int64, ties by lower index first.
    method "sort" is that one-liner, a full stable sort of every row (what a
    GPU does well). "partition" (the default on NumPy, 3x faster there) finds
    each row's k-th largest score t with a partial sort, keeps every score > t
    and the first (in index order) of those == t until there are k, and sorts
    only those k: the same indices, ties included.
    """
    xp = get_array_module(scores)
    num = scores.shape[-1]
    k = max(0, min(int(k), num))
    method = method or ("partition" if xp.__name__ == "numpy" else "sort")
    if method == "sort" or k == 0 or k == num:
        return xp.argsort(-scores, axis=-1, kind="stable")[..., :k]
    if method != "partition":
        raise ValueError(f"method must be 'sort' or 'partition'; got {method!r}")
    rows = scores.reshape(-1, num)  # (R, P)
    kth = -xp.partition(-rows, k - 1, axis=-1)[:, k - 1:k]  # (R, 1) the k-th largest score
    above = rows > kth  # (R, P)
    tied = rows == kth  # (R, P)
    wanted = k - above.sum(axis=-1, keepdims=True)  # (R, 1) how many ties to take
    chosen = above | (tied & (xp.cumsum(tied, axis=-1) <= wanted))  # (R, P), exactly k per row
    picked = xp.nonzero(chosen)[1].reshape(rows.shape[0], k)  # (R, k) in index order
    best = xp.argsort(-xp.take_along_axis(rows, picked, axis=-1), axis=-1, kind="stable")  # (R, k)
    return xp.take_along_axis(picked, best, axis=-1).reshape(scores.shape[:-1] + (k,))  # (..., k)


def select_candidates(loc, conf, priors, score_threshold: float = 0.01, top_k: int = 400,
                      variances=DEFAULT_VARIANCES, clip: bool = True, trim: bool = True):
    """Steps 1-2: every group's best ``top_k`` candidates, best first.

    loc (N, P, 4), conf (N, P, L) logits, priors (P, 4) cxcywh.
    Returns (boxes (N, L-1, K, 4) xyxy, scores (N, L-1, K), valid (N, L-1, K) bool),
    K = min(top_k, P), each group sorted by descending score (stable: ties
    by default-box index); valid marks scores > ``score_threshold``.
    ``trim`` cuts K to the largest number of valid candidates of any group
    (one host sync; it makes the K x K step far smaller for a trained network,
    whose scores mostly fall below the threshold). Shapes and numbers are
    checked (no host sync); the values are not (``postprocess_padded`` does that).
    """
    loc, conf, priors, score_threshold, _, top_k, _, variances = check_detection_inputs(
        loc, conf, priors, score_threshold, NOT_USED, top_k, NOT_USED, variances, "select_candidates",
        check_values=False)
    xp = get_array_module(loc, conf, priors)
    num_images, num_priors, num_classes = conf.shape
    boxes_all = decode(loc, priors, variances, validate=False)  # (N, P, 4)
    if clip:
        boxes_all = xp.clip(boxes_all, 0.0, 1.0)
    scores_all = softmax(conf)[..., 1:].transpose(0, 2, 1)  # (N, L-1, P) object classes only
    order = top_candidates(scores_all, top_k)  # (N, L-1, K) best first
    k = order.shape[-1]
    scores = xp.take_along_axis(scores_all, order, axis=-1)  # (N, L-1, K)
    valid = scores > score_threshold  # (N, L-1, K), a prefix of each row
    if trim:
        k = int(valid.sum(axis=-1).max()) if valid.size else 0  # the one host sync of this function
        order, scores, valid = order[..., :k], scores[..., :k], valid[..., :k]
    flat = order.reshape(num_images, (num_classes - 1) * k, 1)  # (N, (L-1)*K, 1)
    flat = xp.broadcast_to(flat, flat.shape[:2] + (4,))  # (N, (L-1)*K, 4), one index per coordinate
    boxes = xp.take_along_axis(boxes_all, flat, axis=1)  # (N, (L-1)*K, 4)
    return boxes.reshape(num_images, num_classes - 1, k, 4), scores, valid  # (N, L-1, K, 4)


def postprocess_padded(loc, conf, priors, score_threshold: float = 0.01, iou_threshold: float = 0.45,
                       top_k: int = 400, keep_top_k: int = 200, variances=DEFAULT_VARIANCES,
                       clip: bool = True, trim: bool = True, validate: bool | None = None):
    """``postprocess`` for the whole batch as fixed-shape arrays, without leaving the device.

    loc: (N, P, 4) offsets.  conf: (N, P, L) logits, class 0 = background.  priors: (P, 4) cxcywh.
    Returns (boxes (N, D, 4) xyxy, scores (N, D), labels (N, D) int64, counts (N,) int64),
    D = min(keep_top_k, (L-1) K): image n's detections are the first counts[n]
    rows, by descending score; the rows after them are padding (label 0,
    score 0, box 0). ``trim`` as in ``select_candidates`` (trim=False: no host sync at all).
    ``validate``: raise ValueError on a non-finite entry of loc, conf or priors
    (one host sync); the default, None, follows ``trim``: checked when the
    call synchronises anyway, left out by the sync-free trim=False. Shapes,
    thresholds (in [0, 1]) and counts (>= 1) are always checked.
    """
    check_values = trim if validate is None else bool(validate)
    return _postprocess_padded(loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances,
                               clip, trim, check_values, "postprocess_padded")


def _postprocess_padded(loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances,
                        clip, trim, check_values, function):
    """``postprocess_padded``'s work; ``function`` names the public caller in error messages."""
    loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances = check_detection_inputs(
        loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances, function,
        check_values=check_values)
    xp = get_array_module(loc, conf, priors)
    num_images, num_classes = conf.shape[0], conf.shape[2]
    boxes, scores, valid = select_candidates(loc, conf, priors, score_threshold, top_k, variances, clip, trim)
    k = scores.shape[-1]
    groups = num_images * (num_classes - 1)
    boxes = boxes.reshape(groups, k, 4)  # (G, K, 4)
    keep = greedy_keep(suppression_masks(boxes, iou_threshold), valid.reshape(groups, k))  # (G, K)

    # 5. best keep_top_k per image; dropped candidates sink to the end at -inf
    keep = keep.reshape(num_images, (num_classes - 1) * k)  # (N, (L-1)*K), class-major like postprocess
    scores = scores.reshape(keep.shape)  # (N, (L-1)*K)
    ranked = xp.where(keep, scores, -xp.inf)
    count = min(int(keep_top_k), keep.shape[1])
    best = xp.argsort(-ranked, axis=1, kind="stable")[:, :max(count, 0)]  # (N, D)
    counts = xp.minimum(keep.sum(axis=1), max(count, 0)).astype(xp.int64)  # (N,)
    real = xp.arange(best.shape[1])[None, :] < counts[:, None]  # (N, D) rows that hold a detection
    index = xp.broadcast_to(best[..., None], best.shape + (4,))  # (N, D, 4)
    out_boxes = xp.take_along_axis(boxes.reshape(keep.shape + (4,)), index, axis=1)  # (N, D, 4)
    out_scores = xp.take_along_axis(scores, best, axis=1)  # (N, D)
    out_labels = (best // max(k, 1) + 1).astype(xp.int64)  # (N, D) class of the candidate's group
    return (xp.where(real[..., None], out_boxes, 0), xp.where(real, out_scores, 0),
            xp.where(real, out_labels, 0), counts)


def postprocess_batched(loc, conf, priors, score_threshold: float = 0.01, iou_threshold: float = 0.45,
                        top_k: int = 400, keep_top_k: int = 200, variances=DEFAULT_VARIANCES,
                        clip: bool = True):
    """Exactly ``minissd.nms.postprocess``'s result, computed for the whole batch at once.

    loc: (N, P, 4) offsets.  conf: (N, P, L) logits.  priors: (P, 4) cxcywh.
    Returns a list of N tuples (boxes (D_n, 4) xyxy normalised, scores (D_n,),
    labels (D_n,) int64 in 1..L-1), by descending score. A non-finite entry
    of loc, conf or priors is a ValueError naming it, as in ``postprocess``.
    Three host syncs in all: that finiteness check, the trim of
    ``select_candidates`` and the per-image counts.
    """
    xp = get_array_module(loc, conf, priors)
    loc = as_float_array(loc, "loc", "postprocess_batched", xp)  # lists: the dtypes of the empty results below
    conf = as_float_array(conf, "conf", "postprocess_batched", xp)
    boxes, scores, labels, counts = _postprocess_padded(
        loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances, clip, True, True,
        "postprocess_batched")
    results = []
    for n, count in enumerate(to_numpy(counts).tolist()):  # slicing the output, not computing it
        if count == 0:  # the dtypes postprocess gives an image without detections
            results.append((xp.zeros((0, 4), dtype=loc.dtype), xp.zeros((0,), dtype=conf.dtype),
                            xp.zeros((0,), dtype=xp.int64)))
        else:
            results.append((boxes[n, :count], scores[n, :count], labels[n, :count]))
    return results
