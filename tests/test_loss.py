"""The MultiBox loss (examples.md sections 6-7): values, hard negatives, exact gradients."""

import math

import numpy as np
import pytest

from minissd import loss as L
from minissd.nn.gradcheck import numerical_gradient
from tests.conftest import to_numpy


def random_problem(rng, xp, images=3, priors=40, classes=4, dtype=np.float64, positives=(3, 0, 5)):
    loc = rng.normal(size=(images, priors, 4))
    conf = rng.normal(size=(images, priors, classes)) * 2
    loc_targets = rng.normal(size=(images, priors, 4))
    conf_targets = np.zeros((images, priors), dtype=np.int64)
    for n, count in enumerate(positives[:images]):
        chosen = rng.choice(priors, count, replace=False)
        conf_targets[n, chosen] = rng.integers(1, classes, size=count)
    loc_targets[conf_targets == 0] = 0
    return tuple(xp.asarray(a.astype(dtype) if a.dtype != np.int64 else a)
                 for a in (loc, conf, loc_targets, conf_targets))


def test_smooth_l1_and_its_derivative():
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(L.smooth_l1(x), [2.5, 0.5, 0.125, 0.0, 0.125, 0.5, 2.5])
    np.testing.assert_allclose(L.smooth_l1_grad(x), [-1, -1, -0.5, 0, 0.5, 1, 1])


def test_log_softmax_is_stable_for_huge_logits(xp):
    logits = xp.asarray([[1000.0, 0.0, -1000.0], [5e4, 5e4, 5e4]], dtype=xp.float32)
    out = to_numpy(L.log_softmax(logits))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0, :2], [0.0, -1000.0], atol=1e-3)
    np.testing.assert_allclose(out[1], [-math.log(3)] * 3, rtol=1e-6)


def test_loss_by_hand_on_one_image():
    # 4 default boxes, 2 classes; box 0 positive (class 1), 3 negatives, ratio 3 keeps all
    conf = np.zeros((1, 4, 2))
    conf[0, 0] = [0.0, math.log(3)]  # p(class 1) = 3/4
    conf[0, 1] = [0.0, 0.0]  # background loss log 2
    conf[0, 2] = [math.log(3), 0.0]  # background loss log(4/3)
    conf[0, 3] = [0.0, math.log(7)]  # background loss log 8
    targets = np.array([[1, 0, 0, 0]])
    loc = np.zeros((1, 4, 4))
    loc[0, 0] = [0.5, -2.0, 0.0, 1.0]
    result = L.multibox_loss(loc, conf, np.zeros_like(loc), targets, neg_pos_ratio=3)
    conf_expected = -math.log(0.75) + math.log(2) + math.log(4 / 3) + math.log(8)
    loc_expected = 0.125 + 1.5 + 0.0 + 0.5
    assert float(result.conf_loss) == pytest.approx(conf_expected)
    assert float(result.loc_loss) == pytest.approx(loc_expected)
    assert float(result.loss) == pytest.approx(conf_expected + loc_expected)
    # ratio 1: only the hardest negative (box 3, loss log 8) is kept
    result = L.multibox_loss(loc, conf, np.zeros_like(loc), targets, neg_pos_ratio=1, alpha=2.0)
    assert to_numpy(result.negative_mask).tolist() == [[False, False, False, True]]
    assert float(result.loss) == pytest.approx(-math.log(0.75) + math.log(8) + 2 * loc_expected)


def test_no_positives_gives_zero_loss_and_zero_gradients(xp, rng):
    loc, conf, loc_t, conf_t = random_problem(rng, xp, positives=(0, 0, 0), dtype=np.float32)
    result = L.multibox_loss(loc, conf, loc_t, conf_t)
    assert float(result.loss) == 0.0 and int(result.num_positives) == 0
    assert not to_numpy(result.grad_loc).any() and not to_numpy(result.grad_conf).any()
    assert np.isfinite(to_numpy(result.grad_conf)).all()


def test_hard_negatives_at_most_three_per_positive(xp, rng):
    loc, conf, loc_t, conf_t = random_problem(rng, xp, priors=40, positives=(3, 0, 5))
    result = L.multibox_loss(loc, conf, loc_t, conf_t)
    negatives = to_numpy(result.negative_mask).sum(axis=1)
    assert negatives.tolist() == [9, 0, 15]
    assert not (to_numpy(result.negative_mask) & to_numpy(result.positive_mask)).any()
    # the kept negatives are the ones of highest background loss
    background_loss = -to_numpy(L.log_softmax(conf))[..., 0]
    for n in range(3):
        neg = to_numpy(result.negative_mask)[n]
        free = ~to_numpy(result.positive_mask)[n] & ~neg
        if neg.any() and free.any():
            assert background_loss[n][neg].min() >= background_loss[n][free].max()


