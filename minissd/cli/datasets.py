"""Datasets from the dataset options (``--dataset``, ``--data-root``, ``--year``, ``--split``, ...).

Which dataset: ``--dataset`` when given, else what the options imply
(``--data-root`` means VOC, ``--coco-annotations`` COCO), else the built-in
shapes. Options that belong to another dataset are refused rather than
ignored.

VOC comes in two layouts, both read by ``minissd.data.VOCDataset``:

- a VOCdevkit: ``ROOT/VOC2007/``, ``ROOT/VOC2012/``, each with Annotations/,
  JPEGImages/, ImageSets/Main/<split>.txt; ``--year 2007+2012`` joins years;
- one VOC-style folder of any name: ``ROOT/Annotations/``, ``ROOT/JPEGImages/``,
  optionally ``ROOT/ImageSets/Main/<split>.txt`` (``--split all``, the default
  there when no list exists, reads every annotation).

Classes: ``--class-names FILE`` (one a line); else the model's own (evaluation);
else the 20 VOC classes in a VOCdevkit, or the names found in a folder's
annotations (printed, so the user sees what was found).
"""

from __future__ import annotations

import os

from .errors import UsageError, UserError

_VOC_ONLY = ("data_root", "year", "class_names")
_COCO_ONLY = ("coco_annotations", "coco_images")
_FLAGS = {"data_root": "--data-root", "year": "--year", "class_names": "--class-names",
          "coco_annotations": "--coco-annotations", "coco_images": "--coco-images", "num_images": "--num-images"}


def dataset_kind(args) -> str:
    """'shapes', 'voc' or 'coco', refusing options of another kind."""
    kind = args.dataset
    if kind is None:
        if getattr(args, "data_root", None):
            kind = "voc"
        elif getattr(args, "coco_annotations", None) or getattr(args, "coco_images", None):
            kind = "coco"
        else:
            kind = "shapes"
    foreign = {"shapes": _VOC_ONLY + _COCO_ONLY, "voc": _COCO_ONLY + ("num_images",),
               "coco": _VOC_ONLY + ("num_images",)}[kind]
    given = [_FLAGS[name] for name in foreign if getattr(args, name, None)]
    if given:
        raise UsageError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to --dataset {kind}")
    if kind == "coco" and getattr(args, "split", None):
        raise UsageError("--split does not apply to --dataset coco: the annotation file is the split")
    args.dataset = kind
    return kind


def read_option_file(path: str, flag: str, expected: str) -> str:
    """The UTF-8 text (a byte order mark dropped) of the file an option names, or a UserError naming
    ``flag`` and ``path``: missing, a folder (``expected`` says what to give instead), not UTF-8."""
    try:
        with open(path, encoding="utf-8-sig") as stream:
            return stream.read()
    except FileNotFoundError:
        raise UserError(f"{flag} {path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{flag} {path} is a folder; give {expected}") from None
    except UnicodeDecodeError:
        raise UserError(f"{flag} {path} is not UTF-8 text") from None


def read_class_names(path: str) -> list[str]:
    """Class names from a text file: one a line; blank lines and '#' comments skipped; no background."""
    lines = read_option_file(path, "--class-names", "a text file with one class name a line").splitlines()
    names = [line.split("#", 1)[0].strip() for line in lines]
    names = [name for name in names if name]
    if names and names[0].lower() in ("background", "__background__"):
        names = names[1:]  # label 0 is always the background; a file may list it first
    if not names:
        raise UserError(f"--class-names {path} lists no class names (one name a line)")
    seen = set()
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise UserError(f"--class-names {path}: {name!r} appears twice (class {number})")
        seen.add(name)
    return names


def is_voc_folder(root: str) -> bool:
    """True for one VOC-style folder (ROOT/Annotations/), False for a VOCdevkit (ROOT/VOC2007/...)."""
    return os.path.isdir(os.path.join(root, "Annotations"))


