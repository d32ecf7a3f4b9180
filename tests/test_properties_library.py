"""Property tests (hypothesis): malformed input to the public box, matching, loss and NMS functions.

Every call gets values that are often wrong: wrong shapes, NaN and inf, inverted boxes, thresholds
outside [0, 1], lists, integer, bool and string arrays, empty arrays, None. Each call must either
return a correct result (an invariant is checked) or raise ValueError / TypeError whose message starts
with the function's name - never IndexError, ZeroDivisionError, AttributeError, FloatingPointError,
a NumPy-internal message, or a RuntimeWarning (warnings are errors here).

Finite coordinates stay within +-1e3 (overflowing float64 with 1e308 is not what these tests are about).
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from minissd import boxes as B
from minissd import loss as L
from minissd import matching as M
from minissd import nms as N
from minissd import nms_batched as NB
from minissd import priors as P
from minissd.validate import as_float_array

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAN, INF = float("nan"), float("inf")


def outcome(call, *prefixes):
    """call()'s result, or None when it raised a clear ValueError / TypeError (any other error fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning becomes an exception, which is not caught below
        try:
            return call()
        except (ValueError, TypeError) as error:
            message = str(error)
            assert message.strip(), f"{type(error).__name__} without a message"
            assert message.startswith(prefixes), f"the message does not say where: {message!r}"
            return None


def as_reference(value):
    """The values a successful call worked on (lists become float32, as the library makes them), in float64."""
    return np.asarray(as_float_array(value, "value", "test"), dtype=np.float64)


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------

coordinate = st.floats(-2, 2)
special = st.sampled_from([NAN, INF, -INF])

def mostly(good, bad):
    """``good`` about four times in five, else ``bad``: both paths get exercised."""
    return st.integers(0, 4).flatmap(lambda roll: bad if roll == 0 else good)


thresholds = mostly(
    st.one_of(st.floats(0, 1), st.sampled_from([0, 1, 0.5]), st.just(np.float32(0.25))),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.none(), st.booleans(),
              st.text(max_size=3), st.just([0.5]), st.sampled_from([-0.01, 1.01, NAN, INF]))
)
counts = mostly(st.integers(1, 6), st.one_of(st.integers(-2, 0), st.floats(-1, 6), st.none(), st.booleans()))


def malformed(draw, array, fmt="xyxy"):
    """``array`` (a valid (..., 4) float64 array of boxes) as given, or broken in one of many ways."""
    how = draw(st.sampled_from(["as is", "as is", "float32", "list", "int", "nan", "inf", "invert", "3 columns",
                                "5 columns", "flat", "bool", "string", "none", "empty", "scalar", "3d"]))
    if how == "float32":
        return array.astype(np.float32)
    if how == "list":
        return array.tolist()
    if how == "int":  # valid boxes in integer pixels
        return _int_boxes(array, fmt)
    if how in ("nan", "inf") and array.size:
        broken = array.copy()
        broken.reshape(-1)[draw(st.integers(0, array.size - 1))] = draw(special) if how == "inf" else NAN
        return broken
    if how == "invert" and array.shape[0]:
        broken = array.copy()
        row = draw(st.integers(0, array.shape[0] - 1))
        if fmt == "xyxy":
            broken[row, 0], broken[row, 2] = broken[row, 2] + 0.5, broken[row, 0]
        else:
            broken[row, 2] = -0.5
        return broken
    if how == "3 columns":
        return array[..., :3]
    if how == "5 columns":
        return np.concatenate([array, array[..., :1]], axis=-1)
    if how == "flat":
        return array.reshape(-1)
    if how == "bool":
        return array > 0
    if how == "string":
        return array.astype(str)
    if how == "none":
        return None
    if how == "empty":
        return np.zeros((0, 4), dtype=array.dtype)
    if how == "scalar":
        return 0.5
    if how == "3d":
        return array[None]
    return array


def _int_boxes(array, fmt):
    pixels = np.round(array * 10)
    if fmt == "xyxy":
        pixels[:, 2:] = np.maximum(pixels[:, 2:], pixels[:, :2])  # x2 >= x1 after rounding too
    else:
        pixels[:, 2:] = np.abs(pixels[:, 2:])
    return pixels.astype(np.int64)


@st.composite
def boxes(draw, fmt="xyxy", count=None, min_size=0.0):
    n = draw(st.integers(0, 6)) if count is None else count
    corners = draw(hnp.arrays(np.float64, (n, 2), elements=coordinate))
    sizes = draw(hnp.arrays(np.float64, (n, 2), elements=st.floats(min_size, 2)))
    valid = np.concatenate([corners, corners + sizes if fmt == "xyxy" else sizes], axis=1)  # (n, 4)
    return draw(st.builds(lambda data: malformed(data.draw, valid, fmt), st.data()))


