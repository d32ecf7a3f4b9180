"""Winograd F(2x2, 3x3): the matrices, the tile formula, the fast convolution and its backward
against the plain im2col path (its reference), the tile-by-tile oracle, finite differences, and
the dispatch in conv2d_forward.

Tolerances: float64 results agree with the references to 1e-12 (the transforms only add, halve
and quarter; the rest is rounding); float32 ones to 1e-5 of the output's largest magnitude.
"""

import numpy as np
import pytest

from minissd.backend import to_numpy
from minissd.nn import conv, parallel, winograd
from minissd.nn.conv import conv2d_backward, conv2d_forward, conv2d_naive, use_winograd
from minissd.nn.gradcheck import assert_gradients_close

# (N, C, O, H, W): even and odd sides, 1 x 1 and 1 x 2 maps, more outputs than inputs and fewer
SHAPES = [(2, 3, 5, 7, 8), (1, 4, 6, 8, 8), (3, 2, 2, 5, 5), (2, 7, 3, 1, 1), (2, 3, 4, 2, 3), (1, 9, 17, 12, 13)]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few values and chunks of one image: every loop boundary gets crossed."""
    monkeypatch.setattr(winograd, "BLOCK_ELEMENTS", 7)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)


def _direct_tile(d, g):
    """The 2x2 output of a 3x3 correlation on a 4x4 tile, by the definition."""
    return np.array([[np.sum(d[y:y + 3, x:x + 3] * g) for x in range(2)] for y in range(2)])


def test_matrices_and_the_multiplication_count(rng):
    assert winograd.FILTER_MATRIX.shape == (16, 9)
    np.testing.assert_array_equal(winograd.FILTER_MATRIX, np.kron(winograd.G, winograd.G))
    # B^T and A^T hold only 0 and +-1: the data transforms are additions
    assert set(np.unique(winograd.B_T)) <= {-1.0, 0.0, 1.0} and set(np.unique(winograd.A_T)) <= {-1.0, 0.0, 1.0}
    # 16 multiplications per tile (the elementwise product) instead of 2 * 2 * 9 = 36
    assert (winograd.G @ np.ones((3, 3)) @ winograd.G.T).size == 16 and 2 * 2 * 9 / 16 == 2.25
    for _ in range(5):
        d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
        np.testing.assert_allclose(winograd.winograd_tile(d, g), _direct_tile(d, g), atol=1e-12)


@pytest.mark.parametrize("n, c, o, h, w", SHAPES)
def test_tile_oracle_matches_the_convolution_formula(rng, n, c, o, h, w):
    x, k, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3)), rng.standard_normal(o)
    np.testing.assert_allclose(winograd.winograd_conv3x3_naive(x, k, b), conv2d_naive(x, k, b, 1, 1), atol=1e-12)


@pytest.mark.parametrize("blocks", ["default", "small"])
@pytest.mark.parametrize("n, c, o, h, w", SHAPES)
def test_forward_matches_im2col_in_float64(rng, request, blocks, n, c, o, h, w):
    if blocks == "small":
        request.getfixturevalue("small_blocks")
    x, k, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3)), rng.standard_normal(o)
    reference, _ = conv2d_forward(x, k, b, 1, 1, algorithm="im2col")
    np.testing.assert_allclose(winograd.winograd_conv3x3(x, k, b), reference, atol=1e-12)
    np.testing.assert_allclose(winograd.winograd_conv3x3(x, k), reference - b.reshape(1, o, 1, 1), atol=1e-12)


def test_forward_in_float32_on_an_ssd_sized_layer(xp, rng):
    x = rng.standard_normal((2, 64, 19, 19), dtype=np.float32)
    k = (rng.standard_normal((32, 64, 3, 3)) * 0.05).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    out = winograd.winograd_conv3x3(xp.asarray(x), xp.asarray(k), xp.asarray(b))
    assert out.dtype == np.float32
    reference = conv2d_naive(x.astype(np.float64), k.astype(np.float64), b.astype(np.float64), 1, 1)
    scale = np.abs(reference).max()
    assert np.abs(to_numpy(out) - reference).max() <= 1e-5 * scale


@pytest.mark.parametrize("blocks", ["default", "small"])
@pytest.mark.parametrize("n, c, o, h, w", SHAPES)
def test_backward_matches_im2col_in_float64(rng, request, blocks, n, c, o, h, w):
    if blocks == "small":
        request.getfixturevalue("small_blocks")
    x, k = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3))
    dout = rng.standard_normal((n, o, h, w))
    before = dout.copy()
    _, cache = conv2d_forward(x, k, None, 1, 1, algorithm="im2col")
    dx_ref, dw_ref, _ = conv2d_backward(dout, cache)
    dx, dw = winograd.winograd_conv3x3_backward(dout, x, k)
    np.testing.assert_array_equal(dout, before)  # dout untouched
    np.testing.assert_allclose(dx, dx_ref, atol=1e-12)
    np.testing.assert_allclose(dw, dw_ref, atol=1e-11)
    none, dw_only = winograd.winograd_conv3x3_backward(dout, x, k, need_dx=False)
    assert none is None
    np.testing.assert_allclose(dw_only, dw_ref, atol=1e-11)


def test_input_gradient_is_the_convolution_with_the_rotated_kernel(rng):
    x, k = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3))
    dout = rng.standard_normal((2, 4, 6, 7))
    dx, _ = winograd.winograd_conv3x3_backward(dout, x, k)
    rotated = k.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]  # (C, O, 3, 3): w[o, c, 2-i, 2-j]
    np.testing.assert_allclose(dx, conv2d_naive(dout, rotated, None, 1, 1), atol=1e-12)
    np.testing.assert_allclose(winograd.rotated_filter_transform(k),
                               winograd.filter_transform(np.ascontiguousarray(rotated)), atol=1e-12)
    # the backward reads the forward's U at the rotated positions, transposed
    u = winograd.filter_transform(k)
    rotated_u = np.stack([u[p].T for p in winograd.ROTATED_POSITIONS])
    np.testing.assert_allclose(rotated_u, winograd.rotated_filter_transform(k), atol=1e-12)
    dx_cached, _ = winograd.winograd_conv3x3_backward(dout, x, k, u=u)
    np.testing.assert_array_equal(dx_cached, dx)


def test_backward_in_float32(rng):
    x = rng.standard_normal((2, 64, 10, 9), dtype=np.float32)
    k = (rng.standard_normal((48, 64, 3, 3)) * 0.05).astype(np.float32)
    dout = rng.standard_normal((2, 48, 10, 9), dtype=np.float32)
    dx, dw = winograd.winograd_conv3x3_backward(dout, x, k)
    assert dx.dtype == dw.dtype == np.float32
    _, cache = conv2d_forward(x.astype(np.float64), k.astype(np.float64), None, 1, 1, algorithm="im2col")
    dx_ref, dw_ref, _ = conv2d_backward(dout.astype(np.float64), cache)
    assert np.abs(dx - dx_ref).max() <= 1e-5 * np.abs(dx_ref).max()
    assert np.abs(dw - dw_ref).max() <= 1e-5 * np.abs(dw_ref).max()


@pytest.mark.parametrize("h, w", [(5, 6), (4, 4)])
def test_gradient_check_through_conv2d(rng, small_blocks, h, w):
    arrays = {"x": rng.standard_normal((2, 3, h, w)), "w": rng.standard_normal((4, 3, 3, 3)),
              "b": rng.standard_normal(4)}
    caches = []

    def forward():
        out, cache = conv2d_forward(arrays["x"], arrays["w"], arrays["b"], 1, 1, algorithm="winograd")
        caches.append(cache)
        return out

    def backward(dout):
        assert caches[-1].algorithm == "winograd" and caches[-1].transformed.shape == (16, 4, 3)
        dx, dw, db = conv2d_backward(dout, caches[-1])
        return {"x": dx, "w": dw, "b": db}

    assert_gradients_close(forward, backward, arrays, rng, tolerance=1e-8)


def test_threads_give_the_serial_results(rng):
    x, k, b = rng.standard_normal((3, 6, 9, 10)), rng.standard_normal((5, 6, 3, 3)), rng.standard_normal(5)
    dout = rng.standard_normal((3, 5, 9, 10))
    serial = (winograd.winograd_conv3x3(x, k, b), *winograd.winograd_conv3x3_backward(dout, x, k))
    with parallel.threads(3):
        threaded = (winograd.winograd_conv3x3(x, k, b), *winograd.winograd_conv3x3_backward(dout, x, k))
    for a, t in zip(serial, threaded):
        np.testing.assert_allclose(t, a, atol=1e-12)


def test_dispatch(rng, monkeypatch):
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", 4)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_TILES", 9)
    x = np.zeros((1, 4, 6, 6), dtype=np.float32)
    w = np.zeros((2, 4, 3, 3), dtype=np.float32)
    assert use_winograd(x, w, 1, 1, 1, "auto", np)
    assert not use_winograd(x[:, :3], w[:, :3], 1, 1, 1, "auto", np)  # too few channels
    assert not use_winograd(x[:, :, :4], w, 1, 1, 1, "auto", np)  # too few tiles: 2 x 3
    assert not use_winograd(x, w, 2, 1, 1, "auto", np) and not use_winograd(x, w, 1, 2, 2, "auto", np)
    assert not use_winograd(x, w, 1, 1, 1, "im2col", np)
    assert conv2d_forward(x, w, None, 1, 1)[1].algorithm == "winograd"
    assert conv2d_forward(x, w, None, 1, 1, algorithm="im2col")[1].algorithm == "im2col"
    assert conv2d_forward(x, w, None, 2, 1)[1].algorithm == "im2col"
    with pytest.raises(ValueError, match="algorithm must be one of"):
        conv2d_forward(x, w, None, 1, 1, algorithm="fft")
    with pytest.raises(ValueError, match=r"algorithm='winograd' needs a 3x3 kernel, stride 1, padding 1.*stride 2"):
        conv2d_forward(x, w, None, 2, 1, algorithm="winograd")


def test_cupy_arrays_take_the_im2col_path(xp):
    x = xp.zeros((1, conv.WINOGRAD_MIN_CHANNELS, 38, 38), dtype=xp.float32)  # SSD300's conv4_3 map
    w = xp.zeros((2, conv.WINOGRAD_MIN_CHANNELS, 3, 3), dtype=xp.float32)
    assert use_winograd(x, w, 1, 1, 1, "auto", xp) == (xp is np)
    assert not use_winograd(x[:, :, :19, :19], w, 1, 1, 1, "auto", xp)  # conv5's 19 x 19: im2col