def _voc_lists(root: str, year: str | None) -> list[str]:
    base = root if year is None else os.path.join(root, f"VOC{year}")
    folder = os.path.join(base, "ImageSets", "Main")
    try:
        return sorted(name[:-4] for name in os.listdir(folder) if name.endswith(".txt") and "_" not in name)
    except OSError:
        return []


def default_voc_split(root: str, role: str) -> str:
    """trainval / test in a VOCdevkit; in a folder the list if it exists, else 'all'."""
    wanted = "test" if role == "eval" else "trainval"
    if not is_voc_folder(root):
        return wanted
    return wanted if wanted in _voc_lists(root, None) else "all"


def voc_dataset(args, split: str, year: str | None, class_names=None, announce=print):
    """A ``VOCDataset`` from the options; class names as the module docstring says."""
    from ..data import VOCDataset
    from ..data.voc import voc_class_names

    root = args.data_root
    if not root:
        raise UserError("--dataset voc needs --data-root, the VOCdevkit folder or a VOC-style folder")
    if not os.path.isdir(root):
        raise UserError(f"--data-root {root}: {'not a folder' if os.path.exists(root) else 'no such folder'}")
    folder = is_voc_folder(root)
    if folder and args.year:
        raise UsageError(f"--year applies to a VOCdevkit (VOC2007/, VOC2012/); {root} is one VOC-style folder "
                         "(it holds Annotations/ itself)")
    if not folder:
        year = year or "2007"
    else:
        year = None
    if args.class_names:
        class_names = read_class_names(args.class_names)
    elif class_names is None and folder:
        class_names = voc_class_names(root, year=None, split=split)
        announce(f"classes read from the annotations of {root} ({len(class_names)}): {', '.join(class_names)}")
    options = {"class_names": class_names} if class_names is not None else {}
    return VOCDataset(root, year=year, split=split, skip_bad=args.skip_bad, **options)


def coco_dataset(args):
    from ..data import COCODataset

    if not (args.coco_annotations and args.coco_images):
        raise UserError("--dataset coco needs --coco-annotations FILE and --coco-images FOLDER")
    if not os.path.isdir(args.coco_images):
        raise UserError(f"--coco-images {args.coco_images}: "
                        f"{'not a folder' if os.path.exists(args.coco_images) else 'no such folder'}")
    return COCODataset(args.coco_annotations, args.coco_images, skip_bad=args.skip_bad)


def shapes_dataset(args, split: str):
    from ..data import ShapesDataset

    try:
        return ShapesDataset(split, num_images=args.num_images)
    except ValueError as error:
        raise UserError(str(error)) from None


def dataset_from_args(args, role: str, class_names=None, announce=print):
    """The dataset the options name, for ``role`` 'train' or 'eval' (which decides the default split)."""
    kind = dataset_kind(args)
    if kind == "shapes":
        return shapes_dataset(args, args.split or ("train" if role == "train" else "test"))
    if kind == "voc":
        split = args.split or (default_voc_split(args.data_root, role) if args.data_root else None)
        return voc_dataset(args, split, args.year, class_names=class_names, announce=announce)
    return coco_dataset(args)


def model_and_dataset(args, device: str, verb: str):
    """(model, dataset, label mapping) for eval and analyze: the weights, the dataset the options name
    (with the weights' class names), refused when it has no images; the mapping said when not one to one.
    ``verb`` ('evaluate', 'analyse') words the empty-dataset error."""
    from ..evaluate.labels import label_map
    from ..models import load

    model = load(args.weights, device=device)
    dataset = dataset_from_args(args, "eval", class_names=list(model.info.class_names[1:]))
    if len(dataset) == 0:
        raise UsageError(f"the dataset has no images to {verb} ({dataset!r})")
    mapping = label_map(model.info.class_names, dataset.class_names, getattr(dataset, "category_ids", None))
    if not mapping.identity:
        print(f"classes: {mapping.how}")
    return model, dataset, mapping
