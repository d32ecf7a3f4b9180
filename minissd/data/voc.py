"""PASCAL VOC: the VOCdevkit layout, VOC-style folders of any name, XML annotations, the 20 classes.

Layouts. The VOC devkit unpacks as

    root/VOC2007/Annotations/000005.xml
    root/VOC2007/JPEGImages/000005.jpg
    root/VOC2007/ImageSets/Main/trainval.txt      one image id per line

(``year="2007"``; several years joined by "+"). A folder of any name that
holds Annotations/ and JPEGImages/ itself, as annotation tools export, is
read with ``year=None``; without an ImageSets list, ``split="all"`` reads
every Annotations/*.xml in sorted order.

Coordinates. VOC writes pixel indices, 1-based and inclusive; our boxes are
continuous and 0-based: x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax
(the conversion and its example are in ``voc_xml.py``).

Labels are 1..20 in the standard class order below (or the order of the
``class_names`` given; ``voc_class_names`` lists the names a folder uses);
0 is the background.

Files: ``voc_xml.py`` reads one annotation file, ``voc_layout.py`` the
folders and image lists, and this module builds the dataset from both; their
public names are re-exported here (``from minissd.data.voc import
read_voc_annotation`` keeps working).
"""

from __future__ import annotations

import os

import numpy as np

from .sample import (
    ConcatDataset,
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
from .voc_layout import (  # noqa: F401 - parse_years ... read_image_list re-exported: they lived here
    ALL_SPLIT,
    IMAGE_SUFFIXES,
    ImageFolder,
    annotation_entries,
    parse_years,
    read_image_list,
    voc_folder,
)
from .voc_xml import MAX_SIDE, read_voc_annotation  # noqa: F401 - MAX_SIDE re-exported: it lived here

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle",
    "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def parse_voc_xml(xml_path: str, class_names=VOC_CLASSES, keep_difficult: bool = True):
    """Read one VOC annotation file: (filename, objects).

    objects: a list of (box [x1, y1, x2, y2] in continuous 0-based pixels,
    label 1..L-1, difficult bool, the object's index in the file), boxes not
    yet checked against the image. See ``read_voc_annotation`` for the checks.
    """
    label_of = {name: k + 1 for k, name in enumerate(class_names)}
    filename, _, objects = read_voc_annotation(xml_path, label_of, keep_difficult)
    return filename, [(box, label, difficult, index) for box, _, label, difficult, index in objects]


def voc_class_names(root, year=None, split=ALL_SPLIT) -> list[str]:
    """The sorted set of object names in a VOC-style folder's annotations (the same
    ``root``, ``year``, ``split`` as ``VOCDataset``); ``DataError`` for an unreadable file."""
    names = set()
    for one_year in parse_years(year):
        _, entries = annotation_entries(voc_folder(root, one_year), split)
        for _, xml_path, _ in entries:
            names.update(name for _, name, _, _, _ in read_voc_annotation(xml_path)[2])
    return sorted(names)


def _check_class_names(class_names) -> list[str]:
    if isinstance(class_names, str):
        raise TypeError(f"class_names must be a list of names, not the string {class_names!r}")
    names = list(class_names)
    if not names:
        raise ValueError("class_names is empty: a detector needs at least one class")
    for position, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"class_names[{position}] = {name!r} is not a non-empty string")
        if name in names[:position]:
            raise ValueError(f"class_names[{position}] = {name!r} is given twice")
    return names


# --------------------------------------------------------------------------
# the dataset
# --------------------------------------------------------------------------

