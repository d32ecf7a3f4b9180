"""Bad input to the library API (issue 9): one clear ValueError / TypeError that says what and where.

Each test is one reported misbehaviour: before the fix the call returned garbage, or ended in a raw
NumPy error (IndexError, AttributeError, ZeroDivisionError), or ran on with a nonsense threshold.
"""

import math
import re
import warnings

import numpy as np
import pytest

from minissd import boxes as B
from minissd import loss as L
from minissd import matching as M
from minissd import matching_batched as MB
from minissd import nms as N
from minissd import nms_batched as NB
from minissd import validate as V
from minissd.priors import default_boxes
from tests.conftest import to_numpy

BOX = [0.1, 0.1, 0.4, 0.5]


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning may slip out of a checked call
        yield


# --------------------------------------------------------------------------
# the helpers
# --------------------------------------------------------------------------

def test_as_float_array_converts_lists_and_integers_and_refuses_non_numbers():
    from_list = V.as_float_array([[0, 0, 3, 5]], "boxes", "f")
    assert from_list.dtype == np.float32 and from_list.tolist() == [[0, 0, 3, 5]]
    assert V.as_float_array(np.array([[1, 2]], dtype=np.int16), "boxes", "f").dtype == np.float32
    float64 = np.zeros((2, 4))
    assert V.as_float_array(float64, "boxes", "f") is float64  # float arrays pass untouched
    with pytest.raises(TypeError, match=r"f: boxes is None"):
        V.as_float_array(None, "boxes", "f")
    with pytest.raises(TypeError, match=r"f: boxes has dtype bool"):
        V.as_float_array(np.ones((1, 4), dtype=bool), "boxes", "f")
    with pytest.raises(TypeError, match=r"f: boxes has dtype <U"):
        V.as_float_array([["a", "b", "c", "d"]], "boxes", "f")
    with pytest.raises(TypeError, match=r"f: boxes is not a rectangular array"):
        V.as_float_array([[0, 0, 1, 1], [0, 0]], "boxes", "f")
    with pytest.raises(TypeError, match=r"f: boxes is a str"):
        V.as_float_array("0 0 1 1", "boxes", "f")


def test_number_checks():
    assert V.check_threshold(0.5, "t", "f") == 0.5 and V.check_threshold(np.float32(1), "t", "f") == 1.0
    for bad, message in ((-1, r"f: t = -1 is outside \[0, 1\]"), (2, r"f: t = 2 is outside \[0, 1\]"),
                         (math.nan, r"f: t = nan is not finite"), (math.inf, r"f: t = inf is not finite")):
        with pytest.raises(ValueError, match=message):
            V.check_threshold(bad, "t", "f")
    for bad in (None, True, "0.5", [0.5]):
        with pytest.raises(TypeError, match=r"f: t = .* is not"):
            V.check_threshold(bad, "t", "f")
    assert V.check_count(np.int64(3), "k", "f") == 3
    with pytest.raises(ValueError, match=r"f: k = 0 must be an integer >= 1"):
        V.check_count(0, "k", "f")
    with pytest.raises(TypeError, match=r"f: k = 2.5 is not an integer"):
        V.check_count(2.5, "k", "f")
    with pytest.raises(ValueError, match=r"f: variances\[1\] = 0 must be > 0"):
        V.check_variances((0.1, 0), "f")
    with pytest.raises(TypeError, match=r"f: variances = 0.1 must be a pair"):
        V.check_variances(0.1, "f")


def test_integer_labels_are_never_truncated():
    assert V.as_integer_labels([1.0, 2.0], "labels", "f").tolist() == [1, 2]  # whole numbers are fine
    with pytest.raises(ValueError, match=r"f: labels\[1\] = 2.2 is not an integer"):
        V.as_integer_labels(np.array([1.0, 2.2]), "labels", "f")
    with pytest.raises(ValueError, match=r"f: labels\[0\] = nan is not an integer"):
        V.as_integer_labels(np.array([np.nan]), "labels", "f")
    with pytest.raises(ValueError, match=r"f: labels\[0, 1\] = 0 \(image 0, box 1\): rule"):
        V.as_integer_labels(np.array([[1, 0]]), "labels", "f", low=1, rule="rule", index_names=("image", "box"))
    mask = np.array([[True, False]])
    assert V.as_integer_labels(np.array([[1.0, 0.5]]), "labels", "f", low=1, mask=mask).tolist() == [[1, 0]]
    with pytest.raises(TypeError, match=r"with validate=False labels must have an integer dtype"):
        V.as_integer_labels(np.array([1.0]), "labels", "f", validate=False)


