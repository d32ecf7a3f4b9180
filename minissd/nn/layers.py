"""Thin stateful layers around the forward/backward ops.

Each layer holds

    params   dict name -> array, in a fixed order ("weight", then "bias")
    grads    dict name -> array of the same shapes; backward ADDS into them
             (as PyTorch does), so call ``zero_grad()`` before each backward
    buffers  dict name -> array, state that is not trained (BatchNorm's running stats)

and the cache of its last forward, which its backward consumes. Arrays are
updated in place (the optimiser writes params[...], the backward adds into
grads[...]), so references held by an optimiser stay valid; only ``to()``
replaces them, so build the optimiser after moving the model.

    layer.forward(x) -> out          layer.backward(dout) -> dx
    layer.train() / layer.eval()     layer.to("gpu") / layer.to("cpu")
    layer.state_dict() / layer.load_state_dict(state)   (host copies)
    layer.astype(np.float64)         (for gradient checks)
"""

from __future__ import annotations

import numpy as np

from .. import backend
from . import init
from .activation import relu_backward, relu_forward
from .batchnorm import batchnorm2d_backward, batchnorm2d_forward
from .conv import conv2d_backward, conv2d_forward, kept_columns
from .l2norm import l2norm_backward, l2norm_forward
from .pool import maxpool2d_backward, maxpool2d_forward


class Layer:
    """Base class: parameter bookkeeping, device moves, train/eval, state dicts."""

    def __init__(self):
        self.params: dict[str, object] = {}
        self.grads: dict[str, object] = {}
        self.buffers: dict[str, object] = {}
        self.training = True
        self.cache = None

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def _cache(self):
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward (no cache)")
        return self.cache

    def train(self, mode: bool = True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self) -> None:
        for grad in self.grads.values():
            grad[...] = 0

    def clear_cache(self) -> None:
        """Drop the references to the last forward's activations."""
        self.cache = None

    @property
    def device(self) -> str:
        arrays = list(self.params.values()) + list(self.buffers.values())
        return backend.device_of(arrays[0]) if arrays else "cpu"

    def to(self, device: str):
        """Move params, grads and buffers to 'cpu' or 'gpu' (replaces the arrays)."""
        for table in (self.params, self.grads, self.buffers):
            for name, array in table.items():
                table[name] = backend.to_device(array, device)
        self.cache = None
        return self

    def astype(self, dtype):
        """Cast params, grads and buffers (float64 for a gradient check); replaces the arrays."""
        for table in (self.params, self.grads, self.buffers):
            for name, array in table.items():
                table[name] = array.astype(dtype)
        self.cache = None
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Host (NumPy) copies of params and buffers, by name."""
        state = {name: backend.to_numpy(p).copy() for name, p in self.params.items()}
        state.update({name: backend.to_numpy(b).copy() for name, b in self.buffers.items()})
        return state

    def load_state_dict(self, state, strict: bool = True) -> None:
        """Copy arrays into params and buffers in place (on their current device)."""
        targets = {**self.params, **self.buffers}
        missing = [name for name in targets if name not in state]
        unexpected = [name for name in state if name not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing {missing}, unexpected {unexpected}")
        for name, target in targets.items():
            if name not in state:
                continue
            value = backend.to_numpy(state[name])
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: {name!r} has shape {tuple(value.shape)}, "
                    f"the layer expects {tuple(target.shape)}"
                )
            xp = backend.get_array_module(target)
            target[...] = xp.asarray(value.astype(target.dtype, copy=False))


class Conv2d(Layer):
    """2-D convolution: weight (O, C, K, K), Xavier-uniform; bias (O,), zeros."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, bias: bool = True, rng=None, weight_init=init.xavier_uniform):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        # False for a first layer: its input (the image) needs no gradient, saving a GEMM and a col2im
        self.needs_input_grad = True
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.params["weight"] = weight_init(shape, rng)
        if bias:
            self.params["bias"] = init.zeros((out_channels,))
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._columns = None  # im2col columns kept from the forward for the backward (training only)

    def forward(self, x):
        weight = self.params["weight"]
        # in training, a small layer keeps its columns for the backward (conv.KEEP_COLUMNS_BYTES)
        self._columns = (kept_columns(self._columns, x, weight, self.stride, self.padding, self.dilation)
                         if self.training else None)
        out, self.cache = conv2d_forward(
            x, weight, self.params.get("bias"), self.stride, self.padding, self.dilation, columns=self._columns
        )
        return out

    def clear_cache(self) -> None:
        self.cache = None
        self._columns = None

    def backward(self, dout):
        dx, dw, db = conv2d_backward(dout, self._cache(), need_dx=self.needs_input_grad)
        self.grads["weight"] += dw
        if db is not None:
            self.grads["bias"] += db
        return dx

    def __repr__(self):
        o, c, k, _ = self.params["weight"].shape
        return f"Conv2d({c}, {o}, k={k}, s={self.stride}, p={self.padding}, d={self.dilation})"


