"""The SSD network as a whole: a trunk of stages, one head per feature map.

    images (N, 3, S, S)
      -> stage 0 -> source 0 (through L2Norm for SSD's conv4_3) -> head 0
      -> stage 1 -> source 1                                    -> head 1
      ...
      -> stage K-1 -> source K-1                                -> head K-1
    heads -> loc (N, P, 4), conf (N, P, L), rows in default-box order

Every stage ends where a feature map is taken, so the forward is a loop over
stages and the backward the same loop reversed. The gradient reaching the
output of stage k is the sum of what its head sends back (through the L2Norm
where there is one) and what stage k+1 sends back: the trunk branches there.

Each head is one 3x3 convolution computing the loc and conf channels
together (so the map's im2col is built once), whose output is split and
flattened NCHW -> NHWC -> (N, H*W*B, V) as ``minissd/nn/heads.py`` explains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..nn import Layer, init
from ..nn.conv import conv2d_backward, conv2d_forward, kept_columns
from ..nn.heads import flatten_head, flatten_head_backward
from ..priors import default_boxes, get_config
from ..validate import format_key_difference

MEAN_RGB = (123.0, 117.0, 104.0)  # the Caffe / torchvision SSD300 mean, 0-255 RGB


class MultiBoxHead(Layer):
    """loc and conf predictions of one feature map: a 3x3 conv with B*(4 + L) channels.

    params: loc.weight (B*4, C, 3, 3), loc.bias (B*4,), conf.weight (B*L, C, 3, 3), conf.bias (B*L,)
    forward(x (N, C, H, W)) -> (loc (N, H*W*B, 4), conf (N, H*W*B, L))
    """

    def __init__(self, in_channels: int, boxes: int, num_classes: int, rng):
        super().__init__()
        self.boxes, self.num_classes = boxes, num_classes
        self.params["loc.weight"] = init.xavier_uniform((boxes * 4, in_channels, 3, 3), rng)
        self.params["loc.bias"] = init.zeros((boxes * 4,))
        self.params["conf.weight"] = init.xavier_uniform((boxes * num_classes, in_channels, 3, 3), rng)
        self.params["conf.bias"] = init.zeros((boxes * num_classes,))
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self._columns = None  # im2col columns kept from the forward for the backward (training only)

    def clear_cache(self) -> None:
        self.cache = None
        self._columns = None

    def _joint(self):
        xp = backend.get_array_module(*self.params.values())
        weight = xp.concatenate([self.params["loc.weight"], self.params["conf.weight"]])  # (B*(4+L), C, 3, 3)
        bias = xp.concatenate([self.params["loc.bias"], self.params["conf.bias"]])  # (B*(4+L),)
        return weight, bias

    def forward(self, x):
        weight, bias = self._joint()
        self._columns = kept_columns(self._columns, x, weight, 1, 1, 1) if self.training else None
        out, conv_cache = conv2d_forward(x, weight, bias, stride=1, padding=1, columns=self._columns)  # (N, B*(4+L), H, W)
        split = self.boxes * 4
        self.cache = (conv_cache, out.shape)
        loc = flatten_head(out[:, :split], 4)  # (N, H*W*B, 4)
        conf = flatten_head(out[:, split:], self.num_classes)  # (N, H*W*B, L)
        return loc, conf

    def backward(self, dout, need_input_grad: bool = True):
        """Gradients into the four params; returns d map (N, C, H, W), or None when not needed."""
        dloc, dconf = dout
        conv_cache, (n, _, height, width) = self._cache()
        split = self.boxes * 4
        xp = backend.get_array_module(dloc, dconf)
        dmap = xp.concatenate([
            flatten_head_backward(dloc, (n, split, height, width)),
            flatten_head_backward(dconf, (n, self.boxes * self.num_classes, height, width)),
        ], axis=1)  # (N, B*(4+L), H, W)
        dx, dweight, dbias = conv2d_backward(dmap, conv_cache, need_dx=need_input_grad)
        self.grads["loc.weight"] += dweight[:split]
        self.grads["conf.weight"] += dweight[split:]
        self.grads["loc.bias"] += dbias[:split]
        self.grads["conf.bias"] += dbias[split:]
        return dx


@dataclass
class ModelInfo:
    """What identifies a model (saved with its weights as JSON)."""

    arch: str
    num_classes: int
    preset: str
    class_names: list = field(default_factory=list)
    mean: tuple = MEAN_RGB
    options: dict = field(default_factory=dict)


class SSD:
    """An SSD detector: ``forward(images) -> (loc, conf)``, ``backward(grad_loc, grad_conf)``.

    stages: list of layers; stage k's output is feature map k.
    norms:  dict k -> layer applied to feature map k before its head (SSD300's L2Norm).
    heads:  one ``MultiBoxHead`` per feature map.
    Attributes: ``params`` and ``grads`` (ordered dicts name -> array, one fixed
    order), ``buffers`` (BatchNorm running statistics), ``priors`` (P, 4)
    cxcywh default boxes on the model's device, ``info`` (``ModelInfo``).
    """

    def __init__(self, info: ModelInfo, stages, norms, heads, stage_names=None, prior_config=None):
        self.info = info
        # the builders pass the config itself, so an unregistered PriorConfig works too
        self.prior_config = get_config(info.preset if prior_config is None else prior_config)
        if len(heads) != len(self.prior_config.feature_maps) or len(stages) != len(heads):
            raise ValueError(
                f"{info.arch}: {len(stages)} stages and {len(heads)} heads, but preset "
                f"{info.preset!r} has {len(self.prior_config.feature_maps)} feature maps"
            )
        self.stages = list(stages)
        self.stage_names = list(stage_names or [f"stage{k}" for k in range(len(stages))])
        self.norms = dict(norms)
        self.heads = list(heads)
        self.training = True
        self.frozen: frozenset = frozenset()  # parameter names kept fixed (see ``freeze``)
        self.priors = default_boxes(self.prior_config)  # (P, 4) on the host until .to()
        self._feature_shapes = None
        self._collect()

    # -- bookkeeping ------------------------------------------------------

    def _named_layers(self):
        for k, stage in enumerate(self.stages):
            yield "", stage  # stage layers carry globally unique names already
            if k in self.norms:
                yield f"{self.norm_name(k)}.", self.norms[k]
        for k, head in enumerate(self.heads):
            yield f"head{k}.", head

    def norm_name(self, k: int) -> str:
        return f"{self.stage_names[k]}_norm"

    def _collect(self):
        self.params, self.grads, self.buffers = {}, {}, {}
        for prefix, layer in self._named_layers():
            for table, child in ((self.params, layer.params), (self.grads, layer.grads), (self.buffers, layer.buffers)):
                for name, array in child.items():
                    key = prefix + name
                    if key in table:
                        raise ValueError(f"two parameters are named {key!r}")
                    table[key] = array

    def layers(self):
        return [layer for _, layer in self._named_layers()]

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def image_size(self) -> int:
        return self.prior_config.image_size

    @property
    def feature_shapes(self) -> list[tuple[int, ...]]:
        """(N, C, H, W) of every feature map of the last forward; empty before the first.

        An empty batch walks the shapes at no cost: ``model.forward(xp.zeros((0, 3, S, S)))``.
        """
        return [tuple(int(d) for d in shape) for shape in (self._feature_shapes or [])]

    @property
    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    @property
    def device(self) -> str:
        return backend.device_of(next(iter(self.params.values())))

    def to(self, device: str | None = None):
        """Move weights, gradients, buffers and default boxes to 'cpu' or 'gpu'."""
        device = backend.resolve_device(device)
        for layer in self.layers():
            layer.to(device)
        self.priors = backend.to_device(self.priors, device)
        self._collect()
        return self

    def astype(self, dtype):
        """Cast every array (float64 for gradient checks)."""
        for layer in self.layers():
            layer.astype(dtype)
        self.priors = self.priors.astype(dtype)
        self._collect()
        return self

    def train(self, mode: bool = True):
        self.training = bool(mode)
        for layer in self.layers():
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for layer in self.layers():
            layer.zero_grad()

    def freeze(self, names=()) -> "SSD":
        """Keep these parameters fixed: the optimiser skips them (``TrainConfig.frozen``), and
        ``backward`` stops early when whole leading stages are frozen: no gradient is propagated
        through a stage, or into a map, that only frozen parameters lie below. ``freeze()``
        unfreezes everything. The frozen parameters' ``grads`` are then not meaningful."""
        unknown = [name for name in names if name not in self.params]
        if unknown:
            raise ValueError(f"freeze: the model has no parameters {unknown[:5]}")
        self.frozen = frozenset(names)
        return self

    def first_trained_stage(self) -> int:
        """Index of the first stage holding a parameter that is not frozen (len(stages) if none)."""
        for k, stage in enumerate(self.stages):
            if any(name not in self.frozen for name in stage.params):
                return k
        return len(self.stages)

    def clear_cache(self):
        """Drop the activations kept for backward (after inference, to free memory)."""
        for layer in self.layers():
            layer.clear_cache()

    # -- forward and backward --------------------------------------------

    def check_images(self, images):
        """A clear error unless images is (N, 3, S, S) float32/float64 on the model's device."""
        size = self.image_size
        shape = tuple(getattr(images, "shape", ()))
        if len(shape) != 4 or shape[1] != 3 or shape[2:] != (size, size):
            raise ValueError(
                f"{self.info.arch} expects images of shape (N, 3, {size}, {size}) "
                f"(NCHW, RGB minus the mean); got {shape if shape else type(images).__name__}"
            )
        dtype = np.dtype(images.dtype)
        if dtype.kind != "f":
            raise ValueError(
                f"{self.info.arch} expects float32 images (N, 3, {size}, {size}); got dtype {dtype}: "
                "convert with minissd.detect.preprocess (one image) or images.astype(np.float32) - mean"
            )
        param_dtype = np.dtype(next(iter(self.params.values())).dtype)
        if dtype != param_dtype:
            raise ValueError(f"images are {dtype} but the model's weights are {param_dtype}")
        if backend.device_of(images) != self.device:
            raise backend.DeviceMismatchError(
                f"images are on the {backend.device_of(images)} but the model is on the {self.device}; "
                "move one of them (minissd.backend.to_device / model.to)"
            )

    def forward(self, images):
        """images (N, 3, S, S) -> loc (N, P, 4), conf (N, P, L)."""
        self.check_images(images)
        xp = backend.get_array_module(images)
        locs, confs, shapes = [], [], []
        x = images
        for k, stage in enumerate(self.stages):
            x = stage.forward(x)
            shapes.append(x.shape)
            source = self.norms[k].forward(x) if k in self.norms else x
            loc, conf = self.heads[k].forward(source)
            locs.append(loc)
            confs.append(conf)
        self._feature_shapes = shapes
        loc = xp.concatenate(locs, axis=1)  # (N, P, 4)
        conf = xp.concatenate(confs, axis=1)  # (N, P, L)
        return loc, conf

    __call__ = forward

    def backward(self, grad_loc, grad_conf):
        """Add d loss / d param into ``grads`` from grad_loc (N, P, 4) and grad_conf (N, P, L).

        Call ``zero_grad()`` first (gradients accumulate, as in PyTorch).
        """
        if self._feature_shapes is None:
            raise RuntimeError("backward called before forward")
        num_priors = self.priors.shape[0]
        expected_loc = (self._feature_shapes[0][0], num_priors, 4)
        if tuple(grad_loc.shape) != expected_loc:
            raise ValueError(f"grad_loc must have shape {expected_loc}; got {tuple(grad_loc.shape)}")
        expected_conf = expected_loc[:2] + (self.num_classes,)
        if tuple(grad_conf.shape) != expected_conf:
            raise ValueError(f"grad_conf must have shape {expected_conf}; got {tuple(grad_conf.shape)}")
        grad_trunk = None  # gradient arriving at the output of stage k from stage k+1
        start_of = [0]
        for shape, per_cell in zip(self._feature_shapes, self.prior_config.boxes_per_cell):
            start_of.append(start_of[-1] + shape[2] * shape[3] * per_cell)
        # map k needs a gradient only if a trained parameter lies at or below it (frozen backbone:
        # the VGG16's backward, most of a step, is skipped); norms hold parameters of their own
        first = self.first_trained_stage()
        for k in reversed(range(len(self.stages))):
            rows = slice(start_of[k], start_of[k + 1])
            into_map = k >= first or k in self.norms
            grad = self.heads[k].backward((grad_loc[:, rows], grad_conf[:, rows]), need_input_grad=into_map)
            if k in self.norms:
                grad = self.norms[k].backward(grad)
            if k < first:
                continue
            if grad_trunk is not None:
                grad = grad + grad_trunk
            grad_trunk = self.stages[k].backward(grad)
        return grad_trunk if first == 0 else None

    # -- weights ------------------------------------------------------------

    def state_dict(self) -> dict:
        """Host copies of params and buffers, by name (what ``save`` writes)."""
        state = {name: backend.to_numpy(p).copy() for name, p in self.params.items()}
        state.update({name: backend.to_numpy(b).copy() for name, b in self.buffers.items()})
        return state

    def load_state_dict(self, state: dict, source: str = "state") -> None:
        """Copy arrays into params and buffers in place; clear errors naming the parameter."""
        targets = {**self.params, **self.buffers}
        difference = format_key_difference(targets, state)
        if difference:
            raise ValueError(f"{source} does not fit {self.info.arch} with {self.num_classes} classes: {difference}")
        for name, target in targets.items():
            value = np.asarray(backend.to_numpy(state[name]))
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(
                    f"{source}: parameter {name!r} has shape {tuple(value.shape)}, "
                    f"but {self.info.arch} with {self.num_classes} classes expects {tuple(target.shape)}"
                )
        for name, target in targets.items():  # check everything before changing anything
            xp = backend.get_array_module(target)
            target[...] = xp.asarray(np.asarray(backend.to_numpy(state[name])).astype(target.dtype, copy=False))

    def save(self, path, extra: dict | None = None) -> None:
        """Write weights and metadata to an .npz file (atomically)."""
        from .io import save_model

        save_model(self, path, extra)

    def summary(self) -> str:
        """One line per feature map: size, channels, boxes, and the parameter count."""
        lines = [f"{self.info.arch}: {self.num_parameters:,} parameters, {self.num_classes} classes, "
                 f"preset {self.info.preset}, {self.priors.shape[0]} default boxes"]
        if self._feature_shapes:
            for k, shape in enumerate(self._feature_shapes):
                lines.append(f"  map {k}: {shape[2]} x {shape[3]} x {shape[1]} channels, "
                             f"{self.prior_config.boxes_per_cell[k]} boxes per cell")
        return "\n".join(lines)

    def __repr__(self):
        return f"SSD(arch={self.info.arch!r}, num_classes={self.num_classes}, params={self.num_parameters:,})"
