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
    if training:
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if count < 2:
            raise ValueError(f"{op}: training needs more than one value per channel; got x of shape {tuple(x.shape)}")
        mean = x.mean(axis=(0, 2, 3))  # (C,)
        var = x.var(axis=(0, 2, 3))  # (C,), biased
        running_mean *= 1 - momentum
        running_mean += momentum * mean
        running_var *= 1 - momentum
        running_var += (momentum * count / (count - 1)) * var
    else:
        mean, var = running_mean, running_var
    inv_std = (1 / xp.sqrt(var + eps)).astype(x.dtype).reshape(1, channels, 1, 1)  # (1, C, 1, 1)
    x_hat = (x - mean.reshape(1, channels, 1, 1)) * inv_std
    out = x_hat * gamma.reshape(1, channels, 1, 1) + beta.reshape(1, channels, 1, 1)
    return out, BatchNormCache(x_hat, inv_std, gamma, training)


def batchnorm2d_backward(dout, cache: BatchNormCache):
    """dx, dgamma, dbeta = batchnorm2d_backward(dout, cache); dout is not modified."""
    x_hat = cache.x_hat
    check_shape(dout, tuple(x_hat.shape), "batchnorm2d_backward", "dout", "(N, C, H, W)")
    check_same_dtype(x_hat, dout, "batchnorm2d_backward", "x", "dout")
    channels = x_hat.shape[1]
    dbeta = dout.sum(axis=(0, 2, 3))  # (C,)
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))  # (C,)
    scale = cache.gamma.reshape(1, channels, 1, 1) * cache.inv_std  # (1, C, 1, 1)
    if not cache.training:
        return dout * scale, dgamma, dbeta
    count = x_hat.shape[0] * x_hat.shape[2] * x_hat.shape[3]
    mean_dout = (dbeta / count).reshape(1, channels, 1, 1)
    mean_dout_xhat = (dgamma / count).reshape(1, channels, 1, 1)
    dx = scale * (dout - mean_dout - x_hat * mean_dout_xhat)
    return dx, dgamma, dbeta
