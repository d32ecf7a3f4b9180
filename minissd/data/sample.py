"""The record every dataset returns, image reading, and the checks every reader shares.

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

Images. ``open_image`` is the one way minissd reads a picture file (the
datasets and the detector): (H, W, 3) uint8 RGB whatever the file's mode, a
full decode (a truncated body is found here, not later), a pixel limit
checked from the header before decoding (``max_image_pixels``), and one
``DataError`` naming the file for every failure. ``image_size`` reads only
the header, with the same checks.

Readers check the annotations against the image they belong to
(``check_pixel_box``); it raises ``DataError`` naming the file and the object.
"""

from __future__ import annotations

import numbers
import os
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# A box may stick out of its image by this many pixels (annotation tools round
# outwards); it is clipped back. Further out is an error.
BOX_TOLERANCE_PX = 1.0

# The default pixel limit: a guard against decompression bombs (a small file
# that decodes to gigabytes). 100 megapixels is 300 MB as RGB, far above any
# detection dataset's pictures (VOC ~0.2, COCO ~0.3, a 48 MP phone photo).
MAX_IMAGE_PIXELS = 100_000_000
MAX_PIXELS_ENV = "MINISSD_MAX_IMAGE_PIXELS"


class DataError(ValueError):
    """Bad data: the message says which file, and which object in it."""


class MissingFileError(DataError, FileNotFoundError):
    """A file that is not there: a ``DataError`` that is also a ``FileNotFoundError``,
    so code that catches either one keeps working."""


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
# the pixel limit
# --------------------------------------------------------------------------

_max_pixels_setting: int | None = None  # set by set_max_image_pixels; None: the environment, else the default


def _pixel_count(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} = {value!r} is not an integer (a number of pixels; 0 for no limit)")
    if value < 0:
        raise ValueError(f"{what} = {value} is negative (a number of pixels; 0 for no limit)")
    return int(value)


def set_max_image_pixels(n: int | None) -> None:
    """Set the pixel limit of every image read from now on: ``n`` pixels, 0 for no
    limit, None to go back to ``$MINISSD_MAX_IMAGE_PIXELS`` or the default
    (``MAX_IMAGE_PIXELS``). The CLI's ``--max-pixels`` calls this."""
    global _max_pixels_setting
    _max_pixels_setting = None if n is None else _pixel_count(n, "set_max_image_pixels: n")


def max_image_pixels() -> int:
    """The pixel limit in force (0: none): ``set_max_image_pixels``'s value, else
    ``$MINISSD_MAX_IMAGE_PIXELS``, else ``MAX_IMAGE_PIXELS``."""
    if _max_pixels_setting is not None:
        return _max_pixels_setting
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{MAX_PIXELS_ENV}={text!r} is not a whole number of pixels (0 for no limit)") from None
    return _pixel_count(value, MAX_PIXELS_ENV)


def _limit(max_pixels) -> int:
    return max_image_pixels() if max_pixels is None else _pixel_count(max_pixels, "max_pixels")


def check_pixel_limit(path: str, width: int, height: int, limit: int) -> None:
    """``DataError`` when a ``width`` x ``height`` picture is over ``limit`` pixels (0: no limit)."""
    if limit and width * height > limit:
        raise DataError(
            f"{path} is {width} x {height} = {width * height / 1e6:.1f} megapixels, over minissd's limit of "
            f"{limit / 1e6:g} megapixels (a guard against decompression bombs); raise it with --max-pixels N "
            f"or {MAX_PIXELS_ENV}=N (N pixels), 0 for no limit"
        )


# Pillow has its own, global limit (Image.MAX_IMAGE_PIXELS: a warning above it,
# DecompressionBombError above twice it). minissd applies its limit itself,
# from the header, so Pillow's is switched off while minissd reads, and put
# back when the last concurrent minissd read ends (the loader reads in a
# thread while the caller may read too; a counter keeps the saved value right).
_pillow_lock = threading.Lock()
_pillow_readers = 0
_pillow_saved_limit = None


@contextmanager
def _pillow_limit_off():
    global _pillow_readers, _pillow_saved_limit
    with _pillow_lock:
        if _pillow_readers == 0:
            _pillow_saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _pillow_readers += 1
    try:
        yield
    finally:
        with _pillow_lock:
            _pillow_readers -= 1
            if _pillow_readers == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_saved_limit


# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------

def _as_path(path, function: str) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{function}: path must be a str or os.PathLike; got {type(path).__name__} {path!r}")
    return os.fspath(path)


def _reason(error: BaseException) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "not a picture format Pillow knows, or a damaged header"
    return str(error) or type(error).__name__


@contextmanager
def _opened_image(path: str, limit: int):
    """The image opened (header read, pixels not decoded) after every check; closed afterwards."""
    if not os.path.exists(path):
        raise MissingFileError(f"image not found: {path}")
    if os.path.isdir(path):
        raise DataError(f"{path} is a folder, not an image file")
    try:
        image = Image.open(path)
    except MemoryError:
        raise
    except Exception as error:  # decoders raise many kinds (OSError, SyntaxError, struct.error...)
        raise DataError(f"{path}: image file cannot be read ({_reason(error)})") from None
    try:
        width, height = image.size
        check_pixel_limit(path, width, height, limit)
        yield image
    finally:
        image.close()


def image_size(path, *, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels.

    The checks of ``open_image`` that need no decoding: a missing file, a
    folder, an unreadable header, the pixel limit (``max_pixels``: None for
    ``max_image_pixels()``, 0 for none).
    """
    path = _as_path(path, "image_size")
    with _pillow_limit_off(), _opened_image(path, _limit(max_pixels)) as image:
        return image.size


def open_image(path, *, exif_transpose: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Read a picture file -> (H, W, 3) uint8 RGB (any mode, see ``to_rgb_array``).

    path:           the file.
    exif_transpose: turn the picture as its EXIF orientation tag says (what a
                    photo viewer shows). The detector does; the datasets do
                    not, because their annotations refer to the pixels as
                    stored in the file.
    max_pixels:     refuse a picture with more pixels (checked from the header,
                    before decoding); None: ``max_image_pixels()``, 0: no limit.

    Raises ``DataError`` naming the file for a missing file ("image not found:
    PATH", also a ``FileNotFoundError``), a folder, a file Pillow cannot read,
    a body that does not decode (a truncated JPEG: the whole picture is
    decoded here), and a picture over the pixel limit.
    """
    path = _as_path(path, "open_image")
    with _pillow_limit_off(), _opened_image(path, _limit(max_pixels)) as image:
        try:
            image.load()  # the full decode: a damaged body fails here, not later in a worker
            if exif_transpose:
                image = ImageOps.exif_transpose(image)
            return to_rgb_array(image)
        except MemoryError:
            raise
        except Exception as error:
            raise DataError(f"{path}: image file cannot be decoded ({_reason(error)})") from None


def load_rgb_image(path, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file as stored -> (H, W, 3) uint8 RGB: ``open_image`` without EXIF turning."""
    return open_image(path, exif_transpose=False, max_pixels=max_pixels)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any PIL image -> (H, W, 3) uint8 RGB.

    Grayscale is repeated over the three channels; palette images go through
    their palette; CMYK and YCbCr use Pillow's conversions; 16-bit grayscale
    (I;16, as 16-bit PNGs open) is scaled by 255 / 65535; 32-bit integer or
    float grayscale (I, F) is read as 0..65535 when its maximum exceeds 255,
    else as 0..255, except float (F) pictures whose maximum is at most 1:
    those are 0..1 and scaled by 255, the rule ``minissd.detect`` applies to
    float arrays. NaN reads as 0. An alpha channel (RGBA, LA, or a palette
    with transparency) is composited over black: a pixel's colour is
    multiplied by its opacity, so fully transparent pixels become black
    instead of showing whatever colour the file stores under them.
    """
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)  # (H, W)
        finite = np.isfinite(values)
        top_value = float(values[finite].max(initial=0.0))
        if mode.startswith("I;16") or top_value > 255:
            top = 65535.0
        elif mode == "F" and top_value <= 1.0:
            top = 1.0
        else:
            top = 255.0
        values = np.where(finite, values, np.where(values > 0, top, 0.0))  # NaN, -inf -> 0; +inf -> white
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
