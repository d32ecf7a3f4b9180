"""2-D max pooling with PyTorch's floor / ceil_mode output sizes, and its backward.

    out[n, c, y, x] = max over the K x K window at (y*s - p, x*s - p) of x[n, c, ., .]

Padding counts as -inf (it never wins). Output size along an axis of length H:

    floor mode: Ho = floor((H + 2p - K) / s) + 1
    ceil mode:  Ho = ceil((H + 2p - K) / s) + 1, minus one if the last window
                would start beyond the input and its left padding ((Ho-1)*s >= H + p)

SSD300 uses 2x2 stride 2 (floor), ceil mode for pool3 (75 -> 38, the last
window covers only row 74), and pool5 = 3x3, stride 1, padding 1.

Backward: the gradient of a max is 1 at the element that won and 0 elsewhere,
so dout[n, c, y, x] goes to the window's maximum; on ties, to the first in
row-major window order (as PyTorch's CPU kernel). Windows may overlap (pool5),
so an input pixel adds the gradients of every window it won.

Fast path: the max is taken over the K*K kernel taps, each a strided view of
x, with ``xp.maximum(out, view, out=out)``: no padded copy, no (..., K*K)
window array, no argmax in the forward. The backward finds the winners tap by
tap in the same order (the first tap whose value equals the max, per output)
and adds dout there through the same strided views. On CuPy one CUDA kernel
does the forward with its argmax and ``cupyx.scatter_add`` the backward.
``maxpool2d_naive`` / ``maxpool2d_backward_naive`` are per-window loops, the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from . import cuda_kernels, parallel
from .checks import check_nchw, check_positive_int, check_same_dtype, check_shape
from .im2col import tap_slice, tap_span


def pool_output_size(size: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
    """Ho along one axis, PyTorch's rule (see the module docstring)."""
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start on the right padding only
    return out


@dataclass
class PoolCache:
    """What ``maxpool2d_backward`` needs (argmax only where the forward got it for free)."""

    x: object
    out: object
    kernel_size: int
    stride: int
    padding: int
    argmax: object = None


def _pool_args(x, kernel_size, stride, padding, op: str):
    check_nchw(x, op)
    k = check_positive_int(kernel_size, op, "kernel_size")
    s = k if stride is None else check_positive_int(stride, op, "stride")
    p = check_positive_int(padding, op, "padding", minimum=0)
    if p > k // 2:
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k} (as in PyTorch)")
    return k, s, p


def _window_taps(height: int, width: int, out_h: int, out_w: int, k: int, s: int, p: int):
    """Every tap (i, j) of the k x k window that reaches the input, in row-major order, as
    (lo_y, hi_y, lo_x, hi_x, rows, cols): outputs [lo_y, hi_y) x [lo_x, hi_x) read the input
    pixels x[..., rows, cols] at that tap. Taps that fall wholly in the padding are skipped."""
    for i in range(k):
        lo_y, hi_y, start_y = tap_span(height, out_h, i, s, p)
        for j in range(k):
            lo_x, hi_x, start_x = tap_span(width, out_w, j, s, p)
            if hi_y <= lo_y or hi_x <= lo_x:
                continue
            yield lo_y, hi_y, lo_x, hi_x, tap_slice(lo_y, hi_y, start_y, s), tap_slice(lo_x, hi_x, start_x, s)


def maxpool2d_forward(x, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False):
    """out, cache = maxpool2d_forward(x, kernel_size, stride, padding, ceil_mode).

    x: (N, C, H, W); stride defaults to kernel_size.
    Returns out (N, C, Ho, Wo) in x's dtype and the cache for ``maxpool2d_backward``.
    The cache keeps references to x and out: do not modify them in place before the backward.
    """
    op = "maxpool2d_forward"
    k, s, p = _pool_args(x, kernel_size, stride, padding, op)
    xp = get_array_module(x)
    n, c, height, width = x.shape
    out_h = pool_output_size(height, k, s, p, ceil_mode)
    out_w = pool_output_size(width, k, s, p, ceil_mode)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"{op}: a {k}x{k} window (padding {p}) does not fit a {height}x{width} input")
    if cuda_kernels.use_for(xp):
        out, argmax = cuda_kernels.maxpool_forward(x, k, s, p, out_h, out_w)
        return out, PoolCache(x, out, k, s, p, argmax)
    out = xp.empty((n, c, out_h, out_w), dtype=x.dtype)

    def part(c0, c1, _):  # channels c0..c1-1 (split over the threads, ``parallel``)
        target_all = out[:, c0:c1]
        started = False
        for lo_y, hi_y, lo_x, hi_x, rows, cols in _window_taps(height, width, out_h, out_w, k, s, p):
            view = x[:, c0:c1, rows, cols]
            if not started:
                started = True
                if (lo_y, hi_y, lo_x, hi_x) == (0, out_h, 0, out_w):
                    target_all[...] = view  # the first tap covers every output: start from it
                    continue
                target_all[...] = -xp.inf
            target = target_all[:, :, lo_y:hi_y, lo_x:hi_x]
            xp.maximum(target, view, out=target)

    parallel.run(part, c, xp)
    return out, PoolCache(x, out, k, s, p)


