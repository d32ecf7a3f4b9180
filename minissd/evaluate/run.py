"""Evaluate a model on a dataset: predict every image, then score with VOC or COCO AP.

    result, predictions = evaluate_model(model, dataset, metric="voc")
    result.mAP, result.ap            # per-class AP, mean AP

The model's labels are turned into the dataset's first (``labels.label_map``:
the identity, COCO category-id slots, or by name; a model of other classes is
refused). A dataset read with ``skip_bad=True`` skips a picture that fails to
load with a warning (``Predictions.skipped`` lists it) instead of stopping.

Detections are made exactly as ``minissd.detect.Detector`` makes them
(resize, minus the mean, forward, SSD post-processing with score threshold
0.01) and compared with the ground truth in the pixels of each original
picture. Difficult objects (VOC) and crowd regions (COCO) are passed to the
metric, which ignores them as the official tools do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    indices: list = field(default_factory=list)  # the dataset index of each entry
    gt_areas: list = field(default_factory=list)  # COCO's annotation areas per object (NaN: none)
    skipped: list = field(default_factory=list)  # (index, reason) of pictures that failed to load


def predict_dataset(detector, dataset, batch_size: int = 16, limit: int | None = None, progress: bool = False,
                    label_map=None) -> Predictions:
    """Run ``detector`` (a ``Detector`` or a model) over ``dataset`` (first ``limit`` images).

    label_map: a ``labels.LabelMap`` from the model's labels to the dataset's (default: the identity).
    """
    from ..data.loader import read_sample
    from ..detect import Detector, preprocess

    if not isinstance(detector, Detector):
        detector = Detector(detector)
    count = len(dataset) if limit is None else min(int(limit), len(dataset))
    model = detector.model
    out = Predictions(*([] for _ in range(9)))
    read_skips = {}  # index -> reason of the pictures skipped here (skip_bad datasets only)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count, desc="evaluate", unit="img", dynamic_ncols=True)
    try:
        for start in range(0, count, batch_size):
            indices = list(range(start, min(count, start + batch_size)))
            samples = []
            for index in indices:
                sample = read_sample(dataset, index, read_skips)  # None: skipped (skip_bad), with a warning
                if sample is None:
                    out.skipped.append((index, read_skips[index]))
                else:
                    samples.append((index, sample))
            if samples:
                batch = np.stack([preprocess(s.image, model.image_size, model.info.mean) for _, s in samples])
                for (index, sample), (boxes, scores, labels) in zip(samples, detector.predict_batch(batch)):
                    scale = np.array([sample.width, sample.height] * 2, dtype=np.float32)
                    boxes, labels, scores = boxes * scale, labels.astype(np.int64), scores
                    if label_map is not None:
                        boxes, labels, scores = label_map.apply(boxes, labels, scores)
                    out.boxes.append(boxes)
                    out.labels.append(labels)
                    out.scores.append(scores)
                    out.gt_boxes.append(np.asarray(sample.boxes, dtype=np.float32).reshape(-1, 4))
                    out.gt_labels.append(np.asarray(sample.labels, dtype=np.int64))
                    out.gt_difficult.append(np.asarray(sample.difficult, dtype=bool))
                    out.gt_crowd_boxes.append(np.asarray(sample.crowd_boxes, dtype=np.float32).reshape(-1, 4))
                    out.gt_crowd_labels.append(np.asarray(sample.crowd_labels, dtype=np.int64))
                    out.gt_areas.append(_areas(sample))
                    out.image_ids.append(sample.image_id)
                    out.indices.append(index)
            if bar is not None:
                bar.update(len(indices))
    finally:
        if bar is not None:
            bar.close()
    return out


def _areas(sample) -> np.ndarray:
    """(G + C,) the annotation areas of the objects then the crowd regions; NaN where a file gave none."""
    total = len(sample.labels) + len(sample.crowd_labels)
    areas = getattr(sample, "areas", None)
    crowd = getattr(sample, "crowd_areas", None)
    values = np.full(total, np.nan)
    if areas is not None and len(areas) == len(sample.labels):
        values[:len(sample.labels)] = areas
    if crowd is not None and len(crowd) == len(sample.crowd_labels):
        values[len(sample.labels):] = crowd
    return values


def score(predictions: Predictions, metric: str = "voc", iou_threshold: float = 0.5, use_07_metric: bool = False):
    """VOC (``voc_ap``) or COCO-style (``coco_ap``) result of ``predictions``."""
    p = predictions
    if metric == "voc":
        return voc_ap(p.boxes, p.labels, p.scores, p.gt_boxes, p.gt_labels, p.gt_difficult,
                      iou_threshold=iou_threshold, use_07_metric=use_07_metric)
    if not p.gt_boxes:
        raise ValueError("nothing to score: no image was predicted (an empty dataset, or every image skipped)")
    if metric == "coco":
        boxes = [np.concatenate([g, c]) for g, c in zip(p.gt_boxes, p.gt_crowd_boxes)]
        labels = [np.concatenate([g, c]) for g, c in zip(p.gt_labels, p.gt_crowd_labels)]
        crowd = [np.concatenate([np.zeros(len(g), bool), np.ones(len(c), bool)])
                 for g, c in zip(p.gt_labels, p.gt_crowd_labels)]
        areas = None
        if p.gt_areas and all(not np.isnan(a).any() for a in p.gt_areas):  # COCO's own areas, as pycocotools
            areas = p.gt_areas
        return coco_ap(p.boxes, p.labels, p.scores, boxes, labels, gt_iscrowd=crowd, gt_areas=areas)
    raise ValueError(f"metric must be 'voc' or 'coco'; got {metric!r}")


def evaluate_model(model, dataset, metric: str = "voc", iou_threshold: float = 0.5, use_07_metric: bool = False,
                   batch_size: int = 16, limit: int | None = None, progress: bool = False, label_map=None):
    """(result, predictions): ``model`` scored on ``dataset`` with the chosen metric."""
    predictions = predict_dataset(model, dataset, batch_size=batch_size, limit=limit, progress=progress,
                                  label_map=label_map)
    return score(predictions, metric, iou_threshold, use_07_metric), predictions


def voc_map_of(model, dataset) -> tuple:
    """(mAP, {label: AP}): VOC all-point mAP@0.5, the validation score used during training."""
    result, _ = evaluate_model(model, dataset, metric="voc")
    return result.mAP, {label: ap for label, ap in result.ap.items() if not np.isnan(ap)}
