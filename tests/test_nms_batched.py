"""Batched post-processing: exactly postprocess's detections, with no loop per box, class or image."""

import ast
import inspect

import numpy as np
import pytest

from minissd import boxes as B
from minissd import nms as N
from minissd import nms_batched as NB
from minissd.priors import default_boxes
from tests.conftest import to_numpy

# the slides' six boxes (tests/test_nms.py builds the same ones), in descending score order:
# 0.9 dog, 0.8 cat, 0.7 dog (IoU 0.5 with 0.9), 0.65 cat, 0.6 left cat, 0.6 right dog (IoU 2/3 with 0.9)
SLIDES_BOXES = np.array([[20.0, 0, 30, 10], [0, 0, 10, 10], [20, 0, 30, 5], [0, 1, 10, 10], [1, 0, 11, 10],
                         [22, 0, 32, 10]])


def random_outputs(rng, num_images, num_priors, num_classes, dtype=np.float32, ties=False, background=0.0):
    """Random (loc, conf, priors) shaped like a network's outputs.

    ties: logits on a coarse grid, so many scores of a class are exactly equal.
    background: added to the class-0 logit (large: most scores fall under the threshold).
    """
    centre = rng.uniform(0.05, 0.95, (num_priors, 2))
    size = rng.uniform(0.05, 0.5, (num_priors, 2))
    priors = np.concatenate([centre, size], 1).astype(dtype)
    loc = (rng.standard_normal((num_images, num_priors, 4)) * 0.5).astype(dtype)
    conf = rng.standard_normal((num_images, num_priors, num_classes))
    if ties:
        conf = np.round(conf * 2) / 2
    conf[..., 0] += background
    return loc, conf.astype(dtype), priors


def assert_same_detections(expected, actual, context=""):
    assert len(expected) == len(actual), context
    for n, ((boxes, scores, labels), (boxes_b, scores_b, labels_b)) in enumerate(zip(expected, actual)):
        where = f"{context} image {n}"
        boxes, scores, labels = (to_numpy(a) for a in (boxes, scores, labels))
        boxes_b, scores_b, labels_b = (to_numpy(a) for a in (boxes_b, scores_b, labels_b))
        assert (boxes.dtype, scores.dtype, labels.dtype) == (boxes_b.dtype, scores_b.dtype, labels_b.dtype), where
        np.testing.assert_array_equal(labels_b, labels, err_msg=where)
        np.testing.assert_array_equal(scores_b, scores, err_msg=where)
        np.testing.assert_array_equal(boxes_b, boxes, err_msg=where)


# --------------------------------------------------------------------------
# the pieces
# --------------------------------------------------------------------------

def test_greedy_keep_walks_the_slides_example(xp):
    suppress = B.iou(SLIDES_BOXES, SLIDES_BOXES) >= 0.5
    keep = NB.greedy_keep(xp.asarray(suppress[None]), xp.ones((1, 6), dtype=bool))
    assert to_numpy(keep)[0].tolist() == [True, True, False, False, False, False]  # nms keeps [0, 1]
    # 0.65 and "0.6 left" are removed by 0.8, which survived 0.9; a removed box removes nothing:
    suppress_chain = np.zeros((1, 3, 3), dtype=bool)
    suppress_chain[0, 0, 1] = suppress_chain[0, 1, 2] = True  # 0 removes 1, 1 would remove 2
    keep = NB.greedy_keep(xp.asarray(suppress_chain), xp.ones((1, 3), dtype=bool))
    assert to_numpy(keep)[0].tolist() == [True, False, True]


def test_greedy_keep_equals_the_plain_loop(xp, rng):
    suppress = rng.random((30, 12, 12)) < 0.3
    valid = np.arange(12)[None, :] < rng.integers(0, 13, (30, 1))  # a valid prefix per group
    keep = NB.greedy_keep(xp.asarray(suppress), xp.asarray(valid))
    np.testing.assert_array_equal(to_numpy(keep), NB.greedy_keep_reference(suppress, valid))


def test_top_candidates_partition_equals_the_full_stable_sort(xp, rng):
    scores = np.round(rng.random((2, 7, 300)) * 12).astype(np.float32)  # many ties
    scores[0, 0] = 0.5  # a row of equal scores
    for k in (0, 1, 5, 40, 299, 300, 400):
        expected = np.argsort(-scores, axis=-1, kind="stable")[..., :k]
        for method in ("sort", "partition"):
            got = to_numpy(NB.top_candidates(xp.asarray(scores), k, method))
            np.testing.assert_array_equal(got, expected, err_msg=f"k={k} {method}")
    with pytest.raises(ValueError, match="method must be 'sort' or 'partition'"):
        NB.top_candidates(xp.asarray(scores), 3, "heap")


