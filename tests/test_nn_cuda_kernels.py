"""CUDA kernels against the NumPy path. They need CuPy and a GPU; elsewhere only the dispatch is tested."""

import numpy as np
import pytest

from minissd import backend
from minissd.nn import cuda_kernels
from minissd.nn.conv import conv2d_backward, conv2d_forward
from minissd.nn.im2col import col2im, im2col
from minissd.nn.pool import maxpool2d_backward, maxpool2d_forward

needs_gpu = pytest.mark.skipif(not backend.gpu_available(), reason=backend.gpu_unavailable_reason() or "")


def test_kernels_are_never_used_for_numpy():
    assert cuda_kernels.use_for(np) is False


def _both_paths(fn):
    """fn() once with the CUDA kernels and once with the generic tap loop on CuPy."""
    try:
        cuda_kernels.ENABLED = True
        with_kernels = fn()
        cuda_kernels.ENABLED = False
        without = fn()
    finally:
        cuda_kernels.ENABLED = True
    return with_kernels, without


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride, padding, dilation", [(3, 1, 1, 1), (3, 2, 1, 1), (3, 1, 6, 6), (1, 1, 0, 1), (2, 3, 1, 2)])
def test_im2col_col2im_and_conv_kernels_match_numpy(rng, dtype, kernel, stride, padding, dilation):
    cupy = backend.cupy_module()
    x = rng.standard_normal((2, 3, 13, 11)).astype(dtype)
    x_gpu = cupy.asarray(x)
    cols_k, cols_g = _both_paths(lambda: im2col(x_gpu, kernel, stride, padding, dilation))
    cols_cpu = im2col(x, kernel, stride, padding, dilation)
    np.testing.assert_array_equal(cupy.asnumpy(cols_k), cols_cpu)
    np.testing.assert_array_equal(cupy.asnumpy(cols_g), cols_cpu)
    c = rng.standard_normal(cols_cpu.shape).astype(dtype)
    back_k, back_g = _both_paths(lambda: col2im(cupy.asarray(c), x.shape, stride, padding, dilation))
    back_cpu = col2im(c, x.shape, stride, padding, dilation)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cupy.asnumpy(back_k), back_cpu, atol=tol)
    np.testing.assert_allclose(cupy.asnumpy(back_g), back_cpu, atol=tol)
    w = rng.standard_normal((4, 3, kernel, kernel)).astype(dtype)
    out_gpu, cache = conv2d_forward(x_gpu, cupy.asarray(w), None, stride, padding, dilation)
    out_cpu, cache_cpu = conv2d_forward(x, w, None, stride, padding, dilation)
    np.testing.assert_allclose(cupy.asnumpy(out_gpu), out_cpu, rtol=1e-4, atol=1e-4)
    dout = rng.standard_normal(out_cpu.shape).astype(dtype)
    grads_gpu = conv2d_backward(cupy.asarray(dout), cache)
    grads_cpu = conv2d_backward(dout, cache_cpu)
    for g_gpu, g_cpu in zip(grads_gpu[:2], grads_cpu[:2]):
        np.testing.assert_allclose(cupy.asnumpy(g_gpu), g_cpu, rtol=1e-4, atol=1e-3)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [(2, 2, 0, True), (3, 1, 1, False), (3, 2, 1, True)])
def test_maxpool_kernels_match_numpy_including_ties(rng, kernel, stride, padding, ceil_mode):
    cupy = backend.cupy_module()
    x = rng.integers(0, 3, size=(2, 3, 9, 9)).astype(np.float32)  # many ties
    out_cpu, cache_cpu = maxpool2d_forward(x, kernel, stride, padding, ceil_mode)
    dout = rng.standard_normal(out_cpu.shape).astype(np.float32)
    dx_cpu = maxpool2d_backward(dout, cache_cpu)

    def on_gpu():
        out, cache = maxpool2d_forward(cupy.asarray(x), kernel, stride, padding, ceil_mode)
        return cupy.asnumpy(out), cupy.asnumpy(maxpool2d_backward(cupy.asarray(dout), cache))

    (out_k, dx_k), (out_g, dx_g) = _both_paths(on_gpu)
    np.testing.assert_array_equal(out_k, out_cpu)
    np.testing.assert_array_equal(out_g, out_cpu)
    np.testing.assert_allclose(dx_k, dx_cpu, atol=1e-5)
    np.testing.assert_allclose(dx_g, dx_cpu, atol=1e-5)
