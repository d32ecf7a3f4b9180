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
         VOC devkit would call d a duplicate of the best one; the two agree when objects of one class
         do not overlap each other by 0.5);
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

Fig. 4. Per class, its non-difficult objects fall into five bins by box area (XS, S, M, L, XL) and
by aspect ratio w / h (XT extra tall, T, M, W, XW extra wide). The bin edges are the class's own
10th, 30th, 70th and 90th percentiles, as Hoiem's code takes them: with n objects sorted, edge k is
the value at rank round(p_k * n) (1-based, at least 1), and an object's bin is the number of edges its
value exceeds; ten objects of distinct areas split 1, 2, 4, 2, 1. Per bin: the recall (objects of the
bin found by a Cor detection, over all detections) and the AP of the class against the objects of the
bin only (Cor detections of objects of other bins are left out, neither right nor wrong), plain and
normalised. Normalised precision (Hoiem) replaces the true positives TP by TP * N / P so that classes
and bins with few or many objects compare:

    P_N = R * N / (R * N + FP)       R = TP / P (recall),  FP the false positives so far,

with N one constant for every class and bin: by default the mean P_c over the classes with objects
(Hoiem et al. fix N near the average number of objects per class). AP and AP_N are the all-point area
under the envelope (``interpolated_ap``).

Confusion matrix. Over the top round(m * P_c) detections of each class c (m = ``confusion_multiple``,
1 by default: as many detections as objects), row c, column: c for Cor and Loc, the class of the
most-overlapping similar object for Sim, of the most-overlapping other object for Oth, and the last
column (background) for BG. So a row's diagonal is Cor + Loc, its off-diagonal entries inside the
group are Sim, outside it Oth, and its last entry BG.

Class groups (``groups``): a dict {group name: [class names]}. The default, ``default_groups``,
takes the paper's VOC groups for VOC class names (animals, vehicles, furniture; every other class in
a group of its own, as Hoiem's similar-class lists) and, for the built-in shapes, "with corners"
(square, triangle, star, cross) and "round" (circle): a square read as a star is the kind of
confusion a similar outline invites, a circle read as a square is not. A class that no group names
is a group of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..boxes import iou
from .inputs import flatten_inputs
from .voc import interpolated_ap

CATEGORIES = ("Cor", "Loc", "Sim", "Oth", "BG")
COR, LOC, SIM, OTH, BG = range(5)
IGNORED = -1  # a detection on a difficult object: no category, no rank
STRONG_IOU, WEAK_IOU = 0.5, 0.1
SIZE_BINS = ("XS", "S", "M", "L", "XL")
ASPECT_BINS = ("XT", "T", "M", "W", "XW")
BIN_PERCENTILES = (10, 30, 70, 90)  # Hoiem's edges, in percent
DEFAULT_MULTIPLES = 2.0 ** (np.arange(-12, 13) / 4)  # (25,) 1/8 ... 8, four steps per doubling

VOC_GROUPS = {
    "animals": ("bird", "cat", "cow", "dog", "horse", "sheep"),
    "vehicles": ("aeroplane", "bicycle", "boat", "bus", "car", "motorbike", "train"),
    "furniture": ("chair", "diningtable", "sofa"),
}
SHAPES_GROUPS = {"with corners": ("square", "triangle", "star", "cross"), "round": ("circle",)}


def _key(name) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


def default_groups(class_names) -> dict:
    """{group: [names]} for ``class_names`` (background at 0): VOC's and the shapes' groups, in that order,
    restricted to the classes present (members in label order), then every other class alone."""
    known = {_key(member): group for table in (VOC_GROUPS, SHAPES_GROUPS) for group, members in table.items()
             for member in members}
    order = [group for table in (VOC_GROUPS, SHAPES_GROUPS) for group in table]
    names = [str(n) for n in list(class_names)[1:]]
    grouped = {group: [n for n in names if known.get(_key(n)) == group] for group in order}
    groups = {group: members for group, members in grouped.items() if members}
    for name in names:
        if _key(name) not in known:
            groups[name if name not in groups else f"{name} (class)"] = [name]
    return groups


