"""Batched, sync-free matching: match's targets for every image of a padded batch."""

import ast
import inspect

import numpy as np
import pytest

from minissd import boxes as B
from minissd import matching as M
from minissd import matching_batched as MB
from minissd.priors import default_boxes
from tests.conftest import to_numpy


def random_ground_truth(rng, count, dtype=np.float32, duplicates=False):
    corner = rng.uniform(0, 0.8, size=(count, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.02, 0.5, size=(count, 2))], 1).clip(0, 1)
    if duplicates and count > 2:
        boxes[2] = boxes[0]  # two objects in the same place: the bipartite step must separate them
    return boxes.astype(dtype), rng.integers(1, 6, size=count)


def scattered_padding(boxes_list, labels_list, size, rng):
    """Padded arrays whose valid slots are spread over the padded axis (not a prefix)."""
    n = len(boxes_list)
    gt_boxes = np.zeros((n, size, 4), dtype=boxes_list[0].dtype)
    gt_labels = np.zeros((n, size), dtype=np.int64)
    valid = np.zeros((n, size), dtype=bool)
    for i, (boxes, labels) in enumerate(zip(boxes_list, labels_list)):
        slots = np.sort(rng.choice(size, len(boxes), replace=False))
        gt_boxes[i, slots], gt_labels[i, slots], valid[i, slots] = boxes, labels, True
        gt_boxes[i, ~valid[i]] = rng.uniform(0, 1, size=(size - len(boxes), 4))  # garbage, even unordered
    return gt_boxes, gt_labels, valid


def test_equals_match_on_random_batches(xp, rng):
    priors = default_boxes("tiny").astype(np.float32)
    for trial in range(12):
        counts = rng.integers(0, 7, size=rng.integers(1, 6))  # images with 0..6 objects
        counts[0] = 0 if trial % 3 == 0 else counts[0]
        gts = [random_ground_truth(rng, c, duplicates=trial % 2 == 0) for c in counts]
        boxes_list, labels_list = [g[0] for g in gts], [g[1] for g in gts]
        if trial % 2:
            padded = MB.pad_ground_truth(boxes_list, labels_list, max_boxes=8)
        else:
            padded = scattered_padding(boxes_list, labels_list, 9, rng)
        loc, conf = MB.match_batch_device(*(xp.asarray(a) for a in padded), xp.asarray(priors))
        assert loc.shape == (len(counts), priors.shape[0], 4) and loc.dtype == np.float32
        for n, (boxes, labels) in enumerate(gts):
            loc_n, conf_n = M.match(xp.asarray(boxes), xp.asarray(labels), xp.asarray(priors))
            np.testing.assert_array_equal(to_numpy(conf[n]), to_numpy(conf_n), err_msg=f"trial {trial} image {n}")
            np.testing.assert_array_equal(to_numpy(loc[n]), to_numpy(loc_n), err_msg=f"trial {trial} image {n}")


def test_equals_the_plain_loop_oracle(rng):
    priors = default_boxes("tiny").astype(np.float64)
    subset = priors[rng.choice(len(priors), 250, replace=False)]  # unordered
    gts = [random_ground_truth(rng, c, np.float64, duplicates=True) for c in (3, 0, 6, 1)]
    padded = MB.pad_ground_truth([g[0] for g in gts], [g[1] for g in gts], dtype=np.float64)
    loc, conf = MB.match_batch_device(*padded, subset)
    for n, (boxes, labels) in enumerate(gts):
        loc_ref, conf_ref = M.match_reference(boxes, labels, subset)
        np.testing.assert_array_equal(conf[n], conf_ref, err_msg=f"image {n}")
        np.testing.assert_allclose(loc[n], loc_ref, atol=1e-9, err_msg=f"image {n}")


def test_greedy_bipartite_resolves_a_shared_best_prior(xp):
    # two objects whose best default box is the same one: the better pair takes it,
    # the other object gets its second best (the "argmax" shortcut would lose one)
    priors = xp.asarray([[0.3, 0.3, 0.2, 0.2], [0.35, 0.3, 0.2, 0.2], [0.8, 0.8, 0.1, 0.1]])
    gt = np.array([[[0.2, 0.2, 0.4, 0.4], [0.22, 0.2, 0.42, 0.4]]])
    indices = MB.match_indices_batch_device(xp.asarray(gt), xp.ones((1, 2), dtype=bool), priors)
    single = M.match_indices(xp.asarray(gt[0]), priors)
    assert to_numpy(indices)[0].tolist() == to_numpy(single).tolist() == [0, 1, -1]


