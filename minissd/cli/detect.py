"""``minissd detect``: detections of a model on pictures and folders of pictures.

Inputs are files and folders (a folder means the pictures in it; ``--recursive``
descends). Outputs keep each input's path relative to the inputs' common folder,
so a/x.png and b/x.png never overwrite each other:

    OUT/a/x_detections.png, OUT/b/x_detections.png     (x.png and x.jpg side by side: x_png_..., x_jpg_...)
    OUT/detections.json        {"a/x.png": {"image_size": [W, H], "detections": [...]}, ...}
    --coco-results FILE        the same detections as a COCO results JSON

Pictures are read a batch at a time (``--batch-size``), turned upright by their
EXIF orientation, and the boxes are given in that displayed orientation.
"""

from __future__ import annotations

import os
import sys
import time

from ..backend import blas_threads
from .context import apply_image_limit, resolve_device
from .errors import UserError
from .options import add_device, add_max_pixels, positive_int, unit_interval
from .outputs import output_file, output_folder

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def add(commands):
    parser = commands.add_parser(
        "detect", help="detect objects in pictures or folders of pictures; writes pictures and JSON",
        description="Run a trained SSD on image files of any size and mode, or on folders of them; writes "
                    "each picture with its detections drawn and one detections.json (pixel xyxy boxes, "
                    "scores, classes), optionally a COCO results JSON.",
    )
    parser.add_argument("weights", help="a .npz written by training, model.save or minissd convert")
    parser.add_argument("images", nargs="+", help="image files and/or folders of images")
    parser.add_argument("-o", "--output", default="detections", help="output folder (default detections)")
    parser.add_argument("--recursive", "-r", action="store_true", help="look for pictures in sub-folders too")
    parser.add_argument("--threshold", type=unit_interval, default=0.5,
                        help="report detections scoring above this (default 0.5)")
    parser.add_argument("--iou-threshold", type=unit_interval, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="pictures per forward (default 8)")
    parser.add_argument("--no-pictures", action="store_true", help="write the JSON only, no pictures")
    parser.add_argument("--coco-results", metavar="FILE",
                        help="also write a COCO results JSON (image_id, category_id, bbox x, y, w, h, score)")
    parser.add_argument("--coco-annotations", metavar="FILE",
                        help="with --coco-results: an instances JSON whose file names give the image ids and "
                             "whose categories give the category ids (default: a numeric file name is the "
                             "image id, and the model's labels are the category ids)")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip pictures that cannot be read (with a warning each) instead of stopping")
    add_max_pixels(parser)
    add_device(parser)
    parser.set_defaults(run=run)
    return parser


# --------------------------------------------------------------------------
# inputs and output names
# --------------------------------------------------------------------------

def collect_images(paths, recursive: bool = False, exclude: str | None = None) -> list[str]:
    """The picture files named by ``paths`` (files as given, folders expanded, sorted); no duplicates.

    exclude: a folder whose pictures are never taken from an expanded folder (the output folder,
    so a second run does not detect the pictures the first one drew).
    """
    found, seen = [], set()
    excluded = os.path.realpath(exclude) + os.sep if exclude else None

    def take(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.append(path)

    for path in paths:
        if os.path.isdir(path):
            inside = []
            if recursive:
                for folder, subfolders, names in os.walk(path):
                    subfolders.sort()
                    inside += [os.path.join(folder, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS)]
            else:
                inside = [os.path.join(path, n) for n in os.listdir(path)
                          if n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(path, n))]
            if not inside:
                raise UserError(f"{path} is a folder without pictures ({', '.join(IMAGE_EXTENSIONS[:4])} ...)"
                                + ("" if recursive else "; --recursive looks in its sub-folders"))
            if excluded:
                inside = [p for p in inside if not os.path.realpath(p).startswith(excluded)]
            for item in sorted(inside):
                take(item)
        elif os.path.isfile(path):
            take(path)
        elif os.path.exists(path):
            raise UserError(f"{path} is neither a file nor a folder")
        else:
            raise UserError(f"image not found: {path}")
    return found


def relative_names(paths) -> list[str]:
    """Each path relative to the common folder of all of them ('/' separators): unique keys."""
    absolute = [os.path.abspath(p) for p in paths]
    folders = [os.path.dirname(p) for p in absolute]
    common = os.path.commonpath(folders) if folders else ""
    return [os.path.relpath(p, common).replace(os.sep, "/") for p in absolute]


