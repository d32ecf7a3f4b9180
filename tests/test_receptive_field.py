"""Theoretical receptive fields: the recurrence against the gradient's footprint, and SSD300's maps."""

import numpy as np
import pytest

from minissd import models
from minissd.nn import Conv2d, MaxPool2d, ReLU, Sequential
from minissd.nn.layers import Layer
from minissd.receptive_field import ReceptiveField, grow, layer_geometry, source_receptive_fields, through


def footprint(stack, side, row, col):
    """Input pixels (rows, cols) with a nonzero gradient for output pixel (row, col) of an all-positive stack."""
    for layer in stack.layers.values():
        layer.params["weight"][...] = 1.0  # positive weights, no ReLU: no path cancels or dies
    out = stack.forward(np.ones((1, 1, side, side)))
    upstream = np.zeros_like(out)
    upstream[0, 0, row, col] = 1.0
    grad = stack.backward(upstream)[0, 0]
    rows, cols = np.nonzero(grad)
    return (rows.min(), rows.max()), (cols.min(), cols.max())


@pytest.mark.parametrize("geometries", [
    [(3, 1, 1, 1)] * 3,
    [(3, 2, 1, 1), (3, 1, 1, 1), (3, 2, 1, 1)],
    [(3, 1, 0, 1), (3, 1, 6, 6), (1, 1, 0, 1)],  # fc6-like: dilation 6, padding 6
    [(2, 2, 0, 1), (5, 1, 2, 2), (3, 2, 1, 1), (3, 1, 0, 1)],
])
def test_window_equals_the_gradient_footprint_of_an_interior_pixel(geometries):
    rng = np.random.default_rng(0)
    stack = Sequential(*[(f"c{i}", Conv2d(1, 1, k, s, p, d, bias=False, rng=rng))
                         for i, (k, s, p, d) in enumerate(geometries)])
    stack.astype(np.float64)
    field = through(stack)
    side = 4 * field.size  # large enough for a pixel whose window the border does not clip
    out_side = stack.forward(np.ones((1, 1, side, side))).shape[-1]
    index = out_side // 2
    (top, bottom), (left, right) = footprint(stack, side, index, index)
    first, last = field.window(index)  # [first, last) in pixel-edge coordinates
    assert first >= 0 and last <= side, "the chosen pixel's window must lie inside the input"
    assert (top, bottom + 1) == (first, last) and (left, right + 1) == (first, last)
    assert bottom - top + 1 == field.size


def test_ssd300_source_maps():
    fields = source_receptive_fields(models.ssd300(21))
    # conv4_3 of VGG16 sees 92 px; fc6's dilation 6 on a stride-16 map adds 12 * 16 = 192 px
    assert [f.size for f in fields] == [92, 420, 452, 516, 644, 772]
    assert [f.jump for f in fields] == [8, 16, 32, 64, 64, 64]
    # cell centres: conv4_3 and fc7 on the default boxes' step grid ((i + 0.5) * step), the extras not
    assert [f.start for f in fields] == [4.0, 8.0, 8.0, 8.0, 72.0, 136.0]


def test_pooling_and_per_pixel_layers():
    assert layer_geometry(MaxPool2d(3, 1, padding=1)) == (3, 1, 1, 1)
    assert layer_geometry(MaxPool2d(2)) == (2, 2, 0, 1)  # stride defaults to the kernel
    assert layer_geometry(ReLU()) is None
    conv = Conv2d(1, 1, 3, padding=1, rng=np.random.default_rng(0))
    assert through(MaxPool2d(3, 1, padding=1)) == through(conv) == ReceptiveField(3, 1, 0.5)
    # a 2 x 2 / 2 pool: output pixel 0 covers input pixels 0 and 1, centred at 1.0
    assert through(MaxPool2d(2, 2)) == ReceptiveField(2, 2, 1.0)


def test_dilation_spans_its_taps():
    assert grow(ReceptiveField(), 3, dilation=6).size == 13
    assert grow(ReceptiveField(size=228, jump=16, start=8.0), 3, 1, 6, 6) == ReceptiveField(420, 16, 8.0)


def test_bad_input_is_one_clear_error():
    class Mystery(Layer):  # a layer whose kernel, stride and padding the walk cannot know
        pass

    with pytest.raises(TypeError, match="mystery_layer is a Mystery"):
        through(Sequential(("mystery_layer", Mystery())))
    with pytest.raises(ValueError, match="kernel = 0"):
        grow(ReceptiveField(), 0)
    with pytest.raises(ValueError, match="dilation = 1.5"):
        grow(ReceptiveField(), 3, dilation=1.5)
    with pytest.raises(TypeError, match="stride = '2'"):
        grow(ReceptiveField(), 3, stride="2")
    with pytest.raises(TypeError, match="must be an SSD"):
        source_receptive_fields(object())
