"""The objects a coverage measures: a dataset's boxes, normalised, read without decoding pictures.

Boxes are normalised as the training transform does it: resizing a W x H
picture to the square input and dividing by the input side is x / W, y / H.
Objects flagged difficult are left out by default, as the trainer leaves them
out of the targets.

Reading. ``dataset_boxes`` takes VOC and COCO boxes from the dataset's index
and each picture's size from its file header, without decoding a pixel
(``image_annotation``, through the datasets' ``annotation``); ``ShapesDataset``
draws its pictures (its boxes come from drawing); any other dataset of
``Sample``s is read item by item. Boxes given directly (one (G, 4) array per
image) are checked to be normalised.

Separate from ``coverage.py`` (the default boxes against these objects) so that
reading data, with its file errors and skipped pictures, stays apart from the
measurement; a ``DatasetBoxes`` read once serves several presets.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .boxes import check_boxes
from .validate import as_float_array, check_count, format_row

NORMALISED_TOLERANCE = 1e-4  # boxes may leave [0, 1] by float rounding only


@dataclass(frozen=True)
class ImageAnnotation:
    """One picture's training objects. boxes (G, 4) float32 pixel xyxy; difficult (G,) bool."""

    boxes: np.ndarray
    difficult: np.ndarray
    width: int
    height: int
    image_id: str


def image_annotation(dataset, index: int) -> ImageAnnotation:
    """Item ``index``'s boxes and picture size, decoding no picture where the dataset allows it.

    VOCDataset / COCODataset: their ``annotation(index)``, the boxes of the
    dataset's index, the size from the picture's header, boxes checked against
    it as reading the item does (``check_pixel_box``: clipped within a pixel,
    ``DataError`` beyond). COCO's crowd regions are not training targets and
    are left out.
    ConcatDataset: its part's. Anything else (ShapesDataset, your own):
    ``dataset[index]``, a ``Sample``.
    """
    from .data import COCODataset, ConcatDataset, VOCDataset

    index = int(index)
    if isinstance(dataset, ConcatDataset):
        start = 0
        for part in dataset.datasets:
            if index < start + len(part):
                return image_annotation(part, index - start)
            start += len(part)
        raise IndexError(f"index {index} out of range for ConcatDataset of length {len(dataset)}")
    if isinstance(dataset, (VOCDataset, COCODataset)):
        return ImageAnnotation(*dataset.annotation(index))  # header only, boxes checked as dataset[index] does
    sample = dataset[index]
    return ImageAnnotation(np.asarray(sample.boxes, dtype=np.float32).reshape(-1, 4),  # (G, 4)
                           np.asarray(sample.difficult, dtype=bool).reshape(-1), sample.width, sample.height,
                           str(sample.image_id))


@dataclass(frozen=True)
class DatasetBoxes:
    """Normalised training boxes, one (G_i, 4) float32 xyxy array per image, and what was left out.

    skipped: (item index, reason) of pictures a ``skip_bad`` dataset could not read.
    difficult_left_out: objects flagged difficult that were dropped.
    source: what the boxes came from, for tables and titles.
    """

    boxes: list
    skipped: tuple = ()
    difficult_left_out: int = 0
    source: str = ""


def dataset_boxes(dataset, limit: int | None = None, drop_difficult: bool = True) -> DatasetBoxes:
    """The first ``limit`` images (all when None) of ``dataset`` as normalised boxes: x / W, y / H.

    A picture that cannot be read is a ``DataError`` naming the file, or, for a
    dataset built with ``skip_bad=True``, skipped with one warning at the end.
    """
    from .data import DataError

    limit = None if limit is None else check_count(limit, "limit", "dataset_boxes")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    boxes, skipped, dropped = [], [], 0
    for index in range(count):
        try:
            annotation = image_annotation(dataset, index)
        except DataError as error:
            if not getattr(dataset, "skip_bad", False):
                raise
            skipped.append((index, str(error)))
            continue
        pixels, difficult = annotation.boxes, annotation.difficult
        if drop_difficult and difficult.any():
            dropped += int(difficult.sum())
            pixels = pixels[~difficult]
        scale = np.array([annotation.width, annotation.height] * 2, dtype=np.float32)
        normalised = (pixels / scale).astype(np.float32)  # (G, 4) in [0, 1]
        boxes.append(check_boxes(normalised, f"item {index} ({annotation.image_id}) boxes", function="dataset_boxes"))
    if skipped:
        warnings.warn(f"dataset_boxes: skipped {len(skipped)} picture(s) that could not be read "
                      f"(the first, item {skipped[0][0]}: {skipped[0][1]})", UserWarning, stacklevel=2)
    return DatasetBoxes(boxes, tuple(skipped), dropped, repr(dataset))


def _given_boxes(data, function: str) -> DatasetBoxes:
    """A (G, 4) array (one image) or a list of them (one per image), checked, as ``DatasetBoxes``."""
    one_image = isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__")
    images = [data] if one_image else list(data)
    checked = []
    for i, boxes in enumerate(images):
        name = "boxes" if one_image else f"boxes[{i}]"
        boxes = np.asarray(to_numpy(as_float_array(boxes, name, function)), dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{function}: {name} has shape {boxes.shape}; give one (G, 4) xyxy array per image")
        check_boxes(boxes, name, function=function)
        outside = np.flatnonzero(((boxes < -NORMALISED_TOLERANCE) | (boxes > 1 + NORMALISED_TOLERANCE)).any(axis=1))
        if outside.size:
            g = int(outside[0])
            raise ValueError(f"{function}: {name}[{g}] = {format_row(boxes[g])} lies outside [0, 1]; give boxes "
                             "normalised by the picture's size (x / width, y / height)")
        checked.append(boxes)
    return DatasetBoxes(checked, source="the boxes given")


def as_dataset_boxes(data, limit, drop_difficult, function: str) -> DatasetBoxes:
    """``data`` in any form ``coverage`` accepts (DatasetBoxes, boxes, a dataset) as ``DatasetBoxes``."""
    if isinstance(data, DatasetBoxes):
        limited = data.boxes if limit is None else data.boxes[:check_count(limit, "limit", function)]
        return DatasetBoxes(list(limited), data.skipped, data.difficult_left_out, data.source)
    if isinstance(data, (np.ndarray, list, tuple)) or hasattr(data, "__cuda_array_interface__"):
        given = _given_boxes(data, function)
        return given if limit is None else DatasetBoxes(given.boxes[:check_count(limit, "limit", function)],
                                                        source=given.source)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return dataset_boxes(data, limit, drop_difficult)
    raise TypeError(f"{function}: data is a {type(data).__name__}; give a dataset, a list of (G, 4) normalised "
                    "boxes per image, or DatasetBoxes")
