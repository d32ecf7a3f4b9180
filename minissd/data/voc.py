"""PASCAL VOC: the VOCdevkit layout, VOC-style folders of any name, XML annotations, the 20 classes.

Layouts. The VOC devkit unpacks as

    root/VOC2007/Annotations/000005.xml
    root/VOC2007/JPEGImages/000005.jpg
    root/VOC2007/ImageSets/Main/trainval.txt      one image id per line

(``year="2007"``; several years joined by "+"). A folder of any name that
holds Annotations/ and JPEGImages/ itself, as annotation tools export, is
read with ``year=None``; without an ImageSets list, ``split="all"`` reads
every Annotations/*.xml in sorted order.

Coordinates. VOC writes pixel indices, 1-based and inclusive: an object on
the first ten columns has xmin = 1, xmax = 10. Our boxes are continuous and
0-based (that object spans x from 0 to 10), so

    x1 = xmin - 1,   y1 = ymin - 1,   x2 = xmax,   y2 = ymax.

Labels are 1..20 in the standard class order below (or the order of the
``class_names`` given; ``voc_class_names`` lists the names a folder uses);
0 is the background.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree

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

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle",
    "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

ALL_SPLIT = "all"  # every annotation of the folder (its ImageSets/Main/all.txt if it has one)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")  # looked for, any case
MAX_SIDE = 1_000_000  # a <size> side beyond this is a typo, not a picture
_UTF8_BOM = b"\xef\xbb\xbf"


# --------------------------------------------------------------------------
# one annotation file
# --------------------------------------------------------------------------

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


def parse_voc_xml(xml_path: str, class_names=VOC_CLASSES, keep_difficult: bool = True):
    """Read one VOC annotation file: (filename, objects).

    objects: a list of (box [x1, y1, x2, y2] in continuous 0-based pixels,
    label 1..L-1, difficult bool, the object's index in the file), boxes not
    yet checked against the image. See ``read_voc_annotation`` for the checks.
    """
    label_of = {name: k + 1 for k, name in enumerate(class_names)}
    filename, _, objects = read_voc_annotation(xml_path, label_of, keep_difficult)
    return filename, [(box, label, difficult, index) for box, _, label, difficult, index in objects]


# --------------------------------------------------------------------------
# folders and image lists
# --------------------------------------------------------------------------

def parse_years(year) -> list[str | None]:
    """"2007+2012" -> ["2007", "2012"]; None or "" -> [None] (root is the VOC-style folder itself)."""
    if year is None:
        return [None]
    if not isinstance(year, (str, int)) or isinstance(year, bool):
        raise TypeError(f"year must be a string such as '2007' or '2007+2012', or None; got {year!r}")
    text = str(year).strip()
    if not text:
        return [None]
    years = [part.strip() for part in text.split("+")]
    seen = set()
    for part in years:
        if not part:
            raise ValueError(f"year {year!r} has an empty part; write e.g. '2007+2012'")
        if part in seen:
            raise ValueError(f"year {part} is given twice in {year!r}: every image of it would be read twice")
        seen.add(part)
    return years


def voc_folder(root: str, year: str | None) -> str:
    """The folder holding Annotations/ and JPEGImages/: root/VOC<year>, or root itself for year None."""
    root = str(root)
    if not os.path.isdir(root):
        raise MissingFileError(f"VOC root folder {root} not found")
    if year is None:
        if not os.path.isdir(os.path.join(root, "Annotations")):
            found = sorted(name for name in os.listdir(root) if name.startswith("VOC"))
            hint = f"; it holds {', '.join(found)}: give the year, e.g. year={found[0][3:]!r}" if found else ""
            raise MissingFileError(
                f"{root} is not a VOC-style folder: with no year, the folder itself must hold "
                f"Annotations/ and JPEGImages/{hint}"
            )
        return root
    base = os.path.join(root, f"VOC{year}")
    if not os.path.isdir(base):
        hint = ""
        if os.path.isdir(os.path.join(root, "Annotations")):
            hint = "; the folder itself holds Annotations/: read it as a VOC-style folder with year=None"
        elif os.path.isdir(os.path.join(root, "VOCdevkit")):
            hint = f"; did you mean root={os.path.join(root, 'VOCdevkit')!r}?"
        raise MissingFileError(f"VOC folder {base} not found: expected the VOCdevkit layout "
                               f"root/VOC{year}/Annotations, JPEGImages, ImageSets{hint}")
    return base


def read_image_list(list_path: str) -> list[tuple[str, int]]:
    """An ImageSets list -> [(image_id, line number)]: the first word of each non-blank line.

    Byte order marks (at the start, or where files were joined) are ignored.
    ``DataError`` naming the file when it cannot be read or lists nothing.
    """
    if os.path.isdir(list_path):
        raise DataError(f"{list_path} is a folder, not an image list")
    try:
        with open(list_path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError as error:
        raise DataError(f"{list_path}: image list is not UTF-8 text ({error})") from None
    except OSError as error:
        raise DataError(f"{list_path}: image list cannot be read ({error})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.replace("\ufeff", " ").split()
        if words:
            entries.append((words[0], number))
    if not entries:
        raise DataError(f"{list_path} lists no images (the file is empty): "
                        "expected one image id per line, e.g. 000005")
    return entries


def _annotation_entries(base: str, split) -> tuple[str, list[tuple[str, str, str]]]:
    """(source, [(image_id, xml path, where it is listed)]) for one folder and split.

    A named split reads ImageSets/Main/<split>.txt; "all" or None reads
    ImageSets/Main/all.txt when there is one, else every Annotations/*.xml
    (hidden files such as macOS's "._000005.xml" left out) in sorted order.
    """
    annotations = os.path.join(base, "Annotations")
    name = ALL_SPLIT if split is None else str(split)
    list_path = os.path.join(base, "ImageSets", "Main", f"{name}.txt")
    if os.path.isfile(list_path) or name != ALL_SPLIT:
        if not os.path.exists(list_path):
            raise MissingFileError(
                f"VOC split list {list_path} not found: expected one image id per line in "
                f"ImageSets/Main/{name}.txt (split='all' reads every annotation of a folder without lists)"
            )
        entries = read_image_list(list_path)
        return list_path, [(image_id, os.path.join(annotations, f"{image_id}.xml"), f"{list_path}, line {line}")
                           for image_id, line in entries]
    if not os.path.isdir(annotations):
        raise MissingFileError(f"{annotations} not found: a VOC-style folder keeps its XML files in Annotations/")
    files = sorted(entry for entry in os.listdir(annotations)
                   if entry.lower().endswith(".xml") and not entry.startswith("."))
    if not files:
        raise DataError(f"{annotations} holds no .xml annotation files")
    paths = [os.path.join(annotations, entry) for entry in files]
    return annotations, [(os.path.splitext(entry)[0], path, path) for entry, path in zip(files, paths)]


def voc_class_names(root, year=None, split=ALL_SPLIT) -> list[str]:
    """The sorted set of object names in a VOC-style folder's annotations (the same
    ``root``, ``year``, ``split`` as ``VOCDataset``); ``DataError`` for an unreadable file."""
    names = set()
    for one_year in parse_years(year):
        _, entries = _annotation_entries(voc_folder(root, one_year), split)
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


class _ImageFolder:
    """JPEGImages/ listed once: a file name -> its path, matching the name's case loosely."""

    def __init__(self, folder: str):
        self.folder = folder
        if not os.path.isdir(folder):
            raise MissingFileError(f"{folder} not found: a VOC-style folder keeps its pictures in JPEGImages/")
        self.by_lower = {}
        for entry in sorted(os.listdir(folder)):
            self.by_lower.setdefault(entry.lower(), entry)

    def find(self, image_id: str, filename: str | None) -> str | None:
        """The picture of ``image_id``: <filename> as written (its case loosely, or its last part
        when it carries a folder), else <image_id> with a picture suffix; None when none exists."""
        candidates = []
        if filename:
            last = filename.replace("\\", "/").rsplit("/", 1)[-1]
            candidates += [filename, last]
            if not os.path.splitext(last)[1]:
                candidates += [last + suffix for suffix in IMAGE_SUFFIXES]
        candidates += [image_id + suffix for suffix in IMAGE_SUFFIXES]
        for candidate in candidates:
            if os.path.isfile(os.path.join(self.folder, candidate)):
                return os.path.join(self.folder, candidate)
            found = self.by_lower.get(candidate.lower())
            if found is not None:
                return os.path.join(self.folder, found)
        return None


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
        _, entries = _annotation_entries(base, self.split)
        images = _ImageFolder(os.path.join(base, "JPEGImages"))
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

    def _read_record(self, image_id: str, xml_path: str, images: _ImageFolder, label_of: dict,
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

    def __getitem__(self, index: int) -> Sample:
        image_id, xml_path, image_path, boxes, labels, difficult, object_indices = self._records[index]
        image = load_rgb_image(image_path)  # stored orientation: the boxes refer to the stored pixels
        height, width = image.shape[:2]
        # Checked here too: without check_images the size was unknown (or the XML's) while indexing.
        names = self.class_names
        boxes = as_box_array([
            check_pixel_box(box, width, height, f"{xml_path}, object {k} '{names[label]}'")
            for box, label, k in zip(boxes, labels, object_indices)
        ])
        return Sample(image=image, boxes=boxes, labels=labels.copy(), difficult=difficult.copy(),
                      image_id=image_id, path=image_path)

    def __repr__(self) -> str:
        year = "+".join(y for y in self.years if y) or None
        count = f", {len(self._records)} images" if hasattr(self, "_records") else ""
        return f"VOCDataset({self.root!r}, year={year!r}, split={self.split!r}{count})"


def voc_07_12(root: str, split: str = "trainval", **options) -> ConcatDataset:
    """VOC2007 + VOC2012 as a ``ConcatDataset`` (the same as ``VOCDataset(root, "2007+2012", split)``)."""
    return ConcatDataset([VOCDataset(root, "2007", split, **options), VOCDataset(root, "2012", split, **options)])
