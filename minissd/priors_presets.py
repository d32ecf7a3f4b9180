"""The named default-box configurations (``PRESETS``): SSD300 and SSD512 as the paper and Caffe define
them, torchvision's SSD300, and the tiny CPU model's.

    ssd300-paper        the paper's scale formula and centres
    ssd300-voc          Caffe's VOC model: sizes in pixels, pixel steps
    ssd300-coco         Caffe's COCO model (and torchvision's scales)
    ssd300-torchvision  the COCO scales, w and h clamped to [0, 1]
    ssd512-voc          Caffe's SSD512 VOC model
    tiny                128 x 128 input, maps 16..1, 4 boxes per cell

Separate from ``priors.py`` so the table of numbers copied from the reference
code sits on its own page, apart from the code that turns a config into boxes.
``minissd.priors.PRESETS`` is this same dict (a preset added to one is in both).
"""

from __future__ import annotations

from dataclasses import replace

from .priors_config import PriorConfig, paper_config

_SSD300_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
_SSD300_STEPS = (8, 16, 32, 64, 100, 300)
_SSD300_MAPS = (38, 19, 10, 5, 3, 1)


def _ssd512_sizes() -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Caffe's ssd_pascal_512.py: ratios 15..90 % of 512 in steps of 15, and conv4_3 special-cased at
    # 7 % (min) / 15 % (max): 35.84, 76.8, ..., 460.8 px and 76.8, 153.6, ..., 537.6 px. (4 % / 10 % is
    # the COCO script's conv4_3, not VOC's.)
    min_ratio, max_ratio, maps = 15, 90, 7
    step = (max_ratio - min_ratio) // (maps - 2)
    ratios = list(range(min_ratio, max_ratio + 1, step))
    mins = [7.0] + [float(r) for r in ratios]
    maxs = [15.0] + [float(r + step) for r in ratios]
    return tuple(v / 100 for v in mins), tuple(v / 100 for v in maxs)


def _presets() -> dict[str, PriorConfig]:
    paper = replace(
        paper_config(_SSD300_MAPS, 0.2, 0.9, _SSD300_RATIOS, 300, "ssd300-paper"),
        description="SSD300, the paper's scale formula (s_min 0.2, s_max 0.9, m = 6) and centres",
    )
    voc_min = (30, 60, 111, 162, 213, 264)
    voc_max = (60, 111, 162, 213, 264, 315)
    voc = PriorConfig(
        name="ssd300-voc",
        image_size=300,
        feature_maps=_SSD300_MAPS,
        min_sizes=tuple(v / 300 for v in voc_min),
        max_sizes=tuple(v / 300 for v in voc_max),
        aspect_ratios=_SSD300_RATIOS,
        steps=_SSD300_STEPS,
        description="SSD300 as Caffe's VOC model: sizes 30..264 / 60..315 px, pixel steps",
    )
    coco_scales = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
    coco = PriorConfig(
        name="ssd300-coco",
        image_size=300,
        feature_maps=_SSD300_MAPS,
        min_sizes=coco_scales[:-1],
        max_sizes=coco_scales[1:],
        aspect_ratios=_SSD300_RATIOS,
        steps=_SSD300_STEPS,
        description="SSD300 as Caffe's COCO model and torchvision's ssd300_vgg16",
    )
    torchvision = replace(
        coco,
        name="ssd300-torchvision",
        clip="size",
        description="torchvision's ssd300_vgg16: the COCO scales, w and h clamped to [0, 1] as its DefaultBoxGenerator",
    )
    mins512, maxs512 = _ssd512_sizes()
    voc512 = PriorConfig(
        name="ssd512-voc",
        image_size=512,
        feature_maps=(64, 32, 16, 8, 4, 2, 1),
        min_sizes=mins512,
        max_sizes=maxs512,
        aspect_ratios=((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,)),
        steps=(8, 16, 32, 64, 128, 256, 512),
        description="SSD512 as Caffe's VOC model: sizes 35.84..460.8 / 76.8..537.6 px, pixel steps 8..512",
    )
    tiny = PriorConfig(
        name="tiny",
        image_size=128,
        feature_maps=(16, 8, 4, 2, 1),
        min_sizes=(0.08, 0.18, 0.36, 0.56, 0.76),
        max_sizes=(0.18, 0.36, 0.56, 0.76, 0.96),
        aspect_ratios=((2,), (2,), (2,), (2,), (2,)),
        steps=(8, 16, 32, 64, 128),
        description="the tiny CPU model: 128 x 128 input, maps 16..1, 4 boxes per cell",
    )
    return {c.name: c for c in (paper, voc, coco, torchvision, voc512, tiny)}


PRESETS: dict[str, PriorConfig] = _presets()
