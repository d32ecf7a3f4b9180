"""Fine-tuning, model side: a pretrained backbone in, new classes out, the names to freeze.

    load_backbone(model, state)           copy VGG16 conv1_1 ... fc7 into an ssd300 / ssd512
    with_new_classes(model, L, names)     the same network for L classes: every weight kept
                                          except the conf heads, which start afresh
    backbone_parameter_names(model)       what ``--freeze-backbone`` holds still

What "backbone" means per architecture:

- ssd300, ssd512: VGG16 as the paper reduces it, conv1_1 ... conv5_3, fc6 (3x3, dilation 6) and
  fc7 (1x1): the layers an ImageNet classifier provides (``VGG16_BACKBONE_LAYERS``). The extras
  (conv8_1 ...), the L2Norm scale of conv4_3 and the heads are SSD's own and are not in it.
- tiny: its stem conv1 ... conv4 (with their BatchNorm scales and shifts, or the convolutions'
  biases when built without BatchNorm): the layers before the first feature map, the part that
  plays VGG's role. conv5 ... conv8, one stride-2 convolution per further map, are the tiny
  model's extra layers, as conv8_1 ... are SSD300's.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..validate import format_key_difference
from .io import check_finite

# (name, in channels, out channels, kernel) of VGG16 as SSD uses it, in network order
_VGG16_TABLE = (
    ("conv1_1", 3, 64, 3), ("conv1_2", 64, 64, 3),
    ("conv2_1", 64, 128, 3), ("conv2_2", 128, 128, 3),
    ("conv3_1", 128, 256, 3), ("conv3_2", 256, 256, 3), ("conv3_3", 256, 256, 3),
    ("conv4_1", 256, 512, 3), ("conv4_2", 512, 512, 3), ("conv4_3", 512, 512, 3),
    ("conv5_1", 512, 512, 3), ("conv5_2", 512, 512, 3), ("conv5_3", 512, 512, 3),
    ("fc6", 512, 1024, 3),  # the paper's subsampled fc6, used with dilation 6
    ("fc7", 1024, 1024, 1),
)
VGG16_BACKBONE_LAYERS = tuple(name for name, *_ in _VGG16_TABLE)
VGG16_BACKBONE_SHAPES = {}  # parameter name -> shape, conv1_1.weight ... fc7.bias
for _name, _cin, _cout, _kernel in _VGG16_TABLE:
    VGG16_BACKBONE_SHAPES[f"{_name}.weight"] = (_cout, _cin, _kernel, _kernel)
    VGG16_BACKBONE_SHAPES[f"{_name}.bias"] = (_cout,)
VGG_ARCHITECTURES = ("ssd300", "ssd512")


def backbone_parameter_names(model) -> list[str]:
    """Names (keys of ``model.params``) of the backbone's parameters, in network order.

    ssd300 / ssd512: conv1_1.weight ... fc7.bias (30 arrays: 15 layers). tiny: the stem conv1 ... conv4
    (convolution weights and BatchNorm weight/bias, or conv biases without BatchNorm).
    BatchNorm running statistics are buffers, not parameters: freezing the parameters leaves
    them updating in training mode.
    """
    arch = model.info.arch
    if arch in VGG_ARCHITECTURES:
        names = list(VGG16_BACKBONE_SHAPES)
    elif arch == "tiny":
        names = list(model.stages[0].params)  # stage layers carry the model's own parameter names
    else:
        raise ValueError(f"backbone_parameter_names: no backbone is defined for architecture {arch!r}")
    absent = [name for name in names if name not in model.params]
    if absent:
        raise ValueError(f"backbone_parameter_names: {arch} model lacks backbone parameters {absent[:4]}")
    return names


def load_backbone(model, backbone_state: dict, source: str = "backbone state", mean=None) -> list[str]:
    """Copy VGG16 conv1_1 ... fc7 into an ssd300 / ssd512 in place; returns the names loaded.

    backbone_state: name -> array, exactly ``VGG16_BACKBONE_SHAPES`` (conv1_1.weight (64, 3, 3, 3)
                    ... fc6.weight (1024, 512, 3, 3), fc7.weight (1024, 1024, 1, 1), biases (O,)),
                    as ``minissd.interop.backbone_state_from_vgg16`` or
                    ``minissd.models.io.load_backbone_file`` return it.
    source:         named in the errors (the file, say).
    mean:           RGB 0-255 mean the backbone expects (a backbone file's ``meta["mean"]``);
                    when given it becomes ``model.info.mean``, so training and detection subtract
                    it (and it is saved with the model).
    Everything is checked before anything changes. The extras, the L2Norm scale and the heads
    stay as they were initialised.
    """
    arch = model.info.arch
    if arch not in VGG_ARCHITECTURES:
        raise ValueError(
            f"load_backbone: {source} is a VGG16 backbone (conv1_1 ... fc7), which fits ssd300 and "
            f"ssd512; this model is {arch!r}"
        )
    if not hasattr(backbone_state, "keys"):
        raise TypeError(f"load_backbone: backbone_state must be a dict name -> array; got {type(backbone_state).__name__}")
    difference = format_key_difference(VGG16_BACKBONE_SHAPES, backbone_state)
    if difference:
        raise ValueError(f"load_backbone: {source} is not a VGG16 backbone state: {difference}")
    values = {name: np.asarray(backend.to_numpy(backbone_state[name])) for name in VGG16_BACKBONE_SHAPES}
    wrong = [f"{name!r} is {tuple(v.shape)}, {arch} needs {tuple(model.params[name].shape)}"
             for name, v in values.items() if tuple(v.shape) != tuple(model.params[name].shape)]
    if wrong:
        raise ValueError(f"load_backbone: {source} does not fit {arch}: " + "; ".join(wrong))
    not_float = [f"{name!r} ({v.dtype})" for name, v in values.items() if v.dtype.kind != "f"]
    if not_float:
        raise TypeError(f"load_backbone: {source} has arrays that are not floating point: {', '.join(not_float)}")
    check_finite(values, source)
    if mean is not None:
        mean = _check_mean(mean, source)
    for name, value in values.items():  # everything checked: now copy
        target = model.params[name]
        xp = backend.get_array_module(target)
        target[...] = xp.asarray(value.astype(target.dtype, copy=False))
    if mean is not None:
        model.info.mean = mean
    return list(values)


def _check_mean(mean, source: str) -> tuple:
    values = np.asarray(mean, dtype=np.float64) if not isinstance(mean, str) else np.zeros(0)
    if values.shape != (3,) or not np.isfinite(values).all():
        raise ValueError(f"load_backbone: mean {mean!r} from {source} is not three finite numbers (RGB, 0-255)")
    return tuple(float(v) for v in values)


def _is_conf_head(name: str) -> bool:
    return name.startswith("head") and ".conf." in name


def with_new_classes(model, num_classes: int, class_names=None, seed: int = 0):
    """A model of the same architecture, preset and options for ``num_classes`` classes (L, background included).

    Every parameter and buffer is copied from ``model`` (backbone, extras, L2Norm scale, loc heads,
    BatchNorm running statistics, the mean) except the conf heads ``head{k}.conf.weight``
    (B*L, C, 3, 3) and ``head{k}.conf.bias`` (B*L,), which are drawn afresh as the builder draws
    them for ``seed`` (Xavier-uniform weights, zero biases). ``model`` is not changed; the result
    is on the same device, with the same dtype and train/eval mode.
    """
    from . import ARCHITECTURES

    arch = model.info.arch
    if arch not in ARCHITECTURES:
        raise ValueError(f"with_new_classes: unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    options = {**model.info.options, "seed": seed}
    fresh = ARCHITECTURES[arch](num_classes=num_classes, preset=model.prior_config, class_names=class_names, **options)
    fresh.info.mean = tuple(model.info.mean)
    state = fresh.state_dict()
    kept = model.state_dict()
    for name in state:
        if not _is_conf_head(name):
            state[name] = kept[name]
    dtype = np.dtype(next(iter(model.params.values())).dtype)
    if dtype != np.float32:
        fresh.astype(dtype)
    fresh.load_state_dict(state, source=f"with_new_classes({arch})")
    fresh.to(model.device)
    fresh.train(model.training)
    return fresh
