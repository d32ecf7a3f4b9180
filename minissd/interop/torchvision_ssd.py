"""Weights from (and to) torchvision's ``ssd300_vgg16``.

torchvision's SSD300 is the same network as ``minissd.models.ssd300``: VGG16 with pool3 in ceil
mode, pool5 3x3/1/1, fc6 dilated, fc7 1x1, conv4_3 L2-normalised with a learned scale, the four
extra blocks, one 3x3 loc conv and one 3x3 conf conv per map. Weights are stored (O, C, K, K) in
both, and both heads order their channels "box b, value v" -> b * V + v, so importing is renaming:

    backbone.features.{0,2,5,7,10,12,14,17,19,21}   conv1_1 ... conv4_3
    backbone.scale_weight                            conv4_3_norm.weight   (the L2Norm scale)
    backbone.extra.0.{1,3,5}                         conv5_1, conv5_2, conv5_3
    backbone.extra.0.7.{1,3}                         fc6, fc7
    backbone.extra.{1,2,3,4}.{0,2}                   conv8_1, conv8_2 ... conv11_1, conv11_2
    head.regression_head.module_list.k               head{k}.loc
    head.classification_head.module_list.k           head{k}.conf

Its default boxes are the COCO scales (0.07 ... 1.05) with w and h clamped to [0, 1]: the
"ssd300-torchvision" preset. Its input is the same as minissd's: RGB in 0-255 minus
(123, 117, 104) (torchvision writes it as mean 0.48235... and std 1/255 on a 0-1 image).

Converting a checkpoint file (PyTorch is needed only to read the .pth): ``convert.py``,

    python -m minissd.interop ssd300_vgg16_coco-b556d3b4.pth -o ssd300_coco.npz
    model = minissd.models.load("ssd300_coco.npz")
"""

from __future__ import annotations

import numpy as np

from ..models import ssd300
from .checkpoint import float32_array, unwrap_state_dict

PRESET = "ssd300-torchvision"
_VGG_CONVS = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
              "conv4_1", "conv4_2", "conv4_3"]
_VGG_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21]  # nn.Sequential positions: ReLUs and pools between
_NUM_MAPS = 6


def torchvision_names() -> dict[str, str]:
    """minissd parameter name -> torchvision ``ssd300_vgg16`` state-dict name, in minissd's order."""
    layers = {ours: f"backbone.features.{index}" for ours, index in zip(_VGG_CONVS, _VGG_INDICES)}
    layers.update({"conv5_1": "backbone.extra.0.1", "conv5_2": "backbone.extra.0.3",
                   "conv5_3": "backbone.extra.0.5", "fc6": "backbone.extra.0.7.1", "fc7": "backbone.extra.0.7.3"})
    for block in range(1, 5):  # conv8 ... conv11: 1x1 conv at position 0, 3x3 conv at 2
        layers[f"conv{7 + block}_1"] = f"backbone.extra.{block}.0"
        layers[f"conv{7 + block}_2"] = f"backbone.extra.{block}.2"
    names = {}
    for ours, theirs in layers.items():
        names[f"{ours}.weight"] = f"{theirs}.weight"
        names[f"{ours}.bias"] = f"{theirs}.bias"
        if ours == "conv4_3":
            names["conv4_3_norm.weight"] = "backbone.scale_weight"
    for k in range(_NUM_MAPS):
        for ours, theirs in (("loc", "regression_head"), ("conf", "classification_head")):
            for kind in ("weight", "bias"):
                names[f"head{k}.{ours}.{kind}"] = f"head.{theirs}.module_list.{k}.{kind}"
    return names


def infer_num_classes(state_dict) -> int:
    """L from the first classification head: its B*L output channels over B = 4 boxes per cell."""
    name = "head.classification_head.module_list.0.weight"
    if name not in state_dict:
        raise ValueError(f"not a torchvision ssd300_vgg16 state dict: {name!r} is missing")
    channels = int(state_dict[name].shape[0])
    boxes = 4  # conv4_3 carries 4 default boxes per cell in SSD300
    if channels % boxes:
        raise ValueError(f"{name} has {channels} output channels, not a multiple of {boxes} boxes per cell")
    return channels // boxes


def load_torchvision_ssd300(state_dict, num_classes: int | None = None, class_names=None,
                            device: str | None = None):
    """A ``minissd.models.ssd300`` holding the weights of a torchvision ``ssd300_vgg16`` state dict.

    state_dict:  mapping torchvision name -> torch tensor or NumPy array (a training checkpoint
                 {"model": ...} and DataParallel's "module." prefix are accepted too).
    num_classes: L including the background; inferred from the classification head when None.
    class_names: optional names of classes 1..L-1 (or 0..L-1 with the background first).
    Returns the model (preset "ssd300-torchvision") on ``device`` (default: MINISSD_DEVICE).
    After the import ``model.forward(x)`` equals torchvision's ``head(backbone(x))`` on the same
    preprocessed x (N, 3, 300, 300) up to float32 rounding.
    """
    state = unwrap_state_dict(state_dict)
    inferred = infer_num_classes(state)
    if num_classes is None:
        num_classes = inferred
    elif num_classes != inferred:
        raise ValueError(
            f"num_classes={num_classes}, but the checkpoint's classification head has {inferred} classes "
            f"(head.classification_head.module_list.0.weight is {tuple(state['head.classification_head.module_list.0.weight'].shape)})"
        )
    names = torchvision_names()
    expected = set(names.values())
    missing = [theirs for theirs in names.values() if theirs not in state]
    unexpected = sorted(name for name in state if name not in expected)
    if missing or unexpected:
        raise ValueError(
            "not a torchvision ssd300_vgg16 state dict: "
            f"missing {missing[:6]}{' ...' if len(missing) > 6 else ''} ({len(missing)}), "
            f"unexpected {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''} ({len(unexpected)})"
        )
    model = ssd300(num_classes, preset=PRESET, class_names=class_names)
    converted = {}
    for ours, theirs in names.items():
        value = float32_array(state[theirs], theirs, "torchvision")
        target = tuple(model.params[ours].shape)
        if tuple(value.shape) != target:
            raise ValueError(
                f"torchvision {theirs!r} has shape {tuple(value.shape)}, but minissd's {ours!r} "
                f"(ssd300, {num_classes} classes) needs {target}"
            )
        converted[ours] = value
    model.load_state_dict(converted, source="torchvision state dict")
    if device is not None:
        model.to(device)
    return model


def export_torchvision_state_dict(model) -> dict[str, np.ndarray]:
    """The inverse: an ``ssd300`` model's weights under torchvision's names (NumPy arrays).

    ``{name: torch.from_numpy(a) for name, a in ...}`` loads into ``ssd300_vgg16(num_classes=L)``.
    """
    if model.info.arch != "ssd300":
        raise ValueError(f"torchvision's ssd300_vgg16 has the ssd300 architecture; this model is {model.info.arch!r}")
    state = model.state_dict()
    return {theirs: state[ours] for ours, theirs in torchvision_names().items()}
