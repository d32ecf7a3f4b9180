"""Datasets, SSD augmentation and the batch loader (NumPy + Pillow, on the host).

    sample       Sample, the one record every dataset returns (pixel xyxy boxes,
                 labels 1..L-1, difficult flags); image loading as RGB; DataError
    shapes       ShapesDataset: synthetic shapes on cluttered backgrounds, no download
    voc, coco    VOCDataset (VOCdevkit XML) and COCODataset (COCO JSON)
    photometric  brightness, contrast, saturation, hue
    augment      zoom out, the crop sampler, flip, resize; SSDAugmentation, eval_transform
    loader       DataLoader: transformed batches with matched targets, in a background thread
    bench        ``python -m minissd.data.bench``: milliseconds per image

The model moves batches to the GPU itself; everything here runs on the host.
"""

from .sample import ConcatDataset, DataError, Sample, load_rgb_image
from .shapes import DEFAULT_CLASSES, Rendering, ShapesConfig, ShapesDataset
from .voc import VOC_CLASSES, VOCDataset, parse_voc_xml, voc_07_12
from .coco import COCODataset
from .photometric import hsv_to_rgb, photometric_distort, rgb_to_hsv
from .augment import (
    CROP_MIN_IOUS,
    MEAN_RGB,
    SSDAugmentation,
    bilinear_resize,
    eval_transform,
    expand,
    horizontal_flip,
    random_crop,
    resize,
    sample_crop,
    to_model_input,
)
from .loader import Batch, BatchIterator, DataLoader

__all__ = [
    "Batch", "BatchIterator", "COCODataset", "CROP_MIN_IOUS", "ConcatDataset", "DEFAULT_CLASSES", "DataError",
    "DataLoader", "MEAN_RGB", "Rendering", "SSDAugmentation", "Sample", "ShapesConfig", "ShapesDataset",
    "VOCDataset", "VOC_CLASSES", "bilinear_resize", "eval_transform", "expand", "horizontal_flip", "hsv_to_rgb",
    "load_rgb_image", "parse_voc_xml", "photometric_distort", "random_crop", "resize", "rgb_to_hsv",
    "sample_crop", "to_model_input", "voc_07_12",
]