def test_suppression_masks_in_chunks_equal_the_pairwise_iou(xp, rng, monkeypatch):
    corner = rng.uniform(0, 0.7, (5, 9, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0, 0.4, (5, 9, 2))], -1).astype(np.float32)
    boxes[:, 3] = boxes[:, 2]  # exact duplicates: IoU 1
    boxes[:, 4, 2:] = boxes[:, 4, :2]  # zero-area boxes: IoU 0 with everything
    monkeypatch.setitem(NB.CHUNK_BYTES, xp.__name__, 2 * 9 * 9 * 4)  # two groups per chunk
    mask = to_numpy(NB.suppression_masks(xp.asarray(boxes), 0.3))
    for g in range(5):
        np.testing.assert_array_equal(mask[g], B.iou(boxes[g], boxes[g]) >= 0.3)
    assert mask[:, 2, 3].all() and not mask[:, 4].any()


def test_iou_batched_is_bit_identical_to_iou(xp, rng):
    corner = rng.uniform(0, 0.7, (3, 6, 2))
    a = np.concatenate([corner, corner + rng.uniform(0, 0.4, (3, 6, 2))], -1).astype(np.float32)
    b = a[:, ::-1].copy()
    b[:, 0] = [0.2, 0.2, 0.2, 0.2]  # a point: union may be > 0 with zero intersection
    batched = to_numpy(B.iou_batched(xp.asarray(a), xp.asarray(b)))
    assert batched.shape == (3, 6, 6) and batched.dtype == np.float32
    for n in range(3):
        np.testing.assert_array_equal(batched[n], to_numpy(B.iou(xp.asarray(a[n]), xp.asarray(b[n]))))


# --------------------------------------------------------------------------
# the whole post-processing against postprocess
# --------------------------------------------------------------------------

