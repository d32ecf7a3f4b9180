"""ImageNet VGG16 weights as SSD's backbone: conv1_1 ... conv5_3 copied, fc6 and fc7 made convolutions.

Two layouts of the same network are read:

    torchvision vgg16 (the ImageNet classifier, e.g. vgg16-397923af.pth)
        features.{0,2,5,7,10,12,14,17,19,21,24,26,28}   conv1_1 ... conv5_3   (ReLUs, pools between)
        classifier.0                                      fc6  Linear (4096, 512*7*7)
        classifier.3                                      fc7  Linear (4096, 4096)
        classifier.6                                      the 1000-way layer (not used)
    ssd.pytorch vgg16_reducedfc.pth (its ``vgg()`` builder, one Sequential 0..34)
        {0,2,5,7,10,12,14,17,19,21,24,26,28}              conv1_1 ... conv5_3
        30 pool5 3x3/1, 31 fc6 (1024, 512, 3, 3) dilated 6, 32 ReLU, 33 fc7 (1024, 1024, 1, 1), 34 ReLU

The paper turns the classifier's fc6 and fc7 into convolutions by subsampling their parameters
(Liu et al. 2016, sec. 3), as the reduced-fc file already is. fc6 reads pool5's 512 x 7 x 7
output, so its (4096, 25088) matrix is a (4096, 512, 7, 7) kernel; keeping every 4th output
(rows 0, 4, 8, ...) and every 3rd tap in each direction (taps 0, 3, 6) leaves (1024, 512, 3, 3).
The kept taps were 3 pixels apart on a pool5 of stride 32; SSD's pool5 is 3x3 with stride 1,
so on its finer map they sit 6 apart: a 3x3 kernel with dilation 6 (padding 6). fc7 keeps every
4th output and every 4th input: (1024, 1024, 1, 1). Biases keep every 4th entry.

Input. minissd feeds RGB in 0-255 minus a mean. With ``adapt_input=True`` (the default) conv1_1
is changed so the backbone computes on that input what it computed on its own:
- torchvision's ImageNet models read (x / 255 - mean) / std: conv1_1's input channel c is
  divided by 255 * std_c (exact: zero padding stays zero); the mean to subtract is
  255 * (0.485, 0.456, 0.406) = (123.675, 116.28, 103.53).
- the reduced-fc file comes from Caffe's VGG16, trained on BGR 0-255 minus (104, 117, 123):
  conv1_1's input channels are reversed to read RGB; the mean is (123, 117, 104) RGB.
  (ssd.pytorch and torchvision feed this file RGB without reversing and fine-tune around it.)
With ``adapt_input=False`` conv1_1 is copied as stored.
"""

from __future__ import annotations

import re

import numpy as np

from ..models.io import check_finite
from ..models.transfer import VGG16_BACKBONE_LAYERS, VGG16_BACKBONE_SHAPES
from .checkpoint import float32_array, unwrap_state_dict

TORCHVISION_VGG16 = "torchvision-vgg16"
REDUCEDFC_VGG16 = "reducedfc-vgg16"
VGG16_CONVS = VGG16_BACKBONE_LAYERS[:13]  # conv1_1 ... conv5_3
FEATURE_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)  # their Sequential positions
REDUCEDFC_FC = {"fc6": 31, "fc7": 33}  # after pool5 at 30; ReLUs at 32, 34
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's normalisation of a 0-1 RGB image
IMAGENET_STD = (0.229, 0.224, 0.225)

# what a converted backbone file records about each layout (its metadata "source" and "mean")
LAYOUTS = {
    TORCHVISION_VGG16: {
        "source": "torchvision vgg16 (ImageNet)",
        "mean": tuple(round(255 * m, 6) for m in IMAGENET_MEAN),
        "input": "conv1_1 divided by 255 * std per input channel: reads RGB 0-255 minus the mean",
        "input_as_stored": "conv1_1 as stored: reads (RGB / 255 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)",
        "fc": "fc6, fc7 subsampled from classifier.0, classifier.3 (every 4th output; fc6 taps 0, 3, 6; fc7 every 4th input)",
    },
    REDUCEDFC_VGG16: {
        "source": "ssd.pytorch vgg16_reducedfc",
        "mean": (123.0, 117.0, 104.0),
        "input": "conv1_1 input channels reversed (Caffe's BGR to RGB): reads RGB 0-255 minus the mean",
        "input_as_stored": "conv1_1 as stored: reads Caffe's BGR 0-255 minus (104, 117, 123)",
        "fc": "fc6, fc7 as stored (31, 33: already reduced)",
    },
}


def torchvision_vgg16_names() -> dict[str, str]:
    """minissd layer -> torchvision vgg16 module: conv1_1 -> features.0 ... fc6 -> classifier.0, fc7 -> classifier.3."""
    names = {ours: f"features.{index}" for ours, index in zip(VGG16_CONVS, FEATURE_INDICES)}
    names.update(fc6="classifier.0", fc7="classifier.3")
    return names


