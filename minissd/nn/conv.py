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

With worker threads (``parallel``) and a chunk of several images (small maps), each thread
runs the whole layer for its own images (``_split_images``); otherwise every step splits its
channels or columns over them.

The columns are built a few images at a time into a reused buffer (design.md,
"Performance": this and writing the product straight into ``out`` are what
bring NumPy near PyTorch on the CPU) and rebuilt in the backward instead of
being kept: conv1_2 at 300 x 300 would hold 207 MB per image otherwise.
A 1x1 convolution with stride 1 and no padding needs no im2col at all: its
input already is the column matrix.

Every 3x3 convolution with stride 1 and padding 1 (all of VGG's and the heads')
on NumPy arrays goes through Winograd's F(2x2, 3x3) instead (``winograd.py``):
2.25x fewer multiplications, forward and backward, where it measured faster
(``use_winograd``). ``algorithm="im2col"`` forces the path above, the reference
the Winograd path is tested against; CuPy arrays always take it (with the raw
kernels of ``cuda_kernels``).

``conv2d_naive`` is the formula above as loops, the oracle of the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import get_array_module
from . import parallel, workspace
from .checks import check_float, check_nchw, check_same_dtype, check_shape, shape_of
from .im2col import col2im, im2col, im2col_geometry
from .winograd import filter_transform, tiles, winograd_conv3x3, winograd_conv3x3_backward

# Scratch bytes per chunk of images (at least one image per chunk). One image at
# a time is what measured fastest on the CPU for big layers; small late layers
# take several images per chunk to save Python overhead. On a GPU a bigger
# chunk means fewer, larger GEMMs.
CHUNK_BYTES = {"numpy": 8 << 20, "cupy": 256 << 20}

ALGORITHMS = ("auto", "im2col", "winograd")
# Winograd pays for its transforms only where the matrix products are big enough: from this many
# input channels and 2x2 output tiles per image on (38 x 38 has 19 * 19; measured with
# python -m minissd.bench ops, docs/performance.md)
WINOGRAD_MIN_CHANNELS = 128
WINOGRAD_MIN_TILES = 19 * 19
# A layer in training keeps its im2col columns for the backward (instead of building them again)
# when all of them take at most this much: the tiny SSD's at batch 32 (38 MB for its largest
# layer), not SSD300's conv1_2 (207 MB per image).
KEEP_COLUMNS_BYTES = 64 << 20


@dataclass
class ConvCache:
    """What ``conv2d_backward`` needs: the input, the weights and the geometry."""

    x: object
    w: object
    has_bias: bool
    stride: int
    padding: int
    dilation: int
    algorithm: str = "im2col"
    transformed: object = None  # Winograd's filter transform U (16, O, C), reused by the backward
    columns: object = None  # the forward's im2col columns (N, C, KH, KW, Ho, Wo), when it kept them


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


def winograd_applies(kernel_shape, stride: int, padding: int, dilation: int) -> bool:
    """True for the convolutions ``winograd_conv3x3`` computes: 3x3, stride 1, padding 1, no dilation."""
    return tuple(kernel_shape[-2:]) == (3, 3) and (stride, padding, dilation) == (1, 1, 1)


