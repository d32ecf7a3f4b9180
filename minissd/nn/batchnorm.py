"""BatchNorm2d: per-channel normalisation with batch statistics, and its backward.

SSD itself has no batch norm; the tiny CPU model may use it to train quickly.

Training, per channel c over the M = N*H*W values of the batch:

    mu = mean(x),  var = mean((x - mu)^2)          (biased, used to normalise)
    x_hat = (x - mu) / sqrt(var + eps)
    out   = gamma * x_hat + beta
    running_mean <- (1 - m) running_mean + m mu
    running_var  <- (1 - m) running_var  + m var * M / (M - 1)   (unbiased, as PyTorch)

Evaluation uses running_mean and running_var in place of mu and var.

Backward in training (mu and var depend on x):

    dbeta  = sum dout,   dgamma = sum dout * x_hat
    dx     = gamma / sqrt(var + eps) * (dout - mean(dout) - x_hat * mean(dout * x_hat))

and in evaluation simply dx = gamma / sqrt(running_var + eps) * dout.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..backend import get_array_module
from . import parallel
from .checks import check_nchw, check_same_dtype, check_shape


@dataclass
class BatchNormCache:
    x_hat: object  # (N, C, H, W)
    inv_std: object  # (1, C, 1, 1)
    gamma: object  # (C,)
    training: bool


def batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training: bool, momentum: float = 0.1, eps: float = 1e-5):
    """out, cache = batchnorm2d_forward(...).

    x: (N, C, H, W); gamma, beta, running_mean, running_var: (C,), x's dtype.
    In training the running statistics are updated in place (they are buffers,
    not parameters). Returns out (N, C, H, W).
    """
    op = "batchnorm2d_forward"
    check_nchw(x, op)
    channels = x.shape[1]
    for name, array in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        check_shape(array, (channels,), op, name, "(C,)")
        check_same_dtype(x, array, op, "x", name)
    xp = get_array_module(x, gamma, beta, running_mean, running_var)
    n, _, height, width = x.shape
    count = n * height * width
    if training and count < 2:
        raise ValueError(f"{op}: training needs more than one value per channel; got x of shape {tuple(x.shape)}")
    x_hat = xp.empty(x.shape, dtype=x.dtype)
    out = xp.empty(x.shape, dtype=x.dtype)
    inv_std = xp.empty(channels, dtype=x.dtype)

    def part(c0, c1, _):  # channels c0..c1-1 (split over the threads, ``parallel``)
        block = x[:, c0:c1].reshape(n, c1 - c0, height * width)  # (N, c, H*W)
        centred = x_hat[:, c0:c1].reshape(n, c1 - c0, height * width)
        if training:  # sums along contiguous rows: much faster than mean over axes (0, 2, 3)
            mean = block.sum(axis=2).sum(axis=0) / count  # (c,)
            xp.subtract(block, mean.reshape(1, -1, 1), out=centred)
            var = xp.einsum("ncx,ncx->c", centred, centred) / count  # (c,), biased, two-pass
            running_mean[c0:c1] *= 1 - momentum
            running_mean[c0:c1] += momentum * mean
            running_var[c0:c1] *= 1 - momentum
            running_var[c0:c1] += (momentum * count / (count - 1)) * var
        else:
            mean, var = running_mean[c0:c1], running_var[c0:c1]
            xp.subtract(block, mean.reshape(1, -1, 1), out=centred)
        inv_std[c0:c1] = 1 / xp.sqrt(var + eps)
        centred *= inv_std[c0:c1].reshape(1, -1, 1)  # now x_hat
        result = out[:, c0:c1].reshape(n, c1 - c0, height * width)
        xp.multiply(centred, gamma[c0:c1].reshape(1, -1, 1), out=result)
        result += beta[c0:c1].reshape(1, -1, 1)

    parallel.run(part, channels, xp)
    return out, BatchNormCache(x_hat, inv_std.reshape(1, channels, 1, 1), gamma, training)


def batchnorm2d_backward(dout, cache: BatchNormCache):
    """dx, dgamma, dbeta = batchnorm2d_backward(dout, cache); dout is not modified."""
    x_hat = cache.x_hat
    check_shape(dout, tuple(x_hat.shape), "batchnorm2d_backward", "dout", "(N, C, H, W)")
    check_same_dtype(x_hat, dout, "batchnorm2d_backward", "x", "dout")
    xp = get_array_module(dout, x_hat)
    n, channels, height, width = x_hat.shape
    count = n * height * width
    dbeta = xp.empty(channels, dtype=x_hat.dtype)
    dgamma = xp.empty(channels, dtype=x_hat.dtype)
    dx = xp.empty(x_hat.shape, dtype=x_hat.dtype)
    scale_all = (cache.gamma.reshape(1, channels, 1, 1) * cache.inv_std).reshape(channels)  # (C,)

    def part(c0, c1, _):  # channels c0..c1-1 (split over the threads, ``parallel``)
        grad = dout[:, c0:c1].reshape(n, c1 - c0, height * width)  # (N, c, H*W)
        normed = x_hat[:, c0:c1].reshape(n, c1 - c0, height * width)
        dbeta[c0:c1] = grad.sum(axis=2).sum(axis=0)
        dgamma[c0:c1] = xp.einsum("ncx,ncx->c", grad, normed)
        scale = scale_all[c0:c1].reshape(1, -1, 1)
        result = dx[:, c0:c1].reshape(n, c1 - c0, height * width)
        xp.multiply(grad, scale, out=result)
        if cache.training:  # scale * (dout - mean(dout) - x_hat * mean(dout * x_hat))
            result -= (scale * (dbeta[c0:c1] / count).reshape(1, -1, 1))
            result -= normed * (scale * (dgamma[c0:c1] / count).reshape(1, -1, 1))

    parallel.run(part, channels, xp)
    return dx, dgamma, dbeta
