"""Error analysis as in the SSD paper (its Fig. 3 and Fig. 4), after Hoiem, Chodpathumwan and Dai,
"Diagnosing error in object detectors" (ECCV 2012).

    analysis = error_analysis(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_difficult,
                              class_names=names)              # groups: VOC's / the shapes' by default
    analysis.shares_at("animals")     # {'Cor': 0.62, 'Loc': 0.14, ...} among the top N = objects detections
    analysis.trends["animals"]        # the cumulative fractions of Fig. 3 (top row), N = 1/8 ... 8 x objects
    analysis.size[label], analysis.aspect[label]   # recall and (normalised) AP per bin, Fig. 4
    analysis.confusion                # (K, K + 1) counts: detected class x the class it lies on (+ background)

The inputs are those of ``voc_ap``: lists with one array per image, boxes xyxy in any unit shared by
detections and ground truth (``run.predict_dataset`` gives pixels, labels in the dataset's space).
Nothing here knows about models, so hand-made detection sets test it.

What each detection is. For each class c, its detections are ranked by score (ties keep the input
order, image by image). Walking down the list, each detection d of c is exactly one of:

    Cor  correct: IoU >= 0.5 with an object of c that no higher-ranked detection took; d takes the one
         of highest IoU among those (Hoiem's rule: a second, free object can still be found, where the
         VOC devkit would call d a duplicate of the best one; the two agree when no detection has
         IoU >= 0.5 with two objects of its class);
    Loc  localisation error: not Cor, and IoU >= 0.1 with an object of c: either poorly placed
         (0.1 <= IoU < 0.5) or a duplicate (IoU >= 0.5 with an object already taken);
    Sim  confusion with a similar class: IoU >= 0.1 with an object of another class of c's group;
    Oth  confusion with another class: IoU >= 0.1 with an object of a class outside c's group;
    BG   background: IoU < 0.1 with every object.

Precedence, when several apply: Cor, then Loc, then Sim, then Oth, then BG (a detection half on its
own object and fully on a dog is Loc: the box, not the class, is what is wrong). Difficult objects
are ignored as the VOC evaluator ignores them: a detection whose best-overlapping object of its own
class is difficult with IoU >= 0.5 is left out of everything (no category, no rank); difficult
objects never count as objects to find, but they do count for Loc, Sim and Oth (a box on one is not
background). IoU is continuous, |a n b| / |a u b| (as ``voc_ap``).

Fig. 3 (top row), per group of classes. For a multiple m of the number of objects, each class c of
the group contributes its top round(m * P_c) detections (P_c: its non-difficult objects; all of them
if it has fewer); the fractions are the pooled counts of each category over the pooled detections,
and the recall lines are averaged over the group's classes: "strong" is the recall of Cor (IoU 0.5),
"weak" the recall when matching at IoU 0.1 (localisation errors forgiven, duplicates not). The x axis
is m, labelled in units of the group's mean P_c, as in the paper ("total detections (x 357)"). Hoiem's
plotting code counts a class that runs out of detections as 0 detections; here it counts all it has.

Fig. 4 (``analysis_bins.py``): per class, recall and (normalised) AP in five bins of object area
and of aspect ratio, the bin edges the class's own percentiles.

Confusion matrix. Over the top round(m * P_c) detections of each class c (m = ``confusion_multiple``,
1 by default: as many detections as objects), row c, column: c for Cor and Loc, the class of the
most-overlapping similar object for Sim, of the most-overlapping other object for Oth, and the last
column (background) for BG. So a row's diagonal is Cor + Loc, its off-diagonal entries inside the
group are Sim, outside it Oth, and its last entry BG.

Class groups (``analysis_groups.py``): which classes are "similar"; by default the paper's VOC
groups and, for the built-in shapes, "with corners" and "round"; a class no group names is a group
of its own.

What ``error_analysis`` returns is in ``analysis_result.py``. Every public name of the three files
is importable from here.
"""

from __future__ import annotations

import math

import numpy as np

from ..boxes import iou
from .analysis_bins import (  # noqa: F401 - re-exported: they lived here
    ASPECT_BINS,
    BIN_PERCENTILES,
    SIZE_BINS,
    Sensitivity,
    _aps,
    _sensitivity,
)
from .analysis_groups import SHAPES_GROUPS, VOC_GROUPS, default_groups, resolve_groups  # noqa: F401 - re-exported
from .analysis_result import (  # noqa: F401 - re-exported: they lived here
    BG,
    CATEGORIES,
    COR,
    IGNORED,
    LOC,
    OTH,
    SIM,
    STRONG_IOU,
    WEAK_IOU,
    ErrorAnalysis,
    GroupTrend,
)
from .inputs import flatten_inputs