def use_winograd(x, w, stride: int, padding: int, dilation: int, algorithm: str, xp) -> bool:
    """Which path conv2d_forward takes (``algorithm`` "auto": Winograd on NumPy where it measured faster)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"conv2d_forward: algorithm must be one of {ALGORITHMS}; got {algorithm!r}")
    if algorithm == "im2col":
        return False
    applies = winograd_applies(w.shape, stride, padding, dilation)
    if algorithm == "winograd":
        if not applies:
            raise ValueError(
                f"conv2d_forward: algorithm='winograd' needs a 3x3 kernel, stride 1, padding 1, dilation 1; "
                f"got kernel {tuple(w.shape[-2:])}, stride {stride}, padding {padding}, dilation {dilation}"
            )
        return True
    ty, tx = tiles(x.shape[2], x.shape[3])
    return applies and xp is np and x.shape[1] >= WINOGRAD_MIN_CHANNELS and ty * tx >= WINOGRAD_MIN_TILES


def columns_shape(x_shape, w_shape, stride: int = 1, padding: int = 0, dilation: int = 1):
    """(N, C, KH, KW, Ho, Wo) of the im2col columns of a convolution, or None where none are built
    (a 1x1 stride-1 convolution, or a Winograd one: see ``use_winograd``)."""
    kh, kw, out_h, out_w = im2col_geometry(x_shape, (w_shape[2], w_shape[3]), stride, padding, dilation)
    if _is_pointwise(kh, kw, stride, padding):
        return None
    return (int(x_shape[0]), int(x_shape[1]), kh, kw, out_h, out_w)


def kept_columns(buffer, x, w, stride: int, padding: int, dilation: int, algorithm: str = "auto"):
    """The buffer a training layer passes as ``columns=``: ``buffer`` if it fits, a new one, or None.

    None (rebuild in the backward) where the convolution builds no columns or they would take
    more than ``KEEP_COLUMNS_BYTES``. The caller keeps the returned buffer for its next forward.
    """
    xp = get_array_module(x)
    if use_winograd(x, w, stride, padding, dilation, algorithm, xp):
        return None
    shape = columns_shape(x.shape, w.shape, stride, padding, dilation)
    if shape is None or int(np.prod(shape)) * x.itemsize > KEEP_COLUMNS_BYTES:
        return None
    if (buffer is not None and tuple(buffer.shape) == shape and buffer.dtype == x.dtype
            and get_array_module(buffer) is xp):
        return buffer
    return xp.empty(shape, dtype=x.dtype)


def _images_per_chunk(bytes_per_image: int, num_images: int, xp) -> int:
    budget = CHUNK_BYTES.get(xp.__name__, CHUNK_BYTES["numpy"])
    return max(1, min(num_images, budget // max(1, bytes_per_image)))


def conv2d_forward(x, w, b=None, stride: int = 1, padding: int = 0, dilation: int = 1, algorithm: str = "auto",
                   columns=None):
    """out, cache = conv2d_forward(x, w, b, stride, padding, dilation, algorithm, columns).

    x: (N, C, H, W); w: (O, C, KH, KW); b: (O,) or None; all one float dtype.
    algorithm: "auto" (Winograd where ``use_winograd`` says so, else im2col), "im2col" or
    "winograd" (3x3 stride-1 padding-1 only). The backward follows the forward's choice.
    columns: None, or an (N, C, KH, KW, Ho, Wo) array (``columns_shape``) to build the im2col
    columns in and keep for the backward, which then does not build them again. The cache
    refers to it: do not reuse it for another forward before this one's backward
    (``kept_columns`` gives a training layer its buffer). Ignored where no columns are built.
    Returns out (N, O, Ho, Wo) in x's dtype, and the cache for ``conv2d_backward``.
    """
    op = "conv2d_forward"
    _check_conv_args(x, w, b, op)
    xp = get_array_module(x, w, b)
    kh, kw, out_h, out_w = im2col_geometry(x.shape, (w.shape[2], w.shape[3]), stride, padding, dilation, op)
    n, c, height, width = x.shape
    o = w.shape[0]
    if use_winograd(x, w, stride, padding, dilation, algorithm, xp):
        u = filter_transform(w)  # (16, O, C), kept: the backward's dx reads it rotated
        return winograd_conv3x3(x, w, b, u), ConvCache(x, w, b is not None, stride, padding, dilation, "winograd", u)
    weights = w.reshape(o, c * kh * kw)  # (O, C*KH*KW), a view: the stored layout
    out = xp.empty((n, o, out_h, out_w), dtype=x.dtype)
    kept = None
    if _is_pointwise(kh, kw, stride, padding):
        _matmul_images(weights, x.reshape(n, c, height * width), out.reshape(n, o, out_h * out_w), xp)
    else:
        rows = c * kh * kw
        if columns is not None:
            check_shape(columns, (n, c, kh, kw, out_h, out_w), op, "columns", "(N, C, KH, KW, Ho, Wo)")
            check_same_dtype(x, columns, op, "x", "columns")
            kept = columns
        chunk = _images_per_chunk(rows * out_h * out_w * x.itemsize, n, xp)
        if _split_images(n, chunk, xp):
            def images(i0, i1, _):  # this thread's images, chunk by chunk: im2col, product, bias
                step = max(1, chunk // parallel.count())
                for start in range(i0, i1, step):
                    stop = min(i1, start + step)
                    cols = _chunk_columns(kept, (c, kh, kw, out_h, out_w), start, stop, x.dtype, xp)
                    im2col(x[start:stop], (kh, kw), stride, padding, dilation, out=cols)
                    target = out[start:stop]
                    xp.matmul(weights, cols.reshape(stop - start, rows, out_h * out_w),  # (n, C*KH*KW, Ho*Wo)
                              out=target.reshape(stop - start, o, out_h * out_w))  # (n, O, Ho*Wo)
                    if b is not None:
                        target += b.reshape(1, -1, 1, 1)

            parallel.run(images, n, xp)
            return out, ConvCache(x, w, b is not None, stride, padding, dilation, columns=kept)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            cols = _chunk_columns(kept, (c, kh, kw, out_h, out_w), start, stop, x.dtype, xp)
            _im2col(x[start:stop], (kh, kw), stride, padding, dilation, cols, xp)
            _matmul_images(
                weights,
                cols.reshape(stop - start, rows, out_h * out_w),  # (n, C*KH*KW, Ho*Wo)
                out[start:stop].reshape(stop - start, o, out_h * out_w),  # (n, O, Ho*Wo)
                xp,
            )
    if b is not None:  # in place: no second (N, O, Ho, Wo) array
        def add_bias(o0, o1, _):
            out[:, o0:o1] += b[o0:o1].reshape(1, -1, 1, 1)

        parallel.run(add_bias, o, xp)
    return out, ConvCache(x, w, b is not None, stride, padding, dilation, columns=kept)


def _chunk_columns(kept, tail, start: int, stop: int, dtype, xp):
    """Where images start..stop-1 have their im2col columns, (n, C, KH, KW, Ho, Wo): the rows of the
    ``kept`` array (the forward's, kept for the backward), or, when it is None, the calling thread's
    scratch buffer ``tail`` = (C, KH, KW, Ho, Wo) for the caller to fill."""
    if kept is not None:
        return kept[start:stop]
    return workspace.scratch("cols", (stop - start, *tail), dtype, xp)


def _split_images(num_images: int, chunk: int, xp) -> bool:
    """Whether the im2col path splits the images over the worker threads, each thread doing the
    whole layer (im2col, products, bias; in the backward also col2im and its part of dw) for its
    own images in one hand-off, instead of splitting each step's channels or columns: where a
    chunk holds several images (small maps: every layer of the tiny SSD at batch 32, SSD300's
    late ones at batch 4). Each hand-off to a thread costs ~0.1 ms on these machines, and a
    layer took 3-4 of them; measured 1.05-1.23x on the tiny SSD's convolutions (forward)."""
    threads = parallel.count()
    return threads > 1 and xp is np and num_images >= threads and chunk >= threads


def _im2col(x, kernel, stride, padding, dilation, cols, xp):
    """im2col into cols, the channels split over the worker threads."""
    parallel.run(lambda c0, c1, _: im2col(x[:, c0:c1], kernel, stride, padding, dilation, out=cols[:, c0:c1]),
                 x.shape[1], xp)


def _matmul_images(a, b, out, xp):
    """out[i] = a @ b[i] for every image: a (M, K), b (n, K, N), out (n, M, N), split over the threads."""
    count = b.shape[0]
    if count >= parallel.count():
        parallel.run(lambda i0, i1, _: xp.matmul(a, b[i0:i1], out=out[i0:i1]), count, xp)
    else:
        for image in range(count):
            parallel.matmul(a, b[image], out[image], xp)


def _filter_gradient(grad, inputs, dw, xp):
    """dw (O, K) += sum over images of grad[i] (O, N) @ inputs[i]^T (N, K), K split over the threads."""
    def part(k0, k1, _):
        dw[:, k0:k1] += xp.matmul(grad, inputs[:, k0:k1].transpose(0, 2, 1)).sum(axis=0)

    parallel.run(part, dw.shape[1], xp)


def bias_gradient(dout, xp):
    """db (O,) = sum of dout (N, O, H, W) over images and pixels (contiguous sums, channels split)."""
    n, o = dout.shape[:2]
    db = xp.empty(o, dtype=dout.dtype)

    def part(o0, o1, _):
        db[o0:o1] = dout[:, o0:o1].reshape(n, o1 - o0, dout.shape[2] * dout.shape[3]).sum(axis=2).sum(axis=0)

    parallel.run(part, o, xp)
    return db


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
    dw = xp.zeros((o, c * kh * kw), dtype=x.dtype)  # (O, C*KH*KW)
    dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None
    rows = c * kh * kw
    chunk = _images_per_chunk(rows * out_h * out_w * x.itemsize, n, xp)
    if cache.algorithm != "winograd" and not _is_pointwise(kh, kw, stride, padding) and _split_images(n, chunk, xp):
        db = _backward_by_images(dout, cache, weights, dw, dx, chunk, xp)  # db too, in the same hand-off
        return dx, dw.reshape(w.shape), db
    db = bias_gradient(dout, xp) if cache.has_bias else None
    if cache.algorithm == "winograd":
        dx, dw = winograd_conv3x3_backward(dout, x, w, need_dx, cache.transformed)
        return dx, dw, db
    if _is_pointwise(kh, kw, stride, padding):
        grad = dout.reshape(n, o, out_h * out_w)  # (N, O, H*W)
        _filter_gradient(grad, x.reshape(n, c, height * width), dw, xp)  # inputs (N, C, H*W)
        if need_dx:
            _matmul_images(weights.T, grad, dx.reshape(n, c, height * width), xp)
        return dx, dw.reshape(w.shape), db
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        count = stop - start
        cols = _chunk_columns(cache.columns, (c, kh, kw, out_h, out_w), start, stop, x.dtype, xp)
        if cache.columns is None:  # not kept by the forward: build them again
            _im2col(x[start:stop], (kh, kw), stride, padding, dilation, cols, xp)
        cols = cols.reshape(count, rows, out_h * out_w)  # (n, C*KH*KW, Ho*Wo)
        grad = dout[start:stop].reshape(count, o, out_h * out_w)  # (n, O, Ho*Wo)
        _filter_gradient(grad, cols, dw, xp)
        if need_dx:
            dcols = workspace.scratch("dcols", (count, rows, out_h * out_w), x.dtype, xp)
            _matmul_images(weights.T, grad, dcols, xp)
            dcols = dcols.reshape(count, c, kh, kw, out_h, out_w)  # (n, C, KH, KW, Ho, Wo)
            target = dx[start:stop]
            parallel.run(lambda c0, c1, _: col2im(dcols[:, c0:c1], (count, c1 - c0, height, width), stride,
                                                  padding, dilation, out=target[:, c0:c1]), c, xp)
    return dx, dw.reshape(w.shape), db


def _backward_by_images(dout, cache: ConvCache, weights, dw, dx, chunk: int, xp):
    """The im2col backward with the images split over the worker threads (``_split_images``).

    Each thread rebuilds (or reads the kept) columns of its images, adds their share of dw (and
    db) into arrays of its own, and writes their dx through its own dcols and col2im; the shares
    are added at the end (sums over the images in another order: the same up to rounding).
    Adds into dw (O, C*KH*KW); writes dx (N, C, H, W) unless it is None; returns db (O,) or None.
    """
    x, w = cache.x, cache.w
    stride, padding, dilation = cache.stride, cache.padding, cache.dilation
    n, c, height, width = x.shape
    o, _, kh, kw = w.shape
    out_h, out_w = dout.shape[2], dout.shape[3]
    rows = c * kh * kw
    shares = [dw] + [xp.zeros_like(dw) for _ in range(parallel.count() - 1)]  # (O, C*KH*KW) each
    bias_shares = [xp.zeros(o, dtype=x.dtype) for _ in range(parallel.count())] if cache.has_bias else None

    def images(i0, i1, part):
        step = max(1, chunk // parallel.count())
        for start in range(i0, i1, step):
            stop = min(i1, start + step)
            count = stop - start
            cols = _chunk_columns(cache.columns, (c, kh, kw, out_h, out_w), start, stop, x.dtype, xp)
            if cache.columns is None:  # not kept by the forward: build them again
                im2col(x[start:stop], (kh, kw), stride, padding, dilation, out=cols)
            cols = cols.reshape(count, rows, out_h * out_w)  # (n, C*KH*KW, Ho*Wo)
            grad = dout[start:stop].reshape(count, o, out_h * out_w)  # (n, O, Ho*Wo)
            shares[part] += xp.matmul(grad, cols.transpose(0, 2, 1)).sum(axis=0)  # (O, C*KH*KW)
            if bias_shares is not None:
                bias_shares[part] += grad.sum(axis=2).sum(axis=0)  # (O,)
            if dx is not None:
                dcols = workspace.scratch("dcols", (count, rows, out_h * out_w), x.dtype, xp)
                xp.matmul(weights.T, grad, out=dcols)
                col2im(dcols.reshape(count, c, kh, kw, out_h, out_w), (count, c, height, width), stride, padding,
                       dilation, out=dx[start:stop])

    parallel.run(images, n, xp)
    for share in shares[1:]:
        dw += share
    if bias_shares is None:
        return None
    for share in bias_shares[1:]:
        bias_shares[0] += share
    return bias_shares[0]


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
