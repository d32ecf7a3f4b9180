"""The MultiBox loss and its exact gradients (no autograd).

Liu et al. 2016, eq. 1:

    L = (L_conf + alpha * L_loc) / N,   N = matched (positive) default boxes in the batch

    L_loc  = sum over positives i, m in {cx, cy, w, h} of smooth_L1(l_i^m - g_hat_i^m)
    L_conf = - sum over positives log softmax(c_i)[label_i]
             - sum over hard negatives log softmax(c_i)[0]

    smooth_L1(x) = 0.5 x^2 if |x| < 1 else |x| - 0.5;   d/dx = clip(x, -1, 1)
    d/dc (-log softmax(c)[y]) = softmax(c) - onehot(y)

Hard negative mining (section 3, "Hard negative mining"): per image, rank the
background default boxes by their confidence loss -log softmax(c)[0] and keep
the top ones, at most ``neg_pos_ratio`` (3) per positive of that image. An
image without positives contributes no negatives; a batch without positives
has loss 0 and zero gradients (never 0/0 = NaN).

``hard_negative_mask`` is vectorised; ``hard_negative_mask_reference`` is a
plain loop over images and boxes, the oracle of the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import get_array_module, is_cupy_array
from .validate import as_float_array, check_number, first_true, format_index


# --------------------------------------------------------------------------
# the pieces, each with its derivative right under it
# --------------------------------------------------------------------------

def smooth_l1(x):
    """Elementwise smooth L1 (Huber with delta 1): 0.5 x^2 if |x| < 1 else |x| - 0.5."""
    xp = get_array_module(x)
    absolute = xp.abs(x)
    return xp.where(absolute < 1, 0.5 * x * x, absolute - 0.5)


def smooth_l1_grad(x):
    """d smooth_L1 / dx = x inside (-1, 1), sign(x) outside: clip(x, -1, 1)."""
    xp = get_array_module(x)
    return xp.clip(x, -1, 1)


def log_softmax(logits, axis: int = -1):
    """log softmax, stable: subtract the max before exp so nothing overflows.

    log softmax(c)_l = (c_l - max c) - log sum_j exp(c_j - max c)
    """
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(logits, axis: int = -1):
    """softmax(c)_l = exp(c_l) / sum_j exp(c_j), computed stably."""
    xp = get_array_module(logits)
    return xp.exp(log_softmax(logits, axis))


def _softmax_pieces(logits, xp):
    """shifted = c - max c, exp(shifted) and its sum over classes, for (N, P, L) logits.

    Returns ((N, P, L), (N, P, L), (N, P)). NumPy reduces a short last axis slowly (~2 ms for a
    max over the 21 classes of 32 x 8732 boxes): the max is taken class by class and the sum
    as a product with a vector of ones, both several times faster; the numbers are the same
    (the max exactly, the sum up to the order of its additions).
    """
    num_classes = logits.shape[-1]
    if xp is np:
        top = logits[..., 0].copy()  # (N, P)
        for label in range(1, num_classes):
            np.maximum(top, logits[..., label], out=top)
    else:
        top = logits.max(axis=-1)  # (N, P)
    shifted = logits - top[..., None]  # (N, P, L)
    exp_shifted = xp.exp(shifted)  # (N, P, L)
    row_sum = exp_shifted @ xp.ones(num_classes, dtype=logits.dtype)  # (N, P)
    return shifted, exp_shifted, row_sum


# --------------------------------------------------------------------------
# hard negative mining
# --------------------------------------------------------------------------

def hard_negative_mask(background_loss, positive, neg_pos_ratio: float = 3):
    """Which default boxes are kept as hard negatives.

    background_loss: (N, P) confidence loss of calling each box background,
                     -log softmax(c)[0].
    positive:        (N, P) bool, matched boxes.
    Returns (N, P) bool: per image the k = min(ratio * positives, negatives)
    negatives of highest loss; ties go to the lower index.

    No ranking of all P boxes: one sort per row gives the k-th highest loss t,
    every negative above t is kept, and of those equal to t the first ones by
    index until k are (the choice a stable descending sort makes, 4x faster).
    """
    xp = get_array_module(background_loss, positive)
    neg_pos_ratio = _check_ratio(neg_pos_ratio, "hard_negative_mask")
    if background_loss.ndim != 2 or tuple(positive.shape) != tuple(background_loss.shape):
        raise ValueError(f"hard_negative_mask: background_loss and positive must both have shape (N, P); "
                         f"got {tuple(background_loss.shape)} and {tuple(positive.shape)}")
    num_priors = background_loss.shape[1]
    if num_priors == 0:  # no default boxes: nothing to keep (and no k-th value to look up)
        return xp.zeros(background_loss.shape, dtype=bool)
    # Positives sink below every negative (a loss is >= 0).
    ranked_loss = xp.where(positive, -xp.inf, background_loss)  # (N, P)
    num_pos = positive.sum(axis=1, keepdims=True)  # (N, 1)
    num_neg = xp.minimum(xp.floor(neg_pos_ratio * num_pos), num_priors - num_pos).astype(xp.int64)  # (N, 1)
    descending = -xp.sort(-ranked_loss, axis=1)  # (N, P)
    kth = xp.take_along_axis(descending, xp.maximum(num_neg, 1) - 1, axis=1)  # (N, 1) the k-th highest
    above = ranked_loss > kth  # (N, P) kept whatever the ties
    at = ranked_loss == kth  # (N, P) ties with the k-th: the first ones by index fill up to k
    room = num_neg - above.sum(axis=1, keepdims=True)  # (N, 1)
    chosen = above | (at & (xp.cumsum(at, axis=1) <= room))
    return chosen & ~positive & (num_neg > 0)


def hard_negative_mask_reference(background_loss, positive, neg_pos_ratio: float = 3):
    """Plain-loop oracle of ``hard_negative_mask`` (NumPy only)."""
    neg_pos_ratio = _check_ratio(neg_pos_ratio, "hard_negative_mask_reference")
    background_loss = np.asarray(background_loss)
    positive = np.asarray(positive)
    mask = np.zeros(positive.shape, dtype=bool)
    for n in range(positive.shape[0]):
        negatives = [p for p in range(positive.shape[1]) if not positive[n, p]]
        budget = int(np.floor(neg_pos_ratio * int(positive[n].sum())))
        negatives.sort(key=lambda p: (-background_loss[n, p], p))
        for p in negatives[:budget]:
            mask[n, p] = True
    return mask


# --------------------------------------------------------------------------
# the MultiBox loss
# --------------------------------------------------------------------------

@dataclass
class MultiBoxLossResult:
    """What ``multibox_loss`` returns.

    loss, loc_loss, conf_loss: 0-d arrays (float() them), with
        loss = conf_loss + alpha * loc_loss, each part already divided by N.
    grad_loc:  (N, P, 4) d loss / d loc.
    grad_conf: (N, P, L) d loss / d conf.
    num_positives: 0-d int array, N of the formula (before max(N, 1)).
    positive_mask, negative_mask: (N, P) bool, the boxes that entered L_conf.
    """

    loss: object
    loc_loss: object
    conf_loss: object
    grad_loc: object
    grad_conf: object
    num_positives: object
    positive_mask: object
    negative_mask: object


def _check_ratio(neg_pos_ratio, function: str) -> float:
    return check_number(neg_pos_ratio, "neg_pos_ratio", function, low=0,
                        rule="hard negatives kept per positive, a finite number >= 0")


def _as_targets(conf_targets, function: str, xp):
    """(N, P) class targets as given: an integer array (lists converted); floats and bools refused."""
    if not (isinstance(conf_targets, np.ndarray) or is_cupy_array(conf_targets)):
        try:
            conf_targets = np.asarray(conf_targets)
        except (ValueError, TypeError) as error:
            raise TypeError(f"{function}: conf_targets is not a rectangular array of integers ({error})") from None
        if xp is not np:
            conf_targets = xp.asarray(conf_targets)
    if conf_targets.dtype.kind not in "iu":
        raise TypeError(
            f"{function}: conf_targets has dtype {conf_targets.dtype}; class targets must be an integer array "
            "(0 = background, 1..L-1 = objects), as minissd.matching.match returns them; a float target "
            "such as 0.9 would count as a positive but be scored as background"
        )
    return conf_targets


def _check_shapes(loc, conf, loc_targets, conf_targets, function: str = "multibox_loss"):
    if loc.ndim != 3 or loc.shape[-1] != 4:
        raise ValueError(f"{function}: loc must have shape (N, P, 4); got {tuple(loc.shape)}")
    if conf.ndim != 3 or conf.shape[:2] != loc.shape[:2] or conf.shape[-1] < 2:
        raise ValueError(
            f"{function}: conf must have shape (N, P, L) with (N, P) = {tuple(loc.shape[:2])} and L >= 2; "
            f"got {tuple(conf.shape)}"
        )
    if loc_targets.shape != loc.shape:
        raise ValueError(f"{function}: loc_targets must have shape {tuple(loc.shape)} like loc; "
                         f"got {tuple(loc_targets.shape)}")
    if conf_targets.shape != loc.shape[:2]:
        raise ValueError(f"{function}: conf_targets must have shape {tuple(loc.shape[:2])} = (N, P) of loc; "
                         f"got {tuple(conf_targets.shape)}")


def _check_target_range(conf_targets, num_classes: int, function: str):
    """Every class target in 0..L-1, or a ValueError naming image, default box and value (one host sync)."""
    index = first_true((conf_targets < 0) | (conf_targets >= num_classes))
    if index is not None:
        n, p = index
        raise ValueError(
            f"{function}: conf_targets[{format_index(index)}] = {int(conf_targets[index])} (image {n}, default box "
            f"{p}) is not a class: targets are 0 (background) .. L-1 = {num_classes - 1} for conf's L = {num_classes}"
        )


def multibox_loss(loc, conf, loc_targets, conf_targets, neg_pos_ratio: float = 3, alpha: float = 1.0,
                  validate: bool | None = None, num_positives: float | None = None):
    """SSD's loss and its gradients.

    loc:          (N, P, 4) predicted offsets.
    conf:         (N, P, L) class logits, class 0 = background.
    loc_targets:  (N, P, 4) encoded matched boxes (``minissd.matching.match``).
    conf_targets: (N, P) integer labels in 0..L-1, 0 for background (an
                  integer dtype: float targets are refused).
    neg_pos_ratio: hard negatives per positive, finite and >= 0.  alpha: >= 0.
    num_positives: the N the sums are divided by; default (None) the positives of this batch.
                  Data-parallel training (``minissd.distributed``) passes the positives of the
                  whole global batch, so that the shards' losses and gradients add up to the
                  batch's. Finite and >= 0 (0 divides by 1, as no positive does).
    Returns a ``MultiBoxLossResult``.

    Shapes, dtypes and the two numbers are always checked, at no cost.
    ``validate`` checks that every target is a class 0..L-1 (one host sync);
    the default, None, checks on the CPU, where it costs nothing, and skips it
    on a GPU so that a training step never synchronises. Unchecked, an
    out-of-range target makes the loss NaN (computed on the device), which the
    training loop's NaN check stops on. Non-finite predictions give a
    non-finite loss without warnings, for the same check to report.
    """
    function = "multibox_loss"
    xp = get_array_module(loc, conf, loc_targets, conf_targets)
    loc = as_float_array(loc, "loc", function, xp)
    conf = as_float_array(conf, "conf", function, xp)
    loc_targets = as_float_array(loc_targets, "loc_targets", function, xp)
    conf_targets = _as_targets(conf_targets, function, xp)
    neg_pos_ratio = _check_ratio(neg_pos_ratio, function)
    alpha = check_number(alpha, "alpha", function, low=0, rule="the weight of the localisation loss")
    _check_shapes(loc, conf, loc_targets, conf_targets, function)
    if num_positives is not None:
        num_positives = check_number(num_positives, "num_positives", function, low=0,
                                     rule="the positives of the global batch")
    num_classes = conf.shape[-1]
    dtype = loc.dtype
    if validate is None:
        validate = xp is np
    if validate:
        _check_target_range(conf_targets, num_classes, function)

    with np.errstate(invalid="ignore", over="ignore"):  # inf / nan logits: a nan loss, reported by the caller
        # log softmax(c)_l = shifted_l - log_sum with shifted = c - max c: computed as these pieces,
        # not as an (N, P, L) log_probs array, which would cost more passes over the logits
        shifted, exp_shifted, row_sum = _softmax_pieces(conf, xp)  # (N, P, L), (N, P, L), (N, P)
        log_sum = xp.log(row_sum)  # (N, P)
        positive = conf_targets > 0  # (N, P)
        negative = hard_negative_mask(log_sum - shifted[..., 0], positive, neg_pos_ratio)  # (N, P)
        selected = positive | negative  # (N, P)

        num_pos = positive.sum()
        total = num_pos if num_positives is None else xp.asarray(num_positives)  # N of the (global) batch
        denom = xp.maximum(total, 1).astype(dtype)  # N, kept at 1 when there are no positives

        # clipped so an unchecked bad target cannot index outside the L classes; it poisons the loss below
        labels = xp.clip(conf_targets, 0, num_classes - 1).astype(xp.int64)  # (N, P)
        cross_entropy = log_sum - xp.take_along_axis(shifted, labels[..., None], axis=-1)[..., 0]  # (N, P)
        conf_loss = (cross_entropy * selected).sum() / denom
        # d/dc: (softmax - onehot) on the selected boxes, / N; softmax = exp_shifted / row_sum
        weight = selected.astype(dtype) / denom  # (N, P)
        grad_conf = exp_shifted  # (N, P, L), reused in place
        grad_conf *= (weight / row_sum)[..., None]
        flat = grad_conf.reshape(-1)  # (N*P*L,): minus the onehot part, one entry per box
        flat[xp.arange(labels.size) * num_classes + labels.reshape(-1)] -= weight.reshape(-1)
        grad_conf = flat.reshape(conf.shape)  # (N, P, L)

        diff = loc - loc_targets  # (N, P, 4)
        loc_loss = (smooth_l1(diff).sum(axis=-1) * positive).sum() / denom
        # d/dl: smooth_L1'(l - g_hat) on the positives, times alpha / N
        grad_loc = smooth_l1_grad(diff) * (positive[..., None] * (alpha / denom))  # (N, P, 4)
        loss = conf_loss + alpha * loc_loss
        if not validate:  # no sync: a device-side flag turns the loss into nan if any target is not a class
            out_of_range = ((conf_targets < 0) | (conf_targets >= num_classes)).any()
            loss = xp.where(out_of_range, loss * np.nan, loss)

    return MultiBoxLossResult(
        loss=loss.astype(dtype),
        loc_loss=loc_loss.astype(dtype),
        conf_loss=conf_loss.astype(dtype),
        grad_loc=grad_loc.astype(dtype, copy=False),
        grad_conf=grad_conf.astype(dtype, copy=False),
        num_positives=num_pos,
        positive_mask=positive,
        negative_mask=negative,
    )
