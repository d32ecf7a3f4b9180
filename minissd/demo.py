"""The main job: ``minissd demo`` trains and evaluates a tiny SSD on the built-in shapes dataset.

    make the data  ->  train the tiny SSD  ->  evaluate on the held-out test split  ->  report

Everything it writes goes to one folder:

    report.md, report.json    VOC mAP@0.5 per class (all-point and 11-point), COCO-style AP, timings
    loss_curve.png            the loss and its two parts, with validation mAP
    pr_curves.png             precision-recall curve of every class
    detections.png            test pictures with their detections (and ground truth dashed)
    model.npz                 the trained weights (``minissd detect`` / ``Detector.load`` read them)
    checkpoint.npz, train_log.csv, eval_log.json   the training run itself

``fast=True`` (``--fast`` or ``MINISSD_FAST=1``) runs a few iterations on a
few images: it checks the pipeline end to end, not the accuracy.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from . import __version__
from .backend import blas_threads
from .data import ShapesDataset
from .evaluate.report import result_table, result_to_dict
from .evaluate.run import evaluate_model, score
from .models import tiny_ssd
from .nn import parallel
from .train import TrainConfig, train


@dataclass
class DemoRecipe:
    """The demo's recipe: data, optimiser, schedule (measured in docs/training.md)."""

    iterations: int = 1000
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_iterations: int = 40
    milestones: tuple = (800, 940)
    augment_options: dict = field(default_factory=lambda: {"photometric": False, "crop": False, "expand_p": 0.0})
    data: dict = field(default_factory=dict)  # ShapesDataset difficulty knobs (empty: the defaults)
    eval_every: int = 500
    val_images: int = 100
    test_images: int = 500
    threads: int | None = 1  # BLAS threads per part of the work: one
    workers: int = 2  # minissd's worker threads (minissd.nn.parallel): the network's work on both cores

    @classmethod
    def fast(cls) -> "DemoRecipe":
        return cls(iterations=12, batch_size=8, warmup_iterations=4, milestones=(9,), eval_every=6,
                   val_images=16, test_images=24)


@dataclass
class DemoReport:
    output_dir: str
    mAP: float
    mAP_07: float
    ap: dict
    coco: dict
    train_seconds: float
    total_seconds: float
    iterations: int
    recipe: dict = field(default_factory=dict)
    table: str = ""

    def summary(self) -> str:
        return (
            f"{self.table}\n\nminissd demo: test VOC mAP@0.5 {self.mAP:.4f} (all-point), {self.mAP_07:.4f} (11-point); "
            f"COCO AP@[.5:.95] {_value(self.coco, 'AP'):.4f}; trained {self.iterations} iterations in "
            f"{self.train_seconds:.0f} s, {self.total_seconds:.0f} s in all.\n"
            f"report: {os.path.join(self.output_dir, 'report.md')}"
        )


def _value(numbers: dict, key: str) -> float:
    value = numbers.get(key)
    return float("nan") if value is None else float(value)


