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

from .backend import get_array_module


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


# --------------------------------------------------------------------------
# hard negative mining
# --------------------------------------------------------------------------

def hard_negative_mask(background_loss, positive, neg_pos_ratio: float = 3):
    """Which default boxes are kept as hard negatives.

    background_loss: (N, P) confidence loss of calling each box background,
                     -log softmax(c)[0].
    positive:        (N, P) bool, matched boxes.
    Returns (N, P) bool: per image the min(ratio * positives, negatives)
    negatives of highest loss; ties go to the lower index.
    """
    xp = get_array_module(background_loss, positive)
    num_images, num_priors = background_loss.shape
    # Positives sink to the end of a descending order.
    ranked_loss = xp.where(positive, -xp.inf, background_loss)  # (N, P)
    order = xp.argsort(-ranked_loss, axis=1, kind="stable")  # (N, P) best first
    rank = xp.empty_like(order)  # (N, P) position of each box in that order
    rows = xp.arange(num_images)[:, None]  # (N, 1)
    rank[rows, order] = xp.arange(num_priors)[None, :]
    num_pos = positive.sum(axis=1, keepdims=True)  # (N, 1)
    num_neg = xp.minimum(xp.floor(neg_pos_ratio * num_pos), num_priors - num_pos)  # (N, 1)
    return (rank < num_neg) & ~positive


def hard_negative_mask_reference(background_loss, positive, neg_pos_ratio: float = 3):
    """Plain-loop oracle of ``hard_negative_mask`` (NumPy only)."""
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


def _check_shapes(loc, conf, loc_targets, conf_targets):
    if loc.ndim != 3 or loc.shape[-1] != 4:
        raise ValueError(f"loc must have shape (N, P, 4); got {tuple(loc.shape)}")
    if conf.ndim != 3 or conf.shape[:2] != loc.shape[:2] or conf.shape[-1] < 2:
        raise ValueError(
            f"conf must have shape (N, P, L) with (N, P) = {tuple(loc.shape[:2])} and L >= 2; "
            f"got {tuple(conf.shape)}"
        )
    if loc_targets.shape != loc.shape:
        raise ValueError(f"loc_targets must have shape {tuple(loc.shape)}; got {tuple(loc_targets.shape)}")
    if conf_targets.shape != loc.shape[:2]:
        raise ValueError(f"conf_targets must have shape {tuple(loc.shape[:2])}; got {tuple(conf_targets.shape)}")


def multibox_loss(loc, conf, loc_targets, conf_targets, neg_pos_ratio: float = 3, alpha: float = 1.0):
    """SSD's loss and its gradients.

    loc:          (N, P, 4) predicted offsets.
    conf:         (N, P, L) class logits, class 0 = background.
    loc_targets:  (N, P, 4) encoded matched boxes (``minissd.matching.match``).
    conf_targets: (N, P) int labels, 0 for background.
    Returns a ``MultiBoxLossResult``. No host synchronisation happens here.
    """
    xp = get_array_module(loc, conf, loc_targets, conf_targets)
    _check_shapes(loc, conf, loc_targets, conf_targets)
    num_classes = conf.shape[-1]
    dtype = loc.dtype

    log_probs = log_softmax(conf)  # (N, P, L)
    positive = conf_targets > 0  # (N, P)
    negative = hard_negative_mask(-log_probs[..., 0], positive, neg_pos_ratio)  # (N, P)
    selected = positive | negative  # (N, P)

    num_pos = positive.sum()
    denom = xp.maximum(num_pos, 1).astype(dtype)  # N, kept at 1 when there are no positives

    labels = conf_targets.astype(xp.int64)[..., None]  # (N, P, 1)
    cross_entropy = -xp.take_along_axis(log_probs, labels, axis=-1)[..., 0]  # (N, P)
    conf_loss = (cross_entropy * selected).sum() / denom
    # d/dc: (softmax - onehot) on the selected boxes, / N
    onehot = (xp.arange(num_classes)[None, None, :] == labels).astype(dtype)  # (N, P, L)
    grad_conf = (xp.exp(log_probs) - onehot) * (selected[..., None] / denom)  # (N, P, L)

    diff = loc - loc_targets  # (N, P, 4)
    loc_loss = (smooth_l1(diff).sum(axis=-1) * positive).sum() / denom
    # d/dl: smooth_L1'(l - g_hat) on the positives, times alpha / N
    grad_loc = smooth_l1_grad(diff) * (positive[..., None] * (alpha / denom))  # (N, P, 4)

    return MultiBoxLossResult(
        loss=(conf_loss + alpha * loc_loss).astype(dtype),
        loc_loss=loc_loss.astype(dtype),
        conf_loss=conf_loss.astype(dtype),
        grad_loc=grad_loc.astype(dtype, copy=False),
        grad_conf=grad_conf.astype(dtype, copy=False),
        num_positives=num_pos,
        positive_mask=positive,
        negative_mask=negative,
    )
