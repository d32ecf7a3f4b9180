"""COCO: one JSON file of images, annotations and categories.

The fields read (everything else is ignored):

    images:      [{id, file_name, width, height}]
    annotations: [{id, image_id, category_id, bbox: [x, y, w, h], iscrowd}]
    categories:  [{id, name}]

Labels. COCO's category ids are not contiguous (1..90 with gaps for the 80
classes); sorted by id they become labels 1..K, names from the file, 0 is the
background. ``category_ids[label]`` maps back (index 0 is None).

Boxes. COCO's bbox is (x, y, width, height) in continuous pixels, so
xyxy = (x, y, x + width, y + height) with no 1-pixel shift (unlike VOC).

Crowd regions (iscrowd = 1) mark a group of objects under one box: they are
not training targets, so they go to ``Sample.crowd_boxes`` / ``crowd_labels``
for evaluation (a detection inside one is neither right nor wrong). Images
without annotations are kept, with zero boxes.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .sample import DataError, Sample, as_box_array, check_pixel_box, image_size, load_rgb_image, warn_skipped


def _field(record: dict, key: str, where: str):
    if not isinstance(record, dict) or key not in record:
        raise DataError(f"{where}: missing field {key!r}")
    return record[key]


def load_coco_json(annotation_file: str) -> dict:
    """The parsed JSON, with its three lists checked; ``DataError`` names the file otherwise."""
    try:
        with open(annotation_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"COCO annotation file {annotation_file} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{annotation_file}: malformed JSON ({error})") from None
    if not isinstance(data, dict):
        raise DataError(f"{annotation_file}: expected a JSON object with 'images', 'annotations', 'categories'")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{annotation_file}: missing field {key!r} (a list)")
    if not isinstance(data.get("annotations", []), list):
        raise DataError(f"{annotation_file}: field 'annotations' must be a list")
    return data


class COCODataset:
    """COCO-format detection data (any dataset written in the COCO JSON layout).

    annotation_file: the JSON, e.g. instances_val2017.json.
    image_dir:       the folder holding each image's ``file_name``.
    skip_bad:        skip images with a bad annotation or an unreadable file
                     instead of raising; one warning reports them, ``.skipped``
                     lists (image_id, reason).
    check_images:    open every image header while indexing (slow for all of
                     COCO train: one file open per image), so missing files
                     are found up front and boxes are checked against the true
                     size; otherwise the JSON's width and height are used.

    Errors that concern the whole file (malformed JSON, a missing list, a bad
    category) are raised even with ``skip_bad``: no sample could be trusted.
    """

    def __init__(self, annotation_file: str, image_dir: str, skip_bad: bool = False, check_images: bool = True):
        self.annotation_file = str(annotation_file)
        self.image_dir = str(image_dir)
        data = load_coco_json(self.annotation_file)
        categories = []
        for position, category in enumerate(data["categories"]):
            where = f"{self.annotation_file}, categories[{position}]"
            categories.append((_field(category, "id", where), str(_field(category, "name", where))))
        categories.sort()
        ids = [cid for cid, _ in categories]
        if len(set(ids)) != len(ids):
            raise DataError(f"{self.annotation_file}: category ids are not unique: {ids}")
        self.category_ids = [None, *ids]
        self.class_names = ["background", *(name for _, name in categories)]
        self.num_classes = len(self.class_names)
        label_of = {cid: k + 1 for k, cid in enumerate(ids)}

        by_image: dict = {}
        for position, annotation in enumerate(data.get("annotations", [])):
            image_id = _field(annotation, "image_id", f"{self.annotation_file}, annotations[{position}]")
            by_image.setdefault(image_id, []).append((position, annotation))
        self.skipped: list[tuple[str, str]] = []
        self._records = []
        known_images = set()
        for position, image in enumerate(data["images"]):
            try:
                image_id = _field(image, "id", f"{self.annotation_file}, images[{position}]")
                known_images.add(image_id)
                self._records.append(
                    self._read_record(image, position, by_image.get(image_id, []), label_of, check_images)
                )
            except DataError as error:
                if not skip_bad:
                    raise
                self.skipped.append((str(image.get("id") if isinstance(image, dict) else position), str(error)))
        orphans = [key for key in by_image if key not in known_images]
        if orphans:
            position = by_image[orphans[0]][0][0]
            error = DataError(
                f"{self.annotation_file}, annotations[{position}]: image_id {orphans[0]!r} is not in 'images' "
                f"({len(orphans)} unknown image id(s))"
            )
            if not skip_bad:
                raise error
            self.skipped.append((str(orphans[0]), str(error)))
        warn_skipped(f"COCODataset({self.annotation_file!r})", self.skipped)

    def _read_record(self, image: dict, position: int, annotations, label_of, check_images: bool):
        where = f"{self.annotation_file}, images[{position}]"
        image_id = _field(image, "id", where)
        file_name = _field(image, "file_name", where)
        path = os.path.join(self.image_dir, file_name)
        if check_images:
            width, height = image_size(path)
        else:
            width, height = int(_field(image, "width", where)), int(_field(image, "height", where))
        boxes, labels, crowd_boxes, crowd_labels = [], [], [], []
        for index, annotation in annotations:
            where = f"{self.annotation_file}, annotations[{index}] (id {annotation.get('id')}, image {file_name})"
            category = _field(annotation, "category_id", where)
            if category not in label_of:
                raise DataError(f"{where}: unknown category_id {category!r} (not in 'categories')")
            bbox = _field(annotation, "bbox", where)
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                raise DataError(f"{where}: bbox {bbox!r} is not four numbers [x, y, width, height]") from None
            box = check_pixel_box([x, y, x + w, y + h], width, height, where)
            if annotation.get("iscrowd", 0):
                crowd_boxes.append(box)
                crowd_labels.append(label_of[category])
            else:
                boxes.append(box)
                labels.append(label_of[category])
        return (str(image_id), path, as_box_array(boxes), np.array(labels, dtype=np.int64),
                as_box_array(crowd_boxes), np.array(crowd_labels, dtype=np.int64))

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> Sample:
        image_id, path, boxes, labels, crowd_boxes, crowd_labels = self._records[index]
        image = load_rgb_image(path)
        height, width = image.shape[:2]
        checked = as_box_array([
            check_pixel_box(box, width, height, f"{path}, annotation {k} of image {image_id}")
            for k, box in enumerate(boxes)
        ])
        return Sample(image=image, boxes=checked, labels=labels.copy(), difficult=np.zeros(len(labels), dtype=bool),
                      image_id=image_id, path=path, crowd_boxes=crowd_boxes.copy(), crowd_labels=crowd_labels.copy())

    def __repr__(self) -> str:
        return f"COCODataset({self.annotation_file!r}, {self.image_dir!r}, {len(self)} images)"