def test_hard_negative_mining_equals_the_plain_loop_oracle(xp, rng):
    for trial in range(10):
        losses = rng.exponential(size=(4, 60))
        losses[:, ::7] = losses[:, 1:2]  # ties: equal losses go to the lower index
        positive = rng.random(size=(4, 60)) < 0.1
        for ratio in (3, 1, 0.5, 100):
            fast = L.hard_negative_mask(xp.asarray(losses), xp.asarray(positive), ratio)
            slow = L.hard_negative_mask_reference(losses, positive, ratio)
            np.testing.assert_array_equal(to_numpy(fast), slow, err_msg=f"trial {trial}, ratio {ratio}")


def test_hard_negative_ties_at_the_cut_go_to_the_lower_index(xp):
    """k = 6 negatives per row (2 positives, ratio 3), cut through a run of equal losses."""
    losses = np.full((3, 50), 0.7)
    losses[1, 10:20] = 0.9  # ten above the rest: the six lowest-indexed of them
    losses[2] = 0.0  # a confident background everywhere: the first six negatives
    positive = np.zeros((3, 50), dtype=bool)
    positive[:, [3, 30]] = True
    mask = to_numpy(L.hard_negative_mask(xp.asarray(losses), xp.asarray(positive), 3))
    np.testing.assert_array_equal(mask, L.hard_negative_mask_reference(losses, positive, 3))
    assert np.flatnonzero(mask[0]).tolist() == [0, 1, 2, 4, 5, 6]
    assert np.flatnonzero(mask[1]).tolist() == [10, 11, 12, 13, 14, 15]
    assert np.flatnonzero(mask[2]).tolist() == [0, 1, 2, 4, 5, 6]
    everything = to_numpy(L.hard_negative_mask(xp.asarray(losses), xp.asarray(positive), 100))
    np.testing.assert_array_equal(everything, ~positive)  # the budget exceeds the negatives: all of them
    empty = L.hard_negative_mask(xp.zeros((2, 0)), xp.zeros((2, 0), dtype=bool), 3)  # no default boxes
    assert tuple(empty.shape) == (2, 0) and empty.dtype == bool


def test_float32_loss_on_a_full_size_problem_agrees_with_float64(rng):
    """SSD300's shape (8732 boxes, 21 classes): the float32 path (class-by-class max, sum as a
    product, onehot subtracted in place) against the same loss in float64."""
    loc, conf, loc_t, conf_t = random_problem(rng, np, priors=8732, classes=21, positives=(40, 0, 7),
                                              dtype=np.float32)
    conf = conf * 4  # logits spread like a trained network's
    single = L.multibox_loss(loc, conf, loc_t, conf_t)
    double = L.multibox_loss(loc.astype(np.float64), conf.astype(np.float64), loc_t.astype(np.float64), conf_t)
    np.testing.assert_array_equal(single.negative_mask, double.negative_mask)
    np.testing.assert_allclose(float(single.loss), float(double.loss), rtol=1e-5)
    np.testing.assert_allclose(single.grad_conf, double.grad_conf, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(single.grad_loc, double.grad_loc, rtol=1e-5, atol=1e-9)
    # softmax - onehot: each selected box's gradient sums to 0 over its classes
    np.testing.assert_allclose(double.grad_conf.sum(axis=-1), 0, atol=1e-15)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_gradients_pass_a_float64_finite_difference_check(rng, alpha):
    loc, conf, loc_t, conf_t = random_problem(rng, np, priors=12, classes=3, positives=(2, 0, 3))
    result = L.multibox_loss(loc, conf, loc_t, conf_t, alpha=alpha)
    value = lambda: float(L.multibox_loss(loc, conf, loc_t, conf_t, alpha=alpha).loss)  # noqa: E731
    np.testing.assert_allclose(result.grad_loc, numerical_gradient(value, loc), atol=1e-7)
    np.testing.assert_allclose(result.grad_conf, numerical_gradient(value, conf), atol=1e-7)


def test_float32_stays_float32(xp, rng):
    loc, conf, loc_t, conf_t = random_problem(rng, xp, dtype=np.float32)
    result = L.multibox_loss(loc, conf, loc_t, conf_t)
    assert result.grad_loc.dtype == xp.float32 and result.grad_conf.dtype == xp.float32
    assert result.loss.dtype == xp.float32


def test_shapes_are_checked(rng):
    loc, conf, loc_t, conf_t = random_problem(rng, np)
    with pytest.raises(ValueError, match=r"loc must have shape \(N, P, 4\)"):
        L.multibox_loss(loc[..., :3], conf, loc_t, conf_t)
    with pytest.raises(ValueError, match=r"conf must have shape \(N, P, L\) with \(N, P\) = \(3, 40\)"):
        L.multibox_loss(loc, conf[:, :5], loc_t, conf_t)
    with pytest.raises(ValueError, match=r"conf_targets must have shape \(3, 40\)"):
        L.multibox_loss(loc, conf, loc_t, conf_t[:2])
