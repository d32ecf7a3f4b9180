"""SSD networks built from the autograd-free layers of ``minissd.nn``.

    ssd300(num_classes=21)    VGG16-reduced SSD, 300 x 300, 8732 default boxes
    ssd512(num_classes=21)    the same at 512 x 512, 24564 default boxes
    tiny_ssd(num_classes)     a small SSD for the CPU (128 x 128, 1364 boxes)
    load(path)                a model saved with ``model.save(path)``

A model has ``forward(images) -> (loc, conf)``, ``backward(grad_loc, grad_conf)``,
``params`` / ``grads`` (ordered name -> array), ``priors``, ``save(path)``.
"""

from .io import load, read_npz, save_model, write_npz
from .ssd import MEAN_RGB, SSD, ModelInfo, MultiBoxHead
from .tiny import tiny_ssd
from .vgg import VOC_CLASSES, ssd300, ssd512

ARCHITECTURES = {"ssd300": ssd300, "ssd512": ssd512, "tiny": tiny_ssd}

__all__ = [
    "ARCHITECTURES", "MEAN_RGB", "SSD", "VOC_CLASSES", "ModelInfo", "MultiBoxHead", "load", "read_npz",
    "save_model", "ssd300", "ssd512", "tiny_ssd", "write_npz",
]