def resolve_groups(class_names, groups=None) -> dict:
    """{group: tuple of labels} covering every class once; a ValueError naming the group and entry."""
    names = list(class_names)
    if groups is None:
        groups = default_groups(names)
    if not isinstance(groups, dict):
        raise TypeError(f"groups must be a dict {{group name: [class names]}}; got {type(groups).__name__}")
    label_of = {_key(n): k for k, n in enumerate(names) if k > 0}
    resolved, owner = {}, {}
    for group, members in groups.items():
        if isinstance(members, (str, bytes)) or not hasattr(members, "__iter__"):
            raise ValueError(f"groups[{group!r}] must be a list of class names; got {members!r}")
        labels = []
        for position, member in enumerate(members):
            label = label_of.get(_key(member)) if isinstance(member, str) else None
            if label is None:
                raise ValueError(f"groups[{group!r}][{position}] = {member!r} is not a class of the data "
                                 f"(classes: {', '.join(map(str, names[1:]))})")
            if label in owner:
                raise ValueError(f"groups[{group!r}][{position}] = {member!r} is already in group "
                                 f"{owner[label]!r}; a class belongs to one group")
            owner[label] = group
            labels.append(label)
        if not labels:
            raise ValueError(f"groups[{group!r}] is empty; list at least one class")
        resolved[str(group)] = tuple(labels)
    for label in range(1, len(names)):
        if label not in owner:
            if str(names[label]) in resolved:
                raise ValueError(f"class {names[label]!r} is in no group, and a group already has its name")
            resolved[str(names[label])] = (label,)
    return resolved


@dataclass
class GroupTrend:
    """Fig. 3 (top row) for one group. T multiples m of the number of objects.

    classes: its labels; mean_objects: the mean P_c (the x axis unit); multiples (T,);
    counts (T, 5) pooled Cor/Loc/Sim/Oth/BG counts; fractions (T, 5) = counts / their row sum (NaN: none);
    recall_strong, recall_weak (T,): mean over the classes of recall at IoU 0.5 / 0.1.
    """

    classes: tuple
    mean_objects: float
    multiples: np.ndarray
    counts: np.ndarray
    fractions: np.ndarray
    recall_strong: np.ndarray
    recall_weak: np.ndarray


@dataclass
class Sensitivity:
    """Fig. 4 for one class and one characteristic (area or aspect ratio): 5 bins.

    edges (4,): the bin edges (NaN without objects); objects (5,) non-difficult objects per bin;
    recall, ap, ap_normalized (5,): NaN for an empty bin.
    """

    edges: np.ndarray
    objects: np.ndarray
    recall: np.ndarray
    ap: np.ndarray
    ap_normalized: np.ndarray


