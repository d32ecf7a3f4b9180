"""Stateful layers: parameter names and order, gradient accumulation, a whole-network gradient check,
train/eval, state dicts and device moves."""

import numpy as np
import pytest

from minissd import backend
from minissd.backend import to_numpy
from minissd.nn.gradcheck import assert_gradients_close
from minissd.nn.layers import BatchNorm2d, Conv2d, L2Norm, MaxPool2d, ReLU, Sequential


def _small_network(rng):
    return Sequential(
        ("conv1", Conv2d(3, 4, 3, padding=1, rng=rng)),
        ("relu1", ReLU(inplace=True)),  # conv keeps its input, not its output: safe
        ("pool1", MaxPool2d(2, 2, ceil_mode=True)),
        # BN cancels any per-channel scale or shift right before it: not after norm2 or a conv bias
        ("bn1", BatchNorm2d(4)),
        ("conv2", Conv2d(4, 6, 3, padding=2, dilation=2, rng=rng)),
        ("norm2", L2Norm(6)),
        ("relu2", ReLU()),
        ("pool2", MaxPool2d(3, 1, 1)),
        ("conv3", Conv2d(6, 5, 3, stride=2, rng=rng)),
        ("conv4", Conv2d(5, 2, 1, rng=rng)),
    )


def test_parameter_names_and_fixed_order(rng):
    net = _small_network(rng)
    assert list(net.params) == [
        "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "conv2.weight", "conv2.bias",
        "norm2.weight", "conv3.weight", "conv3.bias", "conv4.weight", "conv4.bias",
    ]
    assert list(net.grads) == list(net.params)
    assert list(net.buffers) == ["bn1.running_mean", "bn1.running_var"]
    assert all(p.dtype == np.float32 for p in net.params.values())
    assert float(net.params["norm2.weight"][0]) == 20
    assert Sequential(ReLU(), ReLU()).layers.keys() == {"0", "1"}
    assert net["conv1"] is net[0]


def test_whole_network_gradient_check(xp, rng):
    net = _small_network(rng).astype(np.float64)
    if xp is not np:
        net.to("gpu")
    x = xp.asarray(rng.standard_normal((2, 3, 9, 9)))
    arrays = {"x": x, **net.params}

    def backward(dout):
        net.zero_grad()
        dx = net.backward(dout)
        return {"x": dx, **net.grads}

    assert_gradients_close(lambda: net.forward(x), backward, arrays, rng, tolerance=1e-6, max_entries=25)


def test_grads_accumulate_until_zero_grad(rng):
    conv = Conv2d(2, 3, 3, padding=1, rng=rng)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    dout = rng.standard_normal((1, 3, 4, 4)).astype(np.float32)
    conv.forward(x)
    conv.backward(dout)
    once = conv.grads["weight"].copy()
    conv.backward(dout)
    np.testing.assert_allclose(conv.grads["weight"], 2 * once, rtol=1e-6)
    conv.zero_grad()
    assert not conv.grads["weight"].any() and not conv.grads["bias"].any()


def test_first_layer_can_skip_the_input_gradient(rng):
    conv = Conv2d(3, 2, 3, rng=rng)
    conv.needs_input_grad = False
    out = conv.forward(rng.standard_normal((1, 3, 5, 5)).astype(np.float32))
    assert conv.backward(np.ones_like(out)) is None
    assert conv.grads["weight"].any()


def test_backward_before_forward_is_an_error(rng):
    with pytest.raises(RuntimeError, match="Conv2d.backward called before forward"):
        Conv2d(1, 1, 3, rng=rng).backward(np.zeros((1, 1, 1, 1), dtype=np.float32))


def test_eval_mode_uses_running_statistics(rng):
    bn = BatchNorm2d(2)
    x = (rng.standard_normal((4, 2, 3, 3)) * 5 + 3).astype(np.float32)
    train_out = bn.forward(x)
    bn.eval()
    eval_out = bn.forward(x)
    assert not bn.training
    assert not np.allclose(train_out, eval_out)  # running stats moved only 10 % towards the batch's
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)


def test_state_dict_round_trip(rng):
    source, target = _small_network(np.random.default_rng(1)), _small_network(np.random.default_rng(2))
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    source.forward(x)  # moves BatchNorm's running statistics away from their start
    state = source.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert "bn1.running_var" in state
    target.load_state_dict(state)
    source.eval(), target.eval()
    np.testing.assert_array_equal(target.forward(x), source.forward(x))
    with pytest.raises(KeyError, match=r"missing \['conv4.bias'\]"):
        target.load_state_dict({k: v for k, v in state.items() if k != "conv4.bias"})
    bad = dict(state, **{"conv1.weight": np.zeros((4, 3, 5, 5), dtype=np.float32)})
    with pytest.raises(ValueError, match=r"'conv1.weight' has shape \(4, 3, 5, 5\), the layer expects \(4, 3, 3, 3\)"):
        target.load_state_dict(bad)


def test_move_to_device_gives_the_same_output(xp, rng):
    net = _small_network(np.random.default_rng(3)).eval()
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    expected = net.forward(x)
    device = "gpu" if xp is not np else "cpu"
    net.to(device)
    assert net.device == device and all(backend.device_of(g) == device for g in net.grads.values())
    np.testing.assert_allclose(to_numpy(net.forward(xp.asarray(x))), expected, rtol=1e-4, atol=1e-5)
    net.to("cpu")
    assert isinstance(net.params["conv1.weight"], np.ndarray)
