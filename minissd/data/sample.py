"""The record every dataset returns, and the checks every reader shares.

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

Readers check the annotations against the image they belong to
(``check_pixel_boxes``) and load pictures as RGB whatever their mode
(``load_rgb_image``); both raise ``DataError`` naming the file and the object.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

# A box may stick out of its image by this many pixels (annotation tools round
# outwards); it is clipped back. Further out is an error.
BOX_TOLERANCE_PX = 1.0


class DataError(ValueError):
    """Bad data: the message says which file, and which object in it."""


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def _empty_labels() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


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

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


# --------------------------------------------------------------------------
# boxes
# --------------------------------------------------------------------------

def check_pixel_box(box, width: int, height: int, where: str) -> list[float]:
    """One pixel xyxy box checked against a ``width`` x ``height`` image.

    Accepts a box that leaves the image by at most ``BOX_TOLERANCE_PX`` and
    clips it to [0, width] x [0, height]; raises ``DataError`` (prefixed with
    ``where``, e.g. "file.xml, object 3 'dog'") for a coordinate that is not
    finite, a box further outside, or one with zero or negative size.
    Returns the clipped [x1, y1, x2, y2].
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    values = [x1, y1, x2, y2]
    if not all(np.isfinite(values)):
        raise DataError(f"{where}: box {values} has a coordinate that is not a finite number")
    tol = BOX_TOLERANCE_PX
    if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
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
# images
# --------------------------------------------------------------------------

def image_size(path: str) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing") from None
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: image file cannot be read ({error})") from None


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any PIL image -> (H, W, 3) uint8 RGB.

    Grayscale is repeated over the three channels; palette images go through
    their palette; CMYK and YCbCr use Pillow's conversions; 16-bit grayscale
    (I;16, as 16-bit PNGs open) is scaled by 255 / 65535; 32-bit integer or
    float grayscale (I, F) is read as 0..65535 when its maximum exceeds 255,
    else as 0..255. An alpha channel (RGBA, LA, or a palette
    with transparency) is composited over black: a pixel's colour is
    multiplied by its opacity, so fully transparent pixels become black
    instead of showing whatever colour the file stores under them.
    """
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)  # (H, W, 3)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)  # (H, W, 4)
        alpha = rgba[:, :, 3:]
        # over black: c * a / 255, rounded to nearest
        return ((rgba[:, :, :3] * alpha + 127) // 255).astype(np.uint8)
    if mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def load_rgb_image(path: str) -> np.ndarray:
    """Decode an image file -> (H, W, 3) uint8 RGB (see ``to_rgb_array``)."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb_array(image)
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{path}: image file cannot be decoded ({error})") from None


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


class ConcatDataset:
    """Several datasets with the same classes, one after the other.

    ``ConcatDataset([voc07, voc12])[i]`` is item i of the first dataset for
    i < len(voc07), then the items of the second. Class lists must agree,
    so label k means the same class everywhere.
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
        self.skipped = [entry for d in self.datasets for entry in getattr(d, "skipped", [])]
        self._ends = np.cumsum([len(d) for d in self.datasets])

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
