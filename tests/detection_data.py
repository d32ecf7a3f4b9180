"""Random but realistic ground truth and detections for the evaluation tests.

Images of 640 x 480 pixels hold objects of every size range (small < 32^2,
medium, large > 96^2 pixels, and some exactly 32 x 32 or 96 x 96 on a
range boundary), a few crowd regions, a few duplicated objects (equal IoU
ties); detections are jittered copies of objects (sometimes two, sometimes
with the wrong class), plus false alarms. Some images are empty, some have
detections but no objects, some objects but no detections. Label
num_classes + 1 is only detected, never present; num_classes + 2 is present
but never detected.
"""

import numpy as np

WIDTH, HEIGHT = 640.0, 480.0


def _random_boxes(rng, count):
    side = np.exp(rng.uniform(np.log(6), np.log(300), size=(count, 1)))  # log-uniform sizes
    aspect = np.exp(rng.uniform(-0.7, 0.7, size=(count, 1)))
    size = np.concatenate([side * aspect, side / aspect], axis=1)  # (count, 2)
    size = np.minimum(size, [WIDTH - 1, HEIGHT - 1])
    corner = rng.uniform(0, 1, size=(count, 2)) * ([WIDTH, HEIGHT] - size)
    return np.concatenate([corner, corner + size], axis=1)  # (count, 4)


def _jitter(rng, boxes, strength):
    size = np.repeat(boxes[:, 2:] - boxes[:, :2], 2, axis=0).reshape(-1, 4)  # (n, 4) w, h, w, h
    moved = boxes + rng.normal(0, strength, size=boxes.shape) * size
    low = np.minimum(moved[:, :2], moved[:, 2:])
    high = np.maximum(moved[:, :2], moved[:, 2:])
    return np.concatenate([low, high], axis=1)


def random_dataset(rng, num_images=16, num_classes=4, round_scores=False, many_detections=False):
    """Returns dict of per-image lists: pred_boxes, pred_labels, pred_scores, gt_boxes,
    gt_labels, gt_iscrowd, gt_difficult, gt_areas (a segmentation-like area <= box area)."""
    data = {key: [] for key in (
        "pred_boxes", "pred_labels", "pred_scores", "gt_boxes", "gt_labels",
        "gt_iscrowd", "gt_difficult", "gt_areas",
    )}
    for image in range(num_images):
        kind = image % 8  # 0: empty, 1: detections only, 7: objects only, else both
        count = 0 if kind in (0, 1) else int(rng.integers(1, 9))
        gt = _random_boxes(rng, count)
        if count >= 3:
            gt[1] = [10.0, 20.0, 42.0, 52.0]  # 32 x 32: on the small / medium boundary
            gt[2] = [100.0, 100.0, 196.0, 196.0]  # 96 x 96: on the medium / large boundary
        labels = rng.integers(1, num_classes + 1, size=count)
        if count >= 5:
            gt[4], labels[4] = gt[3], labels[3]  # a duplicated object: equal IoU for every detection
        crowd = rng.random(count) < 0.12
        difficult = rng.random(count) < 0.15
        box_area = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
        areas = box_area * rng.uniform(0.4, 1.0, size=count)

        if kind == 7:
            pred = np.zeros((0, 4))
            pred_labels = np.zeros(0, dtype=np.int64)
        else:
            found = rng.random(count) < 0.8
            hits, hit_labels = gt[found], labels[found].copy()
            wrong = rng.random(len(hits)) < 0.1  # right place, wrong class
            hit_labels[wrong] = rng.integers(1, num_classes + 1, int(wrong.sum()))
            again = hits[rng.random(len(hits)) < 0.3]  # a second detection of the same object
            false_alarms = _random_boxes(rng, int(rng.integers(0, 6)) + (25 if many_detections else 0))
            pred = np.concatenate([
                _jitter(rng, hits, 0.08), _jitter(rng, again, 0.15), false_alarms,
            ])
            pred_labels = np.concatenate([
                hit_labels, rng.integers(1, num_classes + 1, len(again)),
                np.ones(len(false_alarms), dtype=np.int64) if many_detections
                else rng.integers(1, num_classes + 1, len(false_alarms)),
            ]).astype(np.int64)
            order = rng.permutation(len(pred))
            pred, pred_labels = pred[order], pred_labels[order]
        if kind == 1:  # a class that is only ever detected, never there
            pred = np.concatenate([pred, _random_boxes(rng, 2)])
            pred_labels = np.concatenate([pred_labels, [num_classes + 1] * 2]).astype(np.int64)
        if kind == 7:  # a class that is there but never detected
            gt = np.concatenate([gt, _random_boxes(rng, 1)])
            labels = np.concatenate([labels, [num_classes + 2]])
            crowd, difficult = np.append(crowd, False), np.append(difficult, False)
            areas = np.append(areas, (gt[-1, 2] - gt[-1, 0]) * (gt[-1, 3] - gt[-1, 1]))
        scores = rng.random(len(pred))
        if round_scores:
            scores = np.round(scores, 1)  # many ties: the order rules must agree too
        data["pred_boxes"].append(pred)
        data["pred_labels"].append(pred_labels)
        data["pred_scores"].append(scores)
        data["gt_boxes"].append(gt)
        data["gt_labels"].append(labels.astype(np.int64))
        data["gt_iscrowd"].append(crowd)
        data["gt_difficult"].append(difficult)
        data["gt_areas"].append(areas)
    return data
