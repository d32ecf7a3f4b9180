"""SGD (Caffe's momentum form) and the warmup + multistep schedule, by hand arithmetic."""

import numpy as np
import pytest

from minissd.nn.optim import SGD, WarmupMultiStepLR, is_bias


def _problem():
    params = {"conv.weight": np.array([1.0, -2.0]), "conv.bias": np.array([0.5])}
    grads = {"conv.weight": np.array([0.1, 0.2]), "conv.bias": np.array([0.3])}
    return params, grads


def test_two_steps_with_momentum_decay_and_caffe_bias_multipliers():
    params, grads = _problem()
    sgd = SGD(params, grads, lr=0.1, momentum=0.9, weight_decay=0.01, bias_lr_factor=2, bias_decay=False)
    assert sgd.step() == 0.1
    # v = 0.1 * (g + 0.01 w) = [0.011, 0.018]; bias: v = 0.2 * 0.3 = 0.06 (no decay)
    np.testing.assert_allclose(params["conv.weight"], [0.989, -2.018], atol=1e-15)
    np.testing.assert_allclose(params["conv.bias"], [0.44], atol=1e-15)
    sgd.step()
    # v = 0.9 * [0.011, 0.018] + 0.1 * (g + 0.01 * [0.989, -2.018]) = [0.020889, 0.034182]
    np.testing.assert_allclose(params["conv.weight"], [0.968111, -2.052182], atol=1e-15)
    # bias: v = 0.9 * 0.06 + 0.2 * 0.3 = 0.114
    np.testing.assert_allclose(params["conv.bias"], [0.326], atol=1e-15)
    np.testing.assert_array_equal(grads["conv.weight"], [0.1, 0.2])  # gradients untouched
    assert sgd.iteration == 2


def test_bias_is_decayed_by_default():
    params, grads = _problem()
    SGD(params, grads, lr=0.1, momentum=0.9, weight_decay=0.01).step()
    np.testing.assert_allclose(params["conv.bias"], [0.5 - 0.1 * (0.3 + 0.005)], atol=1e-15)
    assert is_bias("extras.0.bias") and not is_bias("bias_conv.weight")


def test_schedule_values_at_warmup_and_milestones():
    schedule = WarmupMultiStepLR(1e-3, milestones=(80_000, 100_000), gamma=0.1, warmup_iterations=1000, warmup_factor=1 / 3)
    assert schedule(0) == pytest.approx(1e-3 / 3)
    assert schedule(500) == pytest.approx(1e-3 * (1 / 3 + 2 / 3 * 0.5))
    assert schedule(1000) == pytest.approx(1e-3)
    assert schedule(79_999) == pytest.approx(1e-3)
    assert schedule(80_000) == pytest.approx(1e-4)
    assert schedule(100_000) == pytest.approx(1e-5)
    assert WarmupMultiStepLR(0.01)(5) == 0.01
    with pytest.raises(ValueError, match="increasing"):
        WarmupMultiStepLR(0.1, milestones=(10, 5))


def test_optimizer_follows_its_schedule():
    params, grads = _problem()
    sgd = SGD(params, grads, momentum=0.0, weight_decay=0.0, schedule=WarmupMultiStepLR(1.0, milestones=(2,), warmup_iterations=0))
    assert [sgd.step() for _ in range(3)] == [1.0, 1.0, pytest.approx(0.1)]
    np.testing.assert_allclose(params["conv.bias"], [0.5 - 0.3 * 2.1])


def test_state_round_trip_continues_identically():
    params, grads = _problem()
    schedule = WarmupMultiStepLR(0.1, milestones=(3,), warmup_iterations=2)
    sgd = SGD(params, grads, schedule=schedule, bias_lr_factor=2, bias_decay=False)
    for _ in range(2):
        sgd.step()
    state = sgd.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state["velocity"].values())
    assert state["iteration"] == 2
    copies = {name: p.copy() for name, p in params.items()}
    resumed = SGD(copies, grads)  # other hyperparameters: the state brings them back
    resumed.load_state_dict(state)
    state["velocity"]["conv.weight"][...] = 99  # the state was copied, not shared
    for _ in range(3):
        assert resumed.step() == sgd.step()
    for name in params:
        np.testing.assert_array_equal(copies[name], params[name])
    with pytest.raises(KeyError, match="saved velocities"):
        SGD({"w": np.zeros(2)}, {"w": np.zeros(2)}).load_state_dict(state)


def test_missing_gradient_is_named():
    with pytest.raises(KeyError, match=r"no gradient array for parameters \['b'\]"):
        SGD({"a": np.zeros(1), "b": np.zeros(1)}, {"a": np.zeros(1)})
