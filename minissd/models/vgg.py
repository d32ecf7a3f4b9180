"""SSD300 and SSD512: VGG16 "reduced" plus extra layers (Liu et al. 2016, Fig. 2).

VGG16 (configuration D) up to conv5_3, changed as in the paper:
    pool3 in ceil mode (75 -> 38 at 300 px), pool5 3x3 stride 1 pad 1,
    fc6 as a 3x3 conv with 1024 channels, dilation 6, pad 6; fc7 a 1x1 conv.
conv4_3 is L2-normalised with a learned per-channel scale (starts at 20)
before its head, because its activations are much larger than later maps'.
Extra layers halve the map until 1 x 1 (1x1 conv to 128/256 channels, then a
3x3 conv with 256/512 channels), every conv followed by ReLU.

                 SSD300                          SSD512
    conv4_3      38 x 38 x 512   4 boxes         64 x 64 x 512    4 boxes
    fc7          19 x 19 x 1024  6               32 x 32 x 1024   6
    conv8_2      10 x 10 x 512   6               16 x 16 x 512    6
    conv9_2       5 x 5 x 256    6                8 x 8 x 256     6
    conv10_2      3 x 3 x 256    4 (300) / 6      4 x 4 x 256     6
    conv11_2      1 x 1 x 256    4                2 x 2 x 256     4
    conv12_2                                      1 x 1 x 256     4

Names follow torchvision's layer numbering (conv8_1 ... conv11_2 for the
extras; Caffe calls them conv6_1 ... conv9_2). Weights start Xavier-uniform,
biases zero, as torchvision initialises SSD's added layers.
"""

from __future__ import annotations

import numpy as np

from ..nn import Conv2d, L2Norm, MaxPool2d, ReLU, Sequential
from ..priors import get_config
from .ssd import SSD, MultiBoxHead, ModelInfo

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def _conv_relu(name: str, cin: int, cout: int, rng, **conv):
    return [(name, Conv2d(cin, cout, rng=rng, **conv)), (f"relu{name[4:]}", ReLU(inplace=True))]


def _vgg_stages(rng):
    """conv1_1 ... conv4_3 (stage 0) and pool4 ... fc7 (stage 1)."""
    layers = []
    channels = 3
    for block, (width, convs) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3)], start=1):
        if block > 1:
            layers.append((f"pool{block - 1}", MaxPool2d(2, 2, ceil_mode=(block - 1 == 3))))
        for i in range(1, convs + 1):
            layers += _conv_relu(f"conv{block}_{i}", channels, width, rng, kernel_size=3, padding=1)
            channels = width
    layers[0][1].needs_input_grad = False  # the image needs no gradient
    stage0 = Sequential(*layers)
    stage1 = [("pool4", MaxPool2d(2, 2))]
    for i in range(1, 4):
        stage1 += _conv_relu(f"conv5_{i}", 512, 512, rng, kernel_size=3, padding=1)
    stage1.append(("pool5", MaxPool2d(3, 1, padding=1)))
    stage1 += [("fc6", Conv2d(512, 1024, 3, padding=6, dilation=6, rng=rng)), ("relu6", ReLU(inplace=True))]
    stage1 += [("fc7", Conv2d(1024, 1024, 1, rng=rng)), ("relu7", ReLU(inplace=True))]
    return [stage0, Sequential(*stage1)]


def _extra_stage(index: int, cin: int, middle: int, cout: int, rng, **second):
    first = f"conv{index}_1"
    return Sequential(
        *_conv_relu(first, cin, middle, rng, kernel_size=1),
        *_conv_relu(f"conv{index}_2", middle, cout, rng, **second),
    )


def _build(arch: str, preset: str, num_classes: int, extras_spec, class_names, seed: int, rng):
    config = get_config(preset)
    rng = rng if rng is not None else np.random.default_rng(seed)
    stages = _vgg_stages(rng)
    channels = 1024
    for index, (middle, cout, conv) in enumerate(extras_spec, start=8):
        stages.append(_extra_stage(index, channels, middle, cout, rng, **conv))
        channels = cout
    source_channels = [512, 1024] + [cout for _, cout, _ in extras_spec]
    heads = [
        MultiBoxHead(c, boxes, num_classes, rng)
        for c, boxes in zip(source_channels, config.boxes_per_cell)
    ]
    names = ["conv4_3", "fc7"] + [f"conv{8 + i}_2" for i in range(len(extras_spec))]
    info = ModelInfo(arch=arch, num_classes=num_classes, preset=config.name,
                     class_names=_class_names(class_names, num_classes), options={"seed": seed})
    return SSD(info, stages, {0: L2Norm(512)}, heads, stage_names=names, prior_config=config)


def _class_names(class_names, num_classes: int) -> list:
    if class_names is None:
        if num_classes == len(VOC_CLASSES) + 1:
            return ["background", *VOC_CLASSES]
        return ["background"] + [f"class{k}" for k in range(1, num_classes)]
    names = list(class_names)
    if names and names[0] != "background":
        names = ["background", *names]
    if len(names) != num_classes:
        raise ValueError(
            f"{len(names)} class names (background included) for num_classes={num_classes}"
        )
    return names


def _check_classes(num_classes):
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes counts the background too and must be >= 2; got {num_classes!r}")


def ssd300(num_classes: int = 21, preset: str = "ssd300-voc", class_names=None, seed: int = 0, rng=None) -> SSD:
    """SSD300: 300 x 300 input, maps 38, 19, 10, 5, 3, 1, 8732 default boxes.

    num_classes counts the background (21 for VOC). preset: any 300 px
    preset with six maps ("ssd300-voc", "ssd300-coco", "ssd300-torchvision", "ssd300-paper").
    """
    _check_classes(num_classes)
    extras = [
        (256, 512, dict(kernel_size=3, stride=2, padding=1)),  # 19 -> 10
        (128, 256, dict(kernel_size=3, stride=2, padding=1)),  # 10 -> 5
        (128, 256, dict(kernel_size=3)),  # 5 -> 3
        (128, 256, dict(kernel_size=3)),  # 3 -> 1
    ]
    _check_preset(preset, 300, 6, "ssd300")
    return _build("ssd300", preset, num_classes, extras, class_names, seed, rng)


def ssd512(num_classes: int = 21, preset: str = "ssd512-voc", class_names=None, seed: int = 0, rng=None) -> SSD:
    """SSD512: 512 x 512 input, maps 64, 32, 16, 8, 4, 2, 1, 24564 default boxes."""
    _check_classes(num_classes)
    extras = [
        (256, 512, dict(kernel_size=3, stride=2, padding=1)),  # 32 -> 16
        (128, 256, dict(kernel_size=3, stride=2, padding=1)),  # 16 -> 8
        (128, 256, dict(kernel_size=3, stride=2, padding=1)),  # 8 -> 4
        (128, 256, dict(kernel_size=3, stride=2, padding=1)),  # 4 -> 2
        (128, 256, dict(kernel_size=4, padding=1)),  # 2 -> 1
    ]
    _check_preset(preset, 512, 7, "ssd512")
    return _build("ssd512", preset, num_classes, extras, class_names, seed, rng)


def _check_preset(preset, size: int, maps: int, arch: str):
    config = get_config(preset)
    if config.image_size != size or len(config.feature_maps) != maps:
        raise ValueError(
            f"{arch} needs a preset for {size} px with {maps} feature maps; "
            f"{config.name!r} is {config.image_size} px with {len(config.feature_maps)}"
        )