def run_demo(output_dir: str = "minissd-demo", device: str | None = None, fast: bool = False,
             iterations: int | None = None, seed: int = 0, progress: bool = True,
             threads: int | None = None, recipe: DemoRecipe | None = None) -> DemoReport:
    """Make the shapes data, train the tiny SSD, evaluate it and write the report; returns the numbers."""
    start = time.perf_counter()
    recipe = recipe or (DemoRecipe.fast() if fast else DemoRecipe())
    if iterations is not None:
        scale = iterations / recipe.iterations
        recipe.milestones = tuple(max(1, int(m * scale)) for m in recipe.milestones)
        recipe.iterations = iterations
    if threads is not None:
        recipe.threads = threads
    os.makedirs(output_dir, exist_ok=True)
    for stale in ("checkpoint.npz", "train_log.csv", "eval_log.json"):
        path = os.path.join(output_dir, stale)
        if os.path.exists(path):  # a demo always starts afresh
            os.remove(path)
    # cached: each training picture is drawn once, not once per epoch (4000 pictures, about 200 MB)
    train_set = ShapesDataset("train", seed=seed, cache=True, **recipe.data)
    val_set = ShapesDataset("val", num_images=recipe.val_images, seed=seed, cache=True, **recipe.data)
    test_set = ShapesDataset("test", num_images=recipe.test_images, seed=seed, **recipe.data)
    model = tiny_ssd(train_set.num_classes, class_names=train_set.class_names, seed=seed).to(device)
    config = TrainConfig(
        iterations=recipe.iterations, batch_size=recipe.batch_size, lr=recipe.lr, optimizer=recipe.optimizer,
        weight_decay=recipe.weight_decay, warmup_iterations=recipe.warmup_iterations,
        milestones=recipe.milestones, seed=seed, augment_options=dict(recipe.augment_options), eval_every=recipe.eval_every, checkpoint_every=max(1, recipe.iterations // 4),
        log_every=max(1, min(10, recipe.iterations // 10)),
    )
    if progress:
        print(f"minissd demo: training {model} on {len(train_set)} shapes images "
              f"({recipe.iterations} iterations of {recipe.batch_size}); output in {output_dir}")
    with blas_threads(recipe.threads), parallel.threads(recipe.workers):
        train_start = time.perf_counter()
        state = train(model, train_set, config, output_dir, val_dataset=val_set, progress=progress)
        train_seconds = time.perf_counter() - train_start
        result, predictions = evaluate_model(model, test_set, metric="voc", progress=progress)
    result_07 = score(predictions, "voc", use_07_metric=True)
    coco = score(predictions, "coco")
    names = model.info.class_names
    _save_pictures(output_dir, result, test_set, predictions, names)
    total = time.perf_counter() - start
    report = DemoReport(
        output_dir=output_dir, mAP=float(result.mAP), mAP_07=float(result_07.mAP),
        ap=result_to_dict(result, names)["ap"], coco=result_to_dict(coco, names),
        train_seconds=train_seconds, total_seconds=total, iterations=state.iteration,
        recipe=asdict(recipe), table=result_table(result, names),
    )
    _write_report(report, state)
    return report


def _save_pictures(output_dir, result, dataset, predictions, class_names, count: int = 8) -> None:
    from .viz import draw_boxes, figure_and_axes, plot_pr_curves, show_image

    figure, axes = figure_and_axes(figsize=(6, 5))
    plot_pr_curves(result, class_names=class_names, ax=axes[0][0])
    figure.tight_layout()
    figure.savefig(os.path.join(output_dir, "pr_curves.png"), dpi=110)

    count = min(count, len(predictions.boxes))
    columns = 4
    rows = max(1, (count + columns - 1) // columns)
    figure, axes = figure_and_axes(rows, columns, figsize=(3.2 * columns, 3.2 * rows))
    for k in range(rows * columns):
        ax = axes[k // columns][k % columns]
        if k >= count:
            ax.set_axis_off()
            continue
        sample = dataset[k]
        show_image(sample.image, ax=ax)
        draw_boxes(predictions.gt_boxes[k], ax=ax, color="white", linestyle="--", linewidth=1.0, text=False)
        keep = predictions.scores[k] > 0.5
        draw_boxes(predictions.boxes[k][keep], ax=ax, labels=predictions.labels[k][keep],
                   scores=predictions.scores[k][keep], class_names=class_names, linewidth=1.5)
    figure.suptitle("test images: detections scoring above 0.5 (ground truth dashed white)")
    figure.tight_layout()
    figure.savefig(os.path.join(output_dir, "detections.png"), dpi=110)


def _write_report(report: DemoReport, state) -> None:
    numbers = asdict(report)
    numbers.pop("table")
    numbers["minissd_version"] = __version__
    numbers["validation"] = state.evaluations
    with open(os.path.join(report.output_dir, "report.json"), "w", encoding="utf-8") as stream:
        json.dump(numbers, stream, indent=1, default=float)
    lines = [
        "# minissd demo report",
        "",
        f"Tiny SSD trained {report.iterations} iterations on the shapes dataset in {report.train_seconds:.0f} s "
        f"({report.total_seconds:.0f} s with data, evaluation and pictures).",
        "",
        f"Test split, VOC AP@0.5 (all-point): **mAP {report.mAP:.4f}**; 11-point (VOC2007): {report.mAP_07:.4f}.",
        f"COCO-style AP@[.5:.95]: {_value(report.coco, 'AP'):.4f}, AP50 {_value(report.coco, 'AP50'):.4f}, "
        f"AP75 {_value(report.coco, 'AP75'):.4f}.",
        "",
        "```",
        report.table,
        "```",
        "",
        "![loss curve](loss_curve.png)",
        "",
        "![precision-recall curves](pr_curves.png)",
        "",
        "![detections](detections.png)",
        "",
        f"Recipe: `{json.dumps(report.recipe)}`",
    ]
    with open(os.path.join(report.output_dir, "report.md"), "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")
