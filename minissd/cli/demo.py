"""``minissd demo``: the main job (shapes data, tiny SSD, evaluation, report)."""

from __future__ import annotations

import os

from .context import resolve_device
from .errors import UserError
from .options import add_device, non_negative_int, positive_int
from .outputs import output_folder

# what a demo writes; a folder holding anything else is not a demo folder, and is not touched
DEMO_FILES = {"report.md", "report.json", "loss_curve.png", "pr_curves.png", "detections.png", "model.npz",
              "checkpoint.npz", "train_log.csv", "eval_log.json"}


def add(commands):
    parser = commands.add_parser(
        "demo",
        help="the main job: make the shapes dataset, train the tiny SSD, evaluate, write a report",
        description=(
            "Make the built-in shapes dataset, train the tiny SSD on it, evaluate VOC mAP on the "
            "held-out test split, and write a report (mAP per class), the loss curve, PR curves "
            "and pictures of detections to the output folder. A demo starts afresh: it replaces "
            "an earlier demo's files in that folder and refuses a folder holding anything else."
        ),
    )
    parser.add_argument("-o", "--output", default="minissd-demo", help="output folder (default minissd-demo)")
    parser.add_argument("--fast", action="store_true",
                        help="a few iterations only, to check the pipeline (also: MINISSD_FAST=1)")
    parser.add_argument("--iterations", type=positive_int, help="training iterations (default: the demo recipe)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the data order and the weights (default 0)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                        help="adam (the demo's recipe, lr 3e-3) or sgd (SSD's, momentum 0.9, lr 0.05, decay 5e-4)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device(parser)
    parser.set_defaults(run=run)
    return parser


def check_demo_folder(path: str) -> None:
    """Refuse a folder that holds files a demo did not write (a demo deletes its own old run files)."""
    if not os.path.isdir(path):
        return
    foreign = sorted(name for name in os.listdir(path) if name not in DEMO_FILES and not name.startswith("."))
    if foreign:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise UserError(f"-o {path} holds files a demo did not write ({shown}); a demo replaces its folder's "
                        "contents, so choose an empty or new folder")


def run(args) -> int:
    from ..demo import DemoRecipe, run_demo

    device = resolve_device(args)
    check_demo_folder(args.output)
    output_folder(args.output)
    fast = args.fast or os.environ.get("MINISSD_FAST", "") not in ("", "0")
    recipe = DemoRecipe.fast() if fast else DemoRecipe()
    if args.optimizer == "sgd":
        recipe.optimizer, recipe.lr, recipe.weight_decay = "sgd", 0.05, 5e-4
    report = run_demo(args.output, device=device, iterations=args.iterations, seed=args.seed,
                      progress=not args.no_progress, threads=args.threads, recipe=recipe)
    print(report.summary())
    return 0
