"""Head reshapes follow the default-box order of minissd.priors (map -> row -> column -> box)."""

import numpy as np
import pytest

from minissd.backend import to_numpy
from minissd.nn.heads import flatten_head, flatten_head_backward, flatten_heads, flatten_heads_backward
from minissd.priors import box_shapes, cell_centres, default_boxes, get_config


def _heads_that_predict_the_default_boxes(config, xp):
    """Head outputs whose channel b*4 + v at cell (y, x) holds value v of default box b there."""
    heads = []
    for k, size in enumerate(config.feature_maps):
        centres = cell_centres(size, config.steps[k], config.image_size)  # (f,)
        shapes = box_shapes(config.min_sizes[k], config.max_sizes[k], config.aspect_ratios[k])
        head = np.zeros((1, 4 * len(shapes), size, size), dtype=np.float32)
        for b, (width, height) in enumerate(shapes):
            head[0, 4 * b + 0] = centres[None, :]  # cx varies along x (columns)
            head[0, 4 * b + 1] = centres[:, None]  # cy varies along y (rows)
            head[0, 4 * b + 2] = width
            head[0, 4 * b + 3] = height
        heads.append(xp.asarray(head))
    return heads


@pytest.mark.parametrize("preset", ["tiny", "ssd300-voc"])
def test_flattened_heads_line_up_with_default_boxes(xp, preset):
    config = get_config(preset)
    predictions = flatten_heads(_heads_that_predict_the_default_boxes(config, xp), 4)
    assert predictions.shape == (1, config.num_priors, 4)
    np.testing.assert_allclose(to_numpy(predictions)[0], default_boxes(config), atol=1e-6)


def test_flatten_head_by_hand(xp):
    # B = 2 boxes, V = 3 values, 1x2 map: channel b*V + v
    head = xp.arange(12, dtype=xp.float32).reshape(1, 6, 1, 2)
    rows = to_numpy(flatten_head(head, 3))
    # cell x=0 holds channels 0..5 at column 0: values 0, 2, 4 | 6, 8, 10
    np.testing.assert_array_equal(rows[0], [[0, 2, 4], [6, 8, 10], [1, 3, 5], [7, 9, 11]])


def test_backward_is_the_inverse_and_the_adjoint(xp, rng):
    shapes = [(2, 12, 3, 3), (2, 18, 2, 2), (2, 6, 1, 1)]
    heads = [xp.asarray(rng.standard_normal(s)) for s in shapes]
    flat = flatten_heads(heads, 6)
    assert flat.shape == (2, 9 * 2 + 4 * 3 + 1, 6)
    dflat = xp.asarray(rng.standard_normal(tuple(flat.shape)))
    before = to_numpy(dflat).copy()
    grads = flatten_heads_backward(dflat, shapes)
    np.testing.assert_array_equal(to_numpy(dflat), before)
    # a permutation: <flatten(h), d> == <h, flatten_backward(d)>, and back() undoes flatten()
    left = float((flat * dflat).sum())
    right = sum(float((h * g).sum()) for h, g in zip(heads, grads))
    assert left == pytest.approx(right, rel=1e-12)
    for head, grad in zip(heads, flatten_heads_backward(flat, shapes)):
        np.testing.assert_array_equal(to_numpy(grad), to_numpy(head))
        assert grad.flags.c_contiguous


def test_bad_head_shapes(xp):
    with pytest.raises(ValueError, match="not a multiple of 4 values per box"):
        flatten_head(xp.zeros((1, 6, 2, 2), dtype=xp.float32), 4)
    with pytest.raises(ValueError, match=r"hold 4 default boxes but dpred has 5"):
        flatten_heads_backward(xp.zeros((1, 5, 4), dtype=xp.float32), [(1, 4, 2, 2)])
    with pytest.raises(ValueError, match="does not match a head"):
        flatten_head_backward(xp.zeros((1, 5, 4), dtype=xp.float32), (1, 4, 2, 2))