def test_check_finite_names_the_first_bad_entry():
    loc = np.zeros((2, 20, 4), dtype=np.float32)
    V.check_finite({"loc": loc}, "f", "rule")
    loc[1, 17, 2] = -np.inf
    loc[1, 18, 0] = np.nan
    with pytest.raises(ValueError, match=r"^f: loc\[1, 17, 2\] is -inf: rule$"):
        V.check_finite({"loc": loc, "conf": np.zeros(3)}, "f", "rule")


# --------------------------------------------------------------------------
# boxes
# --------------------------------------------------------------------------

@pytest.mark.parametrize("function", [B.xyxy_to_cxcywh, B.cxcywh_to_xyxy, B.area])
def test_format_conversions_refuse_three_coordinates(function):
    # (N, 3) used to come back as (N, 4) garbage
    with pytest.raises(ValueError, match=rf"{function.__name__}: boxes must have shape \(\.\.\., 4\); got \(2, 3\)"):
        function(np.zeros((2, 3), dtype=np.float32))


def test_lists_and_integer_pixel_boxes_become_float32():
    cxcywh = B.xyxy_to_cxcywh([[0, 0, 3, 5]])  # was AttributeError: 'list' has no attribute 'ndim'
    assert cxcywh.dtype == np.float32 and cxcywh.tolist() == [[1.5, 2.5, 3.0, 5.0]]  # not 1 and 2
    assert B.cxcywh_to_xyxy(np.array([[1, 1, 1, 1]])).tolist() == [[0.5, 0.5, 1.5, 1.5]]
    overlap = B.iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]]))  # integer pixels: IoU 1/7, not 0
    assert overlap.dtype == np.float32 and overlap[0, 0] == pytest.approx(1 / 7)
    assert B.area([[0, 0, 2, 3]]).tolist() == [6.0]


def test_conversions_refuse_broken_boxes():
    with pytest.raises(ValueError, match=r"xyxy_to_cxcywh: boxes\[1\] = \[0.5, 0.5, 0.2, 0.9\] breaks x2 >= x1"):
        B.xyxy_to_cxcywh([BOX, [0.5, 0.5, 0.2, 0.9]])
    with pytest.raises(ValueError, match=r"cxcywh_to_xyxy: boxes\[0\] .* breaks w >= 0 and h >= 0"):
        B.cxcywh_to_xyxy([[0.5, 0.5, -0.1, 0.2]])
    with pytest.raises(ValueError, match=r"xyxy_to_cxcywh: boxes\[0\] .* is not finite"):
        B.xyxy_to_cxcywh([[0.1, np.inf, 0.2, 0.3]])
    with pytest.raises(ValueError, match=r"iou: a must have shape \(A, 4\); got \(1, 2, 4\)"):
        B.iou(np.zeros((1, 2, 4)), np.zeros((1, 4)))


def test_encode_and_decode_check_that_boxes_and_priors_agree():
    # 3 boxes against 2 default boxes used to be a raw broadcasting error
    with pytest.raises(ValueError, match=r"encode: boxes_xyxy must have shape \(\.\.\., P, 4\) with P = 2.*"
                                         r"got \(3, 4\)"):
        B.encode(np.array([BOX] * 3), np.array([[0.5, 0.5, 0.2, 0.2]] * 2))
    with pytest.raises(ValueError, match=r"decode: priors_cxcywh must have shape \(P, 4\); got \(2, 3\)"):
        B.decode(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"encode: priors_cxcywh\[0\] has zero width or height"):
        B.encode(np.array([BOX]), np.array([[0.5, 0.5, 0.0, 0.2]]))  # was a division by zero
    with pytest.raises(ValueError, match=r"decode: loc\[0, 1\] is nan: offsets must be finite"):
        B.decode(np.array([[0, np.nan, 0, 0]]), np.array([[0.5, 0.5, 0.2, 0.2]]))
    with pytest.raises(ValueError, match=r"encode: variances\[0\] = -0.1 must be > 0"):
        B.encode(np.array([BOX]), np.array([[0.5, 0.5, 0.2, 0.2]]), variances=(-0.1, 0.2))


# --------------------------------------------------------------------------
# matching
# --------------------------------------------------------------------------

def test_match_refuses_fractional_labels_instead_of_truncating_them():
    priors = default_boxes("tiny")
    gt = np.array([BOX, [0.5, 0.5, 0.9, 0.8]])
    with pytest.raises(ValueError, match=r"match: gt_labels\[0\] = 1.7 is not an integer"):
        M.match(gt, np.array([1.7, 2.2]), priors)  # used to become labels 1 and 2
    loc, conf = M.match(gt, np.array([1.0, 2.0]), priors)  # whole-number floats are labels
    expected = M.match(gt, np.array([1, 2]), priors)
    np.testing.assert_array_equal(conf, expected[1])
    assert conf.dtype == np.int64 and set(conf.tolist()) == {0, 1, 2}