DEFAULT_MULTIPLES = 2.0 ** (np.arange(-12, 13) / 4)  # (25,) 1/8 ... 8, four steps per doubling


# --------------------------------------------------------------------------
# the computation
# --------------------------------------------------------------------------

def _overlaps(tables, group_of):
    """Per image its (D_i, G_i) IoU table, and per detection the best IoU with objects of its own class
    (and which), of its group's other classes and of the other groups (and their labels)."""
    count = tables.det_labels.shape[0]
    own_iou, sim_iou, oth_iou = (np.zeros(count) for _ in range(3))
    own_best, sim_label, oth_label = (np.full(count, -1, dtype=np.int64) for _ in range(3))
    tables_per_image = []
    for image in range(tables.num_images):
        d0, d1 = tables.det_offsets[image], tables.det_offsets[image + 1]
        g0, g1 = tables.gt_offsets[image], tables.gt_offsets[image + 1]
        if d1 == d0 or g1 == g0:
            tables_per_image.append(np.zeros((d1 - d0, g1 - g0)))
            continue
        overlaps = iou(tables.det_boxes[d0:d1], tables.gt_boxes[g0:g1], validate=False)  # (D_i, G_i)
        tables_per_image.append(overlaps)
        det_labels, gt_labels = tables.det_labels[d0:d1], tables.gt_labels[g0:g1]
        same = det_labels[:, None] == gt_labels[None, :]  # (D_i, G_i)
        same_group = group_of[det_labels][:, None] == group_of[gt_labels][None, :]  # (D_i, G_i)
        rows = np.arange(d1 - d0)
        for mask, best_iou, best_label in ((same_group & ~same, sim_iou, sim_label), (~same_group, oth_iou, oth_label)):
            masked = np.where(mask, overlaps, -1.0)  # (D_i, G_i) objects outside the mask never count
            column = masked.argmax(axis=1)  # (D_i,) the first best on ties, as the devkit
            best = masked[rows, column]
            best_iou[d0:d1] = np.maximum(best, 0.0)
            best_label[d0:d1] = np.where(best >= 0, gt_labels[column], -1)
        masked = np.where(same, overlaps, -1.0)  # (D_i, G_i)
        column = masked.argmax(axis=1)  # (D_i,)
        best = masked[rows, column]
        own_iou[d0:d1] = np.maximum(best, 0.0)
        own_best[d0:d1] = np.where(best >= 0, g0 + column, -1)
    return tables_per_image, own_iou, own_best, sim_iou, sim_label, oth_iou, oth_label


def _greedy_match(tables, per_image, order, difficult, threshold, candidate):
    """(D,) the object each detection takes (-1: none), walking ``order`` (score order per class):
    the free non-difficult object of its class with the highest IoU >= threshold (Hoiem's rule)."""
    matched = np.full(tables.det_labels.shape[0], -1, dtype=np.int64)
    taken = np.zeros(tables.gt_labels.shape[0], dtype=bool)
    for d in order[candidate[order]]:  # only detections that overlap some object enough can take one
        image = tables.det_image[d]
        g0, g1 = tables.gt_offsets[image], tables.gt_offsets[image + 1]
        row = per_image[image][d - tables.det_offsets[image]]  # (G_i,)
        free = (tables.gt_labels[g0:g1] == tables.det_labels[d]) & ~difficult[g0:g1] & ~taken[g0:g1] \
            & (row >= threshold)
        if free.any():
            best = g0 + int(np.argmax(np.where(free, row, -1.0)))
            matched[d] = best
            taken[best] = True
    return matched


def _top_counts(codes, positives, multiple):
    """(5,) counts of each category among the top round(multiple * positives) codes (all if fewer)."""
    top = codes[:math.floor(multiple * positives + 0.5)]
    return np.bincount(top, minlength=5)[:5]


def _recall_at(recall, positives, multiple):
    n = min(math.floor(multiple * positives + 0.5), recall.size)
    return float(recall[n - 1]) if n > 0 else 0.0