@st.composite
def priors_cxcywh(draw, count):
    centres = draw(hnp.arrays(np.float64, (count, 2), elements=st.floats(0, 1)))
    sizes = draw(hnp.arrays(np.float64, (count, 2), elements=st.floats(0.05, 0.8)))
    valid = np.concatenate([centres, sizes], axis=1).astype(np.float32)
    if draw(st.integers(0, 4)) == 0:  # now and then, broken too
        return draw(st.builds(lambda data: malformed(data.draw, valid.astype(np.float64), "cxcywh"), st.data()))
    return valid


@st.composite
def labels(draw, count):
    how = draw(st.sampled_from(["ints", "ints", "floats", "fraction", "zero", "negative", "list", "wrong length",
                                "nan", "bool", "string", "none"]))
    values = draw(hnp.arrays(np.int64, (count,), elements=st.integers(1, 5)))
    if how == "floats":
        return values.astype(np.float64)  # 2.0 is a label
    if how == "fraction" and count:
        return values + 0.5
    if how == "zero" and count:
        values[0] = 0
    if how == "negative" and count:
        values[-1] = -3
    if how == "list":
        return values.tolist()
    if how == "wrong length":
        return np.ones(count + 1, dtype=np.int64)
    if how == "nan" and count:
        return np.full(count, NAN)
    if how == "bool":
        return values > 2
    if how == "string":
        return values.astype(str)
    if how == "none":
        return None
    return values


# --------------------------------------------------------------------------
# box algebra
# --------------------------------------------------------------------------

@SETTINGS
@given(boxes())
def test_xyxy_to_cxcywh(value):
    result = outcome(lambda: B.xyxy_to_cxcywh(value), "xyxy_to_cxcywh:")
    if result is not None:
        reference = as_reference(value)
        assert result.dtype.kind == "f" and result.shape == reference.shape and np.isfinite(result).all()
        np.testing.assert_allclose(result[..., 2:], reference[..., 2:] - reference[..., :2], atol=1e-5)
        np.testing.assert_allclose(result[..., :2], (reference[..., :2] + reference[..., 2:]) / 2, atol=1e-5)
        assert (result[..., 2:] >= 0).all()


@SETTINGS
@given(boxes("cxcywh"))
def test_cxcywh_to_xyxy(value):
    result = outcome(lambda: B.cxcywh_to_xyxy(value), "cxcywh_to_xyxy:")
    if result is not None:
        reference = as_reference(value)
        assert result.dtype.kind == "f" and result.shape == reference.shape and np.isfinite(result).all()
        assert (result[..., 2:] >= result[..., :2]).all()
        np.testing.assert_allclose(result[..., 2:] - result[..., :2], reference[..., 2:], atol=1e-5)


@SETTINGS
@given(boxes())
def test_area(value):
    result = outcome(lambda: B.area(value), "area:")
    if result is not None:
        reference = as_reference(value)
        expected = (reference[..., 2] - reference[..., 0]) * (reference[..., 3] - reference[..., 1])
        assert result.shape == reference.shape[:-1] and (result >= 0).all()
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(boxes(), boxes())
def test_iou(a, b):
    result = outcome(lambda: B.iou(a, b), "iou:")
    if result is not None:
        a64, b64 = as_reference(a), as_reference(b)
        assert result.shape == (a64.shape[0], b64.shape[0]) and result.dtype.kind == "f"
        assert np.isfinite(result).all() and (result >= 0).all() and (result <= 1 + 1e-6).all()
        np.testing.assert_allclose(result, B.iou(b64, a64).T, atol=1e-5)


@SETTINGS
@given(st.integers(0, 5).flatmap(lambda n: st.tuples(boxes(count=n, min_size=0.05), priors_cxcywh(n),
                                                     st.sampled_from([(0.1, 0.2), (0.1, 0.2), (0, 0.2), (1, NAN),
                                                                      None, 0.1]))))
def test_encode_and_decode(case):
    gt, priors, variances = case
    offsets = outcome(lambda: B.encode(gt, priors, variances), "encode:")
    if offsets is None:
        return
    gt64 = as_reference(gt)
    assert offsets.shape == gt64.shape and np.isfinite(offsets).all()
    back = outcome(lambda: B.decode(offsets, priors, variances), "decode:")
    assert back is not None  # what encode made, decode takes
    ratio = (gt64[..., 2:] - gt64[..., :2]) / np.asarray(priors, dtype=np.float64)[:, 2:]  # (..., P, 2)
    inside = (ratio < 60).all(axis=-1) & (ratio > 1 / 60).all(axis=-1)  # below decode's 62.5x clamp
    np.testing.assert_allclose(back[inside], gt64[inside], atol=1e-4)


