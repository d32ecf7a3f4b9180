"""SSD's L2 normalisation of conv4_3, across channels, with a learned per-channel scale.

conv4_3's activations are much larger than those of later layers (Liu et al.
2016, section 3.1, after ParseNet), so SSD rescales them: at every pixel the
C-vector of channels is divided by its L2 norm and multiplied by a learned
scale per channel, initialised to 20:

    r[n, y, x]       = max(||x[n, :, y, x]||_2, eps),   eps = 1e-12
    u[n, c, y, x]    = x[n, c, y, x] / r[n, y, x]
    out[n, c, y, x]  = scale[c] * u[n, c, y, x]

(as torchvision's SSD: F.normalize(x, dim=1) * scale). Backward, with
g = dout * scale (the gradient with respect to u), per pixel:

    dscale[c] = sum over n, y, x of dout * u
    dx        = (g - u * sum_c(g * u)) / r      where the norm > eps
    dx        = g / eps                         where the norm <= eps (r is constant there)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from .checks import check_float, check_nchw, check_same_dtype, check_shape

EPS = 1e-12


@dataclass
class L2NormCache:
    unit: object  # (N, C, H, W) u = x / r
    radius: object  # (N, 1, H, W) r = max(norm, eps)
    clamped: object  # (N, 1, H, W) bool, norm <= eps
    scale: object  # (C,)


def l2norm_forward(x, scale, eps: float = EPS):
    """out, cache = l2norm_forward(x, scale): x (N, C, H, W), scale (C,) -> out (N, C, H, W)."""
    op = "l2norm_forward"
    check_nchw(x, op)
    check_shape(scale, (x.shape[1],), op, "scale", "(C,)")
    check_float(scale, op, "scale")
    check_same_dtype(x, scale, op, "x", "scale")
    xp = get_array_module(x, scale)
    norm = xp.sqrt((x * x).sum(axis=1, keepdims=True))  # (N, 1, H, W)
    clamped = norm <= eps
    radius = xp.maximum(norm, eps).astype(x.dtype, copy=False)  # (N, 1, H, W)
    unit = x / radius  # (N, C, H, W)
    out = unit * scale.reshape(1, -1, 1, 1)
    return out, L2NormCache(unit, radius, clamped, scale)


def l2norm_backward(dout, cache: L2NormCache):
    """dx, dscale = l2norm_backward(dout, cache); dout (N, C, H, W) is not modified."""
    unit, radius, scale = cache.unit, cache.radius, cache.scale
    check_shape(dout, tuple(unit.shape), "l2norm_backward", "dout", "(N, C, H, W)")
    check_same_dtype(unit, dout, "l2norm_backward", "x", "dout")
    xp = get_array_module(dout, unit)
    dscale = (dout * unit).sum(axis=(0, 2, 3))  # (C,)
    grad_unit = dout * scale.reshape(1, -1, 1, 1)  # (N, C, H, W)
    along = (grad_unit * unit).sum(axis=1, keepdims=True)  # (N, 1, H, W), radial component
    # where the norm was clamped to eps, r does not depend on x: drop the radial term
    along = xp.where(cache.clamped, 0, along)
    dx = (grad_unit - unit * along) / radius
    return dx, dscale