@dataclass
class ErrorAnalysis:
    """What ``error_analysis`` found; labels index ``class_names`` (background at 0).

    category (D,) int: Cor..BG codes (0..4, ``CATEGORIES``) of every detection, -1 ignored, in the flat
    order of the inputs (image by image); ``per_image()`` splits it back.
    ranked[c] (n_c,): the codes of c's counted detections in rank order; recall_strong[c], recall_weak[c]
    (n_c,) after each of them; num_positives[c]: P_c; ignored[c]: detections left out (difficult).
    ap[c], ap_normalized[c]: the class's AP and normalised AP (NaN without objects).
    trends[group]: ``GroupTrend``; size[c], aspect[c]: ``Sensitivity``.
    confusion (K, K + 1) int64: rows and the first K columns are ``confusion_labels``, the last
    column the background (module docstring).
    """

    class_names: list
    groups: dict
    category: np.ndarray
    det_offsets: np.ndarray
    ranked: dict
    recall_strong: dict
    recall_weak: dict
    num_positives: dict
    ignored: dict
    ap: dict
    ap_normalized: dict
    trends: dict
    size: dict
    aspect: dict
    confusion: np.ndarray
    confusion_labels: list
    normalized_count: float
    confusion_multiple: float
    at_objects: dict = field(default_factory=dict)  # group -> (5,) fractions among the top N = P_c

    def per_image(self) -> list:
        """[(D_i,) category codes of image i's detections, in their input order]."""
        return [self.category[a:b] for a, b in zip(self.det_offsets[:-1], self.det_offsets[1:])]

    def shares_at(self, group: str) -> dict:
        """{category: fraction} among each class's top N = P_c detections, pooled over ``group``."""
        return {name: float(value) for name, value in zip(CATEGORIES, self.at_objects[group])}

    def summary(self) -> str:
        """One line per group: its share of each kind at N = objects."""
        lines = []
        for group, labels in self.groups.items():
            trend, shares = self.trends[group], self.at_objects[group]
            head = f"{group} ({len(labels)} class{'es' if len(labels) > 1 else ''}"
            if math.isnan(trend.mean_objects):
                lines.append(f"{head}): no objects")
                continue
            head += f", {trend.mean_objects:.4g} objects per class)"
            if np.isnan(shares).all():
                lines.append(f"{head}: no detections")
                continue
            lines.append(f"{head}: " + "  ".join(f"{n} {100 * v:.1f}%" for n, v in zip(CATEGORIES, shares)))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain JSON-ready numbers (NaN as None), keyed by class and group names."""
        names = self.class_names
        out = {"categories": list(CATEGORIES), "iou_strong": STRONG_IOU, "iou_weak": WEAK_IOU,
               "precedence": "Cor > Loc > Sim > Oth > BG", "normalized_count": _number(self.normalized_count),
               "groups": {}, "classes": {}}
        for group, labels in self.groups.items():
            trend = self.trends[group]
            out["groups"][group] = {
                "classes": [names[c] for c in labels], "mean_objects": _number(trend.mean_objects),
                "at_objects": dict(zip(CATEGORIES, _numbers(self.at_objects[group]))),
                "multiples": _numbers(trend.multiples),
                "fractions": {n: _numbers(trend.fractions[:, k]) for k, n in enumerate(CATEGORIES)},
                "recall_strong": _numbers(trend.recall_strong), "recall_weak": _numbers(trend.recall_weak),
            }
        for label in range(1, len(names)):
            codes = self.ranked[label]
            top = codes[:self.num_positives[label]]
            out["classes"][names[label]] = {
                "objects": self.num_positives[label], "detections": int(codes.size), "ignored": self.ignored[label],
                "counts_at_objects": {n: int(np.count_nonzero(top == k)) for k, n in enumerate(CATEGORIES)},
                "recall": (_number(self.recall_strong[label][-1]) if codes.size else 0.0)
                if self.num_positives[label] else None,
                "ap": _number(self.ap[label]), "ap_normalized": _number(self.ap_normalized[label]),
                "size": _sensitivity_dict(self.size[label], SIZE_BINS),
                "aspect": _sensitivity_dict(self.aspect[label], ASPECT_BINS),
            }
        out["confusion"] = {"rows": [names[c] for c in self.confusion_labels],
                            "columns": [names[c] for c in self.confusion_labels] + ["background"],
                            "multiple": self.confusion_multiple, "counts": self.confusion.tolist()}
        return out


def _number(value):
    value = float(value)
    return value if math.isfinite(value) else None  # JSON has no NaN (no value) nor infinity (a zero height)


def _numbers(values) -> list:
    return [_number(v) for v in np.asarray(values).reshape(-1)]


def _sensitivity_dict(s: Sensitivity, bins) -> dict:
    return {"bins": list(bins), "edges": _numbers(s.edges), "objects": s.objects.tolist(),
            "recall": _numbers(s.recall), "ap": _numbers(s.ap), "ap_normalized": _numbers(s.ap_normalized)}


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


def _bins(values):
    """(edges (4,), bin (n,) in 0..4) of ``values`` by Hoiem's percentile rule (module docstring)."""
    ordered = np.sort(values)
    ranks = np.maximum((np.array(BIN_PERCENTILES) * len(values) + 50) // 100, 1) - 1  # round half up, 1-based
    edges = ordered[ranks]
    return edges, (values[:, None] > edges[None, :]).sum(axis=1)


def _aps(is_tp, counted, positives, normalized_count):
    """(AP, normalised AP) of a ranked list: is_tp, counted (n,) bools (uncounted: neither TP nor FP)."""
    if positives == 0:
        return math.nan, math.nan
    hits = is_tp[counted]
    tp, fp = np.cumsum(hits), np.cumsum(~hits)  # (n',)
    recall = tp / positives
    precision = tp / np.maximum(tp + fp, 1)
    scaled = tp * (normalized_count / positives)
    normalized = np.divide(scaled, scaled + fp, out=np.zeros_like(recall), where=(scaled + fp) > 0)
    return interpolated_ap(recall, precision), interpolated_ap(recall, normalized)


def _sensitivity(values, matched_objects, found, is_tp, matched, normalized_count):
    """``Sensitivity`` of one class: values (n,) of its non-difficult objects (rows ``matched_objects``),
    found (n,) bools; is_tp, matched (r,) over its ranked detections."""
    nan5 = np.full(5, np.nan)
    if values.size == 0:
        return Sensitivity(np.full(4, np.nan), np.zeros(5, np.int64), nan5, nan5.copy(), nan5.copy())
    edges, bin_of_object = _bins(values)
    bin_of = dict(zip(matched_objects.tolist(), bin_of_object.tolist()))
    detection_bin = np.array([bin_of.get(m, -1) for m in matched.tolist()], dtype=np.int64)  # (r,) -1: not TP
    objects = np.bincount(bin_of_object, minlength=5)
    recall, ap, ap_n = nan5.copy(), nan5.copy(), nan5.copy()
    for b in range(5):
        if objects[b] == 0:
            continue
        recall[b] = np.count_nonzero(found & (bin_of_object == b)) / objects[b]
        counted = ~is_tp | (detection_bin == b)  # TPs of other bins' objects are left out
        ap[b], ap_n[b] = _aps(is_tp & counted, counted, int(objects[b]), normalized_count)
    return Sensitivity(edges, objects, recall, ap, ap_n)


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