def maxpool2d_backward(dout, cache: PoolCache):
    """dx = maxpool2d_backward(dout, cache): dout (N, C, Ho, Wo) -> dx (N, C, H, W).

    Each dout entry goes to the first maximum of its window; dout is not modified.
    (A non-finite dout entry becomes NaN on its window's other pixels: 0 * inf.)
    """
    x, out = cache.x, cache.out
    k, s, p = cache.kernel_size, cache.stride, cache.padding
    check_shape(dout, tuple(out.shape), "maxpool2d_backward", "dout", "(N, C, Ho, Wo)")
    check_same_dtype(x, dout, "maxpool2d_backward", "x", "dout")
    xp = get_array_module(dout, x)
    if cache.argmax is not None:
        return cuda_kernels.maxpool_backward(dout, cache.argmax, x.shape)
    _, _, height, width = x.shape
    _, _, out_h, out_w = out.shape
    dx = xp.zeros(x.shape, dtype=x.dtype)
    # when stride >= kernel no two windows share a pixel, so each tap's pixels can be assigned
    disjoint = s >= k
    unrouted = xp.ones(out.shape, dtype=bool)  # outputs whose winner is not found yet
    wins_buffer = xp.empty(out.shape, dtype=bool)  # reused by every tap: no temporaries
    grad_buffer = xp.empty(out.shape, dtype=dout.dtype)

    def part(c0, c1, _):  # channels c0..c1-1 (split over the threads, ``parallel``)
        channels = slice(c0, c1)
        for lo_y, hi_y, lo_x, hi_x, rows, cols in _window_taps(height, width, out_h, out_w, k, s, p):
            outputs = (slice(None), channels, slice(lo_y, hi_y), slice(lo_x, hi_x))
            pending = unrouted[outputs]  # views: updated in place below
            wins = wins_buffer[outputs]
            xp.equal(x[:, channels, rows, cols], out[outputs], out=wins)
            xp.logical_and(wins, pending, out=wins)
            # dout where this tap won, 0 elsewhere (a product: measured faster than where())
            grad = xp.multiply(dout[outputs], wins, out=grad_buffer[outputs])
            if disjoint:
                dx[:, channels, rows, cols] = grad
            else:  # within one tap distinct outputs read distinct pixels, so += is exact
                dx[:, channels, rows, cols] += grad
            xp.greater(pending, wins, out=pending)  # pending and not won

    parallel.run(part, x.shape[1], xp)
    return dx


# --------------------------------------------------------------------------
# the oracles: one window at a time
# --------------------------------------------------------------------------

def maxpool2d_naive(x, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False):
    """out, argmax: per-window loops (NumPy). argmax (N, C, Ho, Wo) is the flat h*W + w index."""
    x = np.asarray(x)
    k, s, p = _pool_args(x, kernel_size, stride, padding, "maxpool2d_naive")
    n, c, height, width = x.shape
    out_h = pool_output_size(height, k, s, p, ceil_mode)
    out_w = pool_output_size(width, k, s, p, ceil_mode)
    out = np.empty((n, c, out_h, out_w), dtype=x.dtype)
    argmax = np.empty((n, c, out_h, out_w), dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for y in range(out_h):
                for x_out in range(out_w):
                    best, best_index = None, -1
                    for i in range(k):
                        for j in range(k):
                            row, col = y * s - p + i, x_out * s - p + j
                            if 0 <= row < height and 0 <= col < width:
                                value = x[b, ch, row, col]
                                if best is None or value > best:  # strict: the first max wins
                                    best, best_index = value, row * width + col
                    out[b, ch, y, x_out] = best
                    argmax[b, ch, y, x_out] = best_index
    return out, argmax


def maxpool2d_backward_naive(dout, x, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False):
    """dx: each dout entry added at its window's first maximum (NumPy loops)."""
    x, dout = np.asarray(x), np.asarray(dout)
    _, argmax = maxpool2d_naive(x, kernel_size, stride, padding, ceil_mode)
    n, c, height, width = x.shape
    dx = np.zeros((n, c, height * width), dtype=x.dtype)
    for b in range(n):
        for ch in range(c):
            for index, grad in zip(argmax[b, ch].ravel(), dout[b, ch].ravel()):
                dx[b, ch, index] += grad
    return dx.reshape(x.shape)
