"""``minissd analyze``: the SSD paper's error analysis (Fig. 3 and 4, after Hoiem et al.) of weights on a dataset.

Writes into -o FOLDER: analysis.json (every number), error_types.png (per group of classes, the share of
correct detections, localisation errors, confusions with similar and other classes and background among
the top detections), size.png and aspect.png (normalised AP and recall per object-size and aspect-ratio
bin), confusion.png; prints per group the shares at N = number of objects. The rules are in
``minissd.evaluate.analysis``. Class groups: --groups FILE (JSON {"group": ["class", ...]}), else the
paper's VOC groups for VOC classes and "with corners" / "round" for the built-in shapes.
"""

from __future__ import annotations

import json
import os

from ..backend import blas_threads
from .context import apply_image_limit, resolve_device
from .datasets import dataset_kind, model_and_dataset, read_option_file
from .errors import UserError
from .options import add_dataset, add_device, positive_int
from .outputs import output_folder

OUTPUT_FILES = ("analysis.json", "error_types.png", "size.png", "aspect.png", "confusion.png")


def add(commands):
    parser = commands.add_parser(
        "analyze", help="error analysis of weights on a dataset, as the SSD paper's Fig. 3 and 4",
        description="Predict every image of a dataset split, then classify the top detections of each class "
                    "as correct, localisation error, confusion with a similar class or another class, or "
                    "background (Hoiem et al.), per group of classes; recall and AP by object size and "
                    "aspect ratio; a confusion matrix. Writes pictures and analysis.json into -o FOLDER.",
    )
    parser.add_argument("weights", help="a .npz written by training, model.save or minissd convert")
    add_dataset(parser, "test")
    parser.add_argument("--groups", metavar="FILE",
                        help='a JSON file {"group name": ["class", ...]} of similar classes (default: the '
                             "paper's VOC groups animals / vehicles / furniture for VOC classes, 'with corners' "
                             "/ 'round' for the shapes; other classes alone)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="only the first N images")
    parser.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                        help="images per forward (default 16)")
    parser.add_argument("-o", "--output", required=True, metavar="FOLDER",
                        help=f"folder for {', '.join(OUTPUT_FILES)}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device(parser)
    parser.set_defaults(run=run)
    return parser


def read_groups(path: str) -> dict:
    """{group: [class names]} from a JSON file, the shape checked (the names are checked against the data later)."""
    text = read_option_file(path, "--groups", "a JSON file")
    try:
        groups = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"--groups {path}: not valid JSON (line {error.lineno}, column {error.colno}: "
                        f"{error.msg})") from None
    if not isinstance(groups, dict) or not groups:
        raise UserError(f'--groups {path}: expected an object {{"group name": ["class", ...]}}; '
                        f"got {type(groups).__name__ if groups else 'an empty one'}")
    for group, members in groups.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise UserError(f"--groups {path}: group {group!r} must be a list of class names; got {members!r}")
    return groups


def run(args) -> int:
    from ..atomic import save_figure, write_json
    from ..evaluate.analysis import analyze_predictions, resolve_groups
    from ..evaluate.run import predict_dataset

    dataset_kind(args)
    device = resolve_device(args)
    apply_image_limit(args)
    output_folder(args.output)  # checked now, not after the whole prediction
    for name in OUTPUT_FILES:
        if os.path.isdir(os.path.join(args.output, name)):
            raise UserError(f"-o/--output {args.output}: {name} there is a folder; remove it or choose another "
                            "folder")
    groups = read_groups(args.groups) if args.groups else None
    model, dataset, mapping = model_and_dataset(args, device, "analyse")
    names = list(dataset.class_names)
    try:
        resolve_groups(names, groups)  # before the prediction: a wrong name costs nothing
    except ValueError as error:
        raise UserError(f"--groups {args.groups}: {error}" if args.groups else str(error)) from None
    with blas_threads(args.threads):
        predictions = predict_dataset(model, dataset, batch_size=args.batch_size, limit=args.limit,
                                      progress=not args.no_progress, label_map=mapping)
    analysis = analyze_predictions(predictions, names, groups=groups)
    print(f"error kinds among the top N = objects detections of each class ({len(predictions.gt_boxes)} images):")
    print(analysis.summary())
    if predictions.skipped:
        print(f"skipped {len(predictions.skipped)} picture(s) that could not be read (--skip-bad)")

    from .. import __version__

    numbers = analysis.to_dict()
    numbers.update({"weights": os.path.abspath(args.weights), "dataset": repr(dataset),
                    "images": len(predictions.gt_boxes), "skipped": len(predictions.skipped),
                    "classes_mapping": mapping.how, "groups_from": args.groups or "default",
                    "minissd_version": __version__})
    write_json(os.path.join(args.output, "analysis.json"), numbers)
    for name, figure in _figures(analysis):
        save_figure(figure, os.path.join(args.output, name), dpi=110)
    print(f"wrote {args.output}/{', '.join(OUTPUT_FILES)}")
    return 0


def _figures(analysis):
    from ..viz import (
        error_breakdown_figure,
        figure_and_axes,
        plot_confusion_matrix,
        sensitivity_figure,
    )

    yield "error_types.png", error_breakdown_figure(analysis)
    yield "size.png", sensitivity_figure(analysis, "size")
    yield "aspect.png", sensitivity_figure(analysis, "aspect")
    count = len(analysis.confusion_labels)
    figure, axes = figure_and_axes(figsize=(max(5.0, 0.45 * count + 3), max(4.0, 0.4 * count + 2)))
    plot_confusion_matrix(analysis, ax=axes[0][0])
    figure.tight_layout()
    yield "confusion.png", figure
