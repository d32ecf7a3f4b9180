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

The JSON file's reading and its typed fields are in ``coco_json.py``
(``load_coco_json``, ``read_categories``, re-exported here).
"""

from __future__ import annotations

import os

import numpy as np

from .coco_json import (
    MAX_SIDE,
    _area,
    _bbox,
    _crowd,
    _field,
    _id_field,
    _int_field,
    _is_int,
    _record,
    _show,
    load_coco_json,
    read_categories,
)
from .sample import (
    DataError,
    Sample,
    as_box_array,
    check_not_empty,
    check_pixel_box,
    image_size,
    load_rgb_image,
    warn_skipped,
)


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

    def _checked_boxes(self, boxes, positions, path: str, width: int, height: int) -> np.ndarray:
        """Boxes of the picture at ``path`` checked against its true ``width`` x ``height`` -> (G, 4) float32
        (without check_images the true size was not known while indexing)."""
        return as_box_array([
            check_pixel_box(box, width, height, f"{self.annotation_file}, annotations[{k}] (image {path})")
            for box, k in zip(boxes, positions)
        ])

    def __getitem__(self, index: int) -> Sample:
        image_id, _, path, normal, crowd = self._records[index]
        image = load_rgb_image(path)  # stored orientation: COCO's boxes refer to the stored pixels
        height, width = image.shape[:2]
        boxes, labels, areas, positions = normal
        crowd_boxes, crowd_labels, crowd_areas, crowd_positions = crowd
        return Sample(image=image, boxes=self._checked_boxes(boxes, positions, path, width, height),
                      labels=labels.copy(), difficult=np.zeros(len(labels), dtype=bool), image_id=image_id,
                      path=path, crowd_boxes=self._checked_boxes(crowd_boxes, crowd_positions, path, width, height),
                      crowd_labels=crowd_labels.copy(), areas=areas.copy(), crowd_areas=crowd_areas.copy())

    def annotation(self, index: int) -> tuple[np.ndarray, np.ndarray, int, int, str]:
        """Item ``index``'s training objects and picture size, decoding no pixel.

        Returns (boxes (G, 4) float32 pixel xyxy, difficult (G,) bool, all False: COCO has no such
        flag, width, height, image_id): the boxes of ``self[index]``, the size from the picture's
        header (``image_size``: a missing, unreadable or oversized picture is a ``DataError`` naming
        the file), the boxes checked against it as ``__getitem__`` checks them (``check_pixel_box``:
        clipped within a pixel, a ``DataError`` beyond). Crowd regions are not training targets and
        are left out (unchecked: ``self[index].crowd_boxes`` checks them). ``minissd.coverage`` reads
        a dataset this way.
        """
        image_id, _, path, (boxes, labels, _, positions), _ = self._records[index]
        width, height = image_size(path)
        return (self._checked_boxes(boxes, positions, path, width, height), np.zeros(len(labels), dtype=bool),
                int(width), int(height), str(image_id))

    def __repr__(self) -> str:
        return f"COCODataset({self.annotation_file!r}, {self.image_dir!r}, {len(self)} images)"
