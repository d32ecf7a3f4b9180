"""One VOC annotation file: reading and checking its XML, and VOC's 1-based pixels made 0-based.

VOC writes pixel indices, 1-based and inclusive: an object on the first ten
columns has xmin = 1, xmax = 10. Our boxes are continuous and 0-based (that
object spans x from 0 to 10), so

    x1 = xmin - 1,   y1 = ymin - 1,   x2 = xmax,   y2 = ymax.

Separate from ``voc.py`` (the dataset) and ``voc_layout.py`` (the folders and
image lists): everything here concerns one file and knows nothing of where it
lies. ``read_voc_annotation`` is the whole reading; the rest are its checks,
each raising a ``DataError`` that names the file and the object.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from .errors import DataError, MissingFileError

MAX_SIDE = 1_000_000  # a <size> side beyond this is a typo, not a picture
_UTF8_BOM = b"\xef\xbb\xbf"

def _text(element, tag: str, where: str) -> str:
    found = element.find(tag)
    if found is None or found.text is None or not found.text.strip():
        raise DataError(f"{where}: missing field <{tag}>")
    return found.text.strip()


def _optional_text(element, tag: str) -> str | None:
    found = element.find(tag)
    if found is None or found.text is None or not found.text.strip():
        return None
    return found.text.strip()


def _read_xml(xml_path: str):
    """The root element; ``DataError`` naming the file for anything that is not readable XML."""
    if not os.path.exists(xml_path):
        raise MissingFileError(f"{xml_path}: annotation file is missing")
    if os.path.isdir(xml_path):
        raise DataError(f"{xml_path} is a folder, not an annotation file")
    try:
        with open(xml_path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise DataError(f"{xml_path}: annotation file cannot be read ({error})") from None
    # Byte order marks (some editors write one, some tools two) and blank lines
    # before the declaration would stop the parser; neither carries meaning in UTF-8.
    data = data.lstrip(b" \t\r\n")
    while data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):].lstrip(b" \t\r\n")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as error:
        raise DataError(f"{xml_path}: malformed XML ({error})") from None
    except (ValueError, LookupError) as error:  # e.g. an encoding declaration Python does not know
        raise DataError(f"{xml_path}: malformed XML ({error})") from None


def _size_field(size_node, tag: str, xml_path: str) -> int:
    """<width> / <height> as an int; 0 when absent or 0 (some tools write 0 for 'unknown')."""
    text = _optional_text(size_node, tag)
    if text is None:
        return 0
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{xml_path}: <size><{tag}> is {text!r}, not a whole number of pixels") from None
    if not np.isfinite(value) or value != int(value) or value < 0 or value > MAX_SIDE:
        raise DataError(f"{xml_path}: <size><{tag}> is {text!r}, not a whole number of pixels in 0..{MAX_SIDE}")
    return int(value)


def _read_size(root, xml_path: str) -> tuple[int, int] | None:
    """(width, height) from <size>, or None when the file does not say (absent or 0)."""
    size_node = root.find("size")
    if size_node is None:
        return None
    width, height = _size_field(size_node, "width", xml_path), _size_field(size_node, "height", xml_path)
    return (width, height) if width and height else None


def _read_difficult(node, where: str) -> bool:
    text = _optional_text(node, "difficult")  # absent (some VOC2012 files) or empty: not difficult
    if text is None or text == "0":
        return False
    if text == "1":
        return True
    raise DataError(f"{where}: <difficult> is {text!r}, not 0 or 1")


def _read_corners(node, where: str) -> list[float]:
    box_node = node.find("bndbox")
    if box_node is None:
        raise DataError(f"{where}: missing field <bndbox>")
    corners = []
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        value = _text(box_node, tag, where)
        try:
            number = float(value)
        except ValueError:
            raise DataError(f"{where}: <{tag}> is {value!r}, not a number") from None
        if not np.isfinite(number):
            raise DataError(f"{where}: <{tag}> is {value!r}, not a finite number")
        corners.append(number)
    return corners


def read_voc_annotation(xml_path: str, label_of: dict | None = None, keep_difficult: bool = True):
    """Read and check one VOC annotation file.

    Returns (filename or None, (width, height) from <size> or None,
    objects): objects a list of (box [x1, y1, x2, y2] in continuous 0-based
    pixels, name, label from ``label_of`` (None when ``label_of`` is None),
    difficult bool, the object's index in the file). Boxes are not yet
    checked against the image.
    Raises ``DataError`` naming the file (and the object, by index and name)
    for unreadable or malformed XML, a missing field, a coordinate that is
    not a finite number, a <difficult> other than 0 or 1, a <size> that is
    not a whole number, or a class name not in ``label_of``.
    """
    xml_path = str(xml_path)
    root = _read_xml(xml_path)
    filename = _optional_text(root, "filename")
    size = _read_size(root, xml_path)
    objects = []
    for index, node in enumerate(root.iter("object")):
        where = f"{xml_path}, object {index}"
        name = _text(node, "name", where)
        where = f"{where} '{name}'"
        label = None
        if label_of is not None:
            if name not in label_of:
                raise DataError(f"{where}: unknown class name (expected one of {list(label_of)})")
            label = label_of[name]
        difficult = _read_difficult(node, where)
        corners = _read_corners(node, where)  # checked even when the object is dropped: the file is bad
        if difficult and not keep_difficult:
            continue
        xmin, ymin, xmax, ymax = corners
        objects.append(([xmin - 1, ymin - 1, xmax, ymax], name, label, difficult, index))
    return filename, size, objects