def reducedfc_names() -> dict[str, str]:
    """minissd layer -> ssd.pytorch vgg16_reducedfc module: conv1_1 -> 0 ... conv5_3 -> 28, fc6 -> 31, fc7 -> 33."""
    names = {ours: str(index) for ours, index in zip(VGG16_CONVS, FEATURE_INDICES)}
    names.update({ours: str(index) for ours, index in REDUCEDFC_FC.items()})
    return names


def vgg16_layout(keys) -> str | None:
    """TORCHVISION_VGG16, REDUCEDFC_VGG16 or None, from a state dict's keys (unwrapped)."""
    keys = set(map(str, keys))
    if "features.0.weight" in keys and any(k.startswith("classifier.") for k in keys):
        if "features.1.running_mean" in keys:
            raise ValueError("this is torchvision's vgg16_bn (batch normalisation after every convolution), "
                             "a different network from the VGG16 SSD uses: convert a plain vgg16")
        return TORCHVISION_VGG16
    if keys and all(re.fullmatch(r"\d+\.(weight|bias)", k) for k in keys) and {"31.weight", "33.weight"} <= keys:
        return REDUCEDFC_VGG16
    return None


# -- fc6 and fc7 to convolutions -----------------------------------------------------------------

def subsample_fc6(weight, bias, channels: int = 512, side: int = 7, output_step: int = 4, tap_step: int = 3):
    """fc6 Linear weight (O, C*side*side), bias (O,) -> conv weight (O/4, C, 3, 3), bias (O/4,).

    Keeps outputs 0, 4, 8, ... and taps 0, 3, 6 in each direction of the (side x side) kernel.
    The flattened input is pool5's (C, H, W) in C order, as PyTorch flattens NCHW.
    """
    weight, bias = np.asarray(weight), np.asarray(bias)
    outputs = weight.shape[0]
    if weight.ndim != 2 or weight.shape[1] != channels * side * side or bias.shape != (outputs,):
        raise ValueError(f"subsample_fc6: weight must be (O, {channels}*{side}*{side}) and bias (O,); "
                         f"got {tuple(weight.shape)} and {tuple(bias.shape)}")
    kernel = weight.reshape(outputs, channels, side, side)  # (O, C, 7, 7)
    sub = kernel[::output_step, :, ::tap_step, ::tap_step]  # (O/4, C, 3, 3)
    return np.ascontiguousarray(sub), np.ascontiguousarray(bias[::output_step])


def subsample_fc6_reference(weight, bias, channels: int = 512, side: int = 7, output_step: int = 4, tap_step: int = 3):
    """The same as ``subsample_fc6`` with loops and flat indices (the test oracle)."""
    weight, bias = np.asarray(weight), np.asarray(bias)
    kept_outputs = range(0, weight.shape[0], output_step)
    taps = range(0, side, tap_step)
    out = np.empty((len(kept_outputs), channels, len(taps), len(taps)), weight.dtype)
    for o, source_row in enumerate(kept_outputs):
        for i, y in enumerate(taps):
            for j, x in enumerate(taps):
                columns = np.arange(channels) * side * side + y * side + x  # input (c, y, x) of the flat vector
                out[o, :, i, j] = weight[source_row, columns]
    return out, np.array([bias[row] for row in kept_outputs], dtype=bias.dtype)


def subsample_fc7(weight, bias, step: int = 4):
    """fc7 Linear weight (O, I), bias (O,) -> conv weight (O/4, I/4, 1, 1), bias (O/4,): every 4th output and input."""
    weight, bias = np.asarray(weight), np.asarray(bias)
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ValueError(f"subsample_fc7: weight must be (O, I) and bias (O,); got {tuple(weight.shape)} and {tuple(bias.shape)}")
    sub = weight[::step, ::step]  # (O/4, I/4)
    return np.ascontiguousarray(sub)[:, :, None, None], np.ascontiguousarray(bias[::step])


def subsample_fc7_reference(weight, bias, step: int = 4):
    """The same as ``subsample_fc7`` with loops (the test oracle)."""
    weight, bias = np.asarray(weight), np.asarray(bias)
    rows, cols = range(0, weight.shape[0], step), range(0, weight.shape[1], step)
    out = np.empty((len(rows), len(cols), 1, 1), weight.dtype)
    for o, row in enumerate(rows):
        for i, col in enumerate(cols):
            out[o, i, 0, 0] = weight[row, col]
    return out, np.array([bias[row] for row in rows], dtype=bias.dtype)


# -- the whole backbone ---------------------------------------------------------------------------

