"""Datasets, SSD augmentation and the batch loader (NumPy + Pillow, on the host).

    sample       Sample, the one record every dataset returns (pixel xyxy boxes,
                 labels 1..L-1, difficult flags); the checks readers share; ConcatDataset
    images       open_image: any picture file as RGB, fully decoded, with a pixel limit
    errors       DataError (names the file and the object), MissingFileError
    shapes       ShapesDataset: synthetic shapes on cluttered backgrounds, no download
    voc          VOCDataset (a VOCdevkit or any VOC-style folder); voc_xml reads one
                 annotation file, voc_layout finds years, folders and image lists
    coco         COCODataset; coco_json reads and type-checks the JSON
    photometric  brightness, contrast, saturation, hue
    augment      zoom out, the crop sampler, flip, resize; SSDAugmentation, eval_transform
    loader       DataLoader: transformed batches with matched targets (batch_iterator: the
                 background thread); read_sample: an item, or None for a skip_bad dataset's
                 unreadable one

The model moves batches to the GPU itself; everything here runs on the host.
"""

from .sample import (
    MAX_IMAGE_PIXELS,
    ConcatDataset,
    DataError,
    MissingFileError,
    Sample,
    image_size,
    load_rgb_image,
    max_image_pixels,
    open_image,
    set_max_image_pixels,
)
from .shapes import DEFAULT_CLASSES, Rendering, ShapesConfig, ShapesDataset
from .voc import VOC_CLASSES, VOCDataset, parse_voc_xml, voc_07_12, voc_class_names
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
from .loader import Batch, BatchIterator, DataLoader, read_sample, skip_summary

__all__ = [
    "Batch", "BatchIterator", "COCODataset", "CROP_MIN_IOUS", "ConcatDataset", "DEFAULT_CLASSES", "DataError",
    "DataLoader", "MAX_IMAGE_PIXELS", "MEAN_RGB", "MissingFileError", "Rendering", "SSDAugmentation", "Sample",
    "ShapesConfig", "ShapesDataset", "VOCDataset", "VOC_CLASSES", "bilinear_resize", "eval_transform", "expand",
    "horizontal_flip", "hsv_to_rgb", "image_size", "load_rgb_image", "max_image_pixels", "open_image",
    "parse_voc_xml", "photometric_distort", "random_crop", "read_sample", "resize", "rgb_to_hsv", "sample_crop",
    "set_max_image_pixels", "skip_summary", "to_model_input", "voc_07_12", "voc_class_names",
]