class VOCDataset:
    """PASCAL VOC detection data from a VOCdevkit folder or a VOC-style folder of any name.

    root:           the folder holding VOC2007/, VOC2012/ (usually ".../VOCdevkit"),
                    or, with year None, a folder holding Annotations/ and JPEGImages/ itself.
    year:           "2007", "2012", or several joined by "+", e.g. "2007+2012"
                    (the usual 07+12 training set is year="2007+2012", split="trainval");
                    a year given twice is an error. None or "": root itself.
    split:          an ImageSets/Main list: "train", "val", "trainval" or "test";
                    "all" or None: ImageSets/Main/all.txt if present, else every
                    Annotations/*.xml in sorted order.
    keep_difficult: keep objects flagged difficult (True for evaluation, which
                    ignores them; to leave them out of training targets only,
                    use ``DataLoader(drop_difficult=True)``).
    skip_bad:       skip samples with bad annotations or unreadable images
                    instead of raising; one warning reports them, ``.skipped``
                    lists (image_id, reason). Also read by ``read_sample`` and
                    the ``DataLoader``, which skip a sample whose image fails
                    to decode when it is read.
    check_images:   open every image header while indexing, so a missing or
                    unreadable image is found up front (and boxes are checked
                    against the true size); a corrupt image body is still only
                    found when the sample is read. Without it, boxes are checked
                    against the XML's <size> where it gives one.
    class_names:    the object names, in label order (label k is class_names[k - 1]).

    An image id listed twice in a list file is an error naming both lines
    (with ``skip_bad`` the repeat is skipped): it would be trained on twice
    and counted twice by the evaluation. The picture of an image id is
    JPEGImages/<filename> from its XML, else JPEGImages/<id>.jpg (or .jpeg,
    .png, ... in any case). Pictures keep their stored orientation: VOC's
    boxes refer to the stored pixels, not to an EXIF-turned view.

    Items are ``Sample``s with pixel xyxy boxes (see the module docstring for
    the 1-based -> 0-based conversion) and labels 1..L-1.
    """

    def __init__(self, root, year: str | None = "2007", split: str | None = "trainval",
                 keep_difficult: bool = True, skip_bad: bool = False, check_images: bool = True,
                 class_names=VOC_CLASSES):
        self.root = str(root)
        self.years = parse_years(year)
        self.split = split
        self.keep_difficult = bool(keep_difficult)
        self.skip_bad = bool(skip_bad)
        names = _check_class_names(class_names)
        self.class_names = ["background", *names]
        self.num_classes = len(self.class_names)
        self.skipped: list[tuple[str, str]] = []
        # (image_id, xml_path, image_path, boxes (G, 4), labels (G,), difficult (G,), object index in the file)
        self._records = []
        label_of = {name: k + 1 for k, name in enumerate(names)}
        for one_year in self.years:
            self._index_folder(voc_folder(self.root, one_year), label_of, check_images)
        warn_skipped(repr(self), self.skipped)
        check_not_empty(repr(self), len(self._records), self.skipped)

    def _index_folder(self, base: str, label_of: dict, check_images: bool) -> None:
        _, entries = annotation_entries(base, self.split)
        images = ImageFolder(os.path.join(base, "JPEGImages"))
        first_seen: dict[str, str] = {}
        for image_id, xml_path, listed_at in entries:
            try:
                if image_id in first_seen:
                    raise DataError(
                        f"{listed_at}: image id {image_id!r} is listed twice (first at {first_seen[image_id]}); "
                        "list each image once (a repeat would be trained on twice and counted twice)"
                    )
                first_seen[image_id] = listed_at
                self._records.append(self._read_record(image_id, xml_path, images, label_of, check_images))
            except DataError as error:
                if not self.skip_bad:
                    raise
                self.skipped.append((image_id, str(error)))

    def _read_record(self, image_id: str, xml_path: str, images: ImageFolder, label_of: dict,
                     check_images: bool):
        filename, size, objects = read_voc_annotation(xml_path, label_of, self.keep_difficult)
        image_path = images.find(image_id, filename)
        if image_path is None:
            image_path = os.path.join(images.folder, filename or f"{image_id}.jpg")
            if check_images:
                raise MissingFileError(f"image not found: {image_path} (nor any {image_id}.jpg, .png, ... "
                                       "beside it)")
        width, height = image_size(image_path) if check_images else (size or (None, None))
        source = " (size from <size>)" if not check_images and size else ""
        boxes = [check_pixel_box(box, width, height, f"{xml_path}, object {k} '{name}'{source}")
                 for box, name, _, _, k in objects]
        return (
            image_id,
            xml_path,
            image_path,
            as_box_array(boxes),
            np.array([label for _, _, label, _, _ in objects], dtype=np.int64),
            np.array([difficult for _, _, _, difficult, _ in objects], dtype=bool),
            [k for _, _, _, _, k in objects],
        )

    def __len__(self) -> int:
        return len(self._records)

    def _checked_boxes(self, record, width: int, height: int) -> np.ndarray:
        """A record's boxes checked against the picture's true ``width`` x ``height`` -> (G, 4) float32.

        Checked when an item is read too: without check_images the size was unknown (or the XML's)
        while indexing.
        """
        _, xml_path, _, boxes, labels, _, object_indices = record
        names = self.class_names
        return as_box_array([
            check_pixel_box(box, width, height, f"{xml_path}, object {k} '{names[label]}'")
            for box, label, k in zip(boxes, labels, object_indices)
        ])

    def __getitem__(self, index: int) -> Sample:
        record = self._records[index]
        image_id, _, image_path, _, labels, difficult, _ = record
        image = load_rgb_image(image_path)  # stored orientation: the boxes refer to the stored pixels
        height, width = image.shape[:2]
        return Sample(image=image, boxes=self._checked_boxes(record, width, height), labels=labels.copy(),
                      difficult=difficult.copy(), image_id=image_id, path=image_path)

    def annotation(self, index: int) -> tuple[np.ndarray, np.ndarray, int, int, str]:
        """Item ``index``'s objects and picture size, decoding no pixel.

        Returns (boxes (G, 4) float32 pixel xyxy, difficult (G,) bool, width, height, image_id):
        the boxes and flags of ``self[index]``, the size from the picture's header (``image_size``:
        a missing, unreadable or oversized picture is a ``DataError`` naming the file), the boxes
        checked against it as ``__getitem__`` checks them (``check_pixel_box``: clipped within a
        pixel, a ``DataError`` beyond). ``minissd.coverage`` reads a dataset this way.
        """
        record = self._records[index]
        image_id, _, image_path, _, _, difficult, _ = record
        width, height = image_size(image_path)
        return (self._checked_boxes(record, width, height), difficult.copy(), int(width), int(height),
                str(image_id))

    def __repr__(self) -> str:
        year = "+".join(y for y in self.years if y) or None
        count = f", {len(self._records)} images" if hasattr(self, "_records") else ""
        return f"VOCDataset({self.root!r}, year={year!r}, split={self.split!r}{count})"


def voc_07_12(root: str, split: str = "trainval", **options) -> ConcatDataset:
    """VOC2007 + VOC2012 as a ``ConcatDataset`` (the same as ``VOCDataset(root, "2007+2012", split)``)."""
    return ConcatDataset([VOCDataset(root, "2007", split, **options), VOCDataset(root, "2012", split, **options)])
