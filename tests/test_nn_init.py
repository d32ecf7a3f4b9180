"""Initial weights: Xavier bound, Kaiming spread, float32, reproducible from the generator."""

import math

import numpy as np
import pytest

from minissd.nn import init


def test_fans_of_a_conv_weight():
    assert init.fans((64, 3, 3, 3)) == (27, 576)
    assert init.fans((10, 4)) == (4, 10)


def test_xavier_uniform_bound_and_spread():
    w = init.xavier_uniform((256, 128, 3, 3), np.random.default_rng(1))
    bound = math.sqrt(6 / (128 * 9 + 256 * 9))
    assert w.dtype == np.float32 and w.shape == (256, 128, 3, 3)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # it does reach the edge
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)  # std of U(-a, a)


def test_kaiming_normal_spread():
    w = init.kaiming_normal((128, 64, 3, 3), np.random.default_rng(2))
    assert w.dtype == np.float32
    assert w.std() == pytest.approx(math.sqrt(2) / math.sqrt(128 * 9), rel=0.02)


def test_same_seed_same_weights_and_a_generator_is_required():
    a = init.xavier_uniform((4, 3, 3, 3), np.random.default_rng(7))
    b = init.xavier_uniform((4, 3, 3, 3), np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        init.xavier_uniform((4, 3, 3, 3), 7)
    assert init.constant((3,), 20).tolist() == [20, 20, 20]
    assert init.zeros((2,)).dtype == np.float32