@SETTINGS
@given(st.integers(0, 5).flatmap(lambda n: st.tuples(
    st.one_of(hnp.arrays(np.float64, (n, 4), elements=st.one_of(st.floats(-1e3, 1e3), special)),
              hnp.arrays(np.float64, (n, 3), elements=st.floats(-5, 5)),
              hnp.arrays(np.int64, (n, 4), elements=st.integers(-100, 100)),
              st.just([[0.0, 0.0, 0.0, 0.0]] * n)),
    priors_cxcywh(n))))
def test_decode_any_offsets(case):
    loc, priors = case
    result = outcome(lambda: B.decode(loc, priors), "decode:")
    if result is not None:
        assert result.shape == np.shape(loc) and np.isfinite(result).all()  # huge offsets: clamped, finite
        assert (result[..., 2:] >= result[..., :2]).all()


# --------------------------------------------------------------------------
# default boxes
# --------------------------------------------------------------------------

# one bad entry makes a whole config invalid, so each entry is bad only rarely
def rarely_bad(good, *bad):
    return st.integers(0, 12).flatmap(lambda roll: st.sampled_from(bad) if roll == 0 else good)


size_values = rarely_bad(st.floats(0.05, 1.2), 0.0, -0.1, NAN, INF)
ratio_values = rarely_bad(st.floats(0.2, 4), 0.0, -1.0, NAN, INF, 1e-320)


@st.composite
def prior_configs(draw):
    maps = draw(st.lists(rarely_bad(st.integers(1, 4), 0, -1, 2.5, NAN), min_size=1, max_size=3))
    m = len(maps)
    extra = draw(st.integers(0, 12)) == 0  # now and then, one entry too many
    return dict(
        name="random",
        image_size=draw(rarely_bad(st.integers(16, 64), 0, -8, NAN, 32.5)),
        feature_maps=tuple(maps),
        min_sizes=tuple(draw(st.lists(size_values, min_size=m + extra, max_size=m + extra))),
        max_sizes=tuple(draw(st.lists(size_values, min_size=m, max_size=m))),
        aspect_ratios=tuple(tuple(draw(st.lists(ratio_values, max_size=2))) for _ in range(m)),
        steps=draw(st.one_of(st.none(), st.lists(rarely_bad(st.floats(1, 32), 0, NAN),
                                                 min_size=m, max_size=m).map(tuple))),
    )


@SETTINGS
@given(prior_configs())
def test_prior_config_and_default_boxes(fields):
    config = outcome(lambda: P.PriorConfig(**fields), "PriorConfig 'random':")
    if config is None:
        return
    result = outcome(lambda: P.default_boxes(config), "default_boxes:")
    if result is None:  # only a config whose boxes overflow float32 gets this far and fails
        return
    assert result.shape == (config.num_priors, 4) and result.dtype == np.float32
    assert np.isfinite(result).all() and (result[:, 2:] > 0).all()


@SETTINGS
@given(st.lists(rarely_bad(st.integers(1, 5), 0, 2.5, NAN, INF), min_size=0, max_size=3), size_values, size_values,
       st.booleans(), st.one_of(st.none(), st.just([(2,)]), st.just([(0,)]), st.just([(NAN, 2)])))
def test_paper_config(maps, s_min, s_max, in_order, ratios):
    if in_order:
        s_min, s_max = sorted((s_min, s_max))
    if ratios is not None:
        ratios = ratios * len(maps)
    config = outcome(lambda: P.paper_config(maps, s_min, s_max, ratios), "paper_config:", "scales:",
                     "PriorConfig 'paper':")
    if config is not None:
        boxes_out = P.default_boxes(config)
        assert np.isfinite(boxes_out).all() and boxes_out.shape == (config.num_priors, 4)


# --------------------------------------------------------------------------
# matching
# --------------------------------------------------------------------------

PRIORS = P.default_boxes(P.paper_config((4, 2), aspect_ratios=[(2,), (2,)]))  # (80, 4)


@SETTINGS
@given(st.integers(0, 4).flatmap(lambda n: st.tuples(boxes(count=n), labels(n))),
       st.one_of(st.just(PRIORS), st.just(PRIORS[:, :3]), st.just(PRIORS.tolist())), thresholds)
