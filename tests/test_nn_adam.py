"""Adam (AdamW) by hand arithmetic, its state round trip, and the trainer using it."""

import math

import numpy as np
import pytest

from minissd.nn.adam import Adam
from minissd.nn.optim import SGD, WarmupMultiStepLR


def two_params():
    params = {"conv.weight": np.array([1.0, -2.0]), "conv.bias": np.array([0.5])}
    grads = {"conv.weight": np.array([0.1, 0.4]), "conv.bias": np.array([-0.2])}
    return params, grads


def test_two_steps_by_hand():
    params, grads = two_params()
    adam = Adam(params, grads, lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)
    assert adam.step() == 0.1
    # step 1: m_hat = g, v_hat = g^2, so the step is lr * (sign(g) + wd * w) for weights, lr * sign(g) for biases
    np.testing.assert_allclose(params["conv.weight"], [1.0 - 0.1 * (1 + 0.01), -2.0 - 0.1 * (1 - 0.02)], rtol=1e-6)
    np.testing.assert_allclose(params["conv.bias"], [0.5 + 0.1], rtol=1e-6)
    w_before = params["conv.weight"].copy()
    adam.step()
    # step 2 with the same gradient: m = 0.19 g, v = 0.0199 g^2; corrections 0.19 and 0.0199 -> again sign(g)
    m_hat, v_hat = 0.19 * 0.1 / 0.19, 0.0199 * 0.01 / 0.0199
    expected = w_before[0] - 0.1 * (m_hat / (math.sqrt(v_hat) + 1e-8) + 0.01 * w_before[0])
    assert params["conv.weight"][0] == pytest.approx(expected, rel=1e-6)
    assert adam.iteration == 2


def test_grads_are_not_modified_and_schedule_is_followed():
    params, grads = two_params()
    saved = {k: v.copy() for k, v in grads.items()}
    adam = Adam(params, grads, lr=1.0, schedule=WarmupMultiStepLR(0.2, milestones=(1,), gamma=0.1))
    assert adam.step() == pytest.approx(0.2) and adam.step() == pytest.approx(0.02)
    for name in grads:
        np.testing.assert_array_equal(grads[name], saved[name])


def test_state_round_trip_continues_identically():
    params, grads = two_params()
    adam = Adam(params, grads, lr=0.05)
    adam.step()
    state = adam.state_dict()
    copy_params = {k: v.copy() for k, v in params.items()}
    other = Adam(copy_params, grads, lr=0.7)
    other.load_state_dict(state)
    adam.step()
    other.step()
    for name in params:
        np.testing.assert_array_equal(params[name], copy_params[name])


def test_mismatched_states_are_refused():
    params, grads = two_params()
    sgd_state = SGD(params, grads).state_dict()
    with pytest.raises(ValueError, match="saved state is of a 'sgd' optimiser"):
        Adam(params, grads).load_state_dict(sgd_state)
    with pytest.raises(KeyError, match="no gradient array"):
        Adam(params, {})
    with pytest.raises(ValueError, match="betas"):
        Adam(params, grads, betas=(1.0, 0.9))
