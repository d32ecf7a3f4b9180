"""Draw the pictures of the README and the docs pages, from minissd's own functions.

    python docs/pictures/make.py                 # every picture, into docs/pictures/
    python docs/pictures/make.py --only nms_steps.png --output /tmp/pictures

Each picture is made by the library's drawing functions (``minissd.viz``) on
data the library computes: the cat-and-dog scene, default boxes, matching,
the loss's hard negatives, NMS steps, and the trained demo weights shipped in
``notebooks/assets`` (detections, PR curves, the loss curve). Nothing is
drawn by hand, so a picture cannot disagree with the code; CI runs this
script (``tests/test_doc_pictures.py``) into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ASSETS = os.path.join(ROOT, "notebooks", "assets")
DPI = 80

# the cat and the dog of the paper's Figure 1 (normalised xyxy): a small object and a large one
SCENE_BOXES = np.array([[0.14, 0.30, 0.36, 0.52], [0.42, 0.22, 0.94, 0.86]])
SCENE_KINDS = ("cat", "dog")


def _demo_model():
    from minissd import models

    return models.load(os.path.join(ASSETS, "demo_tiny_ssd.npz"), device="cpu")


def figure1():
    """The paper's Figure 1: a cat and a dog, matched on an 8 x 8 and a 4 x 4 map."""
    from minissd.viz import figure1 as draw

    return draw()


def centres():
    from minissd.viz import centres_figure

    return centres_figure(size=10, step=32, image_size=300)


def encoding():
    from minissd.viz.encoding import encoding_figure

    figure, _ = encoding_figure()
    return figure


def matching():
    """The cat-and-dog scene matched on an 8 x 8 and a 4 x 4 map (the paper's two maps)."""
    from minissd.matching import match_indices
    from minissd.priors import default_boxes, paper_config, prior_slices
    from minissd.viz import figure_and_axes, plot_matches, toy_scene

    config = paper_config((8, 4), s_min=0.2, s_max=0.5, aspect_ratios=[(2,), (2,)], name="figure 1")
    priors = default_boxes(config)  # (P, 4)
    matched = match_indices(SCENE_BOXES.astype(np.float32), priors)  # (P,)
    image = toy_scene(SCENE_BOXES, SCENE_KINDS)
    figure, axes = figure_and_axes(1, 2, figsize=(10, 5))
    for ax, side, rows in zip(axes[0], config.feature_maps, prior_slices(config)):
        plot_matches(image, SCENE_BOXES, priors[rows], matched[rows], ax=ax, grid=side, gt_labels=np.array([1, 2]),
                     class_names=["background", "cat", "dog"],
                     title=f"{side} x {side} map: {int((matched[rows] >= 0).sum())} matched default boxes")
    figure.suptitle("matching: every object gets its best default box, then every default box with IoU >= 0.5")
    figure.tight_layout()
    return figure


def hard_negatives():
    """Notebook 03's scene on SSD300's default boxes: the positives, and the negatives mining keeps."""
    from minissd import boxes, loss, matching, priors
    from minissd.viz import figure_and_axes, plot_hard_negatives, plot_matches, toy_scene

    default = priors.default_boxes(priors.PRESETS["ssd300-voc"])  # (P, 4)
    gt_boxes = np.array([[0.08, 0.22, 0.36, 0.58], [0.42, 0.30, 0.95, 0.86]], dtype=np.float32)
    ball = np.array([[0.66, 0.06, 0.80, 0.20]], dtype=np.float32)  # an unlabelled distractor
    picture = toy_scene(np.concatenate([gt_boxes, ball]), ["cat", "dog", "ball"], size=300)
    loc_t, conf_t = matching.match(gt_boxes, np.array([1, 2]), default)
    # a made-up network that finds "something" wherever any object is, the ball included
    objectness = boxes.iou(np.concatenate([gt_boxes, ball]), boxes.cxcywh_to_xyxy(default)).max(axis=0)  # (P,)
    rng = np.random.default_rng(0)
    conf = np.empty((1, len(default), 3), dtype=np.float32)
    conf[0, :, 0] = 2.0 - 6.0 * objectness + rng.normal(0, 0.5, len(default))
    conf[0, :, 1:] = rng.normal(0, 0.5, (len(default), 2))
    loc = (loc_t + rng.normal(0, 0.5, loc_t.shape)).astype(np.float32)[None]
    result = loss.multibox_loss(loc, conf, loc_t[None], conf_t[None])
    figure, axes = figure_and_axes(1, 2, figsize=(10, 5.2))
    plot_matches(picture, gt_boxes, default, matching.match_indices(gt_boxes, default), ax=axes[0, 0],
                 gt_labels=[1, 2], class_names=["background", "cat", "dog"],
                 title=f"the {int(result.positive_mask.sum())} positives")
    plot_hard_negatives(picture, default, None, result.negative_mask[0], gt_boxes, ax=axes[0, 1],
                        title=f"the {int(result.negative_mask.sum())} kept hard negatives (3 per positive)")
    figure.tight_layout()
    return figure


