"""SSD networks built from the autograd-free layers of ``minissd.nn``.

    ssd300(num_classes=21)    VGG16-reduced SSD, 300 x 300, 8732 default boxes
    ssd512(num_classes=21)    the same at 512 x 512, 24564 default boxes
    tiny_ssd(num_classes)     a small SSD for the CPU (128 x 128, 1364 boxes)
    load(path)                a model saved with ``model.save(path)``
    load_backbone_file(path)  a VGG16 backbone (conv1_1 ... fc7) for ``load_backbone``

A model has ``forward(images) -> (loc, conf)``, ``backward(grad_loc, grad_conf)``,
``params`` / ``grads`` (ordered name -> array), ``priors``, ``save(path)``.
Fine-tuning (``transfer.py``): ``load_backbone``, ``with_new_classes``, ``backbone_parameter_names``.
"""

from .io import load, load_backbone_file, read_npz, save_backbone_file, save_model, validate_meta, write_npz
from .ssd import MEAN_RGB, SSD, ModelInfo, MultiBoxHead
from .tiny import tiny_ssd
from .transfer import (
    VGG16_BACKBONE_LAYERS, VGG16_BACKBONE_SHAPES, backbone_parameter_names, load_backbone, with_new_classes,
)
from .vgg import VOC_CLASSES, ssd300, ssd512

ARCHITECTURES = {"ssd300": ssd300, "ssd512": ssd512, "tiny": tiny_ssd}

__all__ = [
    "ARCHITECTURES", "MEAN_RGB", "SSD", "VGG16_BACKBONE_LAYERS", "VGG16_BACKBONE_SHAPES", "VOC_CLASSES",
    "ModelInfo", "MultiBoxHead", "backbone_parameter_names", "load", "load_backbone", "load_backbone_file",
    "read_npz", "save_backbone_file", "save_model", "ssd300", "ssd512", "tiny_ssd", "validate_meta",
    "with_new_classes", "write_npz",
]
