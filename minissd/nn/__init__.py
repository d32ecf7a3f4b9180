"""The autograd-free core: layers as explicit forward/backward pairs.

Every op is a pure pair, CS231n style,

    out, cache = op_forward(x, ...)        dx, dparams... = op_backward(dout, cache)

written with ``xp = get_array_module(...)`` so the same code runs on NumPy and
CuPy. The layers in ``layers`` are thin stateful wrappers (params, grads,
train/eval, device moves); ``optim`` updates them.

    im2col      im2col / col2im (kernel-tap loops) and their per-pixel oracles
    conv        conv2d forward / backward (+ conv2d_naive); Winograd where it pays
    winograd    Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (+ tile-by-tile oracle)
    parallel    worker threads for the NumPy path (set_threads, MINISSD_THREADS)
    pool        max pooling, floor / ceil mode (+ naive oracle)
    activation  ReLU
    l2norm      SSD's channel L2 normalisation with learned scale
    batchnorm   BatchNorm2d
    heads       head output (N, B*V, H, W) -> (N, H*W*B, V) in default-box order
    init        Xavier / Kaiming initial weights from an explicit generator
    layers      Conv2d, ReLU, MaxPool2d, L2Norm, BatchNorm2d, Sequential
    optim       SGD (Caffe's momentum form), warmup + multistep schedule
    gradcheck   centred finite differences in float64
    cuda_kernels  CuPy kernels behind im2col / col2im / pooling on a GPU

(Timing lives in minissd.bench: ``python -m minissd.bench ops`` times single layers.)
"""

from .activation import relu_backward, relu_forward
from .batchnorm import batchnorm2d_backward, batchnorm2d_forward
from .conv import conv2d_backward, conv2d_forward, conv2d_naive
from .heads import flatten_head, flatten_head_backward, flatten_heads, flatten_heads_backward
from .im2col import col2im, conv_output_size, im2col
from .l2norm import l2norm_backward, l2norm_forward
from .layers import BatchNorm2d, Conv2d, L2Norm, Layer, MaxPool2d, ReLU, Sequential
from .optim import SGD, WarmupMultiStepLR
from .pool import maxpool2d_backward, maxpool2d_forward, pool_output_size

__all__ = [
    "BatchNorm2d", "Conv2d", "L2Norm", "Layer", "MaxPool2d", "ReLU", "SGD", "Sequential", "WarmupMultiStepLR",
    "batchnorm2d_backward", "batchnorm2d_forward", "col2im", "conv2d_backward", "conv2d_forward",
    "conv2d_naive", "conv_output_size", "flatten_head", "flatten_head_backward", "flatten_heads",
    "flatten_heads_backward", "im2col", "l2norm_backward", "l2norm_forward", "maxpool2d_backward",
    "maxpool2d_forward", "pool_output_size", "relu_backward", "relu_forward",
]