@pytest.mark.parametrize("threshold, message", [(-1, r"= -1 is outside \[0, 1\]"), (2, r"= 2 is outside \[0, 1\]"),
                                                (math.nan, r"= nan is not finite")])
def test_match_refuses_thresholds_outside_zero_one(threshold, message):
    priors = default_boxes("tiny")
    with pytest.raises(ValueError, match=r"match: iou_threshold " + message):
        M.match(np.array([BOX]), np.array([1]), priors, iou_threshold=threshold)
    with pytest.raises(ValueError, match=r"match_batch_device: iou_threshold " + message):
        MB.match_batch_device(np.array([[BOX]]), np.array([[1]]), np.array([[True]]), priors,
                              iou_threshold=threshold)


def test_match_checks_the_default_boxes_and_accepts_lists():
    priors = default_boxes("tiny")
    with pytest.raises(ValueError, match=r"match: priors must have shape \(P, 4\) cxcywh; got \(1364, 3\)"):
        M.match(np.array([BOX]), np.array([1]), priors[:, :3])
    broken = priors.copy()
    broken[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"match: priors\[5\] .* is not finite \(cxcywh format\)"):
        M.match(np.array([BOX]), np.array([1]), broken)
    listed = M.match([BOX], [3], priors)  # one image written as lists
    arrays = M.match(np.array([BOX], dtype=np.float32), np.array([3]), priors)
    np.testing.assert_array_equal(listed[1], arrays[1])
    np.testing.assert_array_equal(listed[0], arrays[0])
    with pytest.raises(ValueError, match=r"match_batch: image 1 of the batch: gt_labels\[0\] = 0.5 is not"):
        M.match([np.array([BOX]), np.array([BOX])], [np.array([1]), np.array([0.5])], priors)


def test_pad_ground_truth_and_match_batch_device_check_labels_and_shapes():
    priors = default_boxes("tiny")
    with pytest.raises(ValueError, match=r"pad_ground_truth: labels_list\[1\]\[0\] = 1.7 is not an integer"):
        MB.pad_ground_truth([np.array([BOX]), np.array([BOX])], [[1], [1.7]])
    with pytest.raises(ValueError, match=r"pad_ground_truth: boxes_list\[0\] must have shape \(G, 4\); got \(4, 3\)"):
        MB.pad_ground_truth([np.zeros((4, 3))], [[1, 1, 1]])  # 12 numbers used to become 3 boxes silently
    with pytest.raises(ValueError, match=r"pad_ground_truth: labels_list\[0\]\[0\] = 0: object labels start at 1"):
        MB.pad_ground_truth([np.array([BOX])], [[0]])
    with pytest.raises(ValueError, match=r"pad_ground_truth: boxes_list\[0\]\[0\] .* breaks x2 >= x1"):
        MB.pad_ground_truth([np.array([[0.5, 0.1, 0.2, 0.3]])], [[1]])
    gt, valid = np.array([[BOX, BOX]]), np.array([[True, False]])
    with pytest.raises(ValueError, match=r"match_batch_device: gt_labels\[0, 0\] = 1.5 \(image 0, box 0\) is not"):
        MB.match_batch_device(gt, np.array([[1.5, 0.2]]), valid, priors)
    loc, conf = MB.match_batch_device(gt, np.array([[2.0, 0.2]]), valid, priors)  # the padding's 0.2 is not read
    assert set(conf[0].tolist()) == {0, 2}
    with pytest.raises(TypeError, match=r"match_batch_device: gt_labels has dtype float64; with validate=False"):
        MB.match_batch_device(gt, np.array([[2.0, 0.0]]), valid, priors, validate=False)
    with pytest.raises(ValueError, match=r"match_batch_device: priors must have shape \(P, 4\) cxcywh"):
        MB.match_batch_device(gt, np.array([[2, 0]]), valid, priors[:, :3])


# --------------------------------------------------------------------------
# the loss
# --------------------------------------------------------------------------

def loss_problem(rng, images=2, priors=6, classes=3):
    loc = rng.normal(size=(images, priors, 4)).astype(np.float32)
    conf = rng.normal(size=(images, priors, classes)).astype(np.float32)
    conf_targets = np.zeros((images, priors), dtype=np.int64)
    conf_targets[0, 1] = 2
    return loc, conf, np.zeros_like(loc), conf_targets


