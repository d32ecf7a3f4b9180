"""ReLU, SSD's L2Norm and BatchNorm2d: finite differences, PyTorch cross-checks, dtypes, bad input."""

import numpy as np
import pytest

from minissd.backend import to_numpy
from minissd.nn.activation import relu_backward, relu_forward
from minissd.nn.batchnorm import batchnorm2d_backward, batchnorm2d_forward
from minissd.nn.gradcheck import assert_gradients_close, numerical_gradient
from minissd.nn.l2norm import l2norm_backward, l2norm_forward

try:
    import torch
except ImportError:  # optional cross-check
    torch = None


def _checked(backward_fn, caches):
    """backward(dout) that also asserts it left dout untouched."""

    def backward(dout):
        before = to_numpy(dout).copy()
        grads = backward_fn(dout, caches[-1])
        np.testing.assert_array_equal(to_numpy(dout), before)
        return grads

    return backward


# ------------------------------------------------------------------ ReLU

def test_relu_forward_backward_by_hand(xp):
    x = xp.asarray(np.array([-2.0, -0.0, 0.5, 3.0], dtype=np.float32))
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(to_numpy(out), [0, 0, 0.5, 3])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(x), [-2, 0, 0.5, 3])  # not in place by default
    dx = relu_backward(xp.asarray(np.array([1, 2, 3, 4], dtype=np.float32)), cache)
    np.testing.assert_array_equal(to_numpy(dx), [0, 0, 3, 4])  # derivative 0 at x = 0


def test_relu_inplace_overwrites_its_input_only(xp):
    x = xp.asarray(np.array([-1.0, 2.0], dtype=np.float32))
    out, _ = relu_forward(x, inplace=True)
    assert out is x
    np.testing.assert_array_equal(to_numpy(x), [0, 2])


def test_relu_gradient(xp, rng):
    values = rng.standard_normal((2, 3, 4, 4))
    values[np.abs(values) < 1e-3] = 0.5  # keep away from the kink
    arrays = {"x": xp.asarray(values)}
    caches = []

    def forward():
        out, cache = relu_forward(arrays["x"])
        caches.append(cache)
        return out

    assert_gradients_close(forward, _checked(lambda d, c: {"x": relu_backward(d, c)}, caches), arrays, rng)


# ------------------------------------------------------------------ L2Norm

def test_l2norm_by_hand(xp):
    x = xp.asarray(np.array([3.0, 4.0], dtype=np.float32).reshape(1, 2, 1, 1))
    out, _ = l2norm_forward(x, xp.asarray(np.array([20.0, 10.0], dtype=np.float32)))
    np.testing.assert_allclose(to_numpy(out).ravel(), [20 * 0.6, 10 * 0.8], rtol=1e-6)
    assert out.dtype == np.float32


def test_l2norm_gradient(xp, rng):
    arrays = {"x": xp.asarray(rng.standard_normal((2, 5, 3, 3))), "scale": xp.asarray(rng.uniform(1, 3, 5))}
    caches = []

    def forward():
        out, cache = l2norm_forward(arrays["x"], arrays["scale"])
        caches.append(cache)
        return out

    def backward(dout, cache):
        dx, dscale = l2norm_backward(dout, cache)
        return {"x": dx, "scale": dscale}

    assert_gradients_close(forward, _checked(backward, caches), arrays, rng)


def test_l2norm_gradient_where_the_norm_is_clamped_to_eps(xp, rng):
    # at a pixel with norm < eps the op is linear, x * scale / eps: a step far below eps stays there
    values = rng.standard_normal((1, 3, 2, 2))
    values[0, :, 1, 0] = 0
    x, scale = xp.asarray(values), xp.asarray(np.array([1.0, 2.0, 3.0]))
    dout = rng.standard_normal(values.shape)
    out, cache = l2norm_forward(x, scale)
    dx, _ = l2norm_backward(xp.asarray(dout), cache)
    pixel = [np.ravel_multi_index((0, c, 1, 0), values.shape) for c in range(3)]
    numeric = numerical_gradient(
        lambda: float((to_numpy(l2norm_forward(x, scale)[0]) * dout).sum()), x, eps=1e-16, indices=pixel
    )
    np.testing.assert_allclose(numeric.ravel()[pixel], to_numpy(dx).ravel()[pixel], rtol=1e-6)
    np.testing.assert_allclose(to_numpy(dx)[0, :, 1, 0], dout[0, :, 1, 0] * [1, 2, 3] / 1e-12, rtol=1e-12)


