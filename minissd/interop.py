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

Converting a checkpoint (PyTorch is needed only to read the .pth):

    python -m minissd.interop ssd300_vgg16_coco-b556d3b4.pth -o ssd300_coco.npz
    model = minissd.models.load("ssd300_coco.npz")
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .models import ssd300

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


def _to_numpy(value, name: str) -> np.ndarray:
    """A torch tensor (without importing torch) or array-like -> float32 NumPy array."""
    if hasattr(value, "detach"):  # a torch.Tensor, on any device, maybe requiring grad
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise TypeError(f"torchvision tensor {name!r} has dtype {array.dtype}; expected floating point")
    return array.astype(np.float32)


def _strip_prefixes(state_dict) -> dict:
    """Accept a whole training checkpoint ({"model": state_dict, ...}) and DataParallel's "module."."""
    if "model" in state_dict and hasattr(state_dict["model"], "keys"):
        state_dict = state_dict["model"]
    if state_dict and all(str(name).startswith("module.") for name in state_dict):
        state_dict = {name[len("module."):]: value for name, value in state_dict.items()}
    return dict(state_dict)


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
    state = _strip_prefixes(state_dict)
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
        value = _to_numpy(state[theirs], theirs)
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


def load_torchvision_checkpoint(path) -> dict[str, np.ndarray]:
    """The state dict of a torchvision ``ssd300_vgg16`` file as NumPy arrays.

    A .pth / .pt file is read with ``torch.load`` (PyTorch imported only here, weights only);
    an .npz file (the same names, saved with ``numpy.savez``) needs no PyTorch.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading {path} needs PyTorch (pip install torch), which minissd does not otherwise use; "
            "or, where PyTorch is installed, save the state dict with numpy.savez and convert the .npz"
        ) from None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt file, or not a torch file at all
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({type(error).__name__}: {error})") from None
    if not hasattr(checkpoint, "keys"):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a state dict")
    checkpoint = _strip_prefixes(checkpoint)
    return {name: _to_numpy(value, name) for name, value in checkpoint.items() if hasattr(value, "shape")}


def _coco_names(num_classes: int):
    """torchvision's COCO category names when torchvision is installed and L = 91, else None."""
    if num_classes != 91:
        return None
    try:
        from torchvision.models.detection import SSD300_VGG16_Weights
    except ImportError:
        return None
    names = list(SSD300_VGG16_Weights.COCO_V1.meta["categories"])
    return ["background", *names[1:]] if len(names) == num_classes else None


def _read_names(path: str) -> list[str]:
    with open(path, encoding="utf-8") as stream:
        return [line.strip() for line in stream if line.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minissd.interop",
        description="Convert a torchvision ssd300_vgg16 checkpoint (.pth, or an .npz of its state dict) "
                    "into a minissd weights file, loadable with minissd.models.load.",
    )
    parser.add_argument("checkpoint", help="torchvision state dict: .pth/.pt (needs PyTorch) or .npz")
    parser.add_argument("-o", "--output", required=True, help="the minissd .npz to write")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="L including the background (default: read from the classification head)")
    parser.add_argument("--class-names", default=None,
                        help="text file, one class name per line (default: COCO names from torchvision for L = 91)")
    args = parser.parse_args(argv)
    try:
        state = load_torchvision_checkpoint(args.checkpoint)
        num_classes = args.num_classes or infer_num_classes(state)
        names = _read_names(args.class_names) if args.class_names else _coco_names(num_classes)
        model = load_torchvision_ssd300(state, num_classes=num_classes, class_names=names, device="cpu")
        model.save(args.output, extra={"source": "torchvision ssd300_vgg16",
                                       "checkpoint": os.path.basename(args.checkpoint)})
    except (OSError, ImportError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {model!r}, preset {model.info.preset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
