"""im2col / col2im: the tap-loop fast path against per-pixel loops, and the adjoint identity."""

import numpy as np
import pytest

from minissd.backend import to_numpy
from minissd.nn import workspace
from minissd.nn.im2col import col2im, col2im_naive, conv_output_size, im2col, im2col_naive, tap_span

GEOMETRIES = [
    # (H, W, kernel, stride, padding, dilation)
    (7, 7, 3, 1, 1, 1),
    (7, 6, 3, 2, 1, 1),
    (8, 8, 3, 1, 2, 2),
    (9, 7, 3, 1, 4, 3),  # padding reaches past the kernel: some taps see only padding
    (6, 6, 1, 1, 0, 1),
    (6, 5, (2, 3), 3, 1, 1),
    (5, 5, 3, 2, 0, 2),
]


@pytest.mark.parametrize("height, width, kernel, stride, padding, dilation", GEOMETRIES)
def test_im2col_matches_naive_loops(xp, rng, height, width, kernel, stride, padding, dilation):
    x = rng.standard_normal((2, 3, height, width)).astype(np.float32)
    fast = im2col(xp.asarray(x), kernel, stride, padding, dilation)
    naive = im2col_naive(x, kernel, stride, padding, dilation)
    assert fast.dtype == np.float32
    assert fast.shape == naive.shape
    np.testing.assert_array_equal(to_numpy(fast), naive)


@pytest.mark.parametrize("height, width, kernel, stride, padding, dilation", GEOMETRIES)
def test_col2im_matches_naive_loops_and_is_the_adjoint(xp, rng, height, width, kernel, stride, padding, dilation):
    x = rng.standard_normal((2, 3, height, width))
    cols_shape = im2col_naive(x, kernel, stride, padding, dilation).shape
    cols = rng.standard_normal(cols_shape)
    fast = col2im(xp.asarray(cols), x.shape, stride, padding, dilation)
    np.testing.assert_allclose(to_numpy(fast), col2im_naive(cols, x.shape, stride, padding, dilation), atol=1e-12)
    # <im2col(x), c> == <x, col2im(c)>: col2im is im2col's transpose, hence the right backward
    left = float((to_numpy(im2col(xp.asarray(x), kernel, stride, padding, dilation)) * cols).sum())
    right = float((x * to_numpy(fast)).sum())
    assert left == pytest.approx(right, rel=1e-12)


def test_im2col_writes_into_a_reused_buffer_and_refills_the_padding(xp, rng):
    x = xp.asarray(rng.standard_normal((1, 2, 5, 5)).astype(np.float32))
    out = xp.full((1, 2, 3, 3, 5, 5), 7.0, dtype=xp.float32)  # stale values everywhere
    result = im2col(x, 3, 1, 1, 1, out=out)
    assert result is out
    np.testing.assert_array_equal(to_numpy(out), im2col_naive(to_numpy(x), 3, 1, 1, 1))


def test_output_size_formula_and_tap_span():
    assert conv_output_size(300, 3, 1, 1) == 300
    assert conv_output_size(19, 3, 1, 6, 6) == 19  # SSD300 fc6: dilation 6, padding 6
    assert conv_output_size(10, 3, 2, 1) == 5
    assert conv_output_size(5, 3, 1, 0) == 3
    # tap at offset 0, padding 1, stride 1 on a 5-wide input: output 0 reads padding
    assert tap_span(5, 5, 0, 1, 1) == (1, 5, 0)
    # stride 2, padding 1, offset 2 reads inputs 1, 3 (outputs 0, 1); output 2 would read 5
    assert tap_span(5, 3, 2, 2, 1) == (0, 2, 1)


def test_bad_input_is_named(xp):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        im2col(xp.zeros((3, 5, 5), dtype=xp.float32), 3)
    with pytest.raises(TypeError, match="float32 or float64"):
        im2col(xp.zeros((1, 1, 5, 5), dtype=xp.int32), 3)
    with pytest.raises(ValueError, match="does not fit a 2x2 input"):
        im2col(xp.zeros((1, 1, 2, 2), dtype=xp.float32), 3)
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        im2col(xp.zeros((1, 1, 5, 5), dtype=xp.float32), 3, stride=0)
    with pytest.raises(ValueError, match="do not come from an input of shape"):
        col2im(xp.zeros((1, 1, 3, 3, 5, 5), dtype=xp.float32), (1, 1, 6, 6), 1, 1)


def test_workspace_reuses_and_grows():
    workspace.clear()
    first = workspace.scratch("test", (2, 3), np.float32, np)
    again = workspace.scratch("test", (3, 2), np.float32, np)
    assert np.shares_memory(first, again)
    bigger = workspace.scratch("test", (4, 4), np.float32, np)
    assert bigger.shape == (4, 4) and workspace.nbytes() == 64
    workspace.clear()
    assert workspace.nbytes() == 0
