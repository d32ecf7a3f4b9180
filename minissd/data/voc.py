"""PASCAL VOC: the VOCdevkit layout, XML annotations, the 20 classes.

Layout (as the VOC devkit unpacks):

    root/VOC2007/Annotations/000005.xml
    root/VOC2007/JPEGImages/000005.jpg
    root/VOC2007/ImageSets/Main/trainval.txt      one image id per line

Coordinates. VOC writes pixel indices, 1-based and inclusive: an object on
the first ten columns has xmin = 1, xmax = 10. Our boxes are continuous and
0-based (that object spans x from 0 to 10), so

    x1 = xmin - 1,   y1 = ymin - 1,   x2 = xmax,   y2 = ymax.

Labels are 1..20 in the standard class order below; 0 is the background.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from .sample import (
    ConcatDataset,
    DataError,
    Sample,
    as_box_array,
    check_pixel_box,
    image_size,
    load_rgb_image,
    warn_skipped,
)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle",
    "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def _text(element, tag: str, where: str) -> str:
    found = element.find(tag)
    if found is None or found.text is None or not found.text.strip():
        raise DataError(f"{where}: missing field <{tag}>")
    return found.text.strip()


def parse_voc_xml(xml_path: str, class_names=VOC_CLASSES, keep_difficult: bool = True):
    """Read one VOC annotation file.

    Returns (filename, objects) with objects a list of
    (box [x1, y1, x2, y2] in continuous 0-based pixels, label 1..L-1,
    difficult bool, the object's index in the file), boxes not yet checked
    against the image.
    Raises ``DataError`` naming the file and the object (index and name) for
    malformed XML, a missing field, a non-numeric coordinate or an unknown
    class name.
    """
    try:
        root = ElementTree.parse(xml_path).getroot()
    except FileNotFoundError:
        raise DataError(f"{xml_path}: annotation file is missing") from None
    except ElementTree.ParseError as error:
        raise DataError(f"{xml_path}: malformed XML ({error})") from None
    filename_node = root.find("filename")
    filename = filename_node.text.strip() if filename_node is not None and filename_node.text else None
    label_of = {name: k + 1 for k, name in enumerate(class_names)}
    objects = []
    for index, node in enumerate(root.iter("object")):
        where = f"{xml_path}, object {index}"
        name = _text(node, "name", where)
        where = f"{where} '{name}'"
        if name not in label_of:
            raise DataError(f"{where}: unknown class name (expected one of {list(class_names)})")
        difficult_node = node.find("difficult")  # absent in some VOC2012 files: not difficult
        try:
            difficult = difficult_node is not None and bool(int(difficult_node.text or "0"))
        except ValueError:
            raise DataError(f"{where}: <difficult> is {difficult_node.text!r}, not 0 or 1") from None
        if difficult and not keep_difficult:
            continue
        box_node = node.find("bndbox")
        if box_node is None:
            raise DataError(f"{where}: missing field <bndbox>")
        corners = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            value = _text(box_node, tag, where)
            try:
                corners.append(float(value))
            except ValueError:
                raise DataError(f"{where}: <{tag}> is {value!r}, not a number") from None
        xmin, ymin, xmax, ymax = corners
        objects.append(([xmin - 1, ymin - 1, xmax, ymax], label_of[name], difficult, index))
    return filename, objects


class VOCDataset:
    """PASCAL VOC detection data from a VOCdevkit folder.

    root:           the folder holding VOC2007/, VOC2012/ (usually ".../VOCdevkit").
    year:           "2007", "2012", or several joined by "+", e.g. "2007+2012"
                    (the usual 07+12 training set is year="2007+2012", split="trainval").
    split:          an ImageSets/Main list: "train", "val", "trainval" or "test".
    keep_difficult: keep objects flagged difficult (True for evaluation, which
                    ignores them; SSD's training usually drops them).
    skip_bad:       skip samples with bad annotations or unreadable images
                    instead of raising; one warning reports them, ``.skipped``
                    lists (image_id, reason).
    check_images:   open every image header while indexing, so a missing or
                    unreadable image is found up front (and boxes are checked
                    against the true size); a corrupt image body is still only
                    found when the sample is read.

    Items are ``Sample``s with pixel xyxy boxes (see the module docstring for
    the 1-based -> 0-based conversion) and labels 1..20.
    """

    def __init__(self, root: str, year: str = "2007", split: str = "trainval", keep_difficult: bool = True,
                 skip_bad: bool = False, check_images: bool = True, class_names=VOC_CLASSES):
        self.root = str(root)
        self.years = [y.strip() for y in str(year).split("+") if y.strip()]
        if not self.years:
            raise ValueError(f"year must name at least one VOC year, e.g. '2007'; got {year!r}")
        self.split = split
        self.keep_difficult = keep_difficult
        self.class_names = ["background", *class_names]
        self.num_classes = len(self.class_names)
        self.skipped: list[tuple[str, str]] = []
        # (image_id, xml_path, image_path, boxes (G, 4), labels (G,), difficult (G,), object index in the file)
        self._records = []
        for one_year in self.years:
            self._index_year(one_year, skip_bad, check_images, class_names)
        warn_skipped(f"VOCDataset({self.root!r}, year={year!r}, split={split!r})", self.skipped)

    def _index_year(self, year: str, skip_bad: bool, check_images: bool, class_names) -> None:
        base = os.path.join(self.root, f"VOC{year}")
        list_path = os.path.join(base, "ImageSets", "Main", f"{self.split}.txt")
        if not os.path.isfile(list_path):
            raise FileNotFoundError(
                f"VOC split list {list_path} not found: expected the VOCdevkit layout "
                f"root/VOC{year}/ImageSets/Main/{self.split}.txt"
            )
        with open(list_path) as handle:
            image_ids = [line.split()[0] for line in handle if line.strip()]
        for image_id in image_ids:
            try:
                self._records.append(self._read_record(base, image_id, check_images, class_names))
            except DataError as error:
                if not skip_bad:
                    raise
                self.skipped.append((image_id, str(error)))

    def _read_record(self, base: str, image_id: str, check_images: bool, class_names):
        xml_path = os.path.join(base, "Annotations", f"{image_id}.xml")
        filename, objects = parse_voc_xml(xml_path, class_names, self.keep_difficult)
        image_path = os.path.join(base, "JPEGImages", filename or f"{image_id}.jpg")
        boxes = [box for box, _, _, _ in objects]
        if check_images:
            width, height = image_size(image_path)
            boxes = [
                check_pixel_box(box, width, height, f"{xml_path}, object {k} '{class_names[label - 1]}'")
                for box, label, _, k in objects
            ]
        return (
            image_id,
            xml_path,
            image_path,
            as_box_array(boxes),
            np.array([label for _, label, _, _ in objects], dtype=np.int64),
            np.array([difficult for _, _, difficult, _ in objects], dtype=bool),
            [k for _, _, _, k in objects],
        )

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> Sample:
        image_id, xml_path, image_path, boxes, labels, difficult, object_indices = self._records[index]
        image = load_rgb_image(image_path)
        height, width = image.shape[:2]
        # Checked here too: without check_images the size was unknown while indexing.
        names = self.class_names
        boxes = as_box_array([
            check_pixel_box(box, width, height, f"{xml_path}, object {k} '{names[label]}'")
            for box, label, k in zip(boxes, labels, object_indices)
        ])
        return Sample(image=image, boxes=boxes, labels=labels.copy(), difficult=difficult.copy(),
                      image_id=image_id, path=image_path)

    def __repr__(self) -> str:
        return f"VOCDataset({self.root!r}, year={'+'.join(self.years)!r}, split={self.split!r}, {len(self)} images)"


def voc_07_12(root: str, split: str = "trainval", **options) -> ConcatDataset:
    """VOC2007 + VOC2012 as a ``ConcatDataset`` (the same as ``VOCDataset(root, "2007+2012", split)``)."""
    return ConcatDataset([VOCDataset(root, "2007", split, **options), VOCDataset(root, "2012", split, **options)])
