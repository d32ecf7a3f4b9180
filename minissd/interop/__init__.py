"""Weights from (and to) other implementations.

    torchvision_ssd.py   torchvision's ssd300_vgg16: the name table, import, export
    vgg16.py             ImageNet VGG16 (torchvision classifier, ssd.pytorch reduced-fc) as SSD's backbone
    convert.py           recognise a checkpoint and convert it (``python -m minissd.interop``)
    checkpoint.py        reading .pth / .npz state dicts (PyTorch imported only there)
    coco_names.py        the 91 COCO slots of torchvision's COCO weights

Everything public is importable from here: ``from minissd import interop; interop.convert_checkpoint(...)``.
"""

from .checkpoint import read_checkpoint, unwrap_state_dict
from .coco_names import COCO_CATEGORIES, COCO_CATEGORY_NAMES, LABEL_SPACE
from .convert import (
    FORMATS, REDUCEDFC_VGG16, TORCHVISION_SSD300, TORCHVISION_VGG16, ConvertReport, check_num_classes,
    convert_checkpoint, identify_checkpoint, main,
)
from .torchvision_ssd import (
    PRESET, export_torchvision_state_dict, infer_num_classes, load_torchvision_ssd300, torchvision_names,
)
from .vgg16 import (
    adapt_conv1_1, backbone_state_from_vgg16, reducedfc_names, subsample_fc6, subsample_fc6_reference,
    subsample_fc7, subsample_fc7_reference, torchvision_vgg16_names,
)

# the name this function had when it read torchvision SSD300 files only
load_torchvision_checkpoint = read_checkpoint

__all__ = [
    "COCO_CATEGORIES", "COCO_CATEGORY_NAMES", "FORMATS", "LABEL_SPACE", "PRESET", "REDUCEDFC_VGG16",
    "TORCHVISION_SSD300", "TORCHVISION_VGG16", "ConvertReport", "adapt_conv1_1", "backbone_state_from_vgg16",
    "check_num_classes", "convert_checkpoint", "export_torchvision_state_dict", "identify_checkpoint",
    "infer_num_classes", "load_torchvision_checkpoint", "load_torchvision_ssd300", "main", "read_checkpoint",
    "reducedfc_names", "subsample_fc6", "subsample_fc6_reference", "subsample_fc7", "subsample_fc7_reference",
    "torchvision_names", "torchvision_vgg16_names", "unwrap_state_dict",
]
