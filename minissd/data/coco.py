"""COCO: one JSON file of images, annotations and categories.

The fields read (everything else is ignored), with the types they must have:

    images:      [{id: int or str, file_name: str, width: int, height: int}]
    annotations: [{id, image_id: int or str, category_id: int, bbox: [x, y, w, h] numbers,
                   iscrowd: 0 or 1 (optional), area: number (optional)}]
    categories:  [{id: int, name: str}]

width and height are needed only with ``check_images=False`` (otherwise the
picture's header says), but are checked wherever they are given. A UTF-8
byte order mark at the start of the file is accepted.

Labels. COCO's category ids are not contiguous (1..90 with gaps for the 80
classes); sorted by id they become labels 1..K, names from the file, 0 is the
background. ``category_ids[label]`` maps back (index 0 is None), and
``coco_image_ids[i]`` is item i's ``id`` as written in the file: together
they write a COCO results file.

Boxes. COCO's bbox is (x, y, width, height) in continuous pixels, so
xyxy = (x, y, x + width, y + height) with no 1-pixel shift (unlike VOC).

Crowd regions (iscrowd = 1) mark a group of objects under one box: they are
not training targets, so they go to ``Sample.crowd_boxes`` / ``crowd_labels``
for evaluation (a detection inside one is neither right nor wrong). Each
annotation's ``area`` (the segment's area, which COCO's size ranges use) goes
to ``Sample.areas`` / ``crowd_areas``, NaN where absent. Images without
annotations are kept, with zero boxes.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from .sample import (
    DataError,
    MissingFileError,
    Sample,
    as_box_array,
    check_not_empty,
    check_pixel_box,
    image_size,
    load_rgb_image,
    warn_skipped,
)

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


class COCODataset:
    """COCO-format detection data (any dataset written in the COCO JSON layout).

    annotation_file: the JSON, e.g. instances_val2017.json.
    image_dir:       the folder holding each image's ``file_name``.
    skip_bad:        skip images with a bad annotation or an unreadable file
                     instead of raising; one warning reports them, ``.skipped``
                     lists (image_id, reason). Also read by ``read_sample`` and
                     the ``DataLoader``, which skip a sample whose image fails
                     to decode when it is read.
    check_images:    open every image header while indexing (slow for all of
                     COCO train: one file open per image), so missing files
                     are found up front and boxes are checked against the true
                     size; otherwise the JSON's width and height are used.

    Every field is checked for its type and value (see the module docstring);
    messages name the file, the list, the position and the field, e.g.
    "instances.json, annotations[7] (id 12, image a.jpg): 'bbox' is "1234"
    (a string), expected four numbers [x, y, width, height]".
    Errors that concern the whole file (malformed JSON, a missing or empty
    list, a bad category) are raised even with ``skip_bad``: no sample could
    be trusted. Two images with one id are an error naming both positions
    (with ``skip_bad`` both are skipped: their boxes cannot be told apart).

    coco_image_ids: item i's ``id`` as written in the file (int, or str).
    category_ids:   label -> category id (index 0, the background, is None).
    """

    def __init__(self, annotation_file, image_dir, skip_bad: bool = False, check_images: bool = True):
        self.annotation_file = str(annotation_file)
        self.image_dir = str(image_dir)
        self.skip_bad = bool(skip_bad)
        path = self.annotation_file
        data = load_coco_json(path)
        categories = read_categories(data, path)
        self.category_ids = [None, *(cid for cid, _ in categories)]
        self.class_names = ["background", *(name for _, name in categories)]
        self.num_classes = len(self.class_names)
        label_of = {cid: k + 1 for k, (cid, _) in enumerate(categories)}

        self.skipped: list[tuple[str, str]] = []
        self._records = []
        by_image = self._group_annotations(data.get("annotations", []))
        images = self._index_images(data["images"])
        for position, image, image_id, problem in images:
            try:
                if problem is not None:
                    raise problem
                self._records.append(
                    self._read_record(image, position, image_id, by_image.pop(image_id, []), label_of, check_images)
                )
            except DataError as error:
                if not self.skip_bad:
                    raise
                by_image.pop(image_id, None)
                self.skipped.append((str(image_id if image_id is not None else f"images[{position}]"), str(error)))
        if by_image:  # annotations whose image_id names no image
            image_id, entries = next(iter(by_image.items()))
            error = DataError(f"{path}, annotations[{entries[0][0]}]: image_id {image_id!r} is not in 'images' "
                              f"({len(by_image)} unknown image id(s))")
            if not self.skip_bad:
                raise error
            self.skipped.append((str(image_id), str(error)))
        warn_skipped(f"COCODataset({path!r})", self.skipped)
        check_not_empty(f"COCODataset({path!r})", len(self._records), self.skipped)

    def _group_annotations(self, annotations) -> dict:
        """image id -> [(position, annotation)]; an entry that names no valid image id is bad data."""
        by_image: dict = {}
        for position, annotation in enumerate(annotations):
            where = f"{self.annotation_file}, annotations[{position}]"
            try:
                image_id = _id_field(_record(annotation, where), "image_id", where)
            except DataError as error:
                if not self.skip_bad:
                    raise
                self.skipped.append((f"annotations[{position}]", str(error)))
                continue
            by_image.setdefault(image_id, []).append((position, annotation))
        return by_image

    def _index_images(self, images) -> list:
        """[(position, record, id or None, DataError or None)]: every entry, its id, what is wrong with it."""
        found, first = [], {}
        for position, image in enumerate(images):
            where = f"{self.annotation_file}, images[{position}]"
            try:
                image_id = _id_field(_record(image, where), "id", where)
            except DataError as error:
                found.append((position, image, None, error))
                continue
            if image_id in first:
                earlier = first[image_id]
                message = (f"{where}: id {image_id!r} is also the id of images[{earlier}]; image ids must be "
                           "unique (the annotations could not be told apart)")
                found[earlier] = (*found[earlier][:3], found[earlier][3] or DataError(message))
                found.append((position, image, image_id, DataError(message)))
                continue
            first[image_id] = len(found)
            found.append((position, image, image_id, None))
        return found

    def _read_record(self, image: dict, position: int, image_id, annotations, label_of, check_images: bool):
        where = f"{self.annotation_file}, images[{position}]"
        file_name = _field(image, "file_name", where)
        if not isinstance(file_name, str) or not file_name.strip():
            raise DataError(f"{where}: 'file_name' is {_show(file_name)}, expected a file name")
        path = os.path.join(self.image_dir, file_name)
        sizes = {key: _int_field(image, key, where, 1, MAX_SIDE) for key in ("width", "height")
                 if key in image or not check_images}
        width, height = image_size(path) if check_images else (sizes["width"], sizes["height"])
        kept = {False: ([], [], [], []), True: ([], [], [], [])}  # crowd? -> boxes, labels, areas, positions
        for index, annotation in annotations:
            ann_id = annotation.get("id")
            ann_id = repr(ann_id) if _is_int(ann_id) or isinstance(ann_id, str) and len(ann_id) < 40 else "?"
            where = f"{self.annotation_file}, annotations[{index}] (id {ann_id}, image {file_name})"
            category = _field(annotation, "category_id", where)
            if not _is_int(category):
                raise DataError(f"{where}: 'category_id' is {_show(category)}, expected an integer id")
            if category not in label_of:
                raise DataError(f"{where}: unknown category_id {category!r} (not in 'categories')")
            box = check_pixel_box(_bbox(annotation, where), width, height, where)
            boxes, labels, areas, positions = kept[_crowd(annotation, where)]
            boxes.append(box)
            labels.append(label_of[category])
            areas.append(_area(annotation, where))
            positions.append(index)
        return (str(image_id), image_id, path,
                *((as_box_array(b), np.array(lab, dtype=np.int64), np.array(a, dtype=np.float32), p)
                  for b, lab, a, p in (kept[False], kept[True])))

    @property
    def coco_image_ids(self) -> list:
        """The ``id`` of each item as the file writes it (dataset order)."""
        return [record[1] for record in self._records]

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> Sample:
        image_id, _, path, normal, crowd = self._records[index]
        image = load_rgb_image(path)  # stored orientation: COCO's boxes refer to the stored pixels
        height, width = image.shape[:2]

        def checked(boxes, positions):  # without check_images the true size was not known while indexing
            return as_box_array([
                check_pixel_box(box, width, height, f"{self.annotation_file}, annotations[{k}] (image {path})")
                for box, k in zip(boxes, positions)
            ])

        boxes, labels, areas, positions = normal
        crowd_boxes, crowd_labels, crowd_areas, crowd_positions = crowd
        return Sample(image=image, boxes=checked(boxes, positions), labels=labels.copy(),
                      difficult=np.zeros(len(labels), dtype=bool), image_id=image_id, path=path,
                      crowd_boxes=checked(crowd_boxes, crowd_positions), crowd_labels=crowd_labels.copy(),
                      areas=areas.copy(), crowd_areas=crowd_areas.copy())

    def __repr__(self) -> str:
        return f"COCODataset({self.annotation_file!r}, {self.image_dir!r}, {len(self)} images)"
