"""ReLU and its backward.

    y = max(x, 0)          dy/dx = 1 where x > 0, else 0

so dx = dout where y > 0, else 0 (y > 0 exactly where x > 0, so the output
is all the backward needs). At x = 0 the derivative is taken as 0, as in
PyTorch.

``inplace=True`` overwrites x with y and saves a full activation-sized array
per layer; use it only where nothing else still needs x (the conv before
the ReLU keeps its input, not its output, so conv -> ReLU in place is safe).
"""

from __future__ import annotations

from ..backend import get_array_module
from .checks import check_float, check_same_dtype, check_shape


def relu_forward(x, inplace: bool = False):
    """out, cache = relu_forward(x): out = max(x, 0), any shape, x's dtype; cache = out."""
    check_float(x, "relu_forward", "x")
    xp = get_array_module(x)
    out = xp.maximum(x, 0, out=x if inplace else None)
    return out, out


def relu_backward(dout, cache):
    """dx = dout * (out > 0); dout is not modified."""
    out = cache
    check_shape(dout, tuple(out.shape), "relu_backward", "dout", "the output's shape")
    check_same_dtype(out, dout, "relu_backward", "out", "dout")
    xp = get_array_module(dout, out)
    # a product with the mask, not where(): measured 5x faster on NumPy (a non-finite dout
    # entry on a dead unit gives NaN instead of 0: 0 * inf)
    return xp.multiply(dout, out > 0)