def test_match(case, priors, iou_threshold):
    gt, gt_labels = case
    result = outcome(lambda: M.match(gt, gt_labels, priors, iou_threshold), "match:", "match_batch:")
    if result is None:
        return
    loc, conf = result
    count = len(PRIORS)
    assert loc.shape == (count, 4) and conf.shape == (count,) and conf.dtype == np.int64
    assert np.isfinite(loc).all()
    given_labels = set(np.asarray(gt_labels).astype(np.int64).reshape(-1).tolist())
    assert set(conf.tolist()) <= {0} | given_labels and min(given_labels, default=1) >= 1
    assert not np.any(np.asarray(gt_labels, dtype=np.float64) % 1)  # no fraction was truncated


# --------------------------------------------------------------------------
# the loss
# --------------------------------------------------------------------------

@st.composite
def loss_inputs(draw):
    n, p, classes = draw(st.integers(0, 2)), draw(st.integers(0, 5)), draw(st.integers(1, 4))
    values = st.one_of(st.floats(-10, 10), st.floats(-10, 10), st.floats(-10, 10), special)
    loc = draw(hnp.arrays(np.float32, (n, p, 4), elements=values.map(np.float32)))
    conf = draw(hnp.arrays(np.float32, (n, p, classes), elements=values.map(np.float32)))
    targets = draw(hnp.arrays(np.int64, (n, p), elements=st.integers(0, classes - 1)))
    how = draw(st.sampled_from(["as is", "as is", "as is", "float targets", "list", "short targets",
                                "loc (N, P, 3)", "none", "target -1", "target L"]))
    if how in ("target -1", "target L") and targets.size:
        targets.reshape(-1)[draw(st.integers(0, targets.size - 1))] = -1 if how == "target -1" else classes
    if how == "float targets":
        targets = targets * 0.9
    elif how == "list":
        loc, conf, targets = loc.tolist(), conf.tolist(), targets.tolist()
    elif how == "short targets":
        targets = targets[:, :-1] if p else targets[:, None]
    elif how == "loc (N, P, 3)":
        loc = loc[..., :3]
    elif how == "none":
        targets = None
    return loc, conf, targets


@SETTINGS
@given(loss_inputs(), mostly(st.floats(0, 5), st.one_of(thresholds, st.floats(-5, 0, exclude_max=True))))
def test_multibox_loss(case, ratio):
    loc, conf, targets = case
    result = outcome(lambda: L.multibox_loss(loc, conf, np.zeros(np.shape(loc), np.float32), targets, ratio),
                     "multibox_loss:")
    if result is None:
        return
    targets = np.asarray(targets)
    classes = np.shape(conf)[-1]
    assert targets.dtype.kind in "iu" and ((targets >= 0) & (targets < classes)).all()  # else it must refuse
    assert math.isfinite(ratio) and ratio >= 0
    assert result.grad_loc.shape == np.shape(loc) and result.grad_conf.shape == np.shape(conf)
    assert not (result.positive_mask & result.negative_mask).any()
    if np.isfinite(loc).all() and np.isfinite(conf).all():
        assert math.isfinite(float(result.loss)) and float(result.loss) >= 0


# --------------------------------------------------------------------------
# NMS and post-processing
# --------------------------------------------------------------------------

@st.composite
def scores_for(draw, count):
    how = draw(st.sampled_from(["probabilities", "probabilities", "nan", "list", "wrong length", "int"]))
    values = draw(hnp.arrays(np.float64, (count,), elements=st.floats(0, 1)))
    if how == "nan" and count:
        values[0] = NAN
    if how == "list":
        return values.tolist()
    if how == "wrong length":
        return np.ones(count + 1)
    if how == "int":
        return (values * 3).astype(np.int64)
    return values


@SETTINGS
@given(st.integers(0, 6).flatmap(lambda n: st.tuples(boxes(count=n), scores_for(n))), thresholds,
       st.one_of(st.none(), thresholds))
def test_nms(case, iou_threshold, score_threshold):
    boxes_in, scores_in = case
    keep = outcome(lambda: N.nms(boxes_in, scores_in, iou_threshold, score_threshold), "nms:")
    if keep is None:
        return
    scores64 = as_reference(scores_in)
    assert keep.dtype == np.int64 and len(set(keep.tolist())) == len(keep)
    assert np.all(np.diff(scores64[keep]) <= 0)
    if score_threshold is not None:
        assert (scores64[keep] > score_threshold).all()  # at or below the threshold: removed
    boxes64 = as_reference(boxes_in)  # the oracle works in float64: compare it with nms in float64 too
    reference = N.nms_reference(boxes64, scores64, iou_threshold, score_threshold)
    np.testing.assert_array_equal(N.nms(boxes64, scores64, iou_threshold, score_threshold), reference)
    if len(keep) == len(reference):  # float32 input may round an IoU across the threshold, nothing else
        np.testing.assert_array_equal(keep, reference)


