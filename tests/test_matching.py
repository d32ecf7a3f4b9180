"""Matching (examples.md section 5): bipartite step, the 0.5 threshold, targets."""

import numpy as np
import pytest

from minissd import boxes as B
from minissd import matching as M
from minissd.priors import default_boxes
from tests.conftest import to_numpy


def corners_to_priors(xp, corners):
    return B.xyxy_to_cxcywh(xp.asarray(corners, dtype=xp.float64))


def test_threshold_is_at_or_above_one_half(xp):
    gt = xp.asarray([[0.0, 0.0, 0.4, 0.4]])
    priors = corners_to_priors(xp, [
        [0.0, 0.0, 0.4, 0.4],   # IoU 1: the bipartite match
        [0.0, 0.0, 0.4, 0.2],   # IoU exactly 0.5: positive
        [0.0, 0.0, 0.4, 0.196],  # IoU 0.49: negative
        [0.5, 0.5, 0.9, 0.9],   # no overlap
    ])
    _, conf = M.match(gt, xp.asarray([3]), priors)
    assert to_numpy(conf).tolist() == [3, 3, 0, 0]


def test_every_ground_truth_gets_a_default_box_even_below_threshold(xp):
    gt = xp.asarray([[0.0, 0.0, 0.2, 0.2]])
    priors = corners_to_priors(xp, [[0.0, 0.0, 0.6, 0.6], [0.5, 0.5, 1.0, 1.0]])
    overlaps = to_numpy(B.iou(gt, B.cxcywh_to_xyxy(priors)))
    assert overlaps.max() < 0.5
    _, conf = M.match(gt, xp.asarray([1]), priors)
    assert to_numpy(conf).tolist() == [1, 0]


def test_greedy_bipartite_resolves_a_shared_best_prior(xp):
    # both ground truths overlap prior 0 most; the greedy step gives it to the
    # higher-IoU pair (gt 0) and gt 1 takes its next best, prior 1
    gt = xp.asarray([[0.0, 0.0, 0.5, 0.5], [0.05, 0.0, 0.55, 0.45]])
    priors = corners_to_priors(xp, [[0.0, 0.0, 0.5, 0.5], [0.3, 0.0, 0.8, 0.5], [0.9, 0.9, 1.0, 1.0]])
    overlaps = to_numpy(B.iou(gt, B.cxcywh_to_xyxy(priors)))
    assert overlaps[:, 0].argmax() == 0 and overlaps[1].argmax() == 0 and overlaps[1, 1] < 0.5
    greedy = to_numpy(M.match_indices(gt, priors, bipartite="greedy"))
    assert greedy.tolist() == [0, 1, -1]
    # the argmax shortcut lets both claim prior 0: the later one (gt 1) wins it and
    # gt 0 is left with no default box at all
    shortcut = to_numpy(M.match_indices(gt, priors, bipartite="argmax"))
    assert shortcut.tolist() == [1, -1, -1]


