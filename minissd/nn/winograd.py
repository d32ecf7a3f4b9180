"""Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016) for 3x3 convolutions, stride 1, padding 1.

One 2 x 2 tile of output needs a 4 x 4 tile d of the padded input (neighbouring tiles overlap
by two pixels). With the 3 x 3 kernel g,

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, Y the 2 x 2 output tile)

          | 1  0 -1  0 |         | 1    0    0  |
    B^T = | 0  1  1  0 |     G = | 1/2  1/2 1/2 |     A^T = | 1  1  1  0 |
          | 0 -1  1  0 |         | 1/2 -1/2 1/2 |           | 0  1 -1 -1 |
          | 0  1  0 -1 |         | 0    0    1  |

Summed over the input channels the 4 x 4 elementwise products become 16 matrix products, one
per tile position (a, b):

    U[ab] = (G g G^T)[a, b]   (O, C)    the filter transform, for every (o, c)
    V[ab] = (B^T d B)[a, b]   (C, T)    the input transform, for every tile (T tiles)
    M[ab] = U[ab] @ V[ab]     (O, T)    and every output tile is A^T M A

16 multiplications per tile and channel pair instead of 2 * 2 * 9 = 36: 2.25x fewer than
im2col + GEMM. B^T and A^T hold only 0 and +-1, so the input and output transforms are
additions, done here as whole-array operations over every tile at once.

The backward reuses the same pieces (no col2im):

    dx = the same convolution of dout with the rotated, transposed kernel w[o, c, 2-i, 2-j]
         (a 3x3 stride-1 padding-1 convolution from O channels to C)
    dw = G^T S G,  S[ab] = sum over tiles of (A dout A^T)[ab] (O, T) @ V[ab]^T (T, C)
         (the transpose of the forward's bilinear form; V is the forward's input transform)

Layouts. The padded input is split into its four polyphase planes
``phase[2p + s][c, n, u, v] = x[n, c, 2u + p - 1, 2v + s - 1]`` (0 outside x), so that element
(i, j) of tile (ty, tx) is ``phase[2(i % 2) + j % 2][.., ty + i // 2, tx + j // 2]``: every
tap of every tile is a contiguous slice of one plane shifted by 0 or 1 row / column. The
row transform runs on the flattened planes (a shift by one tile row is a flat offset of one
plane row), the column transform writes V (16, C, N, Ty, Tx + 1), Ty = ceil(H / 2), whose last
column of tiles is padding (computed so that every operation runs over long contiguous rows,
then dropped).
Work is done in blocks of planes of about ``BLOCK_ELEMENTS`` values so the temporaries stay
in the CPU's cache.

``winograd_conv3x3_naive`` is the formula above, tile by tile with the explicit matrices:
the oracle of the tests. The fast functions take xp from their inputs (they run on CuPy
too), but ``conv.py`` sends only NumPy arrays here: on a GPU im2col's raw kernels are used.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from . import parallel, workspace

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

# U[4a + b] = sum over i, j of G[a, i] G[b, j] g[3i + j]: one (16, 9) matrix for the whole kernel
FILTER_MATRIX = np.kron(G, G)  # (16, 9)
# the output-gradient transform below keeps A's last row positive (it saves a negation pass);
# the sign comes back in the filter gradient through G with its last row negated
_SIGNS = np.array([1.0, 1.0, 1.0, -1.0])
FILTER_GRAD_MATRIX = np.kron(_SIGNS[:, None] * G, _SIGNS[:, None] * G).T  # (9, 16)

BLOCK_ELEMENTS = 1 << 15  # values per temporary in the blocked transforms (128 KB in float32)
CHUNK_BYTES = 48 << 20  # bytes of the input transform per chunk of images (at least one image)


def tiles(height: int, width: int) -> tuple[int, int]:
    """(Ty, Tx): 2 x 2 output tiles covering an H x W output (the last ones may stick out)."""
    return (height + 1) // 2, (width + 1) // 2


def images_per_chunk(channels: int, height: int, width: int, num_images: int, itemsize: int) -> int:
    """Images whose input transform (16, C, n, Ty, Tx) fits ``CHUNK_BYTES`` (at least one)."""
    ty, tx = tiles(height, width)
    per_image = 16 * channels * ty * tx * itemsize
    return max(1, min(num_images, CHUNK_BYTES // max(1, per_image)))


# --------------------------------------------------------------------------
# the kernel side
# --------------------------------------------------------------------------

def filter_transform(w):
    """U (16, O, C) = G g G^T for every (o, c) of w (O, C, 3, 3): U[4a + b] is position (a, b)."""
    xp = get_array_module(w)
    o, c = w.shape[:2]
    matrix = xp.asarray(FILTER_MATRIX, dtype=w.dtype)
    u = xp.empty((16, o * c), dtype=w.dtype)
    parallel.matmul(matrix, w.reshape(o * c, 9).T, u, xp)  # (16, 9) @ (9, O*C), columns split
    return u.reshape(16, o, c)  # (16, O, C)


def rotated_filter_transform(w):
    """U of the rotated, transposed kernel w[o, c, 2-i, 2-j] as (16, C, O): the dx convolution's.

    Rotating by 180 degrees reverses the 9 taps' flat order, so the matrix's columns are
    reversed instead of the weights copied. (The backward does not call this: it reads the
    forward's U at ``ROTATED_POSITIONS``; the tests check that the two agree.)
    """
    xp = get_array_module(w)
    o, c = w.shape[:2]
    matrix = xp.asarray(FILTER_MATRIX[:, ::-1], dtype=w.dtype)
    return xp.matmul(matrix, w.reshape(o * c, 9).T).reshape(16, o, c).transpose(0, 2, 1)  # (16, C, O)


# G with its columns reversed is G with rows 0 and 3 swapped, so position (a, b) of the rotated
# kernel's U is position (P(a), P(b)) of the kernel's own U, transposed: P = (3, 1, 2, 0)
_FLIP = (3, 1, 2, 0)
ROTATED_POSITIONS = tuple(4 * _FLIP[k // 4] + _FLIP[k % 4] for k in range(16))


def filter_gradient(s, shape):
    """dw (O, C, 3, 3) = G^T S G from S (16, O, C), the summed products of the backward."""
    xp = get_array_module(s)
    o, c = shape[:2]
    matrix = xp.asarray(FILTER_GRAD_MATRIX, dtype=s.dtype)
    dw = xp.empty((o * c, 9), dtype=s.dtype)
    parallel.matmul(matrix, s.reshape(16, o * c), dw.T, xp)  # (9, 16) @ (16, O*C) into dw^T
    return dw.reshape(shape)  # (O, C, 3, 3)


# --------------------------------------------------------------------------
# the data side: polyphase planes, input transform, output transform
# --------------------------------------------------------------------------

def phase_planes(x, out):
    """Fill out (4, C, N, Ty+1, Tx+1) with the polyphase planes of x (N, C, H, W) padded by 1.

    out[2p + s][c, n, u, v] = x[n, c, 2u + p - 1, 2v + s - 1], 0 where that lies outside x.
    Channels are split over the worker threads (``parallel``).
    """
    _, _, height, width = x.shape
    planes = x.transpose(1, 0, 2, 3)  # (C, N, H, W), a view

    def part(c0, c1, _):
        for p in (0, 1):
            rows = height // 2 if p == 0 else (height + 1) // 2  # x rows 1, 3, ... or 0, 2, ...
            u0 = 1 - p
            for s in (0, 1):
                cols = width // 2 if s == 0 else (width + 1) // 2
                v0 = 1 - s
                target = out[2 * p + s, c0:c1]
                target[:, :, u0:u0 + rows, v0:v0 + cols] = planes[c0:c1, :, 1 - p::2, 1 - s::2]
                # the padding: the first row / column for p, s = 0, the last where x ends early
                target[:, :, :u0] = 0
                target[:, :, u0 + rows:] = 0
                target[:, :, u0:u0 + rows, :v0] = 0
                target[:, :, u0:u0 + rows, v0 + cols:] = 0

    parallel.run(part, x.shape[1], get_array_module(x, out))
    return out


def _phase_buffer(name: str, channels: int, images: int, ty: int, tx: int, dtype, xp):
    """Flat (4, L + Tx + 2) scratch for the planes, and its (4, C, n, Ty+1, Tx+1) view.

    The zero tail lets the shifted reads of the last plane (one row and one column further)
    stay inside the buffer.
    """
    length = channels * images * (ty + 1) * (tx + 1)
    flat = workspace.scratch(name, (4, length + tx + 2), dtype, xp)
    flat[:, length:] = 0
    return flat, flat[:, :length].reshape(4, channels, images, ty + 1, tx + 1)


def _rows_of(flat, start: int, count: int, ty: int, row: int):
    """(count, Ty, Tx+1) view of the planes of ``flat`` from ``start`` on, each cut to its first Ty rows."""
    return flat[start:start + count * (ty + 1) * row].reshape(count, ty + 1, row)[:, :ty]


def input_transform(flat_planes, planes: int, ty: int, tx: int, out):
    """V = B^T d B of every tile.

    flat_planes: (4, planes*(Ty+1)*(Tx+1) + tail), ``planes`` (channel, image) planes (``_phase_buffer``);
    out: (16, planes, Ty, Tx+1). The last column of every row of tiles is padding: it is
    computed (so every operation runs on long contiguous rows) and never used.
    Rows first, on the flat planes (a tile row lower is a flat offset of one plane row,
    Tx + 1), then the columns (a flat offset of one). Planes are split over the threads.
    """
    xp = get_array_module(flat_planes, out)
    row = tx + 1
    plane_size = (ty + 1) * row
    per_block = max(1, BLOCK_ELEMENTS // plane_size)
    subtract, add = xp.subtract, xp.add

    def part(first, last, thread):
        tmp = workspace.scratch(f"wino_rows{thread}", (2, per_block * plane_size + 1), flat_planes.dtype, xp)
        for p0 in range(first, last, per_block):
            p1 = min(last, p0 + per_block)
            start, stop = p0 * plane_size, p1 * plane_size
            count = p1 - p0
            length = stop - start
            for k in range(4):
                for s in (0, 1):  # the column phase: even or odd columns of the padded input
                    top, bottom = flat_planes[s], flat_planes[2 + s]  # even rows (p = 0), odd rows (p = 1)
                    target = tmp[s, :length + 1]
                    here, below = slice(start, stop + 1), slice(start + row, stop + 1 + row)
                    if k == 0:  # d0 - d2
                        subtract(top[here], top[below], out=target)
                    elif k == 1:  # d1 + d2
                        add(bottom[here], top[below], out=target)
                    elif k == 2:  # d2 - d1
                        subtract(top[below], bottom[here], out=target)
                    else:  # d1 - d3
                        subtract(bottom[here], bottom[below], out=target)
                even, odd = _rows_of(tmp[0], 0, count, ty, row), _rows_of(tmp[1], 0, count, ty, row)  # columns 0, 1
                even_right, odd_right = _rows_of(tmp[0], 1, count, ty, row), _rows_of(tmp[1], 1, count, ty, row)
                subtract(even, even_right, out=out[4 * k, p0:p1])  # c0 - c2
                add(odd, even_right, out=out[4 * k + 1, p0:p1])  # c1 + c2
                subtract(even_right, odd, out=out[4 * k + 2, p0:p1])  # c2 - c1
                subtract(odd, odd_right, out=out[4 * k + 3, p0:p1])  # c1 - c3

    parallel.run(part, planes, xp)
    return out


def output_transform(m, out, images: int, bias=None):
    """Y = A^T M A of every tile: m (16, O, n, Ty, Tx+1) -> out (n, O, H, W), written in place.

    ``bias`` (O,) is added to M[1, 1], which A^T . A spreads to all four outputs of a tile
    with weight 1 (a pass over a sixteenth of M instead of one over the output). Output
    channels are split over the threads.
    """
    xp = get_array_module(m, out)
    _, o, _, ty, row = m.shape
    height, width = out.shape[2], out.shape[3]
    plane_size = images * ty * row
    per_block = max(1, BLOCK_ELEMENTS // plane_size)  # output channels per block
    flat = m.reshape(16, o * plane_size)
    add, subtract = xp.add, xp.subtract

    def part(first, last, thread):
        if bias is not None:
            m[5, first:last] += bias[first:last].reshape(-1, 1, 1, 1)
        rows_tmp = workspace.scratch(f"wino_out_rows{thread}", (4, per_block * plane_size), m.dtype, xp)
        tile_tmp = workspace.scratch(f"wino_out_tile{thread}", (per_block * plane_size,), m.dtype, xp)
        for o0 in range(first, last, per_block):
            o1 = min(last, o0 + per_block)
            span = slice(o0 * plane_size, o1 * plane_size)
            length = (o1 - o0) * plane_size
            for a in (0, 1):
                for j in range(4):
                    target = rows_tmp[j, :length]
                    if a == 0:  # m0 + m1 + m2
                        add(flat[j, span], flat[4 + j, span], out=target)
                        add(target, flat[8 + j, span], out=target)
                    else:  # m1 - m2 - m3
                        subtract(flat[4 + j, span], flat[8 + j, span], out=target)
                        subtract(target, flat[12 + j, span], out=target)
                rows = (height - a + 1) // 2  # output rows a, a + 2, ... that exist
                for b in (0, 1):
                    cols = (width - b + 1) // 2
                    tile = tile_tmp[:length]
                    if b == 0:
                        add(rows_tmp[0, :length], rows_tmp[1, :length], out=tile)
                        add(tile, rows_tmp[2, :length], out=tile)
                    else:
                        subtract(rows_tmp[1, :length], rows_tmp[2, :length], out=tile)
                        subtract(tile, rows_tmp[3, :length], out=tile)
                    values = tile.reshape(o1 - o0, images, ty, row)[:, :, :rows, :cols]  # (o, n, rows, cols)
                    out[:, o0:o1, a::2, b::2] = values.transpose(1, 0, 2, 3)

    parallel.run(part, o, xp)
    return out


def output_gradient_transform(flat_planes, planes: int, ty: int, tx: int, out):
    """A dout A^T of every tile (A's last row kept positive, see FILTER_GRAD_MATRIX).

    flat_planes: the polyphase planes of dout (``_phase_buffer``), ``planes`` = O * n of them;
    out: (16, planes, Ty, Tx+1). Tile (ty, tx) of dout is e[a][b] = dout[2ty + a, 2tx + b],
    plane 2(1 - a) + (1 - b) shifted by a rows and b columns. The padding column of out comes
    out zero (it reads the planes' zero borders), so it adds nothing to the filter gradient.
    """
    xp = get_array_module(flat_planes, out)
    row = tx + 1
    plane_size = ty * row
    add, subtract = xp.add, xp.subtract

    def part(first, last, _):
        for a in (0, 1):
            for b in (0, 1):
                source = _rows_of(flat_planes[2 * (1 - a) + (1 - b)], first * (ty + 1) * row + a * row + b,
                                  last - first, ty, row)
                out[(12 if a else 0) + (3 if b else 0), first:last] = source
        flat = out.reshape(16, planes * plane_size)[:, first * plane_size:last * plane_size]
        for i in (0, 12):  # the first and last row: [e0, e0 + e1, e0 - e1, e1] along the columns
            add(flat[i], flat[i + 3], out=flat[i + 1])
            subtract(flat[i], flat[i + 3], out=flat[i + 2])
        for j in range(4):  # the middle rows, from the first and last: row0 + row3, row0 - row3
            add(flat[j], flat[12 + j], out=flat[4 + j])
            subtract(flat[j], flat[12 + j], out=flat[8 + j])

    parallel.run(part, planes, xp)
    return out


def _batched_matmul(a, b, out, xp):
    """out[k] = a[k] @ b[k] for the 16 tile positions, the positions split over the threads."""
    parallel.run(lambda k0, k1, _: xp.matmul(a[k0:k1], b[k0:k1], out=out[k0:k1]), a.shape[0], xp)
    return out


def _rotated_matmul(u, b, out, xp):
    """out[k] = U_rotated[k] @ b[k], with U_rotated[k] = u[ROTATED_POSITIONS[k]]^T (C, O): no copy of u."""
    def part(k0, k1, _):
        for k in range(k0, k1):
            xp.matmul(u[ROTATED_POSITIONS[k]].T, b[k], out=out[k])

    parallel.run(part, 16, xp)
    return out


# --------------------------------------------------------------------------
# the convolution and its backward
# --------------------------------------------------------------------------

def _transform_input(x, name: str, out_name: str):
    """V (16, C, n, Ty, Tx+1) of x (n, C, H, W), in scratch buffers ``name`` (planes) and ``out_name``."""
    xp = get_array_module(x)
    n, c, height, width = x.shape
    ty, tx = tiles(height, width)
    flat, planes = _phase_buffer(name, c, n, ty, tx, x.dtype, xp)
    phase_planes(x, planes)
    v = workspace.scratch(out_name, (16, c, n, ty, tx + 1), x.dtype, xp)
    input_transform(flat, c * n, ty, tx, v.reshape(16, c * n, ty, tx + 1))
    return v


def _convolve(x, u, out, bias=None):
    """out (n, O, H, W) = the 3x3 padding-1 convolution of x (n, C, H, W) with transformed kernel u (16, O, C)."""
    xp = get_array_module(x, u)
    n, c, height, width = x.shape
    o = u.shape[1]
    ty, tx = tiles(height, width)
    v = _transform_input(x, "wino_phases", "wino_v")
    m = workspace.scratch("wino_m", (16, o, n, ty, tx + 1), x.dtype, xp)
    columns = n * ty * (tx + 1)
    _batched_matmul(u, v.reshape(16, c, columns), m.reshape(16, o, columns), xp)
    return output_transform(m, out, n, bias)


def winograd_conv3x3(x, w, b=None, u=None):
    """out (N, O, H, W): the 3x3 convolution of x (N, C, H, W) with w (O, C, 3, 3), stride 1, padding 1.

    u: ``filter_transform(w)`` when the caller has it (conv2d_forward keeps it for the backward).
    Images are taken a chunk at a time (``CHUNK_BYTES``); small late maps of several images share
    one set of 16 matrix products.
    """
    xp = get_array_module(x, w, b)
    n, c, height, width = x.shape
    o = w.shape[0]
    u = filter_transform(w) if u is None else u  # (16, O, C)
    out = xp.empty((n, o, height, width), dtype=x.dtype)
    chunk = images_per_chunk(c, height, width, n, x.itemsize)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        _convolve(x[start:stop], u, out[start:stop], b)
    return out


def winograd_conv3x3_backward(dout, x, w, need_dx: bool = True, u=None):
    """dx (N, C, H, W) or None, dw (O, C, 3, 3) of ``winograd_conv3x3``; dout (N, O, H, W) is not modified.

    u: the forward's ``filter_transform(w)`` (16, O, C), computed here when not given; dx uses it
    at ``ROTATED_POSITIONS``, transposed, as the rotated kernel's.
    """
    xp = get_array_module(dout, x, w)
    n, c, height, width = x.shape
    o = w.shape[0]
    ty, tx = tiles(height, width)
    s = xp.zeros((16, o, c), dtype=x.dtype)  # sum over tiles of (A dout A^T) (x) V
    products = xp.empty((16, o, c), dtype=x.dtype)
    if need_dx and u is None:
        u = filter_transform(w)
    dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None
    chunk = images_per_chunk(max(c, o), height, width, n, x.itemsize)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        count = stop - start
        columns = count * ty * (tx + 1)
        v = _transform_input(x[start:stop], "wino_phases", "wino_v")  # (16, C, n, Ty, Tx+1)
        flat_d, planes_d = _phase_buffer("wino_dphases", o, count, ty, tx, x.dtype, xp)
        phase_planes(dout[start:stop], planes_d)
        d_tiles = workspace.scratch("wino_dout", (16, o, count, ty, tx + 1), x.dtype, xp)
        output_gradient_transform(flat_d, o * count, ty, tx, d_tiles.reshape(16, o * count, ty, tx + 1))
        _batched_matmul(d_tiles.reshape(16, o, columns), v.reshape(16, c, columns).transpose(0, 2, 1), products, xp)
        s += products
        if need_dx:  # dout through the rotated kernel: the forward's machinery from O channels to C
            v_d = workspace.scratch("wino_v", (16, o, count, ty, tx + 1), x.dtype, xp)  # x's V is used up
            input_transform(flat_d, o * count, ty, tx, v_d.reshape(16, o * count, ty, tx + 1))
            m = workspace.scratch("wino_m", (16, c, count, ty, tx + 1), x.dtype, xp)
            _rotated_matmul(u, v_d.reshape(16, o, columns), m.reshape(16, c, columns), xp)
            output_transform(m, dx[start:stop], count)
    return dx, filter_gradient(s, w.shape)


# --------------------------------------------------------------------------
# the oracle: one tile at a time, with the matrices as written above
# --------------------------------------------------------------------------

def winograd_tile(d, g):
    """Y (2, 2) = A^T [(G g G^T) * (B^T d B)] A for one input tile d (4, 4) and kernel g (3, 3)."""
    return A_T @ ((G @ g @ G.T) * (B_T @ d @ B_T.T)) @ A_T.T


def winograd_conv3x3_naive(x, w, b=None):
    """The convolution tile by tile with ``winograd_tile`` (NumPy loops, small inputs only)."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    n, c, height, width = x.shape
    o = w.shape[0]
    ty, tx = tiles(height, width)
    padded = np.zeros((n, c, 2 * ty + 2, 2 * tx + 2))
    padded[:, :, 1:height + 1, 1:width + 1] = x
    out = np.zeros((n, o, 2 * ty, 2 * tx))
    for image in range(n):
        for channel_out in range(o):
            for y in range(ty):
                for x_tile in range(tx):
                    tile = sum(
                        winograd_tile(padded[image, ci, 2 * y:2 * y + 4, 2 * x_tile:2 * x_tile + 4], w[channel_out, ci])
                        for ci in range(c)
                    )
                    out[image, channel_out, 2 * y:2 * y + 2, 2 * x_tile:2 * x_tile + 2] = tile
    out = out[:, :, :height, :width]
    if b is not None:
        out = out + np.asarray(b, dtype=np.float64).reshape(1, o, 1, 1)
    return out
