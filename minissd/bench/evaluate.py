"""Time voc_ap and coco_ap on a COCO-sized synthetic set, beside pycocotools (when installed).

    python -m minissd.bench evaluate [--images 1000] [--detections 100]

Each image holds 1..15 objects of 20 classes and ``--detections`` detections
(jittered copies of the objects plus false alarms); the numbers printed are
seconds for one full evaluation and the AP each tool reports.
"""

import argparse
import contextlib
import io
import time

import numpy as np

from ..evaluate import coco_ap, voc_ap
from .timing import machine_description


def synthetic(rng, images, detections, classes=20):
    data = {k: [] for k in ("pred_boxes", "pred_labels", "pred_scores", "gt_boxes", "gt_labels")}
    for _ in range(images):
        count = int(rng.integers(1, 16))
        corner = rng.uniform(0, 500, size=(count, 2))
        gt = np.concatenate([corner, corner + rng.uniform(8, 300, size=(count, 2))], axis=1)
        labels = rng.integers(1, classes + 1, size=count)
        copies = rng.integers(0, count, size=detections // 2)
        size = np.repeat(gt[copies, 2:] - gt[copies, :2], 2, axis=0).reshape(-1, 4)
        found = gt[copies] + rng.normal(0, 0.1, size=(len(copies), 4)) * size
        found = np.concatenate([np.minimum(found[:, :2], found[:, 2:]), np.maximum(found[:, :2], found[:, 2:])], 1)
        corner = rng.uniform(0, 500, size=(detections - len(copies), 2))
        alarms = np.concatenate([corner, corner + rng.uniform(8, 200, size=(len(corner), 2))], axis=1)
        data["pred_boxes"].append(np.concatenate([found, alarms]))
        data["pred_labels"].append(np.concatenate([labels[copies], rng.integers(1, classes + 1, len(alarms))]))
        data["pred_scores"].append(rng.random(detections))
        data["gt_boxes"].append(gt)
        data["gt_labels"].append(labels)
    return data


def pycocotools_ap(data):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    annotations, results = [], []
    for image, (boxes, labels) in enumerate(zip(data["gt_boxes"], data["gt_labels"])):
        for box, label in zip(boxes, labels):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image + 1, "category_id": int(label),
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
    for image, (boxes, labels, scores) in enumerate(zip(data["pred_boxes"], data["pred_labels"], data["pred_scores"])):
        for box, label, score in zip(boxes, labels, scores):
            results.append({"image_id": image + 1, "category_id": int(label), "score": float(score),
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": [{"id": i + 1} for i in range(len(data["gt_boxes"]))],
                         "annotations": annotations, "categories": [{"id": c} for c in range(1, 21)]}
        truth.createIndex()
        detections = truth.loadRes(results)
        start = time.perf_counter()
        evaluation = COCOeval(truth, detections, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return time.perf_counter() - start, evaluation.stats[0]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minissd.bench evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--detections", type=int, default=100)
    args = parser.parse_args(argv)
    if args.images < 1 or args.detections < 2:
        parser.error("--images must be positive and --detections at least 2")
    for line in machine_description():
        print(line)
    data = synthetic(np.random.default_rng(0), args.images, args.detections)
    print(f"{args.images} images, {args.images * args.detections} detections")
    for name, run in [("voc_ap", lambda: voc_ap(**data).mAP), ("coco_ap", lambda: coco_ap(**data).AP)]:
        start = time.perf_counter()
        value = run()
        print(f"{name:>12s}: {time.perf_counter() - start:6.2f} s   AP {value:.4f}")
    try:
        seconds, value = pycocotools_ap(data)
        print(f"{'pycocotools':>12s}: {seconds:6.2f} s   AP {value:.4f}   (COCOeval evaluate + accumulate)")
    except ImportError:
        print("pycocotools is not installed")