def test_targets_are_encoded_matched_boxes(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    gt = xp.asarray([[0.1, 0.1, 0.4, 0.45], [0.5, 0.55, 0.95, 0.9]], dtype=xp.float32)
    labels = xp.asarray([2, 5])
    loc, conf = M.match(gt, labels, priors)
    assert loc.shape == (priors.shape[0], 4) and conf.shape == (priors.shape[0],)
    assert loc.dtype == xp.float32 and conf.dtype == xp.int64
    matched = to_numpy(M.match_indices(gt, priors))
    positive = matched >= 0
    assert set(to_numpy(conf)[positive]) == {2, 5}
    np.testing.assert_array_equal(to_numpy(conf)[~positive], 0)
    np.testing.assert_array_equal(to_numpy(loc)[~positive], 0)
    decoded = to_numpy(B.decode(loc, priors))[positive]
    np.testing.assert_allclose(decoded, to_numpy(gt)[matched[positive]], atol=1e-6)


def test_image_without_ground_truth_is_all_background(xp):
    priors = xp.asarray(default_boxes("tiny"))
    loc, conf = M.match(xp.zeros((0, 4)), xp.zeros((0,), dtype=xp.int64), priors)
    assert not to_numpy(conf).any() and not to_numpy(loc).any()
    loc, conf = M.match(xp.zeros((0,)), xp.zeros((0,)), priors)  # a flat empty array too
    assert conf.shape == (priors.shape[0],)


def test_vectorised_matching_equals_the_plain_loop_oracle(rng):
    config_priors = default_boxes("tiny").astype(np.float64)
    subset = config_priors[rng.choice(len(config_priors), 300, replace=False)]
    for trial in range(20):
        count = rng.integers(1, 7)
        corner = rng.uniform(0, 0.8, size=(count, 2))
        gt = np.concatenate([corner, corner + rng.uniform(0.02, 0.5, size=(count, 2))], 1).clip(0, 1)
        labels = rng.integers(1, 6, size=count)
        loc, conf = M.match(gt, labels, subset)
        loc_ref, conf_ref = M.match_reference(gt, labels, subset)
        np.testing.assert_array_equal(conf, conf_ref, err_msg=f"trial {trial}")
        np.testing.assert_allclose(loc, loc_ref, atol=1e-9, err_msg=f"trial {trial}")


def test_batched_matching(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    gts = [xp.asarray([[0.1, 0.1, 0.5, 0.5]], dtype=xp.float32), xp.zeros((0, 4), dtype=xp.float32)]
    labels = [xp.asarray([1]), xp.zeros((0,), dtype=xp.int64)]
    loc, conf = M.match(gts, labels, priors)
    assert loc.shape == (2, priors.shape[0], 4) and conf.shape == (2, priors.shape[0])
    single_loc, single_conf = M.match(gts[0], labels[0], priors)
    np.testing.assert_array_equal(to_numpy(conf[0]), to_numpy(single_conf))
    assert not to_numpy(conf[1]).any()


def test_bad_input_names_the_problem(xp):
    priors = xp.asarray(default_boxes("tiny"))
    gt = xp.asarray([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.4, 0.9]])
    with pytest.raises(ValueError, match=r"gt_boxes\[1\] .* breaks x2 >= x1"):
        M.match(gt, xp.asarray([1, 2]), priors)
    with pytest.raises(ValueError, match=r"gt_labels\[0\] = 0: object labels start at 1"):
        M.match(gt[:1], xp.asarray([0]), priors)
    with pytest.raises(ValueError, match=r"gt_labels must have shape \(1,\)"):
        M.match(gt[:1], xp.asarray([1, 2]), priors)
    with pytest.raises(ValueError, match=r"image 1 of the batch: gt_labels\[0\] = 0"):
        M.match([gt[:1], gt[:1]], [xp.asarray([1]), xp.asarray([0])], priors)


# --------------------------------------------------------------------------
# the fast path: default boxes prepared once, only the positives encoded
# --------------------------------------------------------------------------

def _targets_encoding_every_row(matched, gt_boxes, gt_labels, priors):
    """targets_from_indices as it was: every row encoded (background against its own prior), then zeroed."""
    positive = matched >= 0
    safe = np.where(positive, matched, 0)
    assigned = np.where(positive[:, None], gt_boxes[safe], B.cxcywh_to_xyxy(priors, validate=False))
    loc = np.where(positive[:, None], B.encode(assigned, priors, validate=False), 0).astype(priors.dtype)
    conf = np.where(positive, np.asarray(gt_labels)[safe].astype(np.int64), 0)
    return loc, conf


@pytest.mark.parametrize("gt_dtype", [np.float32, np.float64])
def test_prepared_priors_and_positive_only_encoding_change_no_bit(rng, gt_dtype):
    priors = default_boxes("tiny")  # (1364, 4) float32
    prepared = M.prepare_priors(priors)
    assert M.prepare_priors(prepared) is prepared  # already checked: returned as it is
    for trial in range(30):
        count = int(rng.integers(1, 7))
        corner = rng.uniform(0, 0.9, size=(count, 2))
        gt = np.concatenate([corner, corner + rng.uniform(0.005, 0.6, size=(count, 2))], 1).clip(0, 1)
        gt = gt.astype(gt_dtype)
        labels = rng.integers(1, 6, size=count)
        loc, conf = M.match(gt, labels, priors)
        loc_prepared, conf_prepared = M.match(gt, labels, prepared)
        np.testing.assert_array_equal(loc_prepared, loc, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(conf_prepared, conf, err_msg=f"trial {trial}")
        assert loc.dtype == np.float32 and conf.dtype == np.int64
        matched = M.match_indices(gt, prepared)
        np.testing.assert_array_equal(matched, M.match_indices(gt, priors))
        loc_all, conf_all = _targets_encoding_every_row(matched, gt, labels, priors)
        np.testing.assert_array_equal(loc, loc_all, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(conf, conf_all, err_msg=f"trial {trial}")
    empty_loc, empty_conf = M.match(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), prepared)
    assert not empty_loc.any() and not empty_conf.any() and empty_loc.shape == (1364, 4)


def test_match_batch_prepares_the_priors_once_with_the_same_result(rng):
    priors = default_boxes("tiny")
    gts = [np.array([[0.1, 0.2, 0.5, 0.6], [0.4, 0.4, 0.9, 0.8]], np.float32), np.zeros((0, 4), np.float32),
           np.array([[0.3, 0.3, 0.35, 0.36]], np.float32)]
    labels = [np.array([1, 2]), np.zeros(0, np.int64), np.array([3])]
    loc, conf = M.match_batch(gts, labels, priors)
    for n in range(3):
        single_loc, single_conf = M.match(gts[n], labels[n], priors)
        np.testing.assert_array_equal(loc[n], single_loc)
        np.testing.assert_array_equal(conf[n], single_conf)


def test_prepare_priors_checks_the_default_boxes_once():
    bad = default_boxes("tiny").copy()
    bad[7, 2] = -0.1  # a negative width
    with pytest.raises(ValueError, match=r"match_batch: .*priors\[7\]"):
        M.match_batch([np.array([[0.1, 0.1, 0.5, 0.5]], np.float32)], [np.array([1])], bad)
    with pytest.raises(ValueError, match=r"DataLoader: .*priors\[7\]"):
        M.prepare_priors(bad, "DataLoader")
    unchecked = M.prepare_priors(bad, validate=False)  # the caller vouches for them
    assert unchecked.xyxy.shape == (1364, 4) and unchecked.area.shape == (1364,)
