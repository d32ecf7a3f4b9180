"""Reading pictures: ``open_image``, the pixel limit, any Pillow mode to RGB.

``open_image`` is the one way minissd reads a picture file (the datasets and
the detector): (H, W, 3) uint8 RGB whatever the file's mode, a full decode (a
truncated body is found here, not later), a pixel limit checked from the
header before decoding (``max_image_pixels``), and one ``DataError`` naming
the file for every failure. ``image_size`` reads only the header, with the
same checks.

Separate from ``sample.py`` (the record and the annotation checks): this is
everything that touches Pillow and a picture's pixels, including Pillow's own
global limit, which is switched off while minissd reads (see below).
"""

from __future__ import annotations

import numbers
import os
import threading
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError, MissingFileError

# The default pixel limit: a guard against decompression bombs (a small file
# that decodes to gigabytes). 100 megapixels is 300 MB as RGB, far above any
# detection dataset's pictures (VOC ~0.2, COCO ~0.3, a 48 MP phone photo).
MAX_IMAGE_PIXELS = 100_000_000
MAX_PIXELS_ENV = "MINISSD_MAX_IMAGE_PIXELS"


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