def picture_names(names) -> list[str]:
    """'a/x.png' -> 'a/x_detections.png'; where two inputs share a stem in one folder, the extension
    joins the stem ('x_png_detections.png', 'x_jpg_detections.png'), so no two outputs collide."""
    stems = [os.path.splitext(n)[0] for n in names]
    shared = {stem for stem in stems if stems.count(stem) > 1}
    out = []
    for name, stem in zip(names, stems):
        if stem in shared:
            stem = f"{stem}_{os.path.splitext(name)[1].lstrip('.').lower()}"
        out.append(f"{stem}_detections.png")
    return out


def _coco_ids(annotation_file):
    """(file name -> image id, category name -> id) of an instances JSON."""
    from ..data.coco import load_coco_json

    data = load_coco_json(annotation_file)
    by_name = {}
    for image in data["images"]:
        name = image.get("file_name")
        if isinstance(name, str):
            by_name[name] = image.get("id")
            by_name.setdefault(os.path.basename(name), image.get("id"))
    categories = {str(c.get("name")).lower(): c.get("id") for c in data["categories"] if isinstance(c, dict)}
    return by_name, categories


# --------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------

def run(args) -> int:
    from ..atomic import save_image
    from ..detect import Detector, read_image, save_json
    from ..evaluate.coco_results import coco_entries, write_coco_results

    if args.coco_annotations and not args.coco_results:
        raise UserError("--coco-annotations only serves --coco-results; give both")
    device = resolve_device(args)
    apply_image_limit(args)
    paths = collect_images(args.images, args.recursive, exclude=args.output)
    output_folder(args.output)
    if args.coco_results:
        output_file(args.coco_results, "--coco-results", (".json",))
    detector = Detector.load(args.weights, device=device, iou_threshold=args.iou_threshold,
                             batch_size=args.batch_size)
    names = relative_names(paths)
    pictures = picture_names(names)
    image_ids, category_ids = None, None
    if args.coco_results and args.coco_annotations:
        image_ids, by_category = _coco_ids(args.coco_annotations)
        class_names = detector.class_names
        category_ids = {}
        for label, name in enumerate(class_names):
            if label and str(name).lower() in by_category:
                category_ids[label] = by_category[str(name).lower()]
    found, entries, skipped = {}, [], []
    start = time.perf_counter()
    with blas_threads(args.threads):
        for first in range(0, len(paths), args.batch_size):
            chunk = list(range(first, min(len(paths), first + args.batch_size)))
            images = []
            for k in chunk:
                try:
                    images.append((k, read_image(paths[k])))
                except ValueError as error:  # DataError: unreadable, undecodable, over the pixel limit
                    if not args.skip_bad:
                        raise
                    skipped.append(paths[k])
                    print(f"minissd detect: warning: skipped {error}", file=sys.stderr)
            if not images:
                continue
            results = detector.predict_many([picture for _, picture in images], score_threshold=args.threshold)
            for (k, picture), detections in zip(images, results):
                found[names[k]] = detections
                if not args.no_pictures:
                    target = os.path.join(args.output, pictures[k])
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    save_image(detector.draw(picture, detections, score_threshold=args.threshold), target)
                if args.coco_results:
                    entries += _entries_of(names[k], detections, image_ids, category_ids, coco_entries)
                print(f"{paths[k]}: {len(detections)} detections")
    seconds = time.perf_counter() - start
    save_json(os.path.join(args.output, "detections.json"), found)
    if args.coco_results:
        write_coco_results(args.coco_results, entries)
    count = len(found)
    print(f"wrote {'detections.json' if args.no_pictures else f'{count} pictures and detections.json'} to "
          f"{args.output}" + (f" and {args.coco_results}" if args.coco_results else "")
          + f"; {count} pictures in {seconds:.2f} s ({count / max(seconds, 1e-9):.1f} images/s)"
          + (f"; skipped {len(skipped)} unreadable" if skipped else ""))
    return 0


def _entries_of(name, detections, image_ids, category_ids, coco_entries):
    """COCO results entries of one picture (ids from the annotation file, or from the name and labels)."""
    if image_ids is not None:
        image_id = image_ids.get(name, image_ids.get(os.path.basename(name)))
        if image_id is None:
            raise UserError(f"--coco-annotations has no image with file name {name!r}")
    else:
        stem = os.path.splitext(os.path.basename(name))[0]
        image_id = int(stem) if stem.isdigit() else name
    if category_ids is not None:
        keep = [k for k, label in enumerate(detections.labels) if int(label) in category_ids]
        labels = [int(detections.labels[k]) for k in keep]
        return coco_entries(image_id, detections.boxes[keep], labels, detections.scores[keep], category_ids)
    return coco_entries(image_id, detections.boxes, detections.labels, detections.scores, lambda label: label)