def _group_trend(labels, ranked, positives, recall_strong, recall_weak, multiples):
    """(``GroupTrend``, (5,) fractions at N = P_c) of the classes ``labels``; classes without objects sit out."""
    present = [c for c in labels if positives[c] > 0]
    empty = np.zeros(5, np.int64)
    counts = np.array([sum((_top_counts(ranked[c], positives[c], m) for c in present), empty)
                       for m in multiples]).reshape(-1, 5)  # (T, 5)
    totals = counts.sum(axis=1, keepdims=True)  # (T, 1)
    fractions = np.divide(counts, totals, out=np.full(counts.shape, np.nan), where=totals > 0)
    lines = [np.array([np.mean([_recall_at(recall[c], positives[c], m) for c in present]) if present else np.nan
                       for m in multiples]) for recall in (recall_strong, recall_weak)]  # 2 x (T,)
    mean_objects = float(np.mean([positives[c] for c in present])) if present else math.nan
    at_one = sum((_top_counts(ranked[c], positives[c], 1.0) for c in present), empty)
    at_objects = at_one / at_one.sum() if at_one.sum() else np.full(5, np.nan)
    return GroupTrend(tuple(labels), mean_objects, multiples, counts, fractions, *lines), at_objects


def _confusion_matrix(rows, category, positives, sim_label, oth_label, multiple):
    """(K, K + 1) counts over each class's top round(multiple * P_c) detections (module docstring)."""
    labels = list(rows)
    column_of = {label: k for k, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    for k, label in enumerate(labels):
        top = rows[label][:math.floor(multiple * positives[label] + 0.5)]
        codes = category[top]
        target = np.select([codes <= LOC, codes == SIM, codes == OTH], [label, sim_label[top], oth_label[top]],
                           default=0)  # the class it lies on; 0: the background
        for t in target.tolist():
            confusion[k, column_of[t] if t > 0 else len(labels)] += 1
    return confusion


def error_analysis(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_difficult=None,
                   class_names=None, groups=None, multiples=DEFAULT_MULTIPLES, normalized_count=None,
                   confusion_multiple: float = 1.0) -> ErrorAnalysis:
    """Hoiem-style error analysis of detections against ground truth (the module docstring has the rules).

    pred_boxes[i] (D_i, 4) xyxy, pred_labels[i] (D_i,) ints 1..L-1, pred_scores[i] (D_i,);
    gt_boxes[i] (G_i, 4) xyxy, gt_labels[i] (G_i,), gt_difficult[i] (G_i,) bools or None: as ``voc_ap``.
    class_names: L names with the background at 0 (default: "class k" up to the largest label).
    groups: {group: [class names]} (default ``default_groups(class_names)``).
    multiples (T,): the m of Fig. 3, detections per class as multiples of its objects.
    normalized_count: N of the normalised AP (default: the mean P_c over classes with objects).
    confusion_multiple: the confusion matrix counts each class's top round(m * P_c) detections.
    """
    tables = flatten_inputs(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels,
                            gt_difficult=(gt_difficult, "flag"))
    difficult = tables.gt_extra["gt_difficult"]
    if difficult is None:
        difficult = np.zeros(tables.gt_labels.shape, dtype=bool)
    largest = int(max(tables.det_labels.max(initial=0), tables.gt_labels.max(initial=0)))
    if class_names is None:
        class_names = ["background"] + [f"class {k}" for k in range(1, largest + 1)]
    class_names = [str(n) for n in class_names]
    if largest >= len(class_names):
        where = "pred_labels" if tables.det_labels.max(initial=0) == largest else "gt_labels"
        raise ValueError(f"error_analysis: {where} holds label {largest} but class_names has only "
                         f"{len(class_names)} entries (labels 1..{len(class_names) - 1})")
    multiples = np.asarray(multiples, dtype=np.float64).reshape(-1)
    if multiples.size == 0 or not np.all(np.isfinite(multiples) & (multiples > 0)):
        raise ValueError(f"error_analysis: multiples must be positive finite numbers; got {multiples.tolist()}")
    if not (math.isfinite(confusion_multiple) and confusion_multiple > 0):
        raise ValueError(f"error_analysis: confusion_multiple must be a positive number; got {confusion_multiple}")
    resolved = resolve_groups(class_names, groups)
    group_of = np.zeros(len(class_names), dtype=np.int64)  # label -> group index (0: background's own)
    for index, labels in enumerate(resolved.values(), start=1):
        group_of[list(labels)] = index

    per_image, own_iou, own_best, sim_iou, sim_label, oth_iou, oth_label = _overlaps(tables, group_of)
    ignored = np.zeros(own_iou.shape, dtype=bool)  # (D,) on a difficult object, as the VOC evaluator
    has_own = own_best >= 0
    ignored[has_own] = (own_iou[has_own] >= STRONG_IOU) & difficult[own_best[has_own]]
    order = np.lexsort((-tables.det_scores, tables.det_labels))  # (D,) class by class, best score first, stable
    order = order[~ignored[order]]
    # the best IoU with a non-difficult object of the own class decides who may take one
    strong = _greedy_match(tables, per_image, order, difficult, STRONG_IOU, own_iou >= STRONG_IOU)
    weak = _greedy_match(tables, per_image, order, difficult, WEAK_IOU, own_iou >= WEAK_IOU)
    category = np.select(
        [ignored, strong >= 0, own_iou >= WEAK_IOU, sim_iou >= WEAK_IOU, oth_iou >= WEAK_IOU],
        [IGNORED, COR, LOC, SIM, OTH], default=BG).astype(np.int64)

    labels_sorted = tables.det_labels[order]
    ranked, recall_strong, recall_weak, positives, left_out, ap, ap_n, rows = {}, {}, {}, {}, {}, {}, {}, {}
    for label in range(1, len(class_names)):
        rows[label] = order[np.searchsorted(labels_sorted, label):np.searchsorted(labels_sorted, label, "right")]
        positives[label] = int(np.count_nonzero((tables.gt_labels == label) & ~difficult))
        left_out[label] = int(np.count_nonzero(ignored & (tables.det_labels == label)))
    with_objects = [p for p in positives.values() if p > 0]
    if normalized_count is None:
        normalized_count = float(np.mean(with_objects)) if with_objects else 1.0
    if not (math.isfinite(normalized_count) and normalized_count > 0):
        raise ValueError(f"error_analysis: normalized_count must be a positive number; got {normalized_count}")

    size, aspect = {}, {}
    widths = tables.gt_boxes[:, 2] - tables.gt_boxes[:, 0]  # (G,)
    heights = tables.gt_boxes[:, 3] - tables.gt_boxes[:, 1]  # (G,)
    areas = widths * heights
    ratios = np.divide(widths, heights, out=np.full(widths.shape, np.inf), where=heights > 0)
    for label, mine in rows.items():
        codes = category[mine]
        ranked[label] = codes
        count = max(positives[label], 1)
        recall_strong[label] = np.cumsum(codes == COR) / count if positives[label] else np.full(codes.shape, np.nan)
        recall_weak[label] = np.cumsum(weak[mine] >= 0) / count if positives[label] else np.full(codes.shape, np.nan)
        is_tp = codes == COR
        ap[label], ap_n[label] = _aps(is_tp, np.ones_like(is_tp), positives[label], normalized_count)
        objects = np.nonzero((tables.gt_labels == label) & ~difficult)[0]  # (P_c,)
        found = np.isin(objects, strong[mine][is_tp])
        size[label] = _sensitivity(areas[objects], objects, found, is_tp, strong[mine], normalized_count)
        aspect[label] = _sensitivity(ratios[objects], objects, found, is_tp, strong[mine], normalized_count)

    trends, at_objects = {}, {}
    for group, labels in resolved.items():
        trends[group], at_objects[group] = _group_trend(labels, ranked, positives, recall_strong, recall_weak,
                                                        multiples)
    confusion = _confusion_matrix(rows, category, positives, sim_label, oth_label, confusion_multiple)
    return ErrorAnalysis(
        class_names=class_names, groups=resolved, category=category, det_offsets=tables.det_offsets,
        ranked=ranked, recall_strong=recall_strong, recall_weak=recall_weak, num_positives=positives,
        ignored=left_out, ap=ap, ap_normalized=ap_n, trends=trends, size=size, aspect=aspect,
        confusion=confusion, confusion_labels=list(rows), normalized_count=float(normalized_count),
        confusion_multiple=float(confusion_multiple), at_objects=at_objects,
    )


def analyze_predictions(predictions, class_names, groups=None, **options) -> ErrorAnalysis:
    """``error_analysis`` of a ``run.Predictions`` (from ``predict_dataset``). COCO crowd regions count
    as difficult objects: a detection on one is ignored, as the VOC evaluator ignores difficult ones."""
    p = predictions
    if not p.gt_boxes:
        raise ValueError("nothing to analyse: no image was predicted (an empty dataset, or every image skipped)")
    boxes = [np.concatenate([g, c]) for g, c in zip(p.gt_boxes, p.gt_crowd_boxes)]
    labels = [np.concatenate([g, c]) for g, c in zip(p.gt_labels, p.gt_crowd_labels)]
    difficult = [np.concatenate([d, np.ones(len(c), bool)]) for d, c in zip(p.gt_difficult, p.gt_crowd_labels)]
    return error_analysis(p.boxes, p.labels, p.scores, boxes, labels, difficult,
                          class_names=class_names, groups=groups, **options)
