"""From a head's feature map to one row per default box, and back.

An SSD head is a 3x3 convolution on a feature map with B default boxes per
cell and V values per box (4 offsets, or L class scores): its output has
B*V channels, channel b*V + v holding value v of box b (the order of
torchvision's SSD head and of the Caffe model). The default boxes are
ordered feature map -> row -> column -> box (minissd/priors.py), so the
rows of the prediction matrix must follow the same order:

    head (N, B*V, H, W) --transpose--> (N, H, W, B*V) --reshape--> (N, H*W*B, V)

Row (y*W + x)*B + b then describes box b of cell (y, x), exactly default box
number (y*W + x)*B + b of that map. ``flatten_heads`` does this for every map
and concatenates them in map order into (N, P, V).

The backward is the inverse reshape and transpose: no arithmetic, so the
gradient is only moved back into place.
"""

from __future__ import annotations

from ..backend import get_array_module
from .checks import check_nchw


def flatten_head(head, values_per_box: int):
    """(N, B*V, H, W) head output -> (N, H*W*B, V) rows in default-box order."""
    check_nchw(head, "flatten_head", "head")
    n, channels, height, width = head.shape
    if values_per_box < 1 or channels % values_per_box:
        raise ValueError(
            f"flatten_head: head has {channels} channels, not a multiple of "
            f"{values_per_box} values per box (expected (N, B*V, H, W))"
        )
    rows = height * width * (channels // values_per_box)  # spelled out: -1 is ambiguous when N = 0
    return head.transpose(0, 2, 3, 1).reshape(n, rows, values_per_box)  # (N, H*W*B, V)


def flatten_head_backward(dpred, head_shape):
    """(N, H*W*B, V) gradient -> (N, B*V, H, W), contiguous (a conv backward reads it next)."""
    xp = get_array_module(dpred)
    n, channels, height, width = (int(d) for d in head_shape)
    if dpred.ndim != 3 or dpred.shape[0] != n or dpred.shape[1] * dpred.shape[2] != channels * height * width:
        raise ValueError(
            f"flatten_head_backward: dpred of shape {tuple(dpred.shape)} does not match a head "
            f"of shape (N, B*V, H, W) = {(n, channels, height, width)}"
        )
    grid = dpred.reshape(n, height, width, channels)  # (N, H, W, B*V)
    return xp.ascontiguousarray(grid.transpose(0, 3, 1, 2))  # (N, B*V, H, W)


def flatten_heads(heads, values_per_box: int):
    """A list of head outputs, one per feature map -> (N, P, V), maps in list order."""
    if not heads:
        raise ValueError("flatten_heads: no head outputs given")
    xp = get_array_module(*heads)
    return xp.concatenate([flatten_head(h, values_per_box) for h in heads], axis=1)  # (N, P, V)


def flatten_heads_backward(dpred, head_shapes):
    """Split an (N, P, V) gradient per map and undo each head's flattening; returns a list."""
    grads, start = [], 0
    values_per_box = dpred.shape[2]
    for shape in head_shapes:
        n, channels, height, width = (int(d) for d in shape)
        rows = height * width * channels // values_per_box
        grads.append(flatten_head_backward(dpred[:, start : start + rows], shape))
        start += rows
    if start != dpred.shape[1]:
        raise ValueError(
            f"flatten_heads_backward: the heads {[tuple(s) for s in head_shapes]} hold {start} "
            f"default boxes but dpred has {dpred.shape[1]} (shape {tuple(dpred.shape)})"
        )
    return grads
