"""COCO's JSON file: reading it, and every field typed and checked with a message that says where.

``load_coco_json`` reads the file and checks its three lists, ``read_categories``
the categories; the ``_``-prefixed readers check one field of one entry (an id,
an integer in a range, a bbox, iscrowd, area) and raise a ``DataError`` naming
the file, the list, the position and the field. The fields and their types are
listed in ``coco.py``'s docstring.

Separate from ``coco.py`` (the dataset: grouping annotations by image, the
records, the items) because this part is JSON and its types only; the dataset
uses the field readers, which is why they are imported there although private.
"""

from __future__ import annotations

import json
import math
import os

from .errors import DataError, MissingFileError

MAX_SIDE = 1_000_000  # a width or height beyond this is a typo, not a picture


# --------------------------------------------------------------------------
# typed fields, with messages that say the file, the list, the position and the field
# --------------------------------------------------------------------------

def _kind(value) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value) -> str:
    """A value as a message shows it: short, and with its JSON type."""
    if value is None:
        return "null"
    text = json.dumps(value) if isinstance(value, (str, list, dict, bool)) else repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_kind(value)})"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _record(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise DataError(f"{where} is {_show(value)}, expected an object {{...}}")
    return value


def _field(record: dict, key: str, where: str):
    if key not in record:
        raise DataError(f"{where}: missing field {key!r}")
    return record[key]


def _id_field(record: dict, key: str, where: str):
    """An image id: an integer (COCO's own) or a non-empty string (some converters write those)."""
    value = _field(record, key, where)
    if _is_int(value) or (isinstance(value, str) and value):
        return value
    raise DataError(f"{where}: {key!r} is {_show(value)}, expected an integer id")


def _int_field(record: dict, key: str, where: str, low: int | None = None, high: int | None = None) -> int:
    value = _field(record, key, where)
    if not _is_int(value):
        raise DataError(f"{where}: {key!r} is {_show(value)}, expected an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        raise DataError(f"{where}: {key!r} is {value}, outside {low}..{high}")
    return value


def _finite(value, key: str, where: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise DataError(f"{where}: {key!r} is {_show(value)}, not a finite number")
    return number


def _bbox(annotation: dict, where: str) -> list[float]:
    bbox = _field(annotation, "bbox", where)
    # A string is iterable ("1234" would read as 1, 2, 3, 4): check the type, not just the length.
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise DataError(f"{where}: 'bbox' is {_show(bbox)}, expected four numbers [x, y, width, height]")
    x, y, w, h = (_finite(v, "bbox", where) for v in bbox)
    return [x, y, x + w, y + h]


def _crowd(annotation: dict, where: str) -> bool:
    value = annotation.get("iscrowd", 0)
    if value in (0, 1) and (_is_int(value) or isinstance(value, bool)):
        return bool(value)
    raise DataError(f"{where}: 'iscrowd' is {_show(value)}, expected 0 or 1")


def _area(annotation: dict, where: str) -> float:
    if "area" not in annotation:
        return math.nan
    value = annotation["area"]
    if not _is_number(value):
        raise DataError(f"{where}: 'area' is {_show(value)}, expected a number")
    area = _finite(value, "area", where)
    if area < 0:
        raise DataError(f"{where}: 'area' is {value}, negative")
    return area


# --------------------------------------------------------------------------
# the file
# --------------------------------------------------------------------------

def load_coco_json(annotation_file) -> dict:
    """The parsed JSON, with its three lists checked; ``DataError`` names the file otherwise.

    A missing file raises a ``DataError`` that is also a ``FileNotFoundError``.
    """
    path = str(annotation_file)
    if not os.path.exists(path):
        raise MissingFileError(f"COCO annotation file {path} not found")
    if os.path.isdir(path):
        raise DataError(f"{path} is a folder, not a COCO annotation file "
                        "(give the JSON file, e.g. annotations/instances_val2017.json)")
    try:
        with open(path, encoding="utf-8-sig") as handle:  # -sig: a byte order mark is accepted
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: malformed JSON ({error})") from None
    except RecursionError:
        raise DataError(f"{path}: malformed JSON (nested too deeply to read)") from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise DataError(f"{path}: malformed JSON ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: annotation file cannot be read ({error})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with 'images', 'annotations', 'categories'; "
                        f"got {_kind(data)}")
    for key in ("images", "categories"):
        if key not in data:
            raise DataError(f"{path}: missing field {key!r} (a list)")
        if not isinstance(data[key], list):
            raise DataError(f"{path}: field {key!r} is {_show(data[key])}, expected a list")
    if not isinstance(data.get("annotations", []), list):
        raise DataError(f"{path}: field 'annotations' is {_show(data['annotations'])}, expected a list")
    if not data["images"]:
        raise DataError(f"{path} has no images ('images' is an empty list)")
    if not data["categories"]:
        raise DataError(f"{path} has no categories ('categories' is an empty list): nothing to detect")
    return data


def read_categories(data: dict, path: str) -> list[tuple[int, str]]:
    """[(category id, name)] sorted by id; ``DataError`` for a bad entry or a repeated id."""
    categories, first = [], {}
    for position, category in enumerate(data["categories"]):
        where = f"{path}, categories[{position}]"
        category = _record(category, where)
        cid = _int_field(category, "id", where)
        name = _field(category, "name", where)
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: 'name' is {_show(name)}, expected a non-empty string")
        if cid in first:
            raise DataError(f"{where}: category ids are not unique: id {cid} is also categories[{first[cid]}]'s")
        first[cid] = position
        categories.append((cid, name))
    return sorted(categories)
