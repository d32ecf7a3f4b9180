"""Max pooling: sizes (floor / ceil mode), fast path vs loops and PyTorch, gradient routing."""

import numpy as np
import pytest

from minissd.backend import to_numpy
from minissd.nn.gradcheck import assert_gradients_close
from minissd.nn.pool import (
    maxpool2d_backward,
    maxpool2d_backward_naive,
    maxpool2d_forward,
    maxpool2d_naive,
    pool_output_size,
)

try:
    import torch
except ImportError:  # optional cross-check
    torch = None

CASES = [
    # (H, W, kernel, stride, padding, ceil_mode)
    (8, 8, 2, 2, 0, False),  # VGG's 2x2 s2
    (9, 7, 2, 2, 0, True),  # pool3 style: odd size, ceil mode
    (9, 7, 2, 2, 0, False),
    (6, 6, 3, 1, 1, False),  # pool5: 3x3 s1 p1, overlapping windows
    (7, 8, 3, 2, 1, True),
    (10, 10, 3, 3, 1, True),
]


def test_ssd_output_sizes():
    assert pool_output_size(75, 2, 2, 0, ceil_mode=True) == 38  # pool3 of SSD300
    assert pool_output_size(75, 2, 2, 0, ceil_mode=False) == 37
    assert pool_output_size(300, 2, 2) == 150
    assert pool_output_size(19, 3, 1, 1) == 19  # pool5
    # ceil mode never starts a window on the right padding alone: 5 + 2*1 - 2 = 5 -> ceil(5/2) + 1 = 4, minus 1
    assert pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3


@pytest.mark.parametrize("height, width, kernel, stride, padding, ceil_mode", CASES)
def test_forward_and_backward_match_window_loops(xp, rng, height, width, kernel, stride, padding, ceil_mode):
    x = rng.standard_normal((2, 3, height, width)).astype(np.float32)
    out, cache = maxpool2d_forward(xp.asarray(x), kernel, stride, padding, ceil_mode)
    expected, _ = maxpool2d_naive(x, kernel, stride, padding, ceil_mode)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(out), expected)
    dout = rng.standard_normal(expected.shape).astype(np.float32)
    dout_device = xp.asarray(dout)
    dx = maxpool2d_backward(dout_device, cache)
    np.testing.assert_array_equal(to_numpy(dout_device), dout)  # dout untouched
    np.testing.assert_allclose(
        to_numpy(dx), maxpool2d_backward_naive(dout, x, kernel, stride, padding, ceil_mode), atol=1e-6
    )


@pytest.mark.parametrize("height, width, kernel, stride, padding, ceil_mode", CASES)
def test_backward_matches_finite_differences(xp, rng, height, width, kernel, stride, padding, ceil_mode):
    # distinct values a few eps apart never tie, so the max is differentiable everywhere checked
    values = rng.permutation(2 * 2 * height * width).astype(np.float64) * 0.01
    arrays = {"x": xp.asarray(values.reshape(2, 2, height, width))}
    caches = []

    def forward():
        out, cache = maxpool2d_forward(arrays["x"], kernel, stride, padding, ceil_mode)
        caches.append(cache)
        return out

    assert_gradients_close(forward, lambda dout: {"x": maxpool2d_backward(dout, caches[-1])}, arrays, rng)


def test_ties_route_to_the_first_maximum_in_row_major_order(xp):
    x = xp.asarray(np.array([[[[1, 5, 5, 0], [5, 2, 3, 3], [0, 0, 4, 4], [0, 0, 4, 4]]]], dtype=np.float32))
    out, cache = maxpool2d_forward(x, 2, 2)
    np.testing.assert_array_equal(to_numpy(out), [[[[5, 5], [0, 4]]]])
    dx = to_numpy(maxpool2d_backward(xp.asarray(np.array([[[[1, 2], [3, 4]]]], dtype=np.float32)), cache))
    expected = np.zeros((1, 1, 4, 4), dtype=np.float32)
    expected[0, 0, 0, 1] = 1  # window (0, 0): 5 at (0, 1) comes before 5 at (1, 0)
    expected[0, 0, 0, 2] = 2  # window (0, 1): the first 5
    expected[0, 0, 2, 0] = 3  # window (1, 0): all zeros, the first one
    expected[0, 0, 2, 2] = 4  # window (1, 1): all fours, the first one
    np.testing.assert_array_equal(dx, expected)


def test_overlapping_windows_add_their_gradients(xp):
    x = xp.zeros((1, 1, 3, 3), dtype=xp.float32)
    x[0, 0, 1, 1] = 1  # the centre wins all nine 3x3 windows of pool5 geometry
    out, cache = maxpool2d_forward(x, 3, 1, 1)
    assert float(out.min()) == 1
    dx = maxpool2d_backward(xp.ones((1, 1, 3, 3), dtype=xp.float32), cache)
    assert float(dx[0, 0, 1, 1]) == 9 and float(dx.sum()) == 9


def test_bad_input(xp):
    x = xp.zeros((1, 2, 6, 6), dtype=xp.float32)
    with pytest.raises(ValueError, match=r"x must be \(N, C, H, W\)"):
        maxpool2d_forward(x[0], 2)
    with pytest.raises(ValueError, match="padding 2 must be at most half the kernel size 3"):
        maxpool2d_forward(x, 3, 1, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        maxpool2d_forward(x.astype(xp.int32), 2)
    out, cache = maxpool2d_forward(x, 2)
    with pytest.raises(ValueError, match=r"dout must have shape \(N, C, Ho, Wo\) = \(1, 2, 3, 3\)"):
        maxpool2d_backward(xp.zeros((1, 2, 6, 6), dtype=xp.float32), cache)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional cross-check)")
@pytest.mark.parametrize("height, kernel, stride, padding, ceil_mode", [(75, 2, 2, 0, True), (19, 3, 1, 1, False), (11, 3, 2, 1, True)])
def test_matches_torch_max_pool2d(rng, height, kernel, stride, padding, ceil_mode):
    x = rng.standard_normal((2, 3, height, height))
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch.nn.functional.max_pool2d(tx, kernel, stride, padding, ceil_mode=ceil_mode)
    dout = rng.standard_normal(tuple(t_out.shape))
    t_out.backward(torch.tensor(dout))
    out, cache = maxpool2d_forward(x, kernel, stride, padding, ceil_mode)
    np.testing.assert_array_equal(out, t_out.detach().numpy())
    np.testing.assert_allclose(maxpool2d_backward(dout, cache), tx.grad.numpy(), atol=1e-12)
