"""im2col / col2im: a convolution as one matrix product.

A convolution with an (O, C, KH, KW) kernel sums, for every output pixel, the
C*KH*KW input values under the kernel. im2col copies those values into the
columns of a matrix,

    cols[n, c, i, j, y, x] = x_padded[n, c, y*s + i*d, x*s + j*d]

(s stride, d dilation, p padding, x_padded the input with p zeros on every
side), so that the convolution is ``w.reshape(O, C*KH*KW) @ cols`` per image.
The (C, KH, KW, Ho, Wo) order matches the stored weight layout, so the
weights are used as they are, without a transpose.

col2im is the adjoint (the transpose) of im2col: it adds every column entry
back onto the input pixel it was copied from. Pixels under several kernel
taps receive the sum of their copies' gradients; padding positions are dropped.

The fast versions loop over the KH*KW kernel taps, not over pixels: for a
fixed tap (i, j) the entries form one strided slice of the input, copied in
a single call. They never build a padded copy of the input either: the
output positions whose tap falls on padding are filled with zeros directly
(``tap_span`` says which ones). The same code runs on CuPy, where a raw CUDA
kernel takes over (``cuda_kernels``). ``im2col_naive`` and ``col2im_naive``
are plain per-pixel loops, kept as the oracle of the tests.

Output size along one axis of length H (PyTorch's and Caffe's formula):

    Ho = floor((H + 2p - d*(K - 1) - 1) / s) + 1
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from . import cuda_kernels
from .checks import check_nchw, check_positive_int


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Ho = floor((H + 2p - d(K-1) - 1) / s) + 1 along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def tap_span(size: int, out_size: int, offset: int, stride: int, padding: int) -> tuple[int, int, int]:
    """Which outputs of a kernel tap read real input, not padding.

    A tap at ``offset`` = i*d reads input index ``o*stride - padding + offset``
    for output ``o``. Returns ``(lo, hi, start)``: outputs lo <= o < hi read
    inside [0, size), output ``lo`` reads input ``start``. hi <= lo when the
    tap sees only padding.
    """
    first = offset - padding  # input index read by output 0
    lo = max(0, -(first // stride))  # ceil(-first / stride), the first o with o*s + first >= 0
    hi = min(out_size, (size - 1 - first) // stride + 1)
    return lo, hi, lo * stride + first


def tap_slice(lo: int, hi: int, start: int, stride: int) -> slice:
    """The input slice read by outputs lo..hi-1 of a tap (see ``tap_span``)."""
    return slice(start, start + (hi - lo - 1) * stride + 1, stride)


def _kernel_pair(kernel_size, op: str) -> tuple[int, int]:
    if isinstance(kernel_size, (tuple, list)):
        if len(kernel_size) != 2:
            raise ValueError(f"{op}: kernel_size must be an int or (KH, KW); got {kernel_size!r}")
        return (check_positive_int(kernel_size[0], op, "KH"), check_positive_int(kernel_size[1], op, "KW"))
    k = check_positive_int(kernel_size, op, "kernel_size")
    return k, k


def im2col_geometry(input_shape, kernel_size, stride: int = 1, padding: int = 0, dilation: int = 1, op: str = "im2col"):
    """Checked (KH, KW, Ho, Wo) of an im2col of an (N, C, H, W) input; a clear error when empty."""
    kh, kw = _kernel_pair(kernel_size, op)
    check_positive_int(stride, op, "stride")
    check_positive_int(dilation, op, "dilation")
    check_positive_int(padding, op, "padding", minimum=0)
    height, width = int(input_shape[2]), int(input_shape[3])
    out_h = conv_output_size(height, kh, stride, padding, dilation)
    out_w = conv_output_size(width, kw, stride, padding, dilation)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"{op}: a {kh}x{kw} kernel (dilation {dilation}, padding {padding}, stride {stride}) "
            f"does not fit a {height}x{width} input (output would be {out_h}x{out_w})"
        )
    return kh, kw, out_h, out_w


def im2col(x, kernel_size, stride: int = 1, padding: int = 0, dilation: int = 1, out=None):
    """Unfold the kernel windows of ``x`` into columns.

    x:   (N, C, H, W).
    out: optional (N, C, KH, KW, Ho, Wo) array to write into (a reused buffer).
    Returns cols (N, C, KH, KW, Ho, Wo), x's dtype; cols[n].reshape(C*KH*KW, Ho*Wo)
    is the matrix of image n.
    """
    check_nchw(x, "im2col")
    xp = get_array_module(x, out)
    kh, kw, out_h, out_w = im2col_geometry(x.shape, kernel_size, stride, padding, dilation)
    n, c, height, width = x.shape
    shape = (n, c, kh, kw, out_h, out_w)
    if out is None:
        out = xp.empty(shape, dtype=x.dtype)
    elif tuple(out.shape) != shape or out.dtype != x.dtype:
        raise ValueError(f"im2col: out must be {shape} {x.dtype}; got {tuple(out.shape)} {out.dtype}")
    if cuda_kernels.use_for(xp):
        return cuda_kernels.im2col(x, kh, kw, stride, padding, dilation, out)
    for i in range(kh):
        lo_y, hi_y, start_y = tap_span(height, out_h, i * dilation, stride, padding)
        for j in range(kw):
            lo_x, hi_x, start_x = tap_span(width, out_w, j * dilation, stride, padding)
            tap = out[:, :, i, j]  # (N, C, Ho, Wo), a view
            if hi_y <= lo_y or hi_x <= lo_x:  # the tap sees only padding
                tap[...] = 0
                continue
            tap[:, :, lo_y:hi_y, lo_x:hi_x] = x[
                :, :, tap_slice(lo_y, hi_y, start_y, stride), tap_slice(lo_x, hi_x, start_x, stride)
            ]
            # the padding border of this tap, written directly instead of padding x
            tap[:, :, :lo_y] = 0
            tap[:, :, hi_y:] = 0
            tap[:, :, lo_y:hi_y, :lo_x] = 0
            tap[:, :, lo_y:hi_y, hi_x:] = 0
    return out


def col2im(cols, input_shape, stride: int = 1, padding: int = 0, dilation: int = 1, out=None):
    """The adjoint of ``im2col``: add every column entry back onto its input pixel.

    cols:        (N, C, KH, KW, Ho, Wo).
    input_shape: (N, C, H, W) of the input that was unfolded.
    out:         optional (N, C, H, W) array to write into (overwritten).
    Returns dx (N, C, H, W): dx[n, c, h, w] = sum of cols entries copied from (h, w).
    """
    if getattr(cols, "ndim", None) != 6:
        raise ValueError(f"col2im: cols must be (N, C, KH, KW, Ho, Wo); got shape {tuple(getattr(cols, 'shape', ()))}")
    xp = get_array_module(cols, out)
    n, c, kh, kw, out_h, out_w = (int(d) for d in cols.shape)
    input_shape = tuple(int(d) for d in input_shape)
    _, _, geo_h, geo_w = im2col_geometry(input_shape, (kh, kw), stride, padding, dilation, "col2im")
    if input_shape[:2] != (n, c) or (geo_h, geo_w) != (out_h, out_w):
        raise ValueError(
            f"col2im: cols {tuple(cols.shape)} do not come from an input of shape {input_shape} "
            f"with stride {stride}, padding {padding}, dilation {dilation} "
            f"(that gives (N, C, KH, KW, Ho, Wo) = {(input_shape[0], input_shape[1], kh, kw, geo_h, geo_w)})"
        )
    if out is None:
        out = xp.empty(input_shape, dtype=cols.dtype)
    elif tuple(out.shape) != input_shape or out.dtype != cols.dtype:
        raise ValueError(f"col2im: out must be {input_shape} {cols.dtype}; got {tuple(out.shape)} {out.dtype}")
    if cuda_kernels.use_for(xp):
        return cuda_kernels.col2im(cols, input_shape, stride, padding, dilation, out)
    height, width = input_shape[2], input_shape[3]
    out[...] = 0
    for i in range(kh):
        lo_y, hi_y, start_y = tap_span(height, out_h, i * dilation, stride, padding)
        for j in range(kw):
            lo_x, hi_x, start_x = tap_span(width, out_w, j * dilation, stride, padding)
            if hi_y <= lo_y or hi_x <= lo_x:
                continue
            # one tap maps distinct outputs to distinct pixels, so a strided += is exact
            out[:, :, tap_slice(lo_y, hi_y, start_y, stride), tap_slice(lo_x, hi_x, start_x, stride)] += (
                cols[:, :, i, j, lo_y:hi_y, lo_x:hi_x]
            )
    return out


# --------------------------------------------------------------------------
# the oracles: one pixel at a time
# --------------------------------------------------------------------------

def im2col_naive(x, kernel_size, stride: int = 1, padding: int = 0, dilation: int = 1):
    """``im2col`` as plain loops over every column entry (NumPy, small inputs only)."""
    x = np.asarray(x)
    kh, kw, out_h, out_w = im2col_geometry(x.shape, kernel_size, stride, padding, dilation, "im2col_naive")
    n, c, height, width = x.shape
    cols = np.zeros((n, c, kh, kw, out_h, out_w), dtype=x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    for y in range(out_h):
                        for x_out in range(out_w):
                            row = y * stride - padding + i * dilation
                            col = x_out * stride - padding + j * dilation
                            if 0 <= row < height and 0 <= col < width:
                                cols[b, ch, i, j, y, x_out] = x[b, ch, row, col]
    return cols


def col2im_naive(cols, input_shape, stride: int = 1, padding: int = 0, dilation: int = 1):
    """``col2im`` as plain loops: each column entry added onto its pixel (NumPy)."""
    cols = np.asarray(cols)
    n, c, kh, kw, out_h, out_w = cols.shape
    height, width = input_shape[2], input_shape[3]
    dx = np.zeros(tuple(input_shape), dtype=cols.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    for y in range(out_h):
                        for x_out in range(out_w):
                            row = y * stride - padding + i * dilation
                            col = x_out * stride - padding + j * dilation
                            if 0 <= row < height and 0 <= col < width:
                                dx[b, ch, row, col] += cols[b, ch, i, j, y, x_out]
    return dx
