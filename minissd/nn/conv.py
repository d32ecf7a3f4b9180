"""2-D convolution (cross-correlation, as in every framework) with its exact backward.

    out[n, o, y, x] = b[o] + sum over c, i, j of
                      w[o, c, i, j] * x_padded[n, c, y*s + i*d, x*s + j*d]

x (N, C, H, W), w (O, C, KH, KW) in the PyTorch/Caffe layout (weights import
without transposes), b (O,) or None; s stride, p padding, d dilation
(fc6 of SSD300 is a 3x3 conv with d = 6, p = 6), and

    Ho = floor((H + 2p - d(KH-1) - 1) / s) + 1     (Wo alike)

As one matrix product per image, with cols = im2col(x[n]) of shape (C*KH*KW, Ho*Wo)
and W = w.reshape(O, C*KH*KW):

    out[n] = W @ cols + b                 (O, Ho*Wo)
    dW     = sum over n of dout[n] @ cols.T
    db     = sum over n, y, x of dout
    dcols  = W.T @ dout[n],   dx[n] = col2im(dcols)

The columns are built a few images at a time into a reused buffer (design.md,
"Performance": this and writing the product straight into ``out`` are what
bring NumPy near PyTorch on the CPU) and rebuilt in the backward instead of
being kept: conv1_2 at 300 x 300 would hold 207 MB per image otherwise.
A 1x1 convolution with stride 1 and no padding needs no im2col at all: its
input already is the column matrix.

``conv2d_naive`` is the formula above as loops, the oracle of the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from . import workspace
from .checks import check_float, check_nchw, check_same_dtype, check_shape, shape_of
from .im2col import col2im, im2col, im2col_geometry

# Scratch bytes per chunk of images (at least one image per chunk). One image at
# a time is what measured fastest on the CPU for big layers; small late layers
# take several images per chunk to save Python overhead. On a GPU a bigger
# chunk means fewer, larger GEMMs.
CHUNK_BYTES = {"numpy": 8 << 20, "cupy": 256 << 20}


@dataclass
class ConvCache:
    """What ``conv2d_backward`` needs: the input, the weights and the geometry."""

    x: object
    w: object
    has_bias: bool
    stride: int
    padding: int
    dilation: int


def _check_conv_args(x, w, b, op: str):
    check_nchw(x, op)
    if getattr(w, "ndim", None) != 4:
        raise ValueError(f"{op}: w must be (O, C, KH, KW); got shape {shape_of(w)}")
    check_float(w, op, "w")
    check_same_dtype(x, w, op, "x", "w")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"{op}: x has C = {x.shape[1]} channels (shape {shape_of(x)}) but w expects "
            f"(O, C, KH, KW) = {shape_of(w)}, C = {w.shape[1]}"
        )
    if b is not None:
        check_shape(b, (w.shape[0],), op, "b", "(O,)")
        check_same_dtype(x, b, op, "x", "b")


def _is_pointwise(kh, kw, stride, padding) -> bool:
    return kh == 1 and kw == 1 and stride == 1 and padding == 0


def _images_per_chunk(bytes_per_image: int, num_images: int, xp) -> int:
    budget = CHUNK_BYTES.get(xp.__name__, CHUNK_BYTES["numpy"])
    return max(1, min(num_images, budget // max(1, bytes_per_image)))


def conv2d_forward(x, w, b=None, stride: int = 1, padding: int = 0, dilation: int = 1):
    """out, cache = conv2d_forward(x, w, b, stride, padding, dilation).

    x: (N, C, H, W); w: (O, C, KH, KW); b: (O,) or None; all one float dtype.
    Returns out (N, O, Ho, Wo) in x's dtype, and the cache for ``conv2d_backward``.
    """
    op = "conv2d_forward"
    _check_conv_args(x, w, b, op)
    xp = get_array_module(x, w, b)
    kh, kw, out_h, out_w = im2col_geometry(x.shape, (w.shape[2], w.shape[3]), stride, padding, dilation, op)
    n, c, height, width = x.shape
    o = w.shape[0]
    weights = w.reshape(o, c * kh * kw)  # (O, C*KH*KW), a view: the stored layout
    out = xp.empty((n, o, out_h, out_w), dtype=x.dtype)
    if _is_pointwise(kh, kw, stride, padding):
        xp.matmul(weights, x.reshape(n, c, height * width), out=out.reshape(n, o, out_h * out_w))
    else:
        rows = c * kh * kw
        chunk = _images_per_chunk(rows * out_h * out_w * x.itemsize, n, xp)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            cols = workspace.scratch("cols", (stop - start, c, kh, kw, out_h, out_w), x.dtype, xp)
            im2col(x[start:stop], (kh, kw), stride, padding, dilation, out=cols)
            xp.matmul(
                weights,
                cols.reshape(stop - start, rows, out_h * out_w),  # (n, C*KH*KW, Ho*Wo)
                out=out[start:stop].reshape(stop - start, o, out_h * out_w),  # (n, O, Ho*Wo)
            )
    if b is not None:
        out += b.reshape(1, o, 1, 1)  # in place: no second (N, O, Ho, Wo) array
    return out, ConvCache(x, w, b is not None, stride, padding, dilation)


def conv2d_backward(dout, cache: ConvCache, need_dx: bool = True):
    """dx, dw, db = conv2d_backward(dout, cache).

    dout: (N, O, Ho, Wo), the gradient of the loss with respect to ``out``; never modified.
    Returns dx (N, C, H, W) (None when ``need_dx`` is False, e.g. for the
    network's first layer), dw (O, C, KH, KW), db (O,) (None without a bias).
    """
    x, w = cache.x, cache.w
    stride, padding, dilation = cache.stride, cache.padding, cache.dilation
    n, c, height, width = x.shape
    o, _, kh, kw = w.shape
    out_h, out_w = im2col_geometry(x.shape, (kh, kw), stride, padding, dilation, "conv2d_backward")[2:]
    check_shape(dout, (n, o, out_h, out_w), "conv2d_backward", "dout", "(N, O, Ho, Wo)")
    check_same_dtype(x, dout, "conv2d_backward", "x", "dout")
    xp = get_array_module(dout, x)
    weights = w.reshape(o, c * kh * kw)  # (O, C*KH*KW)
    db = dout.sum(axis=(0, 2, 3)) if cache.has_bias else None
    dw = xp.zeros((o, c * kh * kw), dtype=x.dtype)  # (O, C*KH*KW)
    dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None
    if _is_pointwise(kh, kw, stride, padding):
        grad = dout.reshape(n, o, out_h * out_w)  # (N, O, H*W)
        inputs = x.reshape(n, c, height * width)  # (N, C, H*W)
        for image in range(n):
            dw += grad[image] @ inputs[image].T
        if need_dx:
            xp.matmul(weights.T, grad, out=dx.reshape(n, c, height * width))
        return dx, dw.reshape(w.shape), db
    rows = c * kh * kw
    chunk = _images_per_chunk(rows * out_h * out_w * x.itemsize, n, xp)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        count = stop - start
        cols = workspace.scratch("cols", (count, c, kh, kw, out_h, out_w), x.dtype, xp)
        im2col(x[start:stop], (kh, kw), stride, padding, dilation, out=cols)
        cols = cols.reshape(count, rows, out_h * out_w)  # (n, C*KH*KW, Ho*Wo)
        grad = dout[start:stop].reshape(count, o, out_h * out_w)  # (n, O, Ho*Wo)
        if count == 1:
            dw += grad[0] @ cols[0].T
        else:
            # one GEMM over the chunk: (O, n*Ho*Wo) @ (n*Ho*Wo, C*KH*KW)
            dw += grad.transpose(1, 0, 2).reshape(o, -1) @ cols.transpose(1, 0, 2).reshape(rows, -1).T
        if need_dx:
            dcols = workspace.scratch("dcols", (count, rows, out_h * out_w), x.dtype, xp)
            xp.matmul(weights.T, grad, out=dcols)
            col2im(
                dcols.reshape(count, c, kh, kw, out_h, out_w),  # (n, C, KH, KW, Ho, Wo)
                (count, c, height, width), stride, padding, dilation, out=dx[start:stop],
            )
    return dx, dw.reshape(w.shape), db


def conv2d_naive(x, w, b=None, stride: int = 1, padding: int = 0, dilation: int = 1):
    """The convolution formula as loops over images, output channels and pixels (NumPy)."""
    x, w = np.asarray(x), np.asarray(w)
    kh, kw, out_h, out_w = im2col_geometry(x.shape, (w.shape[2], w.shape[3]), stride, padding, dilation, "conv2d_naive")
    n = x.shape[0]
    o = w.shape[0]
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((n, o, out_h, out_w), dtype=x.dtype)
    for image in range(n):
        for channel in range(o):
            for y in range(out_h):
                for x_out in range(out_w):
                    window = padded[
                        image, :,
                        y * stride : y * stride + dilation * (kh - 1) + 1 : dilation,
                        x_out * stride : x_out * stride + dilation * (kw - 1) + 1 : dilation,
                    ]  # (C, KH, KW)
                    out[image, channel, y, x_out] = np.sum(window * w[channel])
            if b is not None:
                out[image, channel] += b[channel]
    return out
