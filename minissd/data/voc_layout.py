"""The VOC folder layout: years, the folder of each, ImageSets lists, and finding a picture.

The VOC devkit unpacks as root/VOC<year>/{Annotations, JPEGImages,
ImageSets/Main}; a VOC-style folder of any name holds Annotations/ and
JPEGImages/ itself (``year=None``). The ``voc.py`` docstring shows the layout;
this module turns ``root``, ``year`` and ``split`` into the annotation files
to read, in order, and an image id into its picture's path.

Separate from ``voc_xml.py`` (what one annotation file says) and ``voc.py``
(the dataset): these functions read folder listings and list files only.
"""

from __future__ import annotations

import os

from .errors import DataError, MissingFileError

ALL_SPLIT = "all"  # every annotation of the folder (its ImageSets/Main/all.txt if it has one)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")  # looked for, any case


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


def annotation_entries(base: str, split) -> tuple[str, list[tuple[str, str, str]]]:
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


class ImageFolder:
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
