"""Matching: which default boxes are responsible for which ground-truth box.

SSD's training targets come from matching (Liu et al. 2016, section 2.2),
done the way the original Caffe code does it:

1. Bipartite step. Every ground-truth box gets one default box of its own:
   repeatedly take the (ground truth, default box) pair of highest IoU in the
   whole G x P table, match it, and remove that row and that column. So even
   a ground truth that overlaps no default box by 0.5 is learned from.
2. Threshold step. Every default box still free takes the ground truth it
   overlaps most, if that IoU >= 0.5 (x_ij = 1 in the paper's notation).

Every other default box is background (class 0). The matched ground truth of
a positive becomes its localisation target, encoded as offsets g_hat
(``minissd.boxes.encode``); its label becomes the class target.

``match`` is vectorised; ``match_reference`` is the same algorithm written
as plain Python loops, the oracle the tests compare against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import get_array_module
from .boxes import DEFAULT_VARIANCES, area, check_boxes, cxcywh_to_xyxy, encode, iou_unchecked
from .validate import as_float_array, as_integer_labels, check_choice, check_last_axis, check_threshold, \
    check_variances

BACKGROUND = 0
LABEL_RULE = "object labels start at 1 (0 is reserved for the background)"
IOU_RULE = "a default box is positive when its IoU reaches it, so it is a fraction"
BIPARTITE_CHOICES = ("greedy", "argmax")


def _check_labels(gt_labels, count: int, xp, function: str = "match", validate: bool = True):
    """(G,) labels as int64, each an integer >= 1; floats only when whole numbers."""
    labels = as_integer_labels(gt_labels, "gt_labels", function, xp, validate=validate,
                               rule="labels are integers >= 1; 0 is the background")
    if labels.size == 0:
        labels = labels.reshape(0)
    if labels.shape != (count,):
        raise ValueError(f"{function}: gt_labels must have shape ({count},) to go with gt_boxes; "
                         f"got {tuple(labels.shape)}")
    if validate:
        as_integer_labels(labels, "gt_labels", function, low=1, rule=LABEL_RULE)
    return labels


def _check_priors(priors, function: str, xp, validate: bool):
    priors = as_float_array(priors, "priors", function, xp)
    check_last_axis(priors, "priors", function, ndim=2, layout="(P, 4) cxcywh")
    if validate:
        check_boxes(priors, "priors", fmt="cxcywh", function=function)
    return priors


@dataclass(frozen=True)
class PreparedPriors:
    """Default boxes made ready once for matching many images against them.

    cxcywh (P, 4) as given, xyxy (P, 4) their corners, area (P,). ``match``, ``match_indices`` and
    ``targets_from_indices`` take one wherever they take the (P, 4) priors array: checking the
    default boxes and converting them costs more than matching one image with a few objects
    (1364 default boxes: ~0.2 of ~0.6 ms), and the trainer's loader and ``match_batch`` match
    every image against the same ones. Build it with ``prepare_priors``.
    """

    cxcywh: object
    xyxy: object
    area: object


def prepare_priors(priors, function: str = "prepare_priors", validate: bool = True) -> PreparedPriors:
    """(P, 4) cxcywh default boxes (checked, unless ``validate`` is False) -> ``PreparedPriors``.

    A ``PreparedPriors`` is returned as it is: it was checked when it was made.
    """
    if isinstance(priors, PreparedPriors):
        return priors
    xp = get_array_module(priors)
    priors = _check_priors(priors, function, xp, validate)
    corners = cxcywh_to_xyxy(priors, validate=False)  # (P, 4)
    return PreparedPriors(cxcywh=priors, xyxy=corners, area=area(corners, validate=False))


def _priors_array(priors):
    """The (P, 4) cxcywh array of ``priors`` (an array or a ``PreparedPriors``), for get_array_module."""
    return priors.cxcywh if isinstance(priors, PreparedPriors) else priors


def _check_gt_boxes(gt_boxes, function: str, xp, dtype):
    gt_boxes = as_float_array(gt_boxes, "gt_boxes", function, xp)
    if gt_boxes.size == 0:  # an image without objects: allow shape (0,) too
        gt_boxes = gt_boxes.reshape(0, 4).astype(dtype)
    check_last_axis(gt_boxes, "gt_boxes", function, ndim=2, layout="(G, 4)")
    return gt_boxes


def match_indices(gt_boxes, priors, iou_threshold: float = 0.5, bipartite: str = "greedy",
                  validate: bool = True):
    """For each default box, the index of its matched ground truth, or -1.

    gt_boxes: (G, 4) xyxy, normalised.   priors: (P, 4) cxcywh, or ``prepare_priors(priors)``.
    Returns (P,) int64: g in [0, G) for a positive, -1 for background.

    ``bipartite="greedy"`` is Caffe's true greedy bipartite step; "argmax"
    is the approximation many ports use (each ground truth takes its own best
    default box, ties and collisions resolved by the later ground truth).
    ``iou_threshold`` is a fraction in [0, 1]. ``validate=False`` skips the
    checks of the box values (``match`` has made them already).
    """
    xp = get_array_module(gt_boxes, _priors_array(priors))
    iou_threshold = check_threshold(iou_threshold, "iou_threshold", "match_indices", rule=IOU_RULE)
    check_choice(bipartite, "bipartite", "match_indices", BIPARTITE_CHOICES)
    prepared = prepare_priors(priors, "match_indices", validate)
    gt_boxes = _check_gt_boxes(gt_boxes, "match_indices", xp, prepared.cxcywh.dtype)
    if validate:
        check_boxes(gt_boxes, "gt_boxes", function="match_indices")
    num_priors = prepared.cxcywh.shape[0]
    num_gt = gt_boxes.shape[0]
    matched = xp.full((num_priors,), -1, dtype=xp.int64)
    if num_gt == 0:
        return matched
    overlaps = iou_unchecked(gt_boxes, prepared.xyxy, prepared.area)  # (G, P)

    # 2. threshold step first on a copy: the bipartite matches overwrite it below. A default box
    # that touches no ground truth (IoU 0) is never positive, even with iou_threshold = 0.
    best_gt = overlaps.argmax(axis=0)  # (P,)
    best_overlap = overlaps.max(axis=0)  # (P,)
    matched = xp.where((best_overlap >= iou_threshold) & (best_overlap > 0), best_gt, -1)

    # 1. bipartite step: each ground truth claims one default box (IoU > 0).
    if bipartite == "greedy":
        table = overlaps.copy()  # (G, P); taken rows/columns set to -1
        for _ in range(num_gt):
            flat = int(table.argmax())
            g, p = divmod(flat, num_priors)
            if table[g, p] <= 0:  # the rest overlap nothing
                break
            matched[p] = g
            table[g, :] = -1
            table[:, p] = -1
    else:  # "argmax"
        best_prior = overlaps.argmax(axis=1)  # (G,)
        has_overlap = overlaps.max(axis=1) > 0  # (G,)
        gts = xp.arange(num_gt)[has_overlap]
        matched[best_prior[has_overlap]] = gts
    return matched


def match(
    gt_boxes,
    gt_labels,
    priors,
    iou_threshold: float = 0.5,
    variances=DEFAULT_VARIANCES,
    bipartite: str = "greedy",
    validate: bool = True,
):
    """Training targets for one image, or for a batch given as lists.

    gt_boxes:  (G, 4) xyxy normalised ground truth (G may be 0).
    gt_labels: (G,) ints in 1..L-1 (whole-number floats such as 2.0 are
               accepted; 1.7 is an error, never truncated).
    priors:    (P, 4) cxcywh default boxes, or ``prepare_priors(priors)`` to match many
               images against them (checked and converted once).
    iou_threshold: in [0, 1].
    Returns (loc_targets (P, 4) float, conf_targets (P,) int64): encoded
    offsets of each positive's matched box (zeros for background) and its
    label (0 for background). With lists of per-image arrays, returns
    (N, P, 4) and (N, P). Lists of numbers are accepted as arrays.

    ``validate`` (default) checks boxes, labels and default boxes and names
    the first bad one; False skips the value checks (shapes, thresholds and
    dtypes are always checked).
    """
    if isinstance(gt_boxes, (list, tuple)) and _is_batch(gt_boxes):
        if not isinstance(gt_labels, (list, tuple)) or len(gt_labels) != len(gt_boxes):
            raise ValueError("match: a batch (a list of gt_boxes arrays) needs one gt_labels array per image; "
                             f"got {len(gt_boxes)} gt_boxes and "
                             f"{len(gt_labels) if isinstance(gt_labels, (list, tuple)) else type(gt_labels).__name__}")
        return match_batch(gt_boxes, gt_labels, priors, iou_threshold, variances, bipartite, validate)
    xp = get_array_module(gt_boxes, gt_labels, _priors_array(priors))
    iou_threshold = check_threshold(iou_threshold, "iou_threshold", "match", rule=IOU_RULE)
    variances = check_variances(variances, "match")
    check_choice(bipartite, "bipartite", "match", BIPARTITE_CHOICES)
    prepared = prepare_priors(priors, "match", validate)
    gt_boxes = _check_gt_boxes(gt_boxes, "match", xp, prepared.cxcywh.dtype)
    if validate:
        check_boxes(gt_boxes, "gt_boxes", function="match")
    gt_labels = _check_labels(gt_labels, gt_boxes.shape[0], xp, "match", validate)
    matched = match_indices(gt_boxes, prepared, iou_threshold, bipartite, validate=False)  # (P,)
    return targets_from_indices(matched, gt_boxes, gt_labels, prepared, variances)


def _is_batch(values) -> bool:
    """A list of per-image arrays (a batch), rather than one image's boxes written as a list.

    One image as a list is a list of 4-number rows (or empty); a batch is a
    list whose entries are arrays, or lists of rows.
    """
    if len(values) == 0:
        return False
    first = values[0]
    if hasattr(first, "shape") and hasattr(first, "dtype"):
        return tuple(first.shape) != (4,)  # an array row of 4 numbers is one image written as a list
    if isinstance(first, (list, tuple)):
        return len(first) == 0 or isinstance(first[0], (list, tuple)) or hasattr(first[0], "shape")
    return False


def targets_from_indices(matched, gt_boxes, gt_labels, priors, variances=DEFAULT_VARIANCES):
    """(P,) matched indices -> (loc_targets (P, 4), conf_targets (P,)).

    priors: (P, 4) cxcywh, or a ``PreparedPriors``. Only the positives are encoded (a few dozen
    of the P rows); every other row is zero offsets and class 0.
    """
    cxcywh = _priors_array(priors)
    xp = get_array_module(matched, gt_boxes, cxcywh)
    variances = check_variances(variances, "targets_from_indices")
    dtype = cxcywh.dtype
    num_priors = cxcywh.shape[0]
    loc = xp.zeros((num_priors, 4), dtype=dtype)  # (P, 4)
    conf = xp.full((num_priors,), BACKGROUND, dtype=xp.int64)  # (P,)
    if gt_boxes.shape[0] == 0:
        return loc, conf
    rows = xp.flatnonzero(matched >= 0)  # (K,) the positives
    if rows.shape[0] == 0:
        return loc, conf
    owners = matched[rows]  # (K,) their ground truths
    # encoded in the finer of the two dtypes, then stored in the priors' dtype: a float64 box too thin
    # for float32 still has a finite log size ratio
    loc[rows] = encode(gt_boxes[owners], cxcywh[rows], variances, validate=False)  # (K, 4)
    conf[rows] = xp.asarray(gt_labels)[owners].astype(xp.int64)
    return loc, conf


def match_batch(gt_boxes_list, gt_labels_list, priors, iou_threshold=0.5,
                variances=DEFAULT_VARIANCES, bipartite="greedy", validate: bool = True):
    """``match`` for N images: lists of (G_i, 4) and (G_i,) -> (N, P, 4), (N, P)."""
    if len(gt_boxes_list) != len(gt_labels_list):
        raise ValueError(f"match_batch: {len(gt_boxes_list)} gt_boxes arrays but {len(gt_labels_list)} "
                         "gt_labels arrays; give one of each per image")
    if not gt_boxes_list:
        raise ValueError("match_batch: the batch is empty; give at least one image")
    xp = get_array_module(_priors_array(priors), *gt_boxes_list)
    prepared = prepare_priors(priors, "match_batch", validate)  # checked and converted once for the batch
    locs, confs = [], []
    for index, (boxes, labels) in enumerate(zip(gt_boxes_list, gt_labels_list)):
        try:
            loc, conf = match(boxes, labels, prepared, iou_threshold, variances, bipartite, validate)
        except (ValueError, TypeError) as error:
            detail = str(error).removeprefix("match: ")
            raise type(error)(f"match_batch: image {index} of the batch: {detail}") from None
        locs.append(loc)
        confs.append(conf)
    return xp.stack(locs), xp.stack(confs)


# --------------------------------------------------------------------------
# the plain-loop oracle
# --------------------------------------------------------------------------

def _iou_pair(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_reference(gt_boxes, gt_labels, priors, iou_threshold=0.5, variances=DEFAULT_VARIANCES):
    """Caffe's greedy bipartite + threshold matching, one prior at a time (NumPy, slow)."""
    gt = [list(map(float, box)) for box in np.asarray(gt_boxes)]
    labels = [int(v) for v in np.asarray(gt_labels)]
    prior_list = np.asarray(priors, dtype=np.float64)
    corners = [
        [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] for cx, cy, w, h in prior_list
    ]
    num_priors = len(corners)
    table = [[_iou_pair(g, c) for c in corners] for g in gt]
    matched = [-1] * num_priors
    free_gt, free_prior = set(range(len(gt))), set(range(num_priors))
    while free_gt:
        best, best_pair = 0.0, None
        for g in sorted(free_gt):
            for p in range(num_priors):
                if p in free_prior and table[g][p] > best:
                    best, best_pair = table[g][p], (g, p)
        if best_pair is None:
            break
        g, p = best_pair
        matched[p] = g
        free_gt.discard(g)
        free_prior.discard(p)
    for p in sorted(free_prior):
        best, best_g = -1.0, -1
        for g in range(len(gt)):
            if table[g][p] > best:
                best, best_g = table[g][p], g
        if best_g >= 0 and best >= iou_threshold and best > 0:
            matched[p] = best_g
    loc = np.zeros((num_priors, 4))
    conf = np.zeros(num_priors, dtype=np.int64)
    v_center, v_size = variances
    for p, g in enumerate(matched):
        if g < 0:
            continue
        x1, y1, x2, y2 = gt[g]
        cx, cy, w, h = prior_list[p]
        loc[p] = [
            ((x1 + x2) / 2 - cx) / (w * v_center),
            ((y1 + y2) / 2 - cy) / (h * v_center),
            np.log((x2 - x1) / w) / v_size,
            np.log((y2 - y1) / h) / v_size,
        ]
        conf[p] = labels[g]
    return loc, conf
