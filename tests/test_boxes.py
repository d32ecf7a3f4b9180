"""Box formats, area, IoU and the offset encoding (examples.md section 6)."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from minissd import boxes as B
from tests.conftest import to_numpy


def test_format_round_trip_by_hand(xp):
    xyxy = xp.asarray([[0.1, 0.2, 0.5, 0.8]], dtype=xp.float32)
    cxcywh = B.xyxy_to_cxcywh(xyxy)
    np.testing.assert_allclose(to_numpy(cxcywh), [[0.3, 0.5, 0.4, 0.6]], atol=1e-7)
    np.testing.assert_allclose(to_numpy(B.cxcywh_to_xyxy(cxcywh)), to_numpy(xyxy), atol=1e-7)
    assert cxcywh.dtype == xp.float32


def test_area_and_iou_by_hand(xp):
    a = xp.asarray([[0.0, 0.0, 2.0, 2.0]])
    b = xp.asarray([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]])
    np.testing.assert_allclose(to_numpy(B.area(b)), [4.0, 1.0, 4.0])
    # overlap 1 x 1 = 1, union 4 + 4 - 1 = 7; touching corners: 0; identical: 1
    np.testing.assert_allclose(to_numpy(B.iou(a, b)), [[1 / 7, 0.0, 1.0]])


def test_iou_shape_and_dtype(xp, rng):
    a = xp.asarray(random_boxes(rng, 5), dtype=xp.float32)
    b = xp.asarray(random_boxes(rng, 7), dtype=xp.float32)
    result = B.iou(a, b)
    assert result.shape == (5, 7) and result.dtype == xp.float32


def test_zero_area_boxes_are_allowed_and_have_iou_zero(xp):
    point = xp.asarray([[0.5, 0.5, 0.5, 0.5]])
    line = xp.asarray([[0.2, 0.5, 0.8, 0.5]])
    square = xp.asarray([[0.0, 0.0, 1.0, 1.0]])
    assert float(B.iou(point, point)[0, 0]) == 0.0
    assert float(B.iou(line, square)[0, 0]) == 0.0
    assert float(B.iou(point, square)[0, 0]) == 0.0


@pytest.mark.parametrize(
    "bad, message",
    [
        ([0.5, 0.1, 0.4, 0.9], r"a\[2\] = \[0.5, 0.1, 0.4, 0.9\] breaks x2 >= x1"),
        ([0.1, 0.9, 0.4, 0.8], r"a\[2\] .* breaks"),
        ([0.1, float("nan"), 0.4, 0.8], r"a\[2\] .* is not finite"),
        ([0.1, 0.2, float("inf"), 0.8], r"a\[2\] .* is not finite"),
    ],
)
def test_invalid_boxes_name_the_offending_index(xp, bad, message):
    a = xp.asarray([[0, 0, 1, 1], [0.2, 0.2, 0.3, 0.3], bad])
    with pytest.raises(ValueError, match=message):
        B.iou(a, a[:1])


def test_wrong_shape_is_rejected(xp):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\); got \(3, 5\)"):
        B.iou(xp.zeros((3, 5)), xp.zeros((1, 4)))


def test_encode_follows_the_paper_formulas(xp):
    # prior centred at (0.5, 0.5), 0.2 x 0.4; ground truth centred at (0.52, 0.46), 0.3 x 0.2
    prior = xp.asarray([[0.5, 0.5, 0.2, 0.4]])
    gt = xp.asarray([[0.37, 0.36, 0.67, 0.56]])
    g_hat = to_numpy(B.encode(gt, prior, variances=(0.1, 0.2)))[0]
    expected = [
        (0.52 - 0.5) / 0.2 / 0.1,
        (0.46 - 0.5) / 0.4 / 0.1,
        math.log(0.3 / 0.2) / 0.2,
        math.log(0.2 / 0.4) / 0.2,
    ]
    np.testing.assert_allclose(g_hat, expected, rtol=1e-6, atol=1e-9)
    # variances (1, 1) give the paper's g_hat without the implementations' scaling
    raw = to_numpy(B.encode(gt, prior, variances=(1.0, 1.0)))[0]
    np.testing.assert_allclose(raw, [0.1, -0.1, math.log(1.5), math.log(0.5)], rtol=1e-6, atol=1e-9)


def test_decode_inverts_encode(xp, rng):
    priors = xp.asarray(B.xyxy_to_cxcywh(random_boxes(rng, 50, min_size=0.05)), dtype=xp.float32)
    gt = xp.asarray(random_boxes(rng, 50, min_size=0.01), dtype=xp.float32)
    back = B.decode(B.encode(gt, priors), priors)
    assert back.dtype == xp.float32
    np.testing.assert_allclose(to_numpy(back), to_numpy(gt), atol=2e-6)


def test_encode_rejects_zero_size_ground_truth(xp):
    prior = xp.asarray([[0.5, 0.5, 0.2, 0.2]] * 2)
    gt = xp.asarray([[0.1, 0.1, 0.2, 0.3], [0.4, 0.4, 0.4, 0.6]])
    with pytest.raises(ValueError, match=r"boxes_xyxy\[1\] has zero width or height"):
        B.encode(gt, prior)


def test_decode_clamps_the_size_exponent_so_huge_offsets_stay_finite(xp):
    # l_w = 1e4 would be exp(2000): an overflow. Clamped at log(1000 / 16), as torchvision does,
    # the box is 62.5 times its default box; the centre offsets are not clamped.
    priors = xp.asarray([[0.5, 0.5, 0.1, 0.2]], dtype=xp.float32)
    loc = xp.asarray([[[0.0, 0.0, 1e4, -1e4]]], dtype=xp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overflow encountered in exp"
        box = to_numpy(B.decode(loc, priors))[0, 0]
    assert np.isfinite(box).all()
    assert B.DECODE_LOG_SIZE_CLAMP == pytest.approx(math.log(1000 / 16))
    np.testing.assert_allclose(box[2] - box[0], 0.1 * 62.5, rtol=1e-5)  # w = d_w * 1000 / 16
    assert 0 <= box[3] - box[1] < 1e-30  # a hugely negative l_h shrinks to nothing, without a warning
    # just below the clamp decode still inverts encode exactly: a box 60 times its default box
    gt = xp.asarray([[0.0, 0.0, 6.0, 0.2]])
    wide_prior = xp.asarray([[3.0, 0.1, 0.1, 0.2]])
    np.testing.assert_allclose(to_numpy(B.decode(B.encode(gt, wide_prior), wide_prior)), to_numpy(gt), atol=1e-9)


def test_batched_encode_and_decode_shapes(xp, rng):
    priors = xp.asarray(B.xyxy_to_cxcywh(random_boxes(rng, 6, min_size=0.05)))
    loc = xp.asarray(rng.normal(size=(3, 6, 4)))
    decoded = B.decode(loc, priors)
    assert decoded.shape == (3, 6, 4)
    np.testing.assert_allclose(to_numpy(B.encode(decoded, priors)), to_numpy(loc), atol=1e-9)


# --------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------

def random_boxes(rng, count, min_size=0.0):
    corner = rng.uniform(0, 0.9, size=(count, 2))
    size = rng.uniform(min_size, 0.5, size=(count, 2))
    return np.concatenate([corner, corner + size], axis=1)


coordinate = st.floats(0, 1, allow_nan=False, width=64)


@st.composite
def box_arrays(draw, min_count=1, max_count=8, positive=False, min_size=1e-3):
    count = draw(st.integers(min_count, max_count))
    corners = draw(hnp.arrays(np.float64, (count, 2), elements=coordinate))
    low = min_size if positive else 0.0
    sizes = draw(hnp.arrays(np.float64, (count, 2), elements=st.floats(low, 1, width=64)))
    return np.concatenate([corners, corners + sizes], axis=1)


@settings(max_examples=60, deadline=None)
@given(box_arrays(), box_arrays())
def test_iou_is_symmetric_and_bounded(a, b):
    forward = B.iou(a, b)
    np.testing.assert_allclose(forward, B.iou(b, a).T, atol=1e-12)
    assert np.all(forward >= 0) and np.all(forward <= 1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(box_arrays(positive=True))
def test_iou_with_itself_is_one(a):
    np.testing.assert_allclose(np.diag(B.iou(a, a)), 1.0, atol=1e-9)


# sizes 0.02..1: any two differ by at most 50x, inside decode's 62.5x clamp (test above)
@settings(max_examples=60, deadline=None)
@given(box_arrays(positive=True, min_size=0.02), box_arrays(positive=True, min_size=0.02))
def test_encode_decode_round_trip(gt, prior_corners):
    count = min(len(gt), len(prior_corners))
    gt, priors = gt[:count], B.xyxy_to_cxcywh(prior_corners[:count])
    np.testing.assert_allclose(B.decode(B.encode(gt, priors), priors), gt, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(box_arrays(positive=True))
def test_format_conversion_round_trip(a):
    np.testing.assert_allclose(B.cxcywh_to_xyxy(B.xyxy_to_cxcywh(a)), a, atol=1e-12)


def test_intersection_by_coordinates_equals_the_corner_pair_formula(rng):
    """The (A, 1) x (B,) form computes clip(min(bottom-right) - max(top-left), 0) on (A, B, 2) bit for bit."""
    from minissd.boxes import _intersection

    for dtype in (np.float32, np.float64):
        a = rng.uniform(0, 1, (9, 4)).astype(dtype)
        a[:, 2:] = a[:, :2] + rng.uniform(0, 0.5, (9, 2)).astype(dtype)
        b = rng.uniform(0, 1, (301, 4)).astype(dtype)
        b[:, 2:] = b[:, :2] + rng.uniform(0, 0.5, (301, 2)).astype(dtype)
        b[:5] = a[:5]  # identical boxes, touching and disjoint ones below
        b[5] = [a[5, 2], a[5, 1], a[5, 2] + 0.1, a[5, 3]]
        top_left = np.maximum(a[:, None, :2], b[None, :, :2])  # (A, B, 2)
        bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
        size = np.clip(bottom_right - top_left, 0, None)
        expected = size[..., 0] * size[..., 1]
        got = _intersection(a, b, np)
        assert got.dtype == dtype and got.shape == (9, 301)
        np.testing.assert_array_equal(got, expected)
        assert got[5, 5] == 0 and (got >= 0).all()
