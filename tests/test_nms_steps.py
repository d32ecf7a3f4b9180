"""nms_steps: the slides' NMS as a record of which reference removed which box."""

import numpy as np
import pytest

from minissd import nms as N
from tests.test_nms import slides_example


def test_the_slides_walk_through_step_by_step():
    boxes, scores = slides_example()
    steps = N.nms_steps(boxes, scores, iou_threshold=0.5)
    assert [reference for reference, _ in steps] == [0, 1]
    # 0.9 removes 0.7 (IoU exactly 0.5: "at or above") and 0.6 right (2/3)
    assert [index for index, _ in steps[0][1]] == [2, 5]
    np.testing.assert_allclose([overlap for _, overlap in steps[0][1]], [0.5, 2 / 3])
    # 0.8 then removes 0.65 (IoU 0.9) and 0.6 left (90 / 110)
    assert [index for index, _ in steps[1][1]] == [3, 4]
    np.testing.assert_allclose([overlap for _, overlap in steps[1][1]], [0.9, 90 / 110])


def test_score_threshold_drops_boxes_before_any_step():
    boxes, scores = slides_example()
    steps = N.nms_steps(boxes, scores, iou_threshold=0.5, score_threshold=0.85)
    assert steps == [(0, [])]
    # a score equal to the threshold takes no part either (at or below: removed, as in nms)
    steps = N.nms_steps(boxes, scores, iou_threshold=0.5, score_threshold=0.8)
    assert steps == [(0, [])]
    assert [r for r, _ in N.nms_steps(boxes, scores, 0.5, score_threshold=0.79)] == [0, 1]


def test_references_are_the_kept_boxes_and_every_box_is_accounted_for(rng):
    for trial in range(30):
        count = int(rng.integers(1, 30))
        corner = rng.uniform(0, 0.8, size=(count, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(0.02, 0.4, size=(count, 2))], 1)
        scores = rng.choice([0.2, 0.5, 0.9], size=count) if trial % 2 else rng.random(count)
        threshold = float(rng.uniform(0.1, 0.9))
        steps = N.nms_steps(boxes, scores, threshold)
        kept = [reference for reference, _ in steps]
        np.testing.assert_array_equal(kept, N.nms(boxes, scores, threshold), err_msg=f"trial {trial}")
        removed = [index for _, gone in steps for index, _ in gone]
        assert sorted(kept + removed) == list(range(count))
        assert all(overlap >= threshold for _, gone in steps for _, overlap in gone)


def test_empty_and_bad_input():
    assert N.nms_steps(np.zeros((0, 4)), np.zeros((0,)), 0.5) == []
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\)"):
        N.nms_steps(np.zeros((2, 4)), np.zeros((3,)), 0.5)
    with pytest.raises(ValueError, match=r"nms_steps: boxes\[1\] .* breaks"):
        N.nms_steps(np.array([[0, 0, 1, 1], [1, 1, 0, 0]], dtype=float), np.ones(2), 0.5)
