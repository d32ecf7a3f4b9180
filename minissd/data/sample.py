"""The record every dataset returns, and the checks and helpers every reader shares.

A ``Sample`` is one annotated picture, in pixels (the model's normalised
coordinates appear only after the transform):

    image       (H, W, 3) uint8 RGB
    boxes       (G, 4) float32 pixel xyxy, continuous coordinates: a box that
                covers pixel columns 0..9 has x1 = 0 and x2 = 10
    labels      (G,) int64 in 1..L-1 (0, the background, is never a label)
    difficult   (G,) bool, VOC's "difficult" flag (ignored by VOC evaluation)
    image_id    str, unique within its dataset
    path        str or None (synthetic images have no file)
    crowd_boxes (C, 4) float32 pixel xyxy, COCO's iscrowd regions: not
                training targets, kept for evaluation (empty elsewhere)
    crowd_labels (C,) int64
    areas       (G,) float32, COCO's annotation ``area`` (NaN where the file
                has none); empty when the dataset has no areas (VOC, shapes)
    crowd_areas (C,) float32, the same for the crowd regions

Pictures are read by ``images.py`` (``open_image``, ``image_size``, the pixel
limit) and the exceptions live in ``errors.py``; both are re-exported here,
where they were first defined, so ``from minissd.data.sample import
open_image`` keeps working.

Readers check the annotations against the image they belong to
(``check_pixel_box``); it raises ``DataError`` naming the file and the object.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError, MissingFileError  # noqa: F401 - re-exported: readers import them from here
from .images import (  # noqa: F401 - re-exported: they lived here before images.py was split out
    MAX_IMAGE_PIXELS,
    MAX_PIXELS_ENV,
    check_pixel_limit,
    image_size,
    load_rgb_image,
    max_image_pixels,
    open_image,
    set_max_image_pixels,
    to_rgb_array,
)

# A box may stick out of its image by this many pixels (annotation tools round
# outwards); it is clipped back. Further out is an error.
BOX_TOLERANCE_PX = 1.0


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def _empty_labels() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


def _empty_areas() -> np.ndarray:
    return np.zeros((0,), dtype=np.float32)


@dataclass
class Sample:
    """One annotated image; see the module docstring for every field's shape."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    image_id: str
    path: str | None = None
    crowd_boxes: np.ndarray = field(default_factory=_empty_boxes)
    crowd_labels: np.ndarray = field(default_factory=_empty_labels)
    areas: np.ndarray = field(default_factory=_empty_areas)
    crowd_areas: np.ndarray = field(default_factory=_empty_areas)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


# --------------------------------------------------------------------------
# boxes
# --------------------------------------------------------------------------

def check_pixel_box(box, width: int | None, height: int | None, where: str) -> list[float]:
    """One pixel xyxy box checked against a ``width`` x ``height`` image.

    Accepts a box that leaves the image by at most ``BOX_TOLERANCE_PX`` and
    clips it to [0, width] x [0, height]; raises ``DataError`` (prefixed with
    ``where``, e.g. "file.xml, object 3 'dog'") for a coordinate that is not
    finite, a box further outside, or one with zero or negative size.
    ``width`` and ``height`` None: the image size is not known yet, so only
    the lower edges are checked and clipped (the rest waits for the image).
    Returns the clipped [x1, y1, x2, y2].
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    values = [x1, y1, x2, y2]
    if not all(np.isfinite(values)):
        raise DataError(f"{where}: box {values} has a coordinate that is not a finite number")
    tol = BOX_TOLERANCE_PX
    if width is None or height is None:
        if x1 < -tol or y1 < -tol:
            raise DataError(f"{where}: box {values} (x1, y1, x2, y2) starts at a negative coordinate "
                            f"(more than {tol:g} pixel out of the image)")
        width = height = float("inf")
    elif x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
        raise DataError(
            f"{where}: box {values} (x1, y1, x2, y2) lies outside the {width} x {height} image "
            f"(more than {tol:g} pixel out)"
        )
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        raise DataError(
            f"{where}: box {values} (x1, y1, x2, y2) is inverted or has zero size "
            "after clipping to the image"
        )
    return [x1, y1, x2, y2]


def as_box_array(boxes) -> np.ndarray:
    """A list of [x1, y1, x2, y2] -> (G, 4) float32 (shape (0, 4) when empty)."""
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)  # (G, 4)


# --------------------------------------------------------------------------
# skipping bad samples
# --------------------------------------------------------------------------

def warn_skipped(dataset_name: str, skipped: list[tuple[str, str]], shown: int = 3) -> None:
    """One warning for all the samples a reader skipped: the count and the first reasons."""
    if not skipped:
        return
    reasons = "; ".join(reason for _, reason in skipped[:shown])
    more = f" (and {len(skipped) - shown} more, see .skipped)" if len(skipped) > shown else ""
    warnings.warn(
        f"{dataset_name}: skipped {len(skipped)} bad sample(s): {reasons}{more}",
        UserWarning,
        stacklevel=3,
    )


def check_not_empty(dataset_name: str, count: int, skipped: list[tuple[str, str]]) -> None:
    """``DataError`` when a reader kept no sample at all (every one skipped as bad)."""
    if count == 0:
        first = f"; the first: {skipped[0][1]}" if skipped else ""
        raise DataError(f"{dataset_name}: no usable images, all {len(skipped)} were skipped as bad{first}")


class ConcatDataset:
    """Several datasets with the same classes, one after the other.

    ``ConcatDataset([voc07, voc12])[i]`` is item i of the first dataset for
    i < len(voc07), then the items of the second. Class lists must agree,
    so label k means the same class everywhere. ``skip_bad`` is True when
    every part skips bad samples; ``skipped`` joins the parts' lists.
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.class_names = list(self.datasets[0].class_names)
        for position, dataset in enumerate(self.datasets[1:], start=1):
            if list(dataset.class_names) != self.class_names:
                raise ValueError(
                    f"ConcatDataset: dataset {position} has classes {list(dataset.class_names)}, "
                    f"dataset 0 has {self.class_names}; they must be identical"
                )
        self.num_classes = len(self.class_names)
        self.skip_bad = all(getattr(d, "skip_bad", False) for d in self.datasets)
        self._ends = np.cumsum([len(d) for d in self.datasets])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return [entry for d in self.datasets for entry in getattr(d, "skipped", [])]

    def __len__(self) -> int:
        return int(self._ends[-1])

    def __getitem__(self, index: int) -> Sample:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for ConcatDataset of length {len(self)}")
        which = int(np.searchsorted(self._ends, index, side="right"))
        start = int(self._ends[which - 1]) if which else 0
        return self.datasets[which][index - start]
