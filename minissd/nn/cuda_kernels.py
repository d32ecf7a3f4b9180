"""CUDA kernels (through CuPy) behind im2col, col2im and max pooling on the GPU.

The NumPy formulation loops over the KH*KW kernel taps; on a GPU each tap is
several small kernel launches. Here each operation is one launch, one CUDA
thread per output element:

    im2col     thread per column entry (n, c, i, j, y, x): read x at
               (y*s - p + i*d, x*s - p + j*d), or 0 on padding.
    col2im     thread per input pixel (n, c, h, w): gather the column entries
               copied from it, so no two threads write the same pixel (no atomics,
               a deterministic sum).
    max pool   thread per output: the max of its window and the flat index of the
               first max (row-major window order, as PyTorch's CPU kernel); the
               backward adds dout at those indices with ``cupyx.scatter_add``
               (windows may overlap, as pool5's 3x3 stride 1 does).

These run only when the arrays are CuPy arrays (``use_for(xp)``); the callers
in im2col.py and pool.py keep the NumPy path, and the tests compare the two.
CuPy comes from ``minissd.backend`` (the only module that imports it). Set
``ENABLED = False`` to run the generic tap loop on CuPy instead (for timing).
"""

from __future__ import annotations

from .. import backend

ENABLED = True

_kernels: dict[str, object] = {}

_IM2COL = r"""
ptrdiff_t t = i;
const int ox = t % Wo; t /= Wo;
const int oy = t % Ho; t /= Ho;
const int tj = t % KW; t /= KW;
const int ti = t % KH; t /= KH;
const ptrdiff_t plane = t;  /* n * C + c */
const int row = oy * stride - padding + ti * dilation;
const int col = ox * stride - padding + tj * dilation;
cols = (row >= 0 && row < H && col >= 0 && col < W)
    ? x[(plane * H + row) * W + col] : (T)0;
"""

_COL2IM = r"""
ptrdiff_t t = i;
const int col = t % W; t /= W;
const int row = t % H; t /= H;
const ptrdiff_t plane = t;  /* n * C + c */
T total = 0;
for (int ti = 0; ti < KH; ++ti) {
    const int ry = row + padding - ti * dilation;
    if (ry < 0 || ry % stride != 0) continue;
    const int oy = ry / stride;
    if (oy >= Ho) continue;
    for (int tj = 0; tj < KW; ++tj) {
        const int rx = col + padding - tj * dilation;
        if (rx < 0 || rx % stride != 0) continue;
        const int ox = rx / stride;
        if (ox >= Wo) continue;
        total += cols[(((plane * KH + ti) * KW + tj) * Ho + oy) * Wo + ox];
    }
}
dx = total;
"""

_MAXPOOL = r"""
ptrdiff_t t = i;
const int ox = t % Wo; t /= Wo;
const int oy = t % Ho; t /= Ho;
const ptrdiff_t plane = t;  /* n * C + c */
T best = 0;
long long best_index = -1;
for (int ti = 0; ti < K; ++ti) {
    const int row = oy * stride - padding + ti;
    if (row < 0 || row >= H) continue;
    for (int tj = 0; tj < K; ++tj) {
        const int col = ox * stride - padding + tj;
        if (col < 0 || col >= W) continue;
        const long long index = (plane * H + row) * W + col;
        const T value = x[index];
        /* strictly greater keeps the first max; a NaN wins, as in np.maximum */
        if (best_index < 0 || value > best || isnan(value)) {
            best = value;
            best_index = index;
        }
    }
}
y = best;
argmax = best_index;
"""


def use_for(xp) -> bool:
    """True when ``xp`` is CuPy and the kernels are enabled."""
    cupy = backend.cupy_module()
    return ENABLED and cupy is not None and xp is cupy


def _kernel(name: str, in_params: str, out_params: str, body: str):
    kernel = _kernels.get(name)
    if kernel is None:
        cupy = backend.cupy_module()
        kernel = cupy.ElementwiseKernel(in_params, out_params, body, f"minissd_{name}")
        _kernels[name] = kernel
    return kernel


def im2col(x, kh: int, kw: int, stride: int, padding: int, dilation: int, out):
    """x (N, C, H, W) -> out (N, C, KH, KW, Ho, Wo), filled in one launch."""
    cupy = backend.cupy_module()
    x = cupy.ascontiguousarray(x)  # raw indexing assumes C order
    _, _, height, width = x.shape
    out_h, out_w = out.shape[4], out.shape[5]
    kernel = _kernel(
        "im2col",
        "raw T x, int32 H, int32 W, int32 KH, int32 KW, int32 Ho, int32 Wo, "
        "int32 stride, int32 padding, int32 dilation",
        "T cols",
        _IM2COL,
    )
    kernel(x, height, width, kh, kw, out_h, out_w, stride, padding, dilation, out)
    return out


def col2im(cols, input_shape, stride: int, padding: int, dilation: int, out):
    """cols (N, C, KH, KW, Ho, Wo) -> out (N, C, H, W), each pixel gathering its copies."""
    cupy = backend.cupy_module()
    cols = cupy.ascontiguousarray(cols)
    _, _, kh, kw, out_h, out_w = cols.shape
    kernel = _kernel(
        "col2im",
        "raw T cols, int32 H, int32 W, int32 KH, int32 KW, int32 Ho, int32 Wo, "
        "int32 stride, int32 padding, int32 dilation",
        "T dx",
        _COL2IM,
    )
    kernel(cols, input_shape[2], input_shape[3], kh, kw, out_h, out_w, stride, padding, dilation, out)
    return out


def maxpool_forward(x, kernel_size: int, stride: int, padding: int, out_h: int, out_w: int):
    """x (N, C, H, W) -> (y (N, C, Ho, Wo), argmax (N, C, Ho, Wo) int64 flat indices into x)."""
    cupy = backend.cupy_module()
    x = cupy.ascontiguousarray(x)
    n, c, height, width = x.shape
    y = cupy.empty((n, c, out_h, out_w), dtype=x.dtype)
    argmax = cupy.empty((n, c, out_h, out_w), dtype=cupy.int64)
    kernel = _kernel(
        "maxpool",
        "raw T x, int32 H, int32 W, int32 K, int32 Ho, int32 Wo, int32 stride, int32 padding",
        "T y, int64 argmax",
        _MAXPOOL,
    )
    kernel(x, height, width, kernel_size, out_h, out_w, stride, padding, y, argmax)
    return y, argmax


def maxpool_backward(dout, argmax, input_shape):
    """dx (N, C, H, W): dout added at each window's max (``cupyx.scatter_add``)."""
    cupy = backend.cupy_module()
    cupyx = backend.cupyx_module()
    dx = cupy.zeros(tuple(input_shape), dtype=dout.dtype)
    # scatter_add, never dx.ravel()[argmax] += dout: repeated indices would add once
    cupyx.scatter_add(dx.reshape(-1), argmax.reshape(-1), cupy.ascontiguousarray(dout).reshape(-1))
    return dx
