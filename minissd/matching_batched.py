"""Caffe's matching for a whole padded batch, with array operations only (no host sync).

``minissd.matching.match`` handles one image and, in its greedy bipartite
step, reads the best (ground truth, default box) pair back to the host once
per ground truth: on a GPU every read is a synchronisation that stalls the
training step. Here the images of a batch are matched side by side.

The ground truth of N images is padded to a common count G:

    gt_boxes (N, G, 4) xyxy,  gt_labels (N, G),  valid (N, G) bool (False: padding)

1. IoU of every ground truth with every default box, (N, G, P); padding rows
   are set to -1 so they never win anything.
2. Threshold step: every default box takes its best ground truth when that
   IoU >= ``iou_threshold`` and > 0 (ties: the lower ground-truth index).
3. Greedy bipartite step, G rounds: in each round every image takes its
   best remaining pair (n, g, p) from its flattened (G*P) table - the same
   first maximum ``match_indices`` finds - assigns p to g if that IoU > 0,
   then knocks out row g and column p. An image whose best is <= 0 has
   finished: its table only shrinks, so its later rounds assign nothing, and
   no Python ``if`` has to ask (which would be a host sync).

The result is ``match``'s for every image (tests/test_matching_batched.py
checks it against ``match`` and ``match_reference``); ``pad_ground_truth``
builds the padded arrays from per-image lists on the host.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module, is_cupy_array, to_numpy
from .boxes import DEFAULT_VARIANCES, check_boxes, cxcywh_to_xyxy, encode, iou_batched
from .matching import BACKGROUND, IOU_RULE, LABEL_RULE
from .validate import as_float_array, as_integer_labels, check_last_axis, check_threshold, check_variances


def pad_ground_truth(boxes_list, labels_list, max_boxes: int | None = None, dtype=np.float32):
    """Per-image lists -> padded host arrays for ``match_batch_device``.

    boxes_list: N arrays (G_n, 4) xyxy normalised (or lists of rows; an empty
    image may be (0,) or []).  labels_list: N arrays (G_n,) of integers >= 1
    (whole-number floats accepted, 1.7 refused).
    Returns (gt_boxes (N, G, 4) ``dtype``, gt_labels (N, G) int64, valid (N, G) bool),
    G = ``max_boxes`` or the largest G_n; padding is zeros and valid False.
    Every box and label is checked here, on the host, naming image and box.
    """
    function = "pad_ground_truth"
    for name, values in (("boxes_list", boxes_list), ("labels_list", labels_list)):
        if not isinstance(values, (list, tuple)):  # one padded array is not a list of images
            raise TypeError(f"{function}: {name} must be a list or tuple with one array per image; "
                            f"got {type(values).__name__}")
    if len(boxes_list) != len(labels_list):
        raise ValueError(f"{function} needs one labels array per boxes array; "
                         f"got {len(boxes_list)} and {len(labels_list)}")
    boxes_host, labels_host = [], []
    for n, (boxes, labels) in enumerate(zip(boxes_list, labels_list)):
        boxes = as_float_array(to_numpy(boxes) if is_cupy_array(boxes) else boxes, f"boxes_list[{n}]", function)
        boxes = np.asarray(boxes, dtype=dtype)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        check_last_axis(boxes, f"boxes_list[{n}]", function, ndim=2, layout="(G, 4)")
        check_boxes(boxes, f"boxes_list[{n}]", function=function)
        labels = as_integer_labels(to_numpy(labels) if is_cupy_array(labels) else labels, f"labels_list[{n}]",
                                   function, low=1, rule=LABEL_RULE)
        labels = labels.reshape(-1) if labels.size == 0 or labels.ndim == 0 else labels
        if labels.shape != (len(boxes),):
            raise ValueError(f"{function}: image {n}: {len(boxes)} boxes but {labels.size} labels "
                             f"(labels_list[{n}] has shape {tuple(labels.shape)})")
        boxes_host.append(boxes)
        labels_host.append(labels)
    counts = [len(b) for b in boxes_host]
    if max_boxes is None:
        size = max(counts, default=0)
    else:
        if isinstance(max_boxes, bool) or not isinstance(max_boxes, (int, np.integer)) or max_boxes < 0:
            raise ValueError(f"{function}: max_boxes = {max_boxes!r} must be an integer >= 0")
        size = int(max_boxes)
    if counts and max(counts) > size:
        n = int(np.argmax(counts))
        raise ValueError(f"{function}: image {n} has {counts[n]} ground-truth boxes, more than max_boxes = {size}")
    gt_boxes = np.zeros((len(counts), size, 4), dtype=dtype)
    gt_labels = np.zeros((len(counts), size), dtype=np.int64)
    valid = np.zeros((len(counts), size), dtype=bool)
    for n, (boxes, labels) in enumerate(zip(boxes_host, labels_host)):  # host-side packing
        gt_boxes[n, :len(boxes)] = boxes
        gt_labels[n, :len(boxes)] = labels
        valid[n, :len(boxes)] = True
    return gt_boxes, gt_labels, valid


def _check_padded(gt_boxes, gt_labels, valid, priors, validate: bool, xp, function: str):
    """Shapes and dtypes always (no host sync); values of the valid entries when ``validate``.

    Returns (gt_boxes, gt_labels as int64 or None, priors), lists converted.
    """
    gt_boxes = as_float_array(gt_boxes, "gt_boxes", function, xp)
    priors = as_float_array(priors, "priors", function, xp)
    if gt_boxes.ndim != 3 or gt_boxes.shape[-1] != 4:
        raise ValueError(f"{function}: gt_boxes must have shape (N, G, 4); got {tuple(gt_boxes.shape)}")
    expected = tuple(gt_boxes.shape[:2])
    if valid is None:
        raise TypeError(f"{function}: valid is None; expected a bool mask (N, G) = {expected}")
    valid = xp.asarray(valid) if isinstance(valid, (list, tuple)) else valid
    for name, array in (("gt_labels", gt_labels), ("valid", valid)):
        if array is not None and hasattr(array, "shape") and tuple(array.shape) != expected:
            raise ValueError(f"{function}: {name} must have shape (N, G) = {expected} to go with gt_boxes; "
                             f"got {tuple(array.shape)}")
    if valid.dtype != bool:
        raise ValueError(f"{function}: valid must be a bool mask (N, G); got dtype {valid.dtype}")
    check_last_axis(priors, "priors", function, ndim=2, layout="(P, 4) cxcywh")
    if gt_labels is not None:
        gt_labels = as_integer_labels(gt_labels, "gt_labels", function, xp, mask=valid, validate=validate,
                                      index_names=("image", "box"),
                                      rule="labels are integers >= 1; 0 is the background")
        if tuple(gt_labels.shape) != expected:
            raise ValueError(f"{function}: gt_labels must have shape (N, G) = {expected} to go with gt_boxes; "
                             f"got {tuple(gt_labels.shape)}")
    if not validate:
        return gt_boxes, gt_labels, valid, priors
    check_boxes(priors, "priors", fmt="cxcywh", function=function)
    if valid.size == 0:
        return gt_boxes, gt_labels, valid, priors
    check_boxes(xp.where(valid[..., None], gt_boxes, 0), "gt_boxes", function=function)  # padding is not checked
    if gt_labels is not None:
        as_integer_labels(gt_labels, "gt_labels", function, low=1, mask=valid, index_names=("image", "box"),
                          rule=LABEL_RULE)
    return gt_boxes, gt_labels, valid, priors


def match_indices_batch_device(gt_boxes, valid, priors, iou_threshold: float = 0.5, validate: bool = True):
    """For each image and default box, the index of its matched ground truth, or -1.

    gt_boxes: (N, G, 4) xyxy normalised.  valid: (N, G) bool.  priors: (P, 4) cxcywh.
    Returns (N, P) int64, row n equal to ``match_indices(gt_boxes[n][valid[n]], priors)``
    with indices into the padded axis. ``validate=False`` skips the box check,
    the only host sync.
    """
    xp = get_array_module(gt_boxes, valid, priors)
    iou_threshold = check_threshold(iou_threshold, "iou_threshold", "match_indices_batch_device", rule=IOU_RULE)
    gt_boxes, _, valid, priors = _check_padded(gt_boxes, None, valid, priors, validate, xp,
                                               "match_indices_batch_device")
    num_images, num_gt = valid.shape
    num_priors = priors.shape[0]
    if num_gt == 0:
        return xp.full((num_images, num_priors), -1, dtype=xp.int64)
    overlaps = iou_batched(gt_boxes, cxcywh_to_xyxy(priors, validate=False))  # (N, G, P)
    overlaps = xp.where(valid[:, :, None], overlaps, -1)  # padding never matches

    # 2. threshold step first: the bipartite matches overwrite it below
    best_gt = overlaps.argmax(axis=1)  # (N, P)
    best_overlap = overlaps.max(axis=1)  # (N, P); IoU 0 never makes a positive, even at threshold 0
    matched = xp.where((best_overlap >= iou_threshold) & (best_overlap > 0), best_gt, -1).astype(xp.int64)

    # 3. greedy bipartite step, one round per ground-truth slot, all images at once
    table = overlaps.reshape(num_images, num_gt * num_priors).copy()  # (N, G*P), entry g*P + p
    rows = xp.arange(num_images)  # (N,)
    row_of_gt = xp.arange(num_priors)[None, :]  # (1, P) offsets of one ground truth's row
    column_of_prior = (xp.arange(num_gt) * num_priors)[None, :]  # (1, G) offsets of one default box's column
    for _ in range(num_gt):
        flat = table.argmax(axis=1)  # (N,) each image's best remaining pair
        best = table[rows, flat]  # (N,)
        gt_index, prior_index = flat // num_priors, flat % num_priors  # (N,), (N,)
        matched[rows, prior_index] = xp.where(best > 0, gt_index, matched[rows, prior_index])
        table[rows[:, None], gt_index[:, None] * num_priors + row_of_gt] = -1  # that ground truth is taken ...
        table[rows[:, None], column_of_prior + prior_index[:, None]] = -1  # ... and so is that default box
    return matched


def targets_from_indices_batch(matched, gt_boxes, gt_labels, priors, variances=DEFAULT_VARIANCES):
    """(N, P) matched indices -> (loc_targets (N, P, 4), conf_targets (N, P) int64).

    The batched ``minissd.matching.targets_from_indices``: encoded offsets of
    each positive's box (zeros for background) and its label (0 for background).
    """
    xp = get_array_module(matched, gt_boxes, gt_labels, priors)
    dtype = priors.dtype
    num_images, num_priors = matched.shape
    if gt_boxes.shape[1] == 0:
        return (xp.zeros((num_images, num_priors, 4), dtype=dtype),
                xp.zeros((num_images, num_priors), dtype=xp.int64))
    positive = matched >= 0  # (N, P)
    safe = xp.where(positive, matched, 0)  # (N, P) an index for every default box
    index = xp.broadcast_to(safe[..., None], (num_images, num_priors, 4))  # (N, P, 4)
    assigned = xp.take_along_axis(gt_boxes, index, axis=1)  # (N, P, 4), encoded in the finer dtype as in match
    # background rows get the default box itself, so encode's log stays finite; zeroed below
    assigned = xp.where(positive[..., None], assigned, cxcywh_to_xyxy(priors, validate=False))
    loc = encode(assigned, priors, variances, validate=False)  # (N, P, 4)
    loc = xp.where(positive[..., None], loc, 0).astype(dtype, copy=False)
    labels = xp.take_along_axis(gt_labels, safe, axis=1).astype(xp.int64)  # (N, P)
    return loc, xp.where(positive, labels, BACKGROUND)


def match_batch_device(gt_boxes, gt_labels, valid, priors, iou_threshold: float = 0.5,
                       variances=DEFAULT_VARIANCES, validate: bool = True):
    """Training targets for a padded batch, on the batch's device, without host syncs.

    gt_boxes: (N, G, 4) xyxy normalised.  gt_labels: (N, G) ints in 1..L-1 where valid.
    valid: (N, G) bool.  priors: (P, 4) cxcywh.
    Returns (loc_targets (N, P, 4), conf_targets (N, P) int64), image n equal
    to ``match(gt_boxes[n][valid[n]], gt_labels[n][valid[n]], priors)``.
    ``validate=True`` checks the valid boxes and labels and the default boxes
    (host syncs, and errors that name the image and the box); a training step
    passes False. Always checked, at no sync: shapes, dtypes, ``iou_threshold``
    in [0, 1], the variances. Labels must have an integer dtype with
    validate=False (telling 2.0 from 2.2 needs a look at the values).
    """
    xp = get_array_module(gt_boxes, gt_labels, valid, priors)
    iou_threshold = check_threshold(iou_threshold, "iou_threshold", "match_batch_device", rule=IOU_RULE)
    variances = check_variances(variances, "match_batch_device")
    gt_boxes, gt_labels, valid, priors = _check_padded(gt_boxes, gt_labels, valid, priors, validate, xp,
                                                       "match_batch_device")
    matched = match_indices_batch_device(gt_boxes, valid, priors, iou_threshold, validate=False)  # (N, P)
    return targets_from_indices_batch(matched, gt_boxes, gt_labels, priors, variances)
