"""The ``minissd`` command (also ``python -m minissd``).

Each sub-command is a small function; heavy imports happen inside it so
``minissd --help`` is instant. Errors a user can fix (bad arguments, missing
files, no GPU) print one line to stderr and exit with status 2 (usage) or 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .backend import blas_threads


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


# --------------------------------------------------------------------------
# minissd boxes
# --------------------------------------------------------------------------

def _add_boxes(commands):
    parser = commands.add_parser(
        "boxes",
        help="draw the default boxes of a preset or of chosen feature-map sizes",
        description=(
            "Draw SSD's default boxes. Either give feature-map sizes (the paper's scale formula "
            "is used, e.g. 8 4 for Figure 1 of the paper) or a preset; optionally over an image."
        ),
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--feature-maps", "-f", type=_positive_int, nargs="+", metavar="SIZE",
                       help="feature-map sides, e.g. 8 4 (default: 8 4)")
    from .priors import PRESETS

    group.add_argument("--preset", "-p", choices=sorted(PRESETS), help="a default-box preset")
    parser.add_argument("--image", "-i", help="draw over this image (resized to the input size)")
    parser.add_argument("--cells", "-c", nargs="+", metavar="ROW,COL",
                        help="cells whose boxes to draw (default: the centre cell of each map)")
    parser.add_argument("--s-min", type=float, default=0.2, help="s_min of the scale formula (default 0.2)")
    parser.add_argument("--s-max", type=float, default=0.5,
                        help="s_max of the scale formula (default 0.5, which suits two maps; "
                             "the paper uses 0.9 over six)")
    parser.add_argument("--list", action="store_true", help="print the presets as tables and exit")
    parser.add_argument("-o", "--output", default="default_boxes.png", help="output picture (default default_boxes.png)")
    parser.set_defaults(run=_run_boxes)


def _parse_cells(values):
    if not values:
        return None
    cells = []
    for value in values:
        try:
            row, column = (int(v) for v in value.split(","))
        except ValueError:
            raise UserError(f"--cells takes ROW,COL pairs such as 3,4; got {value!r}") from None
        cells.append((row, column))
    return cells


def _run_boxes(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from . import priors
    from .viz import default_boxes_figure

    if args.list:
        for name in priors.PRESETS:
            print(priors.describe(name), end="\n\n")
        return 0
    image = None
    size = priors.get_config(args.preset).image_size if args.preset else 300
    if args.image:
        image = _read_image(args.image, size)
    cells = _parse_cells(args.cells)
    try:
        figure = default_boxes_figure(
            feature_maps=tuple(args.feature_maps or (8, 4)), preset=args.preset,
            image=image, cells=cells, s_min=args.s_min, s_max=args.s_max,
        )
    except (IndexError, ValueError) as error:
        raise UserError(str(error)) from None
    _save_figure(figure, args.output)
    print(f"wrote {args.output}")
    return 0


def _read_image(path: str, size: int):
    import numpy as np
    from PIL import Image

    from .detect import read_image

    try:
        picture = read_image(path)  # RGB from any mode; names the file when it is missing or unreadable
    except (FileNotFoundError, ValueError) as error:
        raise UserError(str(error)) from None
    return np.asarray(Image.fromarray(picture).resize((size, size), Image.BILINEAR))


def _save_figure(figure, path: str) -> None:
    import os

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"output folder does not exist: {directory}")
    figure.savefig(path, dpi=110, bbox_inches="tight")


# --------------------------------------------------------------------------
# shared options: device, datasets, models
# --------------------------------------------------------------------------

def _add_device(parser):
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None,
                        help="where the model runs (default: $MINISSD_DEVICE or cpu)")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="BLAS threads on the CPU (default: the library's own choice)")


def _resolve_device(args) -> str:
    from . import backend

    try:
        return backend.resolve_device(args.device)
    except backend.DeviceUnavailableError as error:
        raise UserError(str(error)) from None
    except ValueError as error:
        raise UserError(str(error)) from None


def _add_dataset(parser, default_split: str):
    group = parser.add_argument_group("dataset")
    group.add_argument("--dataset", choices=("shapes", "voc", "coco"), default="shapes",
                       help="shapes (built in, no download), voc or coco (default: shapes)")
    group.add_argument("--split", default=default_split,
                       help=f"shapes: train/val/test; voc: an ImageSets/Main list such as trainval or test "
                            f"(default: {default_split})")
    group.add_argument("--data-root", help="voc: the VOCdevkit folder (holding VOC2007/, VOC2012/)")
    group.add_argument("--year", default="2007", help="voc: 2007, 2012 or 2007+2012 (default 2007)")
    group.add_argument("--coco-annotations", help="coco: the instances_*.json file")
    group.add_argument("--coco-images", help="coco: the folder of the images it names")
    group.add_argument("--num-images", type=_positive_int, help="shapes: images in the split (default: the split's size)")
    group.add_argument("--skip-bad", action="store_true",
                       help="skip unreadable or invalid samples with a warning instead of stopping")


def _dataset_from_args(args, split: str | None = None):
    from .data import COCODataset, ShapesDataset, VOCDataset

    split = split or args.split
    if args.dataset == "shapes":
        try:
            return ShapesDataset(split, num_images=args.num_images)
        except ValueError as error:
            raise UserError(str(error)) from None
    if args.dataset == "voc":
        if not args.data_root:
            raise UserError("--dataset voc needs --data-root, the VOCdevkit folder")
        return VOCDataset(args.data_root, year=args.year, split=split, skip_bad=args.skip_bad)
    if not (args.coco_annotations and args.coco_images):
        raise UserError("--dataset coco needs --coco-annotations FILE and --coco-images FOLDER")
    return COCODataset(args.coco_annotations, args.coco_images, skip_bad=args.skip_bad)


# --------------------------------------------------------------------------
# minissd demo
# --------------------------------------------------------------------------

def _add_demo(commands):
    parser = commands.add_parser(
        "demo",
        help="the main job: make the shapes dataset, train the tiny SSD, evaluate, write a report",
        description=(
            "Make the built-in shapes dataset, train the tiny SSD on it, evaluate VOC mAP on the "
            "held-out test split, and write a report (mAP per class), the loss curve, PR curves "
            "and pictures of detections to the output folder."
        ),
    )
    parser.add_argument("-o", "--output", default="minissd-demo", help="output folder (default minissd-demo)")
    parser.add_argument("--fast", action="store_true",
                        help="a few iterations only, to check the pipeline (also: MINISSD_FAST=1)")
    parser.add_argument("--iterations", type=_positive_int, help="training iterations (default: the demo recipe)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data order and the weights (default 0)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                        help="adam (the demo's recipe, lr 3e-3) or sgd (SSD's, momentum 0.9, lr 0.05, decay 5e-4)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_device(parser)
    parser.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    import os

    from .demo import DemoRecipe, run_demo

    device = _resolve_device(args)
    fast = args.fast or os.environ.get("MINISSD_FAST", "") not in ("", "0")
    recipe = DemoRecipe.fast() if fast else DemoRecipe()
    if args.optimizer == "sgd":
        recipe.optimizer, recipe.lr, recipe.weight_decay = "sgd", 0.05, 5e-4
    report = run_demo(args.output, device=device, iterations=args.iterations, seed=args.seed,
                      progress=not args.no_progress, threads=args.threads, recipe=recipe)
    print(report.summary())
    return 0


# --------------------------------------------------------------------------
# minissd train
# --------------------------------------------------------------------------

def _add_train(commands):
    parser = commands.add_parser(
        "train", help="train an SSD on shapes, VOC or COCO",
        description="Train an SSD with SGD (momentum 0.9, weight decay 5e-4), warmup and multistep "
                    "decay; checkpoints are written atomically and --resume continues exactly.",
    )
    _add_dataset(parser, "train")
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=("tiny", "ssd300", "ssd512"), default="tiny", help="network (default tiny)")
    model.add_argument("--preset", help="default-box preset (default: the model's own)")
    model.add_argument("--weights", help="start from these weights (.npz) instead of random ones")
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--iterations", type=_positive_int, default=1000, help="iterations (default 1000)")
    recipe.add_argument("--batch-size", type=_positive_int, default=32, help="images per iteration (default 32)")
    recipe.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                        help="sgd (SSD's recipe, the default) or adam (AdamW)")
    recipe.add_argument("--lr", type=float, default=None,
                        help="base learning rate (default: sgd 0.05 tiny, 1e-3 SSD300/512; adam 3e-3)")
    recipe.add_argument("--weight-decay", type=float, default=None, help="weight decay (default: sgd 5e-4, adam 1e-4)")
    recipe.add_argument("--milestones", type=int, nargs="*", default=None,
                        help="iterations where lr is multiplied by 0.1 (default: 2/3 and 5/6 of the run)")
    recipe.add_argument("--warmup", type=int, default=None, help="linear warmup iterations (default min(500, 5%%))")
    recipe.add_argument("--caffe-bias", action="store_true", help="Caffe's biases: lr x 2, no weight decay")
    recipe.add_argument("--no-augment", action="store_true", help="no SSD augmentation (resize only)")
    recipe.add_argument("--seed", type=int, default=0, help="seed of data order, augmentation and weights")
    run = parser.add_argument_group("run")
    run.add_argument("-o", "--output", default="minissd-run", help="output folder (default minissd-run)")
    run.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint.npz")
    run.add_argument("--eval-every", type=int, default=0, help="validation mAP every N iterations (0: at the end)")
    run.add_argument("--val-split", default=None, help="split for validation (shapes: val; voc: test)")
    run.add_argument("--checkpoint-every", type=_positive_int, default=200, help="checkpoint interval (default 200)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_device(parser)
    parser.set_defaults(run=_run_train)


def _default_recipe(args):
    iterations = args.iterations
    if args.optimizer == "adam":
        lr = args.lr if args.lr is not None else 3e-3
    else:
        lr = args.lr if args.lr is not None else (0.05 if args.model == "tiny" else 1e-3)
    milestones = args.milestones if args.milestones is not None else [iterations * 2 // 3, iterations * 5 // 6]
    warmup = args.warmup if args.warmup is not None else min(500, max(1, iterations // 20))
    return lr, milestones, warmup


def _run_train(args) -> int:
    import os

    from . import models
    from .train import TrainConfig, TrainingDiverged, train

    device = _resolve_device(args)
    dataset = _dataset_from_args(args)
    val_split = args.val_split or {"shapes": "val", "voc": "test", "coco": None}[args.dataset]
    val_dataset = _dataset_from_args(args, val_split) if (val_split and args.dataset != "coco") else None
    lr, milestones, warmup = _default_recipe(args)
    config = TrainConfig(
        iterations=args.iterations, batch_size=args.batch_size, lr=lr, milestones=tuple(milestones),
        optimizer=args.optimizer,
        weight_decay=args.weight_decay if args.weight_decay is not None else (1e-4 if args.optimizer == "adam" else 5e-4),
        warmup_iterations=warmup, bias_lr_factor=2.0 if args.caffe_bias else 1.0, bias_decay=not args.caffe_bias,
        seed=args.seed, augment=not args.no_augment, eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
    )
    checkpoint = os.path.join(args.output, "checkpoint.npz")
    if not args.resume and os.path.exists(checkpoint):
        raise UserError(f"{checkpoint} exists: pass --resume to continue it, or choose another --output")
    if args.weights:
        model = models.load(args.weights, device="cpu")
    else:
        builder = {"tiny": models.tiny_ssd, "ssd300": models.ssd300, "ssd512": models.ssd512}[args.model]
        options = {"preset": args.preset} if args.preset else {}
        model = builder(num_classes=dataset.num_classes, class_names=dataset.class_names, seed=args.seed, **options)
    if model.num_classes != dataset.num_classes:
        raise UserError(f"the weights have {model.num_classes} classes, the dataset {dataset.num_classes}")
    model.to(device)
    print(f"training {model} on {len(dataset)} images ({args.dataset}) on the {device}; output in {args.output}")
    try:
        with blas_threads(args.threads):
            state = train(model, dataset, config, args.output, val_dataset=val_dataset, resume=args.resume,
                          progress=not args.no_progress)
    except TrainingDiverged as error:
        raise UserError(str(error)) from None
    last = state.evaluations[-1]["mAP"] if state.evaluations else float("nan")
    print(f"done: {state.iteration} iterations in {state.elapsed_s:.0f} s; validation mAP {last:.4f}; "
          f"weights in {os.path.join(args.output, 'model.npz')}")
    return 0


# --------------------------------------------------------------------------
# minissd eval
# --------------------------------------------------------------------------

def _add_eval(commands):
    parser = commands.add_parser(
        "eval", help="evaluate weights on a dataset (VOC or COCO-style AP)",
        description="Predict every image of a dataset split and report AP per class and mAP.",
    )
    parser.add_argument("weights", help="a .npz written by training or model.save")
    _add_dataset(parser, "test")
    parser.add_argument("--metric", choices=("voc", "coco"), default="voc", help="VOC AP@0.5 or COCO AP@[.5:.95]")
    parser.add_argument("--use-07-metric", action="store_true", help="VOC2007 11-point interpolation")
    parser.add_argument("--limit", type=_positive_int, help="only the first N images")
    parser.add_argument("--batch-size", type=_positive_int, default=16, help="images per forward (default 16)")
    parser.add_argument("-o", "--output", help="folder for report.json and pr_curves.png")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_device(parser)
    parser.set_defaults(run=_run_eval)


def _run_eval(args) -> int:
    import json
    import os

    from .evaluate.report import result_table, result_to_dict
    from .evaluate.run import evaluate_model
    from .models import load

    device = _resolve_device(args)
    model = load(args.weights, device=device)
    dataset = _dataset_from_args(args)
    if dataset.num_classes != model.num_classes:
        raise UserError(f"{args.weights} predicts {model.num_classes} classes; the dataset has {dataset.num_classes}")
    with blas_threads(args.threads):
        result, _ = evaluate_model(model, dataset, metric=args.metric, use_07_metric=args.use_07_metric,
                                   batch_size=args.batch_size, limit=args.limit, progress=not args.no_progress)
    print(result_table(result, model.info.class_names))
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "report.json"), "w", encoding="utf-8") as stream:
            json.dump(result_to_dict(result, model.info.class_names), stream, indent=1)
        _save_pr_curves(result, model.info.class_names, os.path.join(args.output, "pr_curves.png"))
        print(f"wrote {args.output}/report.json and pr_curves.png")
    return 0


def _save_pr_curves(result, class_names, path):
    from .viz import figure_and_axes, plot_pr_curves

    figure, axes = figure_and_axes(figsize=(6, 5))
    plot_pr_curves(result, class_names=class_names, ax=axes[0][0])
    figure.tight_layout()
    figure.savefig(path, dpi=110)


# --------------------------------------------------------------------------
# minissd detect
# --------------------------------------------------------------------------

def _add_detect(commands):
    parser = commands.add_parser(
        "detect", help="detect objects in images; writes pictures and JSON",
        description="Run a trained SSD on image files of any size and mode; writes each picture with "
                    "its detections drawn and one detections.json (pixel xyxy boxes, scores, classes).",
    )
    parser.add_argument("weights", help="a .npz written by training or model.save")
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("-o", "--output", default="detections", help="output folder (default detections)")
    parser.add_argument("--threshold", type=float, default=0.5, help="minimum score to report (default 0.5)")
    parser.add_argument("--iou-threshold", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    _add_device(parser)
    parser.set_defaults(run=_run_detect)


def _run_detect(args) -> int:
    import os

    from .detect import Detector, save_json

    if not 0 <= args.threshold <= 1:
        raise UserError(f"--threshold must be in [0, 1]; got {args.threshold}")
    device = _resolve_device(args)
    missing = [path for path in args.images if not os.path.isfile(path)]
    if missing:
        raise UserError(f"image not found: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    detector = Detector.load(args.weights, device=device, iou_threshold=args.iou_threshold)
    os.makedirs(args.output, exist_ok=True)
    found = {}
    with blas_threads(args.threads):
        for path in args.images:
            try:
                detections = detector.predict(path, score_threshold=args.threshold)
            except ValueError as error:
                raise UserError(str(error)) from None
            name = os.path.basename(path)
            found[name] = detections
            stem = os.path.splitext(name)[0]
            detector.draw(path, detections, score_threshold=args.threshold).save(
                os.path.join(args.output, f"{stem}_detections.png"))
            print(f"{path}: {len(detections)} detections")
    save_json(os.path.join(args.output, "detections.json"), found)
    print(f"wrote {len(found)} pictures and detections.json to {args.output}")
    return 0


# --------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------

COMMAND_BUILDERS = [_add_demo, _add_train, _add_eval, _add_detect, _add_boxes]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minissd",
        description="minissd: SSD (Single Shot MultiBox Detector) from scratch in NumPy / CuPy.",
    )
    parser.add_argument("--version", action="version", version=f"minissd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for builder in COMMAND_BUILDERS:
        builder(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except UserError as error:
        print(f"minissd {args.command}: error: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        # data and weight errors say what and where; a traceback adds nothing for a user
        if os.environ.get("MINISSD_DEBUG"):
            raise
        print(f"minissd {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minissd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
