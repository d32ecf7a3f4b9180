"""``minissd eval``: AP per class and mAP of weights on a dataset; COCO results JSON."""

from __future__ import annotations

import os

from ..backend import blas_threads
from .context import apply_image_limit, resolve_device
from .datasets import dataset_kind, model_and_dataset
from .errors import UsageError
from .options import add_dataset, add_device, positive_int
from .outputs import output_file, output_folder


def add(commands):
    parser = commands.add_parser(
        "eval", help="evaluate weights on a dataset (VOC or COCO-style AP); COCO results JSON",
        description="Predict every image of a dataset split and report AP per class and mAP. The model's "
                    "classes are matched to the dataset's (the same, COCO category ids as torchvision's "
                    "91 slots, or by name); a model of other classes is refused.",
    )
    parser.add_argument("weights", help="a .npz written by training, model.save or minissd convert")
    add_dataset(parser, "test")
    parser.add_argument("--metric", choices=("voc", "coco"), default="voc", help="VOC AP@0.5 or COCO AP@[.5:.95]")
    parser.add_argument("--use-07-metric", action="store_true", help="VOC2007 11-point interpolation")
    parser.add_argument("--limit", type=positive_int, help="only the first N images")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="images per forward (default 16)")
    parser.add_argument("-o", "--output", help="folder for report.json and pr_curves.png")
    parser.add_argument("--coco-results", metavar="FILE",
                        help="coco: also write the detections as a COCO results JSON (image_id, category_id, "
                             "bbox as x, y, w, h, score), as pycocotools' loadRes reads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device(parser)
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..atomic import save_figure, write_json
    from ..evaluate.coco_results import predictions_to_coco, write_coco_results
    from ..evaluate.report import result_table, result_to_dict
    from ..evaluate.run import predict_dataset, score

    kind = dataset_kind(args)
    if args.coco_results and kind != "coco":
        raise UsageError("--coco-results needs --dataset coco (the image and category ids come from its JSON)")
    device = resolve_device(args)
    apply_image_limit(args)
    if args.output:  # checked now, not after the whole evaluation
        output_folder(args.output)
    if args.coco_results:
        output_file(args.coco_results, "--coco-results", (".json",))
    model, dataset, mapping = model_and_dataset(args, device, "evaluate")
    with blas_threads(args.threads):
        predictions = predict_dataset(model, dataset, batch_size=args.batch_size, limit=args.limit,
                                      progress=not args.no_progress, label_map=mapping)
    result = score(predictions, args.metric, use_07_metric=args.use_07_metric)
    names = dataset.class_names
    print(result_table(result, names))
    if predictions.skipped:
        print(f"skipped {len(predictions.skipped)} picture(s) that could not be read (--skip-bad)")
    if args.coco_results:
        write_coco_results(args.coco_results, predictions_to_coco(predictions, dataset))
        print(f"wrote {args.coco_results} ({sum(len(s) for s in predictions.scores)} detections)")
    if args.output:
        from .. import __version__

        numbers = result_to_dict(result, names)
        numbers.update({"weights": os.path.abspath(args.weights), "dataset": repr(dataset),
                        "images": len(predictions.gt_boxes), "skipped": len(predictions.skipped),
                        "classes": mapping.how, "minissd_version": __version__})
        write_json(os.path.join(args.output, "report.json"), numbers)
        save_figure(_pr_figure(result, names), os.path.join(args.output, "pr_curves.png"), dpi=110)
        print(f"wrote {args.output}/report.json and pr_curves.png")
    return 0


def _pr_figure(result, class_names):
    from ..viz import figure_and_axes, plot_pr_curves

    figure, axes = figure_and_axes(figsize=(6, 5))
    plot_pr_curves(result, class_names=class_names, ax=axes[0][0])
    figure.tight_layout()
    return figure