CASES = [
    # (images, priors, classes, ties, background, settings)
    (3, 200, 6, False, 0.0, {}),
    (2, 300, 4, True, 0.0, {}),
    (4, 150, 5, False, 3.0, {}),  # most scores under 0.01: the trim matters
    (2, 250, 3, True, 1.0, {"top_k": 30, "keep_top_k": 40}),
    (3, 120, 6, False, 0.0, {"iou_threshold": 0.3, "score_threshold": 0.2, "clip": False}),
    (1, 80, 2, True, 0.0, {"keep_top_k": 500, "top_k": 1000}),  # limits above the counts
    (2, 100, 21, False, 6.0, {"score_threshold": 0.5}),  # images with nothing at all
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_postprocess_batched_equals_postprocess(xp, case):
    images, priors_count, classes, ties, background, settings = CASES[case]
    rng = np.random.default_rng(case)
    for trial in range(3):
        loc, conf, priors = random_outputs(rng, images, priors_count, classes, ties=ties, background=background)
        loc, conf, priors = xp.asarray(loc), xp.asarray(conf), xp.asarray(priors)
        expected = N.postprocess(loc, conf, priors, **settings)
        actual = NB.postprocess_batched(loc, conf, priors, **settings)
        assert_same_detections(expected, actual, f"case {case} trial {trial}")


def test_postprocess_batched_on_ssd_default_boxes_in_float64(xp, rng):
    priors = default_boxes("tiny").astype(np.float64)  # 1364 boxes in SSD's order
    loc = rng.standard_normal((2, priors.shape[0], 4)) * 0.3
    conf = rng.standard_normal((2, priors.shape[0], 4))
    conf[1, :, 0] += 8  # image 1: background almost everywhere
    args = (xp.asarray(loc), xp.asarray(conf), xp.asarray(priors))
    expected = N.postprocess(*args, top_k=100)
    assert len(expected[0][2]) == 200 and len(expected[1][2]) < 200  # both limits are exercised
    assert_same_detections(expected, NB.postprocess_batched(*args, top_k=100), "tiny float64")


def test_padded_output_counts_and_padding(xp, rng):
    loc, conf, priors = random_outputs(rng, 3, 150, 5, background=4.0)
    conf[2, :, 0] = 50.0  # image 2 has no detection at all
    args = (xp.asarray(loc), xp.asarray(conf), xp.asarray(priors))
    boxes, scores, labels, counts = (to_numpy(a) for a in NB.postprocess_padded(*args, keep_top_k=60))
    expected = N.postprocess(*args, keep_top_k=60)
    assert counts.tolist() == [len(e[2]) for e in expected] and counts[2] == 0
    assert boxes.shape == (3, 60, 4) and scores.shape == labels.shape == (3, 60) and labels.dtype == np.int64
    for n in range(3):
        np.testing.assert_array_equal(labels[n, :counts[n]], to_numpy(expected[n][2]))
        assert not labels[n, counts[n]:].any() and not scores[n, counts[n]:].any() and not boxes[n, counts[n]:].any()
    untrimmed = NB.postprocess_padded(*args, keep_top_k=60, trim=False)  # the sync-free variant
    for got, want in zip(untrimmed, (boxes, scores, labels, counts)):
        np.testing.assert_array_equal(to_numpy(got), want)


def test_degenerate_shapes(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    count = priors.shape[0]
    only_background = NB.postprocess_batched(xp.zeros((2, count, 4), dtype=xp.float32),
                                             xp.zeros((2, count, 1), dtype=xp.float32), priors)
    assert [r[0].shape for r in only_background] == [(0, 4), (0, 4)]
    assert NB.postprocess_batched(xp.zeros((0, count, 4), dtype=xp.float32),
                                  xp.zeros((0, count, 3), dtype=xp.float32), priors) == []
    nothing = NB.postprocess_batched(xp.zeros((1, count, 4), dtype=xp.float32),
                                     xp.zeros((1, count, 3), dtype=xp.float32), priors, score_threshold=0.5)
    assert nothing[0][2].shape == (0,) and nothing[0][1].dtype == xp.float32  # every score is 1/3
    with pytest.raises(ValueError, match=r"postprocess_batched: keep_top_k = 0 must be an integer >= 1"):
        NB.postprocess_batched(xp.zeros((1, count, 4), dtype=xp.float32),
                               xp.zeros((1, count, 3), dtype=xp.float32), priors, keep_top_k=0)


def test_bad_input_names_the_problem(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    count = priors.shape[0]
    with pytest.raises(ValueError, match=r"loc \(N, P, 4\) and conf \(N, P, L\) must agree"):
        NB.postprocess_batched(xp.zeros((2, count, 4)), xp.zeros((2, count - 1, 3)), priors)
    with pytest.raises(ValueError, match=rf"priors must have shape \({count}, 4\)"):
        NB.postprocess_batched(xp.zeros((2, count, 4)), xp.zeros((2, count, 3)), priors[:-1])


def test_a_score_at_the_threshold_is_removed_as_in_postprocess(xp):
    # logits on a grid make many class scores exactly equal; take one of them as the threshold
    rng = np.random.default_rng(7)
    loc, conf, priors = random_outputs(rng, 2, 120, 4, dtype=np.float64, ties=True)
    scores = to_numpy(N.softmax(xp.asarray(conf)))[..., 1:]
    values, counts = np.unique(scores, return_counts=True)
    threshold = float(values[np.argmax(counts)])  # the most frequent score
    assert (scores == threshold).sum() > 1  # some scores sit exactly on it
    args = (xp.asarray(loc), xp.asarray(conf), xp.asarray(priors))
    expected = N.postprocess(*args, score_threshold=threshold)
    assert_same_detections(expected, NB.postprocess_batched(*args, score_threshold=threshold), "at the threshold")
    for _, kept_scores, _ in expected:
        assert (to_numpy(kept_scores) > threshold).all()


def test_non_finite_outputs_are_an_error_naming_the_entry(xp):
    priors = xp.asarray(default_boxes("tiny"), dtype=xp.float32)
    count = priors.shape[0]
    loc = np.zeros((2, count, 4), dtype=np.float32)
    conf = np.zeros((2, count, 3), dtype=np.float32)
    loc[0, 17, 2] = np.nan
    for method in (N.postprocess, NB.postprocess_batched):
        with pytest.raises(ValueError, match=rf"{method.__name__}: loc\[0, 17, 2\] is nan: the network's output "
                                             r"is not finite \(broken or diverged weights\)"):
            method(xp.asarray(loc), xp.asarray(conf), priors)
    loc[0, 17, 2] = 0
    conf[1, 3, 0] = -np.inf
    for method in (N.postprocess, NB.postprocess_batched):
        with pytest.raises(ValueError, match=rf"{method.__name__}: conf\[1, 3, 0\] is -inf: the network's output"):
            method(xp.asarray(loc), xp.asarray(conf), priors)
    # the sync-free padded variant checks only when asked (or when it trims, which syncs anyway)
    with pytest.raises(ValueError, match=r"postprocess_padded: conf\[1, 3, 0\] is -inf"):
        NB.postprocess_padded(xp.asarray(loc), xp.asarray(conf), priors)
    with pytest.raises(ValueError, match=r"postprocess_padded: conf\[1, 3, 0\] is -inf"):
        NB.postprocess_padded(xp.asarray(loc), xp.asarray(conf), priors, trim=False, validate=True)


def test_no_loop_over_images_classes_or_boxes():
    """The loops that remain run over K positions, memory chunks, or the finished output."""
    allowed = {"greedy_keep": "range(num_candidates - 1)", "suppression_masks": "range(0, groups, chunk)",
               "postprocess_batched": "enumerate(to_numpy(counts).tolist())"}
    source = ast.parse(inspect.getsource(NB))
    for function in (node for node in source.body if isinstance(node, ast.FunctionDef)):
        if function.name.endswith("_reference"):
            continue  # the oracle loops on purpose
        loops = [ast.unparse(node.iter) for node in ast.walk(function) if isinstance(node, (ast.For, ast.While))]
        assert loops == ([allowed[function.name]] if function.name in allowed else []), function.name