def test_loss_refuses_targets_that_are_not_classes(rng):
    loc, conf, loc_t, conf_t = loss_problem(rng)
    conf_t[1, 4] = -1  # used to give a loss without any error
    with pytest.raises(ValueError, match=r"multibox_loss: conf_targets\[1, 4\] = -1 \(image 1, default box 4\) is "
                                         r"not a class: targets are 0 \(background\) .. L-1 = 2"):
        L.multibox_loss(loc, conf, loc_t, conf_t)
    conf_t[1, 4] = 3  # = L: used to be a raw IndexError
    with pytest.raises(ValueError, match=r"conf_targets\[1, 4\] = 3 \(image 1, default box 4\) is not a class"):
        L.multibox_loss(loc, conf, loc_t, conf_t)
    fractional = np.zeros(conf_t.shape)
    fractional[0, 1] = 0.9  # counted as a positive, scored as background
    with pytest.raises(TypeError, match=r"multibox_loss: conf_targets has dtype float64; class targets must be an "
                                        r"integer array"):
        L.multibox_loss(loc, conf, loc_t, fractional)


def test_unchecked_bad_targets_poison_the_loss_without_a_sync(rng):
    loc, conf, loc_t, conf_t = loss_problem(rng)
    conf_t[1, 4] = 7
    result = L.multibox_loss(loc, conf, loc_t, conf_t, validate=False)  # what a GPU step does by default
    assert math.isnan(float(result.loss))  # the training loop's NaN check stops on it
    conf_t[1, 4] = 1
    assert math.isfinite(float(L.multibox_loss(loc, conf, loc_t, conf_t, validate=False).loss))


@pytest.mark.parametrize("ratio, message", [(-1, r"= -1 is below 0"), (math.nan, r"= nan is not finite"),
                                            ("3", r"= '3' is not a real number")])
def test_loss_refuses_a_bad_negative_ratio(rng, ratio, message):
    loc, conf, loc_t, conf_t = loss_problem(rng)
    with pytest.raises((ValueError, TypeError), match=r"multibox_loss: neg_pos_ratio " + message):
        L.multibox_loss(loc, conf, loc_t, conf_t, neg_pos_ratio=ratio)  # -1 and nan used to mine 0 negatives


def test_loss_shapes_are_checked_against_each_other(rng):
    loc, conf, loc_t, conf_t = loss_problem(rng)
    with pytest.raises(ValueError, match=r"multibox_loss: loc_targets must have shape \(2, 6, 4\) like loc"):
        L.multibox_loss(loc, conf, loc_t[:, :5], conf_t)
    with pytest.raises(ValueError, match=r"multibox_loss: conf_targets must have shape \(2, 6\) = \(N, P\) of loc"):
        L.multibox_loss(loc, conf, loc_t, conf_t.T)
    with pytest.raises(ValueError, match=r"multibox_loss: conf must have shape \(N, P, L\) with \(N, P\) = \(2, 6\) "
                                         r"and L >= 2; got \(2, 6, 1\)"):
        L.multibox_loss(loc, conf[..., :1], loc_t, conf_t)
    listed = L.multibox_loss(loc.tolist(), conf.tolist(), loc_t.tolist(), conf_t.tolist())  # lists are arrays
    assert float(listed.loss) == pytest.approx(float(L.multibox_loss(loc, conf, loc_t, conf_t).loss))


# --------------------------------------------------------------------------
# NMS and post-processing
# --------------------------------------------------------------------------

@pytest.mark.parametrize("threshold, message", [(-1, r"= -1 is outside \[0, 1\]"), (2, r"= 2 is outside \[0, 1\]"),
                                                (math.nan, r"= nan is not finite")])
def test_nms_functions_refuse_thresholds_outside_zero_one(threshold, message):
    boxes, scores = np.array([BOX, BOX]), np.array([0.9, 0.8])
    calls = {
        "nms": lambda: N.nms(boxes, scores, threshold),
        "nms_reference": lambda: N.nms_reference(boxes, scores, threshold),
        "nms_steps": lambda: N.nms_steps(boxes, scores, threshold),
        "batched_nms": lambda: N.batched_nms(boxes, scores, np.array([1, 1]), threshold),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"{name}: iou_threshold " + message):
            call()
    with pytest.raises(ValueError, match=r"nms: score_threshold " + message):
        N.nms(boxes, scores, 0.5, score_threshold=threshold)
    priors = default_boxes("tiny")
    loc, conf = np.zeros((1, len(priors), 4), np.float32), np.zeros((1, len(priors), 3), np.float32)
    for method in (N.postprocess, NB.postprocess_batched):
        for name in ("iou_threshold", "score_threshold"):
            with pytest.raises(ValueError, match=rf"{method.__name__}: {name} " + message):
                method(loc, conf, priors, **{name: threshold})


