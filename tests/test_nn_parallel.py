"""Worker threads (minissd.nn.parallel): the splitting rules, and every threaded op against its serial self."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from minissd import models
from minissd.nn import parallel
from minissd.nn.activation import relu_backward, relu_forward
from minissd.nn.batchnorm import batchnorm2d_backward, batchnorm2d_forward
from minissd.nn.conv import conv2d_backward, conv2d_forward
from minissd.nn.pool import maxpool2d_backward, maxpool2d_forward


def test_ranges_cover_everything_once():
    assert parallel.ranges(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert parallel.ranges(2, 5) == [(0, 1), (1, 2)]
    assert parallel.ranges(0, 2) == []
    with parallel.threads(2):
        assert parallel.ranges(5) == [(0, 2), (2, 5)]


def test_run_uses_the_threads_and_raises_what_a_part_raised():
    seen = {}

    def record(lo, hi, part):
        seen[part] = (lo, hi, threading.current_thread().name)

    before = parallel.count()
    with parallel.threads(3):
        assert parallel.count() == 3
        parallel.run(record, 9)
        assert sorted(seen) == [0, 1, 2] and [seen[p][:2] for p in range(3)] == [(0, 3), (3, 6), (6, 9)]
        assert seen[0][2] == threading.current_thread().name and seen[1][2].startswith("minissd-nn")

        def fail(lo, hi, part):
            if part == 2:
                raise RuntimeError("part 2 failed")

        with pytest.raises(RuntimeError, match="part 2 failed"):
            parallel.run(fail, 9)
    assert parallel.count() == before  # restored
    seen.clear()
    with parallel.threads(1):
        parallel.run(record, 9)
    assert list(seen) == [0] and seen[0][:2] == (0, 9)


def test_bad_thread_counts_are_refused():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads must be an integer >= 1"):
            parallel.set_threads(bad)


def test_threads_from_the_environment():
    code = "from minissd.nn import parallel; print(parallel.count())"
    for value, expected in (("3", "3"), ("", "1")):
        done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MINISSD_THREADS": value},
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected
    bad = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MINISSD_THREADS": "two"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "MINISSD_THREADS must be an integer >= 1; got 'two'" in bad.stderr


def _serial_and_threaded(fn):
    serial = fn()
    with parallel.threads(3):
        threaded = fn()
    return serial, threaded


def _assert_same(serial, threaded, atol=1e-12):
    for a, b in zip(serial, threaded):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(b, a, atol=atol)


@pytest.mark.parametrize("geometry", [
    (3, 4, 9, 3, 1, 1, 1),  # C, O, H, K, stride, padding, dilation
    (4, 6, 9, 3, 2, 1, 1),
    (5, 3, 11, 3, 1, 3, 3),
    (6, 5, 7, 1, 1, 0, 1),  # pointwise
])
@pytest.mark.parametrize("batch", [1, 5])
def test_im2col_convolution(rng, geometry, batch):
    c, o, h, k, s, p, d = geometry
    x, w, b = rng.standard_normal((batch, c, h, h)), rng.standard_normal((o, c, k, k)), rng.standard_normal(o)

    def run():
        out, cache = conv2d_forward(x, w, b, s, p, d, algorithm="im2col")
        dout = np.cos(out)
        return (out, *conv2d_backward(dout, cache))

    _assert_same(*_serial_and_threaded(run))


def test_relu_pool_and_batchnorm(rng):
    x = rng.standard_normal((3, 5, 9, 8))
    dout = rng.standard_normal((3, 5, 9, 8))

    def run():
        relu_out, relu_cache = relu_forward(x)
        results = [relu_out, relu_backward(dout, relu_cache)]
        for k, s, p, ceil in ((2, 2, 0, True), (3, 1, 1, False)):
            out, cache = maxpool2d_forward(x, k, s, p, ceil)
            results += [out, maxpool2d_backward(np.sin(out), cache)]
        for training in (True, False):
            mean, var = np.zeros(5), np.ones(5)
            out, cache = batchnorm2d_forward(x, np.full(5, 1.5), np.full(5, 0.2), mean, var, training)
            results += [out, *batchnorm2d_backward(dout, cache), mean, var]
        return results

    _assert_same(*_serial_and_threaded(run))


def test_tiny_ssd_training_step(rng):
    model = models.tiny_ssd(4, widths=(8, 8, 8, 8, 8, 8, 8, 8))
    # 4 images for 3 threads: the convolutions split the images (conv._split_images), not their channels
    images = rng.standard_normal((4, 3, 128, 128)).astype(np.float32)

    def run():
        model.train()
        model.zero_grad()
        loc, conf = model.forward(images)
        model.backward(np.ones_like(loc) * 1e-2, np.ones_like(conf) * 1e-2)
        return [loc, conf] + [g.copy() for g in model.grads.values()]

    _assert_same(*_serial_and_threaded(run), atol=1e-4)
