"""The gradient checker itself: it passes a right backward and catches wrong ones."""

import numpy as np
import pytest

from minissd.nn.gradcheck import assert_gradients_close, check_gradients, numerical_gradient


def test_numerical_gradient_of_a_known_function(rng):
    x = rng.standard_normal(5)
    grad = numerical_gradient(lambda: float((x**3).sum()), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)
    partial = numerical_gradient(lambda: float((x**3).sum()), x, indices=[1, 3])
    assert np.isnan(partial[[0, 2, 4]]).all() and np.isfinite(partial[[1, 3]]).all()


def test_right_backward_passes_wrong_ones_fail(rng):
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2))
    arrays = {"a": a, "b": b}

    def right(dout):
        return {"a": dout @ b.T, "b": a.T @ dout}

    errors = assert_gradients_close(lambda: a @ b, right, arrays, rng)
    assert max(errors.values()) < 1e-9
    with pytest.raises(AssertionError, match="b: relative error"):
        assert_gradients_close(lambda: a @ b, lambda d: {"a": d @ b.T, "b": 1.01 * a.T @ d}, arrays, rng)
    # a backward that ignores the upstream gradient's values is caught by the random upstream
    with pytest.raises(AssertionError, match="a: relative error"):
        assert_gradients_close(lambda: a @ b, lambda d: {"a": np.ones_like(d) @ b.T, "b": a.T @ d}, arrays, rng)


def test_tuple_outputs_and_sampled_entries(rng):
    x = rng.standard_normal(50)
    errors = check_gradients(
        lambda: (x * 2, x**2), lambda d: {"x": 2 * d[0] + 2 * x * d[1]}, {"x": x}, rng, max_entries=7
    )
    assert errors["x"] < 1e-9


def test_float32_is_refused(rng):
    x = rng.standard_normal(3).astype(np.float32)
    with pytest.raises(TypeError, match="float64"):
        check_gradients(lambda: x, lambda d: {"x": d}, {"x": x}, rng)
    with pytest.raises(KeyError, match="no gradient for 'y'"):
        y = rng.standard_normal(3)
        check_gradients(lambda: y, lambda d: {}, {"y": y}, rng)