def nms_steps():
    """The slides' six boxes, NMS step by step: each reference and the boxes it removes, with their IoU."""
    from minissd.viz import nms_steps_figure, toy_scene

    names = ["0.9", "0.8", "0.7", "0.65", "0.6 left", "0.6 right"]
    scores = np.array([0.9, 0.8, 0.7, 0.65, 0.6, 0.6])
    boxes = np.array([[220, 10, 320, 110], [10, 10, 110, 110], [220, 10, 320, 60],
                      [10, 20, 110, 110], [20, 10, 120, 110], [240, 10, 340, 110]], dtype=np.float64)
    scene = toy_scene(boxes[[1, 0]] / [350, 130, 350, 130], ["cat", "dog"], size=(350, 130))
    return nms_steps_figure(boxes, scores, iou_threshold=0.5, image=scene, names=names)


def bipartite():
    """The greedy bipartite step on an IoU table: pick the best pair, strike out its row and column, repeat."""
    from minissd.boxes import iou
    from minissd.viz import bipartite_steps_figure

    gt = np.array([[0.05, 0.1, 0.45, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.55, 0.95, 0.95]])
    default = np.array([[0.08, 0.1, 0.48, 0.5], [0.2, 0.1, 0.6, 0.5], [0.0, 0.05, 0.4, 0.45],
                        [0.6, 0.57, 0.95, 0.95], [0.7, 0.4, 1.0, 0.7]])
    return bipartite_steps_figure(iou(gt, default), gt_names=["A", "B", "C"])


def shapes():
    from minissd.data import ShapesDataset
    from minissd.viz import figure_and_axes, plot_detections

    dataset = ShapesDataset("train")
    figure, axes = figure_and_axes(2, 4, figsize=(10, 5.4))
    for index, ax in enumerate(axes.flat):
        item = dataset[index]
        plot_detections(item.image, item.boxes, item.labels, class_names=dataset.class_names, ax=ax,
                        title=f"train[{index}]")
    figure.suptitle("the built-in shapes dataset: pictures and their ground truth")
    figure.tight_layout()
    return figure


def loss_curve():
    from minissd.train import plot_loss_curve, read_log

    history = read_log(os.path.join(ASSETS, "demo_tiny_ssd_train_log.csv"))
    import json

    record = json.load(open(os.path.join(ASSETS, "demo_tiny_ssd.json")))
    return plot_loss_curve(history, None, record["validation"],
                           title="minissd demo: the tiny SSD's training loss and validation mAP")


def _demo_predictions(count: int = 100):
    from minissd.backend import blas_threads
    from minissd.data import ShapesDataset
    from minissd.evaluate.run import evaluate_model

    dataset = ShapesDataset("test", num_images=count)
    with blas_threads(1):
        result, predictions = evaluate_model(_demo_model(), dataset, metric="voc")
    return dataset, result, predictions


def pr_curves():
    from minissd.viz import figure_and_axes, plot_pr_curves

    dataset, result, _ = _demo_predictions()
    figure, axes = figure_and_axes(figsize=(6.5, 5))
    plot_pr_curves(result, class_names=dataset.class_names, ax=axes[0][0],
                   title=f"the demo's tiny SSD on 100 test pictures: mAP {result.mAP:.3f}")
    axes[0][0].grid(alpha=0.3)
    figure.tight_layout()
    return figure


def detections():
    from minissd.viz import draw_boxes, figure_and_axes, show_image

    dataset, _, predictions = _demo_predictions(8)
    figure, axes = figure_and_axes(2, 4, figsize=(10, 5.4))
    for k, ax in enumerate(axes.flat):
        show_image(dataset[k].image, ax=ax)
        draw_boxes(predictions.gt_boxes[k], ax=ax, color="white", linestyle="--", linewidth=1.0, text=False)
        keep = predictions.scores[k] > 0.5
        draw_boxes(predictions.boxes[k][keep], ax=ax, labels=predictions.labels[k][keep],
                   scores=predictions.scores[k][keep], class_names=dataset.class_names, linewidth=1.5)
    figure.suptitle("minissd demo's tiny SSD on test pictures: detections above 0.5 (ground truth dashed white)")
    figure.tight_layout()
    return figure