@SETTINGS
@given(st.integers(0, 6).flatmap(lambda n: st.tuples(boxes(count=n), scores_for(n), labels(n))), thresholds)
def test_batched_nms(case, iou_threshold):
    boxes_in, scores_in, labels_in = case
    keep = outcome(lambda: N.batched_nms(boxes_in, scores_in, labels_in, iou_threshold), "batched_nms:")
    if keep is None:
        return
    groups = np.asarray(labels_in).astype(np.int64)
    scores_seen = as_float_array(scores_in, "scores", "test")  # the same dtype: the same IoU roundings
    boxes_seen = as_float_array(boxes_in, "boxes", "test").reshape(-1, 4)
    for label in np.unique(groups):
        members = np.nonzero(groups == label)[0]
        alone = members[N.nms(boxes_seen[members], scores_seen[members], iou_threshold)]
        assert sorted(alone.tolist()) == sorted(k for k in keep.tolist() if groups[k] == label)


@st.composite
def network_outputs(draw):
    n, classes = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    count = len(PRIORS)
    values = st.one_of(st.floats(-6, 6), st.floats(-6, 6), st.floats(-6, 6), st.floats(-1e3, 1e3), special)
    loc = draw(hnp.arrays(np.float32, (n, count, 4), elements=st.floats(-3, 3, width=32)))
    conf = draw(hnp.arrays(np.float32, (n, count, classes), elements=st.floats(-6, 6, width=32)))
    if n and draw(st.integers(0, 3)) == 0:  # a few broken entries
        target = draw(st.sampled_from([loc, conf]))
        target.reshape(-1)[draw(st.integers(0, target.size - 1))] = draw(values)
    priors = PRIORS
    how = draw(st.sampled_from(["as is", "as is", "as is", "list", "short priors", "loc (N, P, 3)"]))
    if how == "list":
        loc, conf = loc.tolist(), conf.tolist()
    elif how == "short priors":
        priors = PRIORS[:-1]
    elif how == "loc (N, P, 3)":
        loc = loc[..., :3]
    return loc, conf, priors


@SETTINGS
@given(network_outputs(), thresholds, st.one_of(st.just(0.45), thresholds), counts, counts)
def test_postprocess_and_its_batched_twin(outputs, score_threshold, iou_threshold, top_k, keep_top_k):
    loc, conf, priors = outputs
    options = dict(score_threshold=score_threshold, iou_threshold=iou_threshold, top_k=top_k, keep_top_k=keep_top_k)
    loop = outcome(lambda: N.postprocess(loc, conf, priors, **options), "postprocess:")
    batched = outcome(lambda: NB.postprocess_batched(loc, conf, priors, **options), "postprocess_batched:")
    assert (loop is None) == (batched is None)  # the same input is refused by both, or by neither
    if loop is None:
        return
    assert np.isfinite(np.asarray(loc)).all() and np.isfinite(np.asarray(conf)).all()
    assert len(loop) == len(batched) == np.shape(loc)[0]
    for (boxes_l, scores_l, labels_l), (boxes_b, scores_b, labels_b) in zip(loop, batched):
        np.testing.assert_array_equal(labels_b, labels_l)
        np.testing.assert_array_equal(scores_b, scores_l)
        np.testing.assert_array_equal(boxes_b, boxes_l)
        assert len(scores_l) <= keep_top_k and (scores_l > score_threshold).all() and (scores_l <= 1).all()
        assert np.isfinite(boxes_l).all() and (boxes_l >= 0).all() and (boxes_l <= 1).all()
        assert ((labels_l >= 1) & (labels_l < np.shape(conf)[-1])).all()


@pytest.mark.parametrize("value", [np.zeros((0, 4)), [], np.zeros((0,))])
def test_empty_inputs_are_results_not_errors(value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert B.iou(value if np.ndim(value) == 2 else np.zeros((0, 4)), np.zeros((2, 4))).shape == (0, 2)
        assert N.nms(value, np.zeros(0), 0.5).shape == (0,)
        assert N.batched_nms(value, np.zeros(0), np.zeros(0, dtype=np.int64), 0.5).shape == (0,)
        loc, conf = M.match(value, np.zeros(0, dtype=np.int64), PRIORS)
        assert not conf.any() and not loc.any()
