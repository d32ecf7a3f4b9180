"""Checking and flattening the per-image inputs of the evaluators.

Both ``voc_ap`` and ``coco_ap`` take lists with one array per image:

    pred_boxes[i]  (D_i, 4) xyxy     pred_labels[i] (D_i,) ints    pred_scores[i] (D_i,)
    gt_boxes[i]    (G_i, 4) xyxy     gt_labels[i]   (G_i,) ints    (+ per-object flags)

``flatten_inputs`` checks every array (saying which list, which image and
which box is wrong) and concatenates them into one table of detections and
one of ground-truth objects, each row remembering its image. Evaluation is
bookkeeping over many small, ragged groups, so it runs on the host in
float64: CuPy arrays are copied to NumPy here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..backend import to_numpy
from ..boxes import check_boxes


@dataclass
class EvalTables:
    """Detections and ground truth of all images, concatenated in image order.

    D detections, G ground-truth objects in all, N images.
    det_image (D,) int64, det_boxes (D, 4) float64, det_labels (D,) int64, det_scores (D,) float64;
    gt_image (G,) int64, gt_boxes (G, 4) float64, gt_labels (G,) int64;
    det_offsets, gt_offsets (N + 1,): image i owns rows offsets[i]:offsets[i + 1];
    gt_extra: name -> (G,) array of an optional per-object input (difficult, iscrowd, areas), None if not given.
    """

    num_images: int
    det_image: np.ndarray
    det_boxes: np.ndarray
    det_labels: np.ndarray
    det_scores: np.ndarray
    det_offsets: np.ndarray
    gt_image: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    gt_offsets: np.ndarray
    gt_extra: dict = field(default_factory=dict)

    def labels(self) -> np.ndarray:
        """(K,) sorted labels that occur in the ground truth or the detections."""
        return np.union1d(self.gt_labels, self.det_labels).astype(np.int64)


def _as_list(values, name: str) -> list:
    if isinstance(values, np.ndarray) and values.dtype != object and values.ndim < 2:
        raise ValueError(f"{name} must be a list with one array per image; got one array of shape {values.shape}")
    try:
        return list(values)
    except TypeError:
        raise ValueError(f"{name} must be a list with one array per image; got {type(values).__name__}") from None


def _boxes(array, name: str, image: int) -> np.ndarray:
    boxes = np.asarray(to_numpy(array), dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)  # an image without boxes may be given as [] or (0,)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        hint = " (one array per image: wrap a single image's boxes in a list)" if boxes.ndim == 1 else ""
        raise ValueError(
            f"{name}[{image}] (image {image}) has shape {boxes.shape}; expected (count, 4) xyxy boxes{hint}"
        )
    return check_boxes(boxes, f"{name}[{image}]")  # names the box: "gt_boxes[3][1] = [...] breaks x2 >= x1"


_DTYPES = {"flag": bool, "number": np.float64}
_RULES = {
    "label": "labels are integers >= 1 (0 is the background, never a detection or an object)",
    "score": "scores must be finite",
    "number": "values must be finite and >= 0",
}


def _per_box(array, name: str, image: int, count: int, boxes_name: str, kind: str) -> np.ndarray:
    """One value per box of image ``image``; kind 'label', 'score', 'number' (>= 0) or 'flag' (bool)."""
    values = np.asarray(to_numpy(array))
    if values.size == 0 and count == 0:
        values = values.reshape(0)
    if values.shape != (count,):
        raise ValueError(
            f"{name}[{image}] (image {image}) has shape {values.shape} but {boxes_name}[{image}] "
            f"has {count} boxes; expected shape ({count},)"
        )
    if kind == "flag":
        return values.astype(bool)
    numbers = values.astype(np.float64)
    bad = ~np.isfinite(numbers)
    if kind == "label":
        bad |= (numbers != np.round(numbers)) | (numbers < 1)
    elif kind == "number":
        bad |= numbers < 0
    if bad.any():
        box = int(np.argmax(bad))
        raise ValueError(f"{name}[{image}][{box}] = {values[box].item()!r} (image {image}, box {box}): {_RULES[kind]}")
    return numbers.astype(np.int64) if kind == "label" else numbers


def flatten_inputs(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, **gt_extra) -> EvalTables:
    """Check the per-image lists and concatenate them into an ``EvalTables``.

    ``gt_extra`` holds optional per-object lists, keyword name -> (list or None, kind),
    kind 'flag' (booleans such as difficult or iscrowd) or 'number' (areas >= 0).
    Raises ValueError naming the list, the image and the box of the first problem.
    """
    lists = {
        "pred_boxes": _as_list(pred_boxes, "pred_boxes"),
        "pred_labels": _as_list(pred_labels, "pred_labels"),
        "pred_scores": _as_list(pred_scores, "pred_scores"),
        "gt_boxes": _as_list(gt_boxes, "gt_boxes"),
        "gt_labels": _as_list(gt_labels, "gt_labels"),
    }
    for name, (values, _) in gt_extra.items():
        if values is not None:
            lists[name] = _as_list(values, name)
    num_images = len(lists["gt_boxes"])
    for name, values in lists.items():
        if len(values) != num_images:
            raise ValueError(
                f"{name} has {len(values)} images but gt_boxes has {num_images}; "
                "every list needs one entry per image, in the same order"
            )

    det_boxes, det_labels, det_scores = [], [], []
    gt_box_list, gt_label_list = [], []
    extras = {name: [] for name in gt_extra}
    for image in range(num_images):
        boxes = _boxes(lists["pred_boxes"][image], "pred_boxes", image)
        count = boxes.shape[0]
        det_boxes.append(boxes)
        det_labels.append(_per_box(lists["pred_labels"][image], "pred_labels", image, count, "pred_boxes", "label"))
        det_scores.append(_per_box(lists["pred_scores"][image], "pred_scores", image, count, "pred_boxes", "score"))
        boxes = _boxes(lists["gt_boxes"][image], "gt_boxes", image)
        count = boxes.shape[0]
        gt_box_list.append(boxes)
        gt_label_list.append(_per_box(lists["gt_labels"][image], "gt_labels", image, count, "gt_boxes", "label"))
        for name, (values, kind) in gt_extra.items():
            if values is None:
                continue
            extras[name].append(_per_box(lists[name][image], name, image, count, "gt_boxes", kind))

    det_counts = np.array([len(b) for b in det_boxes], dtype=np.int64)
    gt_counts = np.array([len(b) for b in gt_box_list], dtype=np.int64)
    images = np.arange(num_images, dtype=np.int64)
    return EvalTables(
        num_images=num_images,
        det_image=np.repeat(images, det_counts),
        det_boxes=np.concatenate(det_boxes or [np.zeros((0, 4))]),
        det_labels=np.concatenate(det_labels or [np.zeros(0, np.int64)]),
        det_scores=np.concatenate(det_scores or [np.zeros(0)]),
        det_offsets=np.concatenate([[0], np.cumsum(det_counts)]),
        gt_image=np.repeat(images, gt_counts),
        gt_boxes=np.concatenate(gt_box_list or [np.zeros((0, 4))]),
        gt_labels=np.concatenate(gt_label_list or [np.zeros(0, np.int64)]),
        gt_offsets=np.concatenate([[0], np.cumsum(gt_counts)]),
        gt_extra={
            # the empty tail keeps the dtype when there are no images at all
            name: None if values is None else np.concatenate(extras[name] + [np.zeros(0, _DTYPES[kind])])
            for name, (values, kind) in gt_extra.items()
        },
    )
