"""Evaluate a model on a dataset: predict every image, then score with VOC or COCO AP.

    result, predictions = evaluate_model(model, dataset, metric="voc")
    result.mAP, result.ap            # per-class AP, mean AP

Detections are made exactly as ``minissd.detect.Detector`` makes them
(resize, minus the mean, forward, SSD post-processing with score threshold
0.01) and compared with the ground truth in the pixels of each original
picture. Difficult objects (VOC) and crowd regions (COCO) are passed to the
metric, which ignores them as the official tools do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .coco import coco_ap
from .voc import voc_ap


@dataclass
class Predictions:
    """Per image (lists of arrays, pixel xyxy): detections and the ground truth they are scored against."""

    boxes: list
    labels: list
    scores: list
    gt_boxes: list
    gt_labels: list
    gt_difficult: list
    gt_crowd_boxes: list
    gt_crowd_labels: list
    image_ids: list


def predict_dataset(detector, dataset, batch_size: int = 16, limit: int | None = None, progress: bool = False) -> Predictions:
    """Run ``detector`` (a ``Detector`` or a model) over ``dataset`` (first ``limit`` images)."""
    from ..detect import Detector, preprocess

    if not isinstance(detector, Detector):
        detector = Detector(detector)
    count = len(dataset) if limit is None else min(int(limit), len(dataset))
    model = detector.model
    out = Predictions(*([] for _ in range(9)))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count, desc="evaluate", unit="img", dynamic_ncols=True)
    try:
        for start in range(0, count, batch_size):
            samples = [dataset[i] for i in range(start, min(count, start + batch_size))]
            batch = np.stack([preprocess(s.image, model.image_size, model.info.mean) for s in samples])
            for sample, (boxes, scores, labels) in zip(samples, detector.predict_batch(batch)):
                scale = np.array([sample.width, sample.height] * 2, dtype=np.float32)
                out.boxes.append(boxes * scale)
                out.labels.append(labels.astype(np.int64))
                out.scores.append(scores)
                out.gt_boxes.append(np.asarray(sample.boxes, dtype=np.float32).reshape(-1, 4))
                out.gt_labels.append(np.asarray(sample.labels, dtype=np.int64))
                out.gt_difficult.append(np.asarray(sample.difficult, dtype=bool))
                out.gt_crowd_boxes.append(np.asarray(sample.crowd_boxes, dtype=np.float32).reshape(-1, 4))
                out.gt_crowd_labels.append(np.asarray(sample.crowd_labels, dtype=np.int64))
                out.image_ids.append(sample.image_id)
            if bar is not None:
                bar.update(len(samples))
    finally:
        if bar is not None:
            bar.close()
    return out


def score(predictions: Predictions, metric: str = "voc", iou_threshold: float = 0.5, use_07_metric: bool = False):
    """VOC (``voc_ap``) or COCO-style (``coco_ap``) result of ``predictions``."""
    p = predictions
    if metric == "voc":
        return voc_ap(p.boxes, p.labels, p.scores, p.gt_boxes, p.gt_labels, p.gt_difficult,
                      iou_threshold=iou_threshold, use_07_metric=use_07_metric)
    if metric == "coco":
        boxes = [np.concatenate([g, c]) for g, c in zip(p.gt_boxes, p.gt_crowd_boxes)]
        labels = [np.concatenate([g, c]) for g, c in zip(p.gt_labels, p.gt_crowd_labels)]
        crowd = [np.concatenate([np.zeros(len(g), bool), np.ones(len(c), bool)])
                 for g, c in zip(p.gt_labels, p.gt_crowd_labels)]
        return coco_ap(p.boxes, p.labels, p.scores, boxes, labels, gt_iscrowd=crowd)
    raise ValueError(f"metric must be 'voc' or 'coco'; got {metric!r}")


def evaluate_model(model, dataset, metric: str = "voc", iou_threshold: float = 0.5, use_07_metric: bool = False,
                   batch_size: int = 16, limit: int | None = None, progress: bool = False):
    """(result, predictions): ``model`` scored on ``dataset`` with the chosen metric."""
    predictions = predict_dataset(model, dataset, batch_size=batch_size, limit=limit, progress=progress)
    return score(predictions, metric, iou_threshold, use_07_metric), predictions


def voc_map_of(model, dataset) -> tuple:
    """(mAP, {label: AP}): VOC all-point mAP@0.5, the validation score used during training."""
    result, _ = evaluate_model(model, dataset, metric="voc")
    return result.mAP, {label: ap for label, ap in result.ap.items() if not np.isnan(ap)}