class ReLU(Layer):
    """max(x, 0); ``inplace=True`` overwrites its input (see activation.py for when that is safe)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        out, self.cache = relu_forward(x, inplace=self.inplace)
        return out

    def backward(self, dout):
        return relu_backward(dout, self._cache())

    def __repr__(self):
        return f"ReLU(inplace={self.inplace})"


class MaxPool2d(Layer):
    """Max pooling, PyTorch's floor / ceil_mode sizes."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.ceil_mode = kernel_size, stride, padding, ceil_mode

    def forward(self, x):
        out, self.cache = maxpool2d_forward(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)
        return out

    def backward(self, dout):
        return maxpool2d_backward(dout, self._cache())

    def __repr__(self):
        return f"MaxPool2d(k={self.kernel_size}, s={self.stride}, p={self.padding}, ceil_mode={self.ceil_mode})"


class L2Norm(Layer):
    """SSD's conv4_3 normalisation: scale[c] * x / ||x||_2 over channels; scale starts at 20."""

    def __init__(self, channels: int, initial_scale: float = 20.0, eps: float = 1e-12):
        super().__init__()
        self.eps = eps
        self.params["weight"] = init.constant((channels,), initial_scale)
        self.grads["weight"] = np.zeros_like(self.params["weight"])

    def forward(self, x):
        out, self.cache = l2norm_forward(x, self.params["weight"], self.eps)
        return out

    def backward(self, dout):
        dx, dscale = l2norm_backward(dout, self._cache())
        self.grads["weight"] += dscale
        return dx

    def __repr__(self):
        return f"L2Norm({self.params['weight'].shape[0]})"


class BatchNorm2d(Layer):
    """Batch normalisation; batch statistics in train mode, running ones in eval mode."""

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.params["weight"] = init.constant((channels,), 1.0)  # gamma
        self.params["bias"] = init.zeros((channels,))  # beta
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.buffers["running_mean"] = init.zeros((channels,))
        self.buffers["running_var"] = init.constant((channels,), 1.0)

    def forward(self, x):
        out, self.cache = batchnorm2d_forward(
            x, self.params["weight"], self.params["bias"], self.buffers["running_mean"],
            self.buffers["running_var"], self.training, self.momentum, self.eps,
        )
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = batchnorm2d_backward(dout, self._cache())
        self.grads["weight"] += dgamma
        self.grads["bias"] += dbeta
        return dx

    def __repr__(self):
        return f"BatchNorm2d({self.params['weight'].shape[0]})"


class Sequential(Layer):
    """Layers applied in order; parameters named '<layer name>.<param name>'.

    Sequential(Conv2d(...), ReLU()) names its layers '0', '1', ...;
    Sequential(("conv1_1", Conv2d(...)), ("relu1_1", ReLU())) uses the given names.
    ``params``, ``grads`` and ``buffers`` are flat dicts that share the
    children's arrays.
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers: dict[str, Layer] = {}
        for index, item in enumerate(layers):
            name, layer = item if isinstance(item, tuple) else (str(index), item)
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {name!r} is a {type(layer).__name__}, not a Layer")
            if name in self.layers:
                raise ValueError(f"Sequential: two layers are named {name!r}")
            self.layers[name] = layer
        self._collect()

    def _collect(self) -> None:
        self.params, self.grads, self.buffers = {}, {}, {}
        for prefix, layer in self.layers.items():
            for table, child in ((self.params, layer.params), (self.grads, layer.grads), (self.buffers, layer.buffers)):
                for name, array in child.items():
                    table[f"{prefix}.{name}"] = array

    def __getitem__(self, name):
        return self.layers[name] if isinstance(name, str) else list(self.layers.values())[name]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        return dout

    def train(self, mode: bool = True):
        self.training = bool(mode)
        for layer in self.layers.values():
            layer.train(mode)
        return self

    def zero_grad(self) -> None:
        for layer in self.layers.values():
            layer.zero_grad()

    def clear_cache(self) -> None:
        for layer in self.layers.values():
            layer.clear_cache()

    def to(self, device: str):
        for layer in self.layers.values():
            layer.to(device)
        self._collect()
        return self

    def astype(self, dtype):
        for layer in self.layers.values():
            layer.astype(dtype)
        self._collect()
        return self

    def __repr__(self):
        inner = "\n".join(f"  ({name}): {layer!r}" for name, layer in self.layers.items())
        return f"Sequential(\n{inner}\n)"
