"""Datasets, SSD augmentation and the batch loader (NumPy + Pillow, on the host)."""

from .sample import ConcatDataset, DataError, Sample
from .shapes import DEFAULT_CLASSES, ShapesConfig, ShapesDataset
from .voc import VOC_CLASSES, VOCDataset, parse_voc_xml, voc_07_12
from .coco import COCODataset
from .photometric import photometric_distort
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