def _check_keys(state: dict, layout: str) -> None:
    names = torchvision_vgg16_names() if layout == TORCHVISION_VGG16 else reducedfc_names()
    expected = {f"{module}.{kind}" for module in names.values() for kind in ("weight", "bias")}
    optional = {"classifier.6.weight", "classifier.6.bias"} if layout == TORCHVISION_VGG16 else set()
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected - optional)
    if missing or unexpected:
        raise ValueError(f"not a complete {LAYOUTS[layout]['source']} state dict: missing {missing[:6]}"
                         f"{' ...' if len(missing) > 6 else ''}, unexpected {unexpected[:6]}"
                         f"{' ...' if len(unexpected) > 6 else ''}")


def _classifier(state: dict, module: str) -> tuple[np.ndarray, np.ndarray]:
    weight = float32_array(state[f"{module}.weight"], f"{module}.weight", "vgg16")
    bias = float32_array(state[f"{module}.bias"], f"{module}.bias", "vgg16")
    bad = int(weight.size - np.isfinite(weight).sum())
    if bad:  # torchvision's IMAGENET1K_FEATURES (its SSD port) ships an unusable classifier
        raise ValueError(
            f"{module}.weight has {bad} non-finite values: this vgg16 has no usable classifier (torchvision's "
            "IMAGENET1K_FEATURES weights are such a file), so fc6 and fc7 cannot be subsampled from it; "
            "convert the ImageNet classifier (vgg16-397923af.pth) or ssd.pytorch's vgg16_reducedfc.pth"
        )
    return weight, bias


def backbone_state_from_vgg16(state_dict, adapt_input: bool = True) -> dict[str, np.ndarray]:
    """minissd parameter name -> float32 array for conv1_1 ... conv5_3, fc6, fc7 of a VGG16.

    state_dict: a torchvision ``vgg16`` classifier or ssd.pytorch's ``vgg16_reducedfc`` state dict
                (name -> tensor or array; {"model": ...} and "module." accepted).
    adapt_input: change conv1_1 to read minissd's input, RGB 0-255 minus the mean (module docstring);
                False copies it as stored.
    Returns the 30 arrays (15 layers) of ``minissd.models.VGG16_BACKBONE_SHAPES`` (conv1_1.weight (64, 3, 3, 3)
    ... fc6.weight (1024, 512, 3, 3), fc7.weight (1024, 1024, 1, 1)), the same for ssd300 and ssd512.
    """
    state = unwrap_state_dict(state_dict)
    layout = vgg16_layout(state)
    if layout is None:
        raise ValueError(f"not a VGG16 state dict (torchvision vgg16 or ssd.pytorch vgg16_reducedfc): "
                         f"its keys begin {sorted(map(str, state))[:4]}")
    _check_keys(state, layout)
    names = torchvision_vgg16_names() if layout == TORCHVISION_VGG16 else reducedfc_names()
    out = {}
    for ours in VGG16_CONVS + (("fc6", "fc7") if layout == REDUCEDFC_VGG16 else ()):
        for kind in ("weight", "bias"):
            theirs = f"{names[ours]}.{kind}"
            out[f"{ours}.{kind}"] = float32_array(state[theirs], theirs, "vgg16")
    if layout == TORCHVISION_VGG16:
        for ours, module, subsample in (("fc6", "classifier.0", subsample_fc6), ("fc7", "classifier.3", subsample_fc7)):
            try:
                out[f"{ours}.weight"], out[f"{ours}.bias"] = subsample(*_classifier(state, module))
            except ValueError as error:
                raise ValueError(f"torchvision vgg16 {module} ({ours}): {error}") from None
    for name, shape in VGG16_BACKBONE_SHAPES.items():
        if tuple(out[name].shape) != shape:
            theirs = names[name.split(".")[0]]
            raise ValueError(f"{LAYOUTS[layout]['source']}: {theirs} gives {name} of shape "
                             f"{tuple(out[name].shape)}; VGG16 needs {shape}")
    if adapt_input:
        out["conv1_1.weight"] = adapt_conv1_1(out["conv1_1.weight"], layout)
    check_finite(out, LAYOUTS[layout]["source"])
    return {name: out[name] for name in VGG16_BACKBONE_SHAPES}  # minissd's order


def adapt_conv1_1(weight, layout: str) -> np.ndarray:
    """conv1_1's weight (64, 3, 3, 3) changed to read RGB 0-255 minus the mean (module docstring)."""
    weight = np.asarray(weight, dtype=np.float32)
    if layout == TORCHVISION_VGG16:
        scale = (255.0 * np.asarray(IMAGENET_STD, np.float64)).astype(np.float32)  # (3,)
        return np.ascontiguousarray(weight / scale[None, :, None, None])
    if layout == REDUCEDFC_VGG16:
        return np.ascontiguousarray(weight[:, ::-1])  # input channel 0 read B; now it reads R
    raise ValueError(f"adapt_conv1_1: unknown layout {layout!r}; expected {sorted(LAYOUTS)}")