def test_postprocess_counts_must_be_positive_integers():
    priors = default_boxes("tiny")
    loc, conf = np.zeros((1, len(priors), 4), np.float32), np.zeros((1, len(priors), 3), np.float32)
    for method in (N.postprocess, NB.postprocess_batched):
        with pytest.raises(ValueError, match=rf"{method.__name__}: top_k = -5 must be an integer >= 1"):
            method(loc, conf, priors, top_k=-5)
        with pytest.raises(TypeError, match=rf"{method.__name__}: keep_top_k = 2.5 is not an integer"):
            method(loc, conf, priors, keep_top_k=2.5)


def test_batched_nms_checks_that_boxes_scores_and_labels_agree():
    boxes = np.array([BOX, BOX, BOX])
    with pytest.raises(ValueError, match=r"batched_nms: labels must have shape \(3,\), one per box; got \(2,\)"):
        N.batched_nms(boxes, np.ones(3), np.ones(2, dtype=np.int64), 0.5)
    with pytest.raises(ValueError, match=r"batched_nms: scores must have shape \(3,\), one per box; got \(2,\)"):
        N.batched_nms(boxes, np.ones(2), np.ones(3, dtype=np.int64), 0.5)
    with pytest.raises(ValueError, match=r"batched_nms: labels\[1\] = 1.5 is not an integer"):
        N.batched_nms(boxes, np.ones(3), np.array([1, 1.5, 2]), 0.5)
    with pytest.raises(ValueError, match=r"nms: scores\[1\] is nan: scores must be finite"):
        N.nms(boxes, np.array([0.5, np.nan, 0.2]), 0.5)
    assert N.batched_nms(boxes.tolist(), [0.9, 0.8, 0.7], [1, 2, 1], 0.5).tolist() == [0, 1]


def test_detector_on_diverged_weights_is_an_error_not_nan_boxes():
    from minissd import models
    from minissd.detect import Detector

    model = models.tiny_ssd(3, class_names=["a", "b"], widths=(4,) * 8)
    name = next(key for key in model.params if key.endswith("loc.weight"))
    model.params[name][...] = np.nan
    detector = Detector(model, batch_size=1)
    with pytest.raises(ValueError, match=r"postprocess_batched: loc\[0, \d+, 0\] is nan: the network's output is "
                                         r"not finite \(broken or diverged weights\)"):
        detector.predict(np.zeros((32, 32, 3), np.uint8))


def test_messages_name_function_argument_and_index(xp):
    # the same messages on either device
    priors = xp.asarray(default_boxes("tiny"))
    gt = xp.asarray([BOX, [0.5, 0.5, 0.4, 0.9]])
    with pytest.raises(ValueError, match=r"^match: gt_boxes\[1\] = \[0.5, 0.5, 0.4, 0.9\] breaks x2 >= x1"):
        M.match(gt, xp.asarray([1, 2]), priors)
    loc = xp.zeros((1, priors.shape[0], 4), dtype=xp.float32)
    loc[0, 9, 1] = xp.inf
    with pytest.raises(ValueError, match=r"^postprocess_batched: loc\[0, 9, 1\] is inf"):
        NB.postprocess_batched(loc, xp.zeros((1, priors.shape[0], 3), dtype=xp.float32), priors)
    out = to_numpy(B.iou(xp.asarray([[0, 0, 2, 2]]), xp.asarray([[1, 1, 3, 3]])))
    assert out[0, 0] == pytest.approx(1 / 7)


def test_format_key_difference_names_the_first_five_of_each_side():
    from minissd.validate import format_key_difference

    assert format_key_difference({"a": 1, "b": 2}, {"b": 0, "a": 0}) is None
    assert format_key_difference(["a", "b"], {"a": 0, "c": 0}) == "missing ['b'], unexpected ['c']"
    expected = [f"w{i}" for i in range(7)]
    assert format_key_difference(expected, {}) == "missing ['w0', 'w1', 'w2', 'w3', 'w4'] ..., unexpected []"


def test_load_state_dict_names_what_is_missing_and_unexpected():
    from minissd import models

    model = models.tiny_ssd(3, widths=(4,) * 8)
    state = model.state_dict()
    name = next(iter(state))
    state["extra.weight"] = state.pop(name)
    with pytest.raises(ValueError, match=rf"missing \['{re.escape(name)}'\], unexpected \['extra.weight'\]"):
        model.load_state_dict(state, source="x.npz")