def test_l2norm_bad_input(xp):
    x = xp.zeros((1, 4, 2, 2), dtype=xp.float32)
    with pytest.raises(ValueError, match=r"scale must have shape \(C,\) = \(4,\); got \(3,\)"):
        l2norm_forward(x, xp.ones(3, dtype=xp.float32))
    with pytest.raises(TypeError, match="scale has dtype float64 but x has float32"):
        l2norm_forward(x, xp.ones(4, dtype=xp.float64))


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional cross-check)")
def test_l2norm_matches_torch_normalize(rng):
    x = rng.standard_normal((2, 6, 4, 5))
    x[0, :, 1, 1] = 0
    scale = rng.uniform(5, 25, 6)
    tx, ts = torch.tensor(x, requires_grad=True), torch.tensor(scale, requires_grad=True)
    t_out = torch.nn.functional.normalize(tx, dim=1) * ts.view(1, -1, 1, 1)
    dout = rng.standard_normal(x.shape)
    t_out.backward(torch.tensor(dout))
    out, cache = l2norm_forward(x, scale)
    dx, dscale = l2norm_backward(dout, cache)
    np.testing.assert_allclose(out, t_out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-9)
    np.testing.assert_allclose(dscale, ts.grad.numpy(), atol=1e-9)


# ------------------------------------------------------------------ BatchNorm2d

def _bn_arrays(xp, rng, channels=3):
    return {
        "x": xp.asarray(rng.standard_normal((4, channels, 3, 2)) * 2 + 1),
        "gamma": xp.asarray(rng.uniform(0.5, 1.5, channels)),
        "beta": xp.asarray(rng.standard_normal(channels)),
    }


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradient(xp, rng, training):
    arrays = _bn_arrays(xp, rng)
    running_mean = xp.asarray(rng.standard_normal(3))
    running_var = xp.asarray(rng.uniform(0.5, 2, 3))
    caches = []

    def forward():
        out, cache = batchnorm2d_forward(
            arrays["x"], arrays["gamma"], arrays["beta"], running_mean.copy(), running_var.copy(), training
        )
        caches.append(cache)
        return out

    def backward(dout, cache):
        dx, dgamma, dbeta = batchnorm2d_backward(dout, cache)
        return {"x": dx, "gamma": dgamma, "beta": dbeta}

    assert_gradients_close(forward, _checked(backward, caches), arrays, rng)


def test_batchnorm_statistics_and_running_update(xp, rng):
    x = xp.asarray(rng.standard_normal((8, 2, 4, 4)).astype(np.float32) * 3 + 5)
    gamma, beta = xp.ones(2, dtype=xp.float32), xp.zeros(2, dtype=xp.float32)
    running_mean, running_var = xp.zeros(2, dtype=xp.float32), xp.ones(2, dtype=xp.float32)
    out, _ = batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1)
    assert out.dtype == np.float32
    host = to_numpy(out)
    np.testing.assert_allclose(host.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(host.var(axis=(0, 2, 3)), 1, atol=1e-3)
    x_host = to_numpy(x).astype(np.float64)
    np.testing.assert_allclose(to_numpy(running_mean), 0.1 * x_host.mean(axis=(0, 2, 3)), rtol=1e-5)
    unbiased = x_host.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(to_numpy(running_var), 0.9 + 0.1 * unbiased, rtol=1e-5)
    # eval mode uses the running statistics
    out_eval, _ = batchnorm2d_forward(x, gamma, beta, running_mean, running_var, training=False)
    expected = (x_host - to_numpy(running_mean)[None, :, None, None]) / np.sqrt(
        to_numpy(running_var)[None, :, None, None] + 1e-5
    )
    np.testing.assert_allclose(to_numpy(out_eval), expected, rtol=1e-4, atol=1e-5)


def test_batchnorm_bad_input(xp):
    x = xp.zeros((2, 3, 2, 2), dtype=xp.float32)
    ones = xp.ones(3, dtype=xp.float32)
    with pytest.raises(ValueError, match=r"gamma must have shape \(C,\) = \(3,\)"):
        batchnorm2d_forward(x, ones[:2], ones, ones, ones, True)
    with pytest.raises(ValueError, match="more than one value per channel"):
        batchnorm2d_forward(x[:1, :, :1, :1], ones, ones, ones, ones, True)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional cross-check)")
def test_batchnorm_matches_torch(rng):
    x = rng.standard_normal((3, 4, 5, 5))
    gamma, beta = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    t_mean, t_var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    t_out = torch.nn.functional.batch_norm(tx, t_mean, t_var, tg, tb, training=True, momentum=0.1, eps=1e-5)
    dout = rng.standard_normal(x.shape)
    t_out.backward(torch.tensor(dout))
    running_mean, running_var = np.zeros(4), np.ones(4)
    out, cache = batchnorm2d_forward(x, gamma, beta, running_mean, running_var, True)
    dx, dgamma, dbeta = batchnorm2d_backward(dout, cache)
    np.testing.assert_allclose(out, t_out.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(running_var, t_var.numpy(), atol=1e-12)
    np.testing.assert_allclose(running_mean, t_mean.numpy(), atol=1e-12)
    for mine, theirs in ((dx, tx), (dgamma, tg), (dbeta, tb)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), atol=1e-10)