def im2col():
    """A 4 x 4 input, its 3 x 3 patches (padding 1) and the columns im2col lays them out as."""
    from minissd.nn.im2col import im2col as unfold
    from minissd.viz import figure_and_axes

    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)  # (N, C, H, W)
    cols = unfold(x, (3, 3), 1, 1, 1).reshape(9, 16)  # (C*K*K, Ho*Wo)
    figure, axes = figure_and_axes(1, 2, figsize=(11, 4.2))
    left, right = axes[0]
    left.imshow(x[0, 0], cmap="Blues")
    for (i, j), value in np.ndenumerate(x[0, 0]):
        left.text(j, i, f"{value:.0f}", ha="center", va="center")
    left.set_title("input 4 x 4 (one channel)")
    left.set_xticks([])
    left.set_yticks([])
    right.imshow(cols, cmap="Blues", aspect="auto")
    for (i, j), value in np.ndenumerate(cols):
        right.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7)
    right.set_xlabel("output position (16 = 4 x 4, padding 1)")
    right.set_ylabel("kernel tap (9 = 3 x 3)")
    right.set_title("im2col: each column is one 3 x 3 patch; a convolution is then one matrix product")
    figure.tight_layout()
    return figure


def feature_maps():
    """SSD300's six source maps: side, boxes per cell, and how many default boxes each contributes."""
    from minissd.priors import get_config
    from minissd.viz import figure_and_axes

    config = get_config("ssd300-voc")
    counts = [f * f * b for f, b in zip(config.feature_maps, config.boxes_per_cell)]
    figure, axes = figure_and_axes(figsize=(8, 3.6))
    ax = axes[0][0]
    names = ["conv4_3", "fc7", "conv8_2", "conv9_2", "conv10_2", "conv11_2"]
    bars = ax.bar(range(6), counts, color="#4363d8")
    for bar, side, per_cell, count in zip(bars, config.feature_maps, config.boxes_per_cell, counts):
        ax.text(bar.get_x() + bar.get_width() / 2, count, f"{side}x{side}x{per_cell}\n= {count}", ha="center",
                va="bottom", fontsize=8)
    ax.set_xticks(range(6), [f"{n}\ns={s:.2f}" for n, s in zip(names, config.min_sizes)])
    ax.set_ylabel("default boxes")
    ax.set_ylim(0, max(counts) * 1.3)
    ax.set_title(f"SSD300: {sum(counts)} default boxes from six maps (preset ssd300-voc)")
    figure.tight_layout()
    return figure


def explain():
    """One detection of the demo's tiny SSD explained: its map, cell, default box, offsets, softmax, NMS."""
    from minissd.data import ShapesDataset
    from minissd.detect import Detector
    from minissd.viz import explain_figure

    picture = ShapesDataset("test")[7].image
    explanation = Detector(_demo_model()).explain(picture, 0.5)[0]
    return explain_figure(explanation, picture)


def coverage():
    """How well the tiny preset's default boxes cover the shapes data's objects."""
    from minissd.coverage import coverage as measure
    from minissd.data import ShapesDataset
    from minissd.viz import coverage_figure

    return coverage_figure(measure(ShapesDataset("train", num_images=300), "tiny"))


def _demo_analysis():
    from minissd.data import ShapesDataset
    from minissd.evaluate.analysis import analyze_predictions
    from minissd.evaluate.run import predict_dataset

    dataset = ShapesDataset("test", num_images=100)
    return analyze_predictions(predict_dataset(_demo_model(), dataset), dataset.class_names)


def error_breakdown():
    from minissd.viz import error_breakdown_figure

    return error_breakdown_figure(_demo_analysis())


def sensitivity():
    from minissd.viz import sensitivity_figure

    return sensitivity_figure(_demo_analysis(), "size")


PICTURES = {
    "figure1.png": figure1,
    "default_box_centres.png": centres,
    "encoding.png": encoding,
    "matching.png": matching,
    "bipartite.png": bipartite,
    "hard_negatives.png": hard_negatives,
    "nms_steps.png": nms_steps,
    "shapes.png": shapes,
    "loss_curve.png": loss_curve,
    "pr_curves.png": pr_curves,
    "detections.png": detections,
    "im2col.png": im2col,
    "feature_maps.png": feature_maps,
    "explain.png": explain,
    "coverage.png": coverage,
    "error_breakdown.png": error_breakdown,
    "sensitivity.png": sensitivity,
}


def make(names=None, output: str = HERE) -> list[str]:
    """Draw the pictures ``names`` (default: all) into ``output``; returns the paths written."""
    from minissd.atomic import save_figure

    written = []
    for name in names or PICTURES:
        if name not in PICTURES:
            raise SystemExit(f"make.py: no picture {name!r}; known: {', '.join(PICTURES)}")
        figure = PICTURES[name]()
        path = os.path.join(output, name)
        save_figure(figure, path, dpi=DPI, bbox_inches="tight")
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/pictures/make.py", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these pictures")
    parser.add_argument("--output", default=HERE, help="folder (default: docs/pictures)")
    args = parser.parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    for path in make(args.only, args.output):
        print(f"wrote {path} ({os.path.getsize(path) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
