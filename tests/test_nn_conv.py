"""conv2d: fast path against the loop formula and PyTorch; backward against finite differences."""

import numpy as np
import pytest

from minissd.backend import to_numpy
from minissd.nn import conv
from minissd.nn.conv import conv2d_backward, conv2d_forward, conv2d_naive
from minissd.nn.gradcheck import assert_gradients_close

try:
    import torch
except ImportError:  # optional cross-check
    torch = None

GEOMETRIES = [
    # (C, O, H, W, K, stride, padding, dilation)
    (3, 4, 7, 7, 3, 1, 1, 1),
    (3, 2, 8, 7, 3, 2, 1, 1),
    (2, 3, 9, 9, 3, 1, 3, 3),  # dilated like fc6 (d = p)
    (4, 5, 6, 6, 1, 1, 0, 1),  # 1x1: no im2col
    (3, 2, 7, 7, 3, 2, 0, 1),  # SSD's extras: 3x3 stride 2, no padding
    (2, 2, 5, 6, 2, 3, 1, 2),
]


@pytest.mark.parametrize("c, o, h, w, k, stride, padding, dilation", GEOMETRIES)
def test_forward_matches_naive_loops(xp, rng, c, o, h, w, k, stride, padding, dilation):
    x = rng.standard_normal((2, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((o, c, k, k)).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    out, _ = conv2d_forward(xp.asarray(x), xp.asarray(weight), xp.asarray(bias), stride, padding, dilation)
    assert out.dtype == np.float32
    np.testing.assert_allclose(to_numpy(out), conv2d_naive(x, weight, bias, stride, padding, dilation), atol=1e-5)


@pytest.mark.parametrize("c, o, h, w, k, stride, padding, dilation", GEOMETRIES)
def test_backward_matches_finite_differences(xp, rng, c, o, h, w, k, stride, padding, dilation):
    arrays = {
        "x": xp.asarray(rng.standard_normal((2, c, h, w))),
        "w": xp.asarray(rng.standard_normal((o, c, k, k))),
        "b": xp.asarray(rng.standard_normal(o)),
    }
    caches = []

    def forward():
        out, cache = conv2d_forward(arrays["x"], arrays["w"], arrays["b"], stride, padding, dilation)
        caches.append(cache)
        return out

    def backward(dout):
        before = to_numpy(dout).copy()
        dx, dw, db = conv2d_backward(dout, caches[-1])
        np.testing.assert_array_equal(to_numpy(dout), before)  # dout untouched
        assert dx.dtype == dw.dtype == db.dtype == np.float64
        return {"x": dx, "w": dw, "b": db}

    assert_gradients_close(forward, backward, arrays, rng, tolerance=1e-8)


@pytest.mark.parametrize("chunk_bytes", [1, 1 << 30])
def test_chunks_of_one_image_or_the_whole_batch_agree(rng, monkeypatch, chunk_bytes):
    monkeypatch.setitem(conv.CHUNK_BYTES, "numpy", chunk_bytes)
    x = rng.standard_normal((3, 2, 6, 6))
    w = rng.standard_normal((4, 2, 3, 3))
    dout = rng.standard_normal((3, 4, 3, 3))
    out, cache = conv2d_forward(x, w, None, 2, 1)
    dx, dw, db = conv2d_backward(dout, cache)
    np.testing.assert_allclose(out, conv2d_naive(x, w, None, 2, 1), atol=1e-12)
    assert db is None
    # the reference gradients from one-image-at-a-time loops over naive pieces
    expected_dw = sum(
        conv2d_backward(dout[i : i + 1], conv2d_forward(x[i : i + 1], w, None, 2, 1)[1])[1] for i in range(3)
    )
    np.testing.assert_allclose(dw, expected_dw, atol=1e-10)
    assert dx.shape == x.shape


def test_need_dx_false_skips_the_input_gradient(rng):
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    out, cache = conv2d_forward(x, w, None, 1, 1)
    dx, dw, _ = conv2d_backward(np.ones_like(out), cache, need_dx=False)
    assert dx is None and dw.shape == w.shape and dw.dtype == np.float32


def test_bad_input_names_the_expected_shape(xp):
    x = xp.zeros((1, 3, 8, 8), dtype=xp.float32)
    w = xp.zeros((4, 3, 3, 3), dtype=xp.float32)
    with pytest.raises(ValueError, match=r"x must be \(N, C, H, W\); got shape \(3, 8, 8\)"):
        conv2d_forward(x[0], w)
    with pytest.raises(ValueError, match=r"x has C = 3 channels .* expects \(O, C, KH, KW\) = \(4, 2, 3, 3\)"):
        conv2d_forward(x, w[:, :2])
    with pytest.raises(ValueError, match=r"w must be \(O, C, KH, KW\)"):
        conv2d_forward(x, w[0])
    with pytest.raises(ValueError, match=r"b must have shape \(O,\) = \(4,\); got \(3,\)"):
        conv2d_forward(x, w, xp.zeros(3, dtype=xp.float32))
    with pytest.raises(TypeError, match="w has dtype float64 but x has float32"):
        conv2d_forward(x, w.astype(xp.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        conv2d_forward(x.astype(xp.int64), w)
    out, cache = conv2d_forward(x, w, None, 1, 1)
    with pytest.raises(ValueError, match=r"dout must have shape \(N, O, Ho, Wo\) = \(1, 4, 8, 8\)"):
        conv2d_backward(out[:, :2], cache)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed (optional cross-check)")
@pytest.mark.parametrize("stride, padding, dilation", [(1, 1, 1), (1, 6, 6), (2, 1, 1), (2, 0, 1)])
def test_forward_and_backward_match_torch(rng, stride, padding, dilation):
    x = rng.standard_normal((2, 4, 19, 19))
    w = rng.standard_normal((5, 4, 3, 3))
    b = rng.standard_normal(5)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    t_out = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=padding, dilation=dilation)
    dout = rng.standard_normal(tuple(t_out.shape))
    t_out.backward(torch.tensor(dout))
    out, cache = conv2d_forward(x, w, b, stride, padding, dilation)
    dx, dw, db = conv2d_backward(dout, cache)
    np.testing.assert_allclose(out, t_out.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(dw, tw.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(db, tb.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("stride, padding, dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_kept_columns_give_the_rebuilt_backward(rng, stride, padding, dilation):
    x = rng.standard_normal((3, 2, 7, 6))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    out, cache = conv2d_forward(x, w, b, stride, padding, dilation, algorithm="im2col")
    dout = rng.standard_normal(out.shape)
    expected = conv2d_backward(dout, cache)
    columns = np.empty(conv.columns_shape(x.shape, w.shape, stride, padding, dilation))
    kept_out, kept_cache = conv2d_forward(x, w, b, stride, padding, dilation, algorithm="im2col", columns=columns)
    assert kept_cache.columns is columns
    np.testing.assert_array_equal(kept_out, out)
    for got, want in zip(conv2d_backward(dout, kept_cache), expected):
        np.testing.assert_allclose(got, want, atol=1e-12)
    with pytest.raises(ValueError, match=r"columns must have shape \(N, C, KH, KW, Ho, Wo\)"):
        conv2d_forward(x, w, b, stride, padding, dilation, columns=columns[:1])
    with pytest.raises(TypeError, match="columns has dtype float32 but x has float64"):
        conv2d_forward(x, w, b, stride, padding, dilation, columns=columns.astype(np.float32))


def test_layers_keep_columns_only_in_training_and_within_the_budget(rng, monkeypatch):
    from minissd.nn.layers import Conv2d

    layer = Conv2d(2, 3, 3, stride=2, padding=1, rng=rng)
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    layer.train()
    layer.forward(x)
    kept = layer.cache.columns
    assert kept is not None and kept.shape == (2, 2, 3, 3, 4, 4)
    layer.forward(x)
    assert layer.cache.columns is kept  # the same buffer, step after step
    layer.eval()
    layer.forward(x)
    assert layer.cache.columns is None
    monkeypatch.setattr(conv, "KEEP_COLUMNS_BYTES", 100)  # smaller than 2*2*9*16 floats
    layer.train()
    layer.forward(x)
    assert layer.cache.columns is None
    assert conv.columns_shape((1, 4, 5, 5), (2, 4, 1, 1)) is None  # 1x1: no columns at all


# --------------------------------------------------------------------------
# the images split over worker threads (conv._split_images): each thread runs the whole layer
# --------------------------------------------------------------------------

@pytest.mark.parametrize("stride, padding, dilation, bias", [(1, 1, 1, True), (2, 1, 1, False), (1, 2, 2, True)])
@pytest.mark.parametrize("images_per_chunk", [2, 5])  # a thread's step: one image, or all of its images
def test_images_split_over_threads_pass_the_naive_loops_and_finite_differences(rng, monkeypatch, stride, padding,
                                                                                dilation, bias, images_per_chunk):
    from minissd.nn import parallel

    arrays = {"x": rng.standard_normal((5, 3, 7, 8)), "w": rng.standard_normal((4, 3, 3, 3))}
    if bias:
        arrays["b"] = rng.standard_normal(4)
    per_image = int(np.prod(conv.columns_shape((1, 3, 7, 8), (4, 3, 3, 3), stride, padding, dilation))) * 8
    monkeypatch.setitem(conv.CHUNK_BYTES, "numpy", images_per_chunk * per_image)
    caches = []

    def forward():
        out, cache = conv2d_forward(arrays["x"], arrays["w"], arrays.get("b"), stride, padding, dilation,
                                    algorithm="im2col")
        caches.append(cache)
        return out

    def backward(dout):
        dx, dw, db = conv2d_backward(dout, caches[-1])
        assert (db is None) == (not bias)
        return {"x": dx, "w": dw, **({"b": db} if bias else {})}

    with parallel.threads(2):
        assert conv._split_images(5, conv._images_per_chunk(per_image, 5, np), np)  # this path is the one taken
        expected = conv2d_naive(arrays["x"], arrays["w"], arrays.get("b"), stride, padding, dilation)
        np.testing.assert_allclose(forward(), expected, atol=1e-12)
        assert_gradients_close(forward, backward, arrays, rng, tolerance=1e-8)


def test_images_split_over_threads_with_kept_columns_equal_one_thread(rng):
    """The tiny SSD's case: training layers keep their columns; 2 and 3 threads against 1."""
    from minissd.nn import parallel

    x = rng.standard_normal((7, 6, 9, 9)).astype(np.float32)
    w = rng.standard_normal((5, 6, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    dout = rng.standard_normal((7, 5, 5, 5)).astype(np.float32)

    def run():
        columns = conv.kept_columns(None, x, w, 2, 1, 1)
        assert columns is not None
        out, cache = conv2d_forward(x, w, b, 2, 1, columns=columns)
        return (out, *conv2d_backward(dout, cache))

    serial = run()
    for threads in (2, 3):
        with parallel.threads(threads):
            assert conv._split_images(7, 7, np)
            for got, expected in zip(run(), serial):
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