def test_indices_point_into_the_padded_axis(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    box = np.array([0.1, 0.1, 0.5, 0.5], dtype=np.float32)
    gt = np.zeros((2, 3, 4), dtype=np.float32)
    gt[0, 2] = box  # image 0: its one object sits in slot 2
    valid = np.array([[False, False, True], [False, False, False]])
    indices = to_numpy(MB.match_indices_batch_device(xp.asarray(gt), xp.asarray(valid), priors))
    assert set(indices[0].tolist()) == {-1, 2} and (indices[1] == -1).all()
    alone = to_numpy(M.match_indices(xp.asarray(box[None]), priors))
    np.testing.assert_array_equal(indices[0] >= 0, alone >= 0)


def test_empty_batches(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    loc, conf = MB.match_batch_device(xp.zeros((3, 0, 4), dtype=xp.float32), xp.zeros((3, 0), dtype=xp.int64),
                                      xp.zeros((3, 0), dtype=bool), priors)
    assert loc.shape == (3, priors.shape[0], 4) and not to_numpy(loc).any() and not to_numpy(conf).any()
    boxes, labels, valid = MB.pad_ground_truth([np.zeros((0, 4))] * 2, [np.zeros(0)] * 2)
    assert boxes.shape == (2, 0, 4) and labels.shape == valid.shape == (2, 0)


def test_pad_ground_truth():
    boxes, labels, valid = MB.pad_ground_truth(
        [np.array([[0.1, 0.1, 0.2, 0.2]]), np.zeros((0, 4)), np.array([[0, 0, 1, 1], [0.5, 0.5, 0.6, 0.6]])],
        [np.array([3]), np.zeros(0), np.array([1, 2])])
    assert boxes.shape == (3, 2, 4) and boxes.dtype == np.float32 and labels.dtype == np.int64
    assert valid.tolist() == [[True, False], [False, False], [True, True]]
    assert labels.tolist() == [[3, 0], [0, 0], [1, 2]] and boxes[2, 1, 0] == np.float32(0.5)
    with pytest.raises(ValueError, match="image 2 has 2 ground-truth boxes, more than max_boxes = 1"):
        MB.pad_ground_truth([np.zeros((1, 4)), np.zeros((0, 4)), np.zeros((2, 4))], [[1], [], [1, 1]], max_boxes=1)
    with pytest.raises(ValueError, match="image 0: 1 boxes but 2 labels"):
        MB.pad_ground_truth([np.zeros((1, 4))], [[1, 2]])


def test_bad_input_names_image_and_box(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    gt = np.tile(np.array([0.1, 0.1, 0.3, 0.3], dtype=np.float32), (2, 3, 1))
    labels = np.ones((2, 3), dtype=np.int64)
    valid = np.array([[True, True, False], [True, True, True]])
    gt[0, 2] = [0.5, 0.5, 0.4, 0.9]  # broken, but padding: not checked
    labels[0, 2] = 0
    MB.match_batch_device(xp.asarray(gt), xp.asarray(labels), xp.asarray(valid), priors)
    gt[1, 1] = [0.5, 0.5, 0.4, 0.9]
    with pytest.raises(ValueError, match=r"gt_boxes\[\(1, 1\)\] .* breaks x2 >= x1"):
        MB.match_batch_device(xp.asarray(gt), xp.asarray(labels), xp.asarray(valid), priors)
    gt[1, 1] = [0.1, 0.1, 0.3, 0.3]
    labels[1, 2] = 0
    with pytest.raises(ValueError, match=r"gt_labels\[1, 2\] = 0 \(image 1, box 2\): object labels start at 1"):
        MB.match_batch_device(xp.asarray(gt), xp.asarray(labels), xp.asarray(valid), priors)
    with pytest.raises(ValueError, match=r"valid must have shape \(N, G\) = \(2, 3\)"):
        MB.match_batch_device(xp.asarray(gt), xp.asarray(labels), xp.asarray(valid[:, :2]), priors)
    with pytest.raises(ValueError, match=r"valid must be a bool mask"):
        MB.match_batch_device(xp.asarray(gt), xp.asarray(labels), xp.asarray(labels), priors)
    with pytest.raises(ValueError, match=r"gt_boxes must have shape \(N, G, 4\)"):
        MB.match_batch_device(xp.asarray(gt[0]), xp.asarray(labels), xp.asarray(valid), priors)


SYNCS = {"int", "float", "bool", "to_numpy", "asnumpy", "item", "tolist", "get", "nonzero", "unique"}


@pytest.mark.parametrize("function", [MB.match_indices_batch_device, MB.targets_from_indices_batch])
def test_no_host_sync_in_the_matching_itself(function):
    """No call that reads a device value back (int(), .item(), nonzero, ...) outside the input check."""
    tree = ast.parse(inspect.getsource(function))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = node.func
            names.add(callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", ""))
    assert not names & SYNCS
    assert "_check_padded" in names or function is MB.targets_from_indices_batch  # validation is explicit


def test_iou_of_padding_never_wins(xp):
    # a padding slot holding the very same box as a real object must stay unmatched
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    box = [0.3, 0.3, 0.6, 0.6]
    gt = xp.asarray([[box, box]], dtype=xp.float32)
    indices = to_numpy(MB.match_indices_batch_device(gt, xp.asarray([[False, True]]), priors))
    assert set(indices[0].tolist()) == {-1, 1}
    overlaps = B.iou(np.asarray([box], dtype=np.float32), B.cxcywh_to_xyxy(to_numpy(priors)))[0]
    assert (indices[0] == 1).sum() == max(1, (overlaps >= 0.5).sum())
