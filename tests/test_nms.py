"""NMS (examples.md section 8) and detection post-processing."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from minissd import boxes as B
from minissd import nms as N
from minissd.priors import default_boxes
from tests.conftest import to_numpy


def slides_example():
    """The slides' six boxes: a dog (0.9) on the right, a cat (0.8) on the left.

    0.7 overlaps 0.9 at IoU exactly 0.5, "0.6 right" overlaps 0.9 at 2/3;
    0.65 and "0.6 left" overlap only the cat's 0.8 box.
    """
    boxes = np.array([
        [20.0, 0.0, 30.0, 10.0],  # 0.9        dog
        [0.0, 0.0, 10.0, 10.0],   # 0.8        cat
        [20.0, 0.0, 30.0, 5.0],   # 0.7        dog again, IoU 0.5 with 0.9
        [0.0, 1.0, 10.0, 10.0],   # 0.65       cat again, IoU 0.9 with 0.8
        [1.0, 0.0, 11.0, 10.0],   # 0.6 left   cat again
        [22.0, 0.0, 32.0, 10.0],  # 0.6 right  dog again, IoU 2/3 with 0.9
    ])
    scores = np.array([0.9, 0.8, 0.7, 0.65, 0.6, 0.6])
    return boxes, scores


def test_the_slides_walk_through(xp):
    boxes, scores = slides_example()
    overlaps = B.iou(boxes, boxes)
    # the relations the slides state, with 0.9 as the first reference
    assert overlaps[0, 1] == 0 and overlaps[0, 2] == 0.5 and overlaps[0, 5] > 0.5
    assert overlaps[0, 3] == 0 and overlaps[0, 4] == 0
    keep = N.nms(xp.asarray(boxes), xp.asarray(scores), iou_threshold=0.5)
    assert to_numpy(keep).tolist() == [0, 1]  # one box per object, best first
    # "at or above": a threshold just over 0.5 lets the 0.7 box survive
    keep = N.nms(xp.asarray(boxes), xp.asarray(scores), iou_threshold=0.51)
    assert to_numpy(keep).tolist() == [0, 1, 2]


def test_first_reference_step_only():
    boxes, scores = slides_example()
    # after 0.9 is the reference: 0.8, 0.65, 0.6 left survive; 0.7 and 0.6 right go
    kept_first = [i for i in range(1, 6) if B.iou(boxes[:1], boxes[i:i + 1])[0, 0] < 0.5]
    assert kept_first == [1, 3, 4]


def test_higher_score_threshold_or_lower_iou_threshold_removes_more(xp):
    boxes, scores = slides_example()
    counts = [len(N.nms(xp.asarray(boxes), xp.asarray(scores), 0.5, score_threshold=t)) for t in (0.0, 0.7, 0.85)]
    assert counts == [2, 2, 1]
    loose = len(N.nms(xp.asarray(boxes), xp.asarray(scores), 0.95))
    tight = len(N.nms(xp.asarray(boxes), xp.asarray(scores), 0.05))
    assert loose > tight


def test_a_score_at_the_threshold_is_removed_everywhere(xp):
    # the slides: a box whose score is at or below the threshold goes; only scores above it stay
    boxes, scores = slides_example()
    at_07 = {"nms": N.nms(xp.asarray(boxes), xp.asarray(scores), 0.95, score_threshold=0.7),
             "nms_reference": N.nms_reference(boxes, scores, 0.95, score_threshold=0.7)}
    for name, keep in at_07.items():
        assert to_numpy(keep).tolist() == [0, 1], name  # 0.9 and 0.8 stay; 0.7 itself goes
    steps = N.nms_steps(boxes, scores, 0.95, score_threshold=0.7)
    assert [reference for reference, _ in steps] == [0, 1]
    assert len(N.nms(xp.asarray(boxes), xp.asarray(scores), 0.95, score_threshold=0.6)) == 4  # both 0.6 boxes go
    # postprocess: a class score exactly at the threshold is no detection either
    priors = xp.asarray([[0.25, 0.5, 0.5, 1.0], [0.75, 0.5, 0.5, 1.0]], dtype=xp.float64)
    conf = xp.log(xp.asarray([[[0.5, 0.5], [0.75, 0.25]]], dtype=xp.float64))  # class-1 scores 0.5 and 0.25
    loc = xp.zeros((1, 2, 4), dtype=xp.float64)
    assert float(N.softmax(conf)[0, 0, 1]) == 0.5
    for threshold, expected in ((0.25, 1), (0.2, 2), (0.5, 0)):
        _, kept_scores, _ = N.postprocess(loc, conf, priors, score_threshold=threshold)[0]
        assert kept_scores.shape == (expected,), threshold


def test_empty_input(xp):
    keep = N.nms(xp.zeros((0, 4)), xp.zeros((0,)), 0.5)
    assert keep.shape == (0,)


def test_bad_input(xp):
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\)"):
        N.nms(xp.zeros((2, 4)), xp.zeros((3,)), 0.5)
    with pytest.raises(ValueError, match=r"boxes\[1\] .* breaks"):
        N.nms(xp.asarray([[0, 0, 1, 1], [1, 1, 0, 0]], dtype=xp.float64), xp.ones(2), 0.5)


@st.composite
def scored_boxes(draw):
    count = draw(st.integers(1, 25))
    corners = draw(hnp.arrays(np.float64, (count, 2), elements=st.floats(0, 1, width=64)))
    sizes = draw(hnp.arrays(np.float64, (count, 2), elements=st.floats(0.01, 0.5, width=64)))
    scores = draw(hnp.arrays(np.float64, (count,), elements=st.floats(0, 1, width=64)))
    threshold = draw(st.floats(0.1, 0.9))
    return np.concatenate([corners, corners + sizes], 1), scores, threshold


@settings(max_examples=80, deadline=None)
@given(scored_boxes())
def test_nms_invariants(case):
    boxes, scores, threshold = case
    keep = N.nms(boxes, scores, threshold)
    # descending score order
    assert np.all(np.diff(scores[keep]) <= 0)
    # kept boxes pairwise below the threshold
    overlaps = B.iou(boxes[keep], boxes[keep])
    np.fill_diagonal(overlaps, 0)
    assert np.all(overlaps < threshold)
    # every dropped box overlaps a kept box of higher (or equal, earlier) score
    dropped = np.setdiff1d(np.arange(len(boxes)), keep)
    for d in dropped:
        over = B.iou(boxes[d:d + 1], boxes[keep])[0] >= threshold
        assert over.any() and scores[keep][over].max() >= scores[d]
    # the fast path equals the slides' loop
    np.testing.assert_array_equal(keep, N.nms_reference(boxes, scores, threshold))


def test_batched_nms_never_suppresses_across_labels(xp):
    boxes, scores = slides_example()
    labels = np.array([1, 1, 2, 1, 1, 2])
    keep = to_numpy(N.batched_nms(xp.asarray(boxes), xp.asarray(scores), xp.asarray(labels), 0.5))
    # the 0.7 and "0.6 right" boxes are a different class from 0.9, so they stay;
    # "0.6 right" overlaps 0.7 (same label 2) at 0.4, below 0.5
    assert keep.tolist() == [0, 1, 2, 5]
    for label in (1, 2):
        members = np.nonzero(labels == label)[0]
        alone = members[N.nms_reference(boxes[members], scores[members], 0.5)]
        assert sorted(alone.tolist()) == sorted(k for k in keep.tolist() if labels[k] == label)


def test_postprocess_recovers_planted_detections(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    num_priors, classes = priors.shape[0], 4
    loc = xp.zeros((2, num_priors, 4), dtype=xp.float32)
    conf = xp.zeros((2, num_priors, classes), dtype=xp.float32)
    conf[:, :, 0] = 10.0  # confident background everywhere ...
    conf[0, 7, :] = xp.asarray([0.0, 0.0, 9.0, 0.0])  # ... but prior 7 is class 2
    conf[0, 8, :] = xp.asarray([0.0, 0.0, 8.0, 0.0])  # prior 8 predicts nearly the same box:
    shifted = B.cxcywh_to_xyxy(priors[7:8]) + 0.004
    loc[0, 8] = B.encode(shifted, priors[8:9])[0]  # ... suppressed
    conf[0, 500, :] = xp.asarray([0.0, 0.0, 0.0, 7.0])  # prior 500: class 3
    results = N.postprocess(loc, conf, priors, score_threshold=0.5)
    boxes, scores, labels = (to_numpy(a) for a in results[0])
    overlap = float(B.iou(B.cxcywh_to_xyxy(priors[7:8]), shifted)[0, 0])
    assert overlap >= 0.45
    assert labels.tolist() == [2, 3]
    planted = B.cxcywh_to_xyxy(priors[[7, 500]])
    np.testing.assert_allclose(boxes, to_numpy(B.clip_boxes(planted)), atol=1e-6)  # clipped to the image
    unclipped = to_numpy(N.postprocess(loc, conf, priors, score_threshold=0.5, clip=False)[0][0])
    np.testing.assert_allclose(unclipped, to_numpy(planted), atol=1e-6)
    assert scores[0] > scores[1] > 0.5
    assert results[1][0].shape == (0, 4)  # image 1: background only


def test_postprocess_limits(rng):
    priors = default_boxes("tiny")
    loc = rng.normal(size=(1, priors.shape[0], 4)).astype(np.float32) * 0.1
    conf = rng.normal(size=(1, priors.shape[0], 6)).astype(np.float32)
    boxes, scores, labels = N.postprocess(loc, conf, priors, top_k=50, keep_top_k=120)[0]
    assert boxes.shape == (120, 4) and np.all(np.diff(scores) <= 0)
    assert set(labels.tolist()) <= {1, 2, 3, 4, 5}
    assert np.bincount(labels).max() <= 50
