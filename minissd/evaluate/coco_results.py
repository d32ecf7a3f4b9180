"""COCO results JSON: detections in the format every COCO tool reads.

The file is one JSON list, one entry per detection (pycocotools' ``COCO.loadRes``
reads it; so do the COCO evaluation server and most detection toolboxes):

    [{"image_id": 397133, "category_id": 18, "bbox": [x, y, width, height], "score": 0.93}, ...]

``bbox`` is in the pixels of the original picture, (x, y) its top-left corner:
xyxy -> (x1, y1, x2 - x1, y2 - y1), with no 1-pixel shift. ``image_id`` and
``category_id`` are the annotation file's own ids (``COCODataset.coco_image_ids``
and ``category_ids``), not minissd's contiguous labels.

``score_results_file`` scores such a file against an instances JSON with
minissd's own COCO evaluator (``coco_ap``), so results of any detector can be
scored without pycocotools; tests check it equals pycocotools' COCOeval.
"""

from __future__ import annotations

import json

import numpy as np

from ..atomic import write_json


def xyxy_to_xywh(boxes) -> np.ndarray:
    """(D, 4) xyxy -> (D, 4) COCO's (x, y, width, height)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)  # (D, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def coco_entries(image_id, boxes, labels, scores, category_ids, decimals: int = 2) -> list[dict]:
    """The results entries of one picture.

    boxes (D, 4) pixel xyxy; labels (D,) in the space ``category_ids`` maps (label -> category id);
    scores (D,). ``category_ids`` is a sequence or a callable label -> id.
    """
    lookup = category_ids if callable(category_ids) else (lambda label: category_ids[label])
    entries = []
    for box, label, score in zip(xyxy_to_xywh(boxes), np.asarray(labels).tolist(), np.asarray(scores).tolist()):
        entries.append({"image_id": image_id, "category_id": int(lookup(int(label))),
                        "bbox": [round(float(v), decimals) for v in box], "score": round(float(score), 5)})
    return entries


def predictions_to_coco(predictions, dataset) -> list[dict]:
    """Every detection of ``predictions`` (from ``run.predict_dataset`` on a ``COCODataset``) as entries."""
    image_ids = getattr(dataset, "coco_image_ids", None)
    category_ids = getattr(dataset, "category_ids", None)
    if image_ids is None or category_ids is None:
        raise ValueError("COCO results need a COCO dataset (its image and category ids); "
                         f"this is {type(dataset).__name__}")
    entries = []
    for index, boxes, labels, scores in zip(predictions.indices, predictions.boxes, predictions.labels,
                                            predictions.scores):
        entries += coco_entries(image_ids[index], boxes, labels, scores, category_ids)
    return entries


def write_coco_results(path, entries: list[dict]) -> None:
    """Write the entries as one JSON list (atomically)."""
    write_json(path, entries, indent=None)


def read_coco_results(path) -> list[dict]:
    """The entries of a results file, checked: a list of {image_id, category_id, bbox (4 numbers), score}."""
    try:
        with open(path, encoding="utf-8-sig") as stream:
            entries = json.load(stream)
    except FileNotFoundError:
        raise FileNotFoundError(f"COCO results file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: a COCO results file is a JSON list of detections; got a {type(entries).__name__}")
    for position, entry in enumerate(entries):
        where = f"{path}, entry {position}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object with image_id, category_id, bbox, score")
        for key in ("image_id", "category_id", "bbox", "score"):
            if key not in entry:
                raise ValueError(f"{where}: missing field {key!r}")
        bbox = entry["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) and not
                                                                   isinstance(v, bool) for v in bbox)):
            raise ValueError(f"{where}: bbox {bbox!r} is not four numbers [x, y, width, height]")
        if not isinstance(entry["score"], (int, float)) or isinstance(entry["score"], bool):
            raise ValueError(f"{where}: score {entry['score']!r} is not a number")
    return entries


def score_results_file(annotation_file, results_file, max_dets: int = 100):
    """minissd's COCO AP (``coco_ap``) of a results file against an instances JSON.

    Returns a ``COCOResult``; the objects' areas are the annotations' ``area`` fields (box areas where
    absent), crowd regions are ignored as pycocotools ignores them. Detections of images or categories
    the annotation file does not have are an error naming the entry.
    """
    from ..data.coco import load_coco_json
    from .coco import coco_ap

    data = load_coco_json(annotation_file)
    entries = read_coco_results(results_file)
    image_ids = [image["id"] for image in data["images"]]
    position = {image_id: k for k, image_id in enumerate(image_ids)}
    category_ids = sorted(category["id"] for category in data["categories"])
    label_of = {cid: k + 1 for k, cid in enumerate(category_ids)}
    count = len(image_ids)
    gt_boxes, gt_labels, gt_crowd, gt_areas = ([[] for _ in range(count)] for _ in range(4))
    for annotation in data.get("annotations", []):
        k = position[annotation["image_id"]]
        x, y, w, h = (float(v) for v in annotation["bbox"])
        gt_boxes[k].append([x, y, x + w, y + h])
        gt_labels[k].append(label_of[annotation["category_id"]])
        gt_crowd[k].append(bool(annotation.get("iscrowd", 0)))
        gt_areas[k].append(float(annotation.get("area", w * h)))
    det_boxes, det_labels, det_scores = ([[] for _ in range(count)] for _ in range(3))
    for number, entry in enumerate(entries):
        if entry["image_id"] not in position:
            raise ValueError(f"{results_file}, entry {number}: image_id {entry['image_id']!r} is not in {annotation_file}")
        if entry["category_id"] not in label_of:
            raise ValueError(f"{results_file}, entry {number}: category_id {entry['category_id']!r} is not in "
                             f"{annotation_file}")
        k = position[entry["image_id"]]
        x, y, w, h = (float(v) for v in entry["bbox"])
        det_boxes[k].append([x, y, x + w, y + h])
        det_labels[k].append(label_of[entry["category_id"]])
        det_scores[k].append(float(entry["score"]))

    def arrays(lists, dtype, width=None):
        return [np.asarray(v, dtype=dtype).reshape((-1, width) if width else (-1,)) for v in lists]

    return coco_ap(arrays(det_boxes, np.float64, 4), arrays(det_labels, np.int64), arrays(det_scores, np.float64),
                   arrays(gt_boxes, np.float64, 4), arrays(gt_labels, np.int64),
                   gt_iscrowd=arrays(gt_crowd, bool), gt_areas=arrays(gt_areas, np.float64), max_dets=max_dets)
