"""The anatomy of a detection: which default box made it, and every step from its raw outputs to the result.

An SSD detection is one default box's decoded box for one class. Post-processing
(``minissd.nms.postprocess``) decodes the offsets of all P default boxes, takes
the softmax of their logits, and per object class keeps the scores above the
threshold, the best ``top_k`` of them, and what greedy NMS leaves; the best
``keep_top_k`` over all classes are the detections. This module runs that
same post-processing in plain steps that keep each candidate's default-box
index, so a detection leads back to its default box exactly (not to the
nearest one), and it records on the way which boxes NMS removed because of it.

    explanations = Detector.load("model.npz").explain("photo.jpg")   # one per detection, best first
    first = explanations[0]
    first.default_box      # map k, cell (row, column), box in the cell, its scale and aspect ratio, centre
    first.decoding         # raw offsets, variances, decode step by step, the clamp, the clip, pixels
    first.probabilities    # the softmax over all L classes (first.logits before it)
    first.suppressed       # the boxes of its class NMS removed because of it, with their IoU
    print(first.text())    # all of it as readable text; first.to_dict() as JSON-ready values

The decoding, for default box d (cxcywh) and offsets l with variances (v_center, v_size):

    cx = d_cx + l_cx * v_center * d_w            cy = d_cy + l_cy * v_center * d_h
    w  = d_w * exp(min(l_w * v_size, log(1000 / 16)))   (the clamp of ``minissd.boxes.decode``)
    h  = d_h * exp(min(l_h * v_size, log(1000 / 16)))
    (x1, y1, x2, y2) = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),  clipped to [0, 1]
    pixels: x * W, y * H of the picture

Each step is computed in the model's dtype in ``decode``'s own order of operations, so on the CPU the
last one is bit for bit the box ``Detector.predict`` returns (``Explanation.box`` is the post-processing's
own box on any device). tests/test_explain.py checks that, the scores, the order, and the NMS record
against ``minissd.nms.nms_steps``.

    trace_postprocess(loc, conf, priors, ...)        one image's post-processing, default-box indices kept
    explain_outputs(loc, conf, priors, config, ...)  one image's raw outputs -> [Explanation, ...]
    explain_image(detector, image)                   a picture -> [Explanation, ...] (``Detector.explain``)
    locate_default_box(config, p), decoding_steps(offsets, default_box, ...): the two halves of one
    explanation_text(explanation)                    ``Explanation.text``

The network runs where the model lives; decoding and softmax of all default boxes run there too (the
same calls as ``postprocess``), and the per-class selection and NMS on the host: a teaching tool, not a
fast path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .backend import get_array_module, to_numpy
from .boxes import DECODE_LOG_SIZE_CLAMP, DEFAULT_VARIANCES, decode, iou
from .loss import softmax
from .nms import NOT_FINITE_RULE, check_detection_inputs
from .priors import cell_centres, get_config, prior_slices
from .validate import as_float_array, check_finite, check_last_axis, check_variances


# --------------------------------------------------------------------------
# what an explanation holds
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class DefaultBox:
    """Default box ``index`` (row p of the priors) and where it sits.

    map_index k, map_name (the stage that makes the map, when known), map_size |f_k|, step (pixels,
    None for the paper's centres); row i (y) and column j (x) of its cell; box_in_cell b of
    boxes_per_cell, shape "s_k", "s'_k", "a=2", "a=1/2", ... (the per-cell order of
    docs/conventions.md) with its nominal scale s and aspect_ratio a = w / h (w = s sqrt(a),
    h = s / sqrt(a)); cxcywh (4,): the box as the model stores it (after the config's clipping, if
    any); cell_xyxy (4,): the cell's square, normalised, centred on the cell centre; cell_spacing:
    the distance between cell centres, normalised.
    """

    index: int
    map_index: int
    map_name: str | None
    map_size: int
    step: float | None
    row: int
    column: int
    box_in_cell: int
    boxes_per_cell: int
    shape: str
    scale: float
    aspect_ratio: float
    cxcywh: np.ndarray
    cell_xyxy: np.ndarray
    cell_spacing: float


@dataclass(frozen=True)
class Decoding:
    """``minissd.boxes.decode`` for one default box, step by step (arrays in the model's dtype).

    offsets (4,): the raw loc (l_cx, l_cy, l_w, l_h); variances (v_center, v_size); default_box (4,) d, cxcywh.
    centre_shift (2,) = (l_cx v_center d_w, l_cy v_center d_h);  centre (2,) = (d_cx, d_cy) + centre_shift.
    log_size (2,) = (l_w v_size, l_h v_size);  clamped (2,) bool: log_size > log(1000 / 16), cut to it.
    size_factor (2,) = exp(min(log_size, log(1000 / 16)));  size (2,) = (d_w, d_h) * size_factor.
    xyxy (4,) = centre -/+ size / 2, before any clipping.
    clip: whether post-processing clips to [0, 1]; box (4,): the clipped xyxy (xyxy itself without
    clipping), the detection's normalised box; clipped (4,) bool: the coordinates the clip moved.
    image_size (W, H) or None; pixels (4,) = box * (W, H, W, H) (None without an image size).
    """

    offsets: np.ndarray
    variances: tuple
    default_box: np.ndarray
    centre_shift: np.ndarray
    centre: np.ndarray
    log_size: np.ndarray
    clamped: np.ndarray
    size_factor: np.ndarray
    size: np.ndarray
    xyxy: np.ndarray
    clip: bool
    box: np.ndarray
    clipped: np.ndarray
    image_size: tuple | None
    pixels: np.ndarray | None


@dataclass(frozen=True)
class Suppressed:
    """A box NMS removed because of a detection: its default box ``prior``, ``score`` (same class),
    ``iou`` with the detection (what made it go: >= the IoU threshold) and ``box`` (4,) xyxy normalised."""

    prior: int
    score: float
    iou: float
    box: np.ndarray


@dataclass(frozen=True)
class Explanation:
    """One detection, explained.

    index: its place among the image's detections (0 the best), of ``count``.
    label (1..L-1), class_name, score: the detection; box (4,) xyxy normalised, exactly as the
    post-processing returns it; box_pixels (4,) as ``Detector.predict`` (None without an image size).
    default_box: ``DefaultBox``;  decoding: ``Decoding`` (its ``box`` equals ``box``).
    logits (L,) the raw conf of its default box; probabilities (L,) their softmax (probabilities[label] is
    the score; the label need not be the argmax: one default box may give detections of several classes).
    class_names: L names.  candidates (D,): the default boxes of its class that took part in NMS, by
    descending score (scores above score_threshold, the best top_k of above_threshold); suppressed: the
    ``Suppressed`` boxes it removed, in that order.  score_threshold, iou_threshold, top_k, keep_top_k: the
    post-processing's settings.
    """

    index: int
    count: int
    label: int
    class_name: str
    score: float
    box: np.ndarray
    box_pixels: np.ndarray | None
    default_box: DefaultBox
    decoding: Decoding
    logits: np.ndarray
    probabilities: np.ndarray
    class_names: tuple
    candidates: np.ndarray
    above_threshold: int
    suppressed: tuple
    score_threshold: float
    iou_threshold: float
    top_k: int
    keep_top_k: int

    def top_classes(self, count: int = 5) -> list[tuple[int, str, float]]:
        """The ``count`` most probable classes (background included): [(label, name, probability), ...]."""
        order = np.argsort(-self.probabilities, kind="stable")[:count]
        return [(int(k), str(self.class_names[k]), float(self.probabilities[k])) for k in order]

    def text(self, top_classes: int = 5, most_suppressed: int = 10) -> str:
        """The explanation as readable lines: map, cell, default box, offsets, decoding, classes, NMS."""
        return explanation_text(self, top_classes, most_suppressed)

    def to_dict(self) -> dict:
        """JSON-ready values (floats at full precision; boxes normalised xyxy unless named pixels)."""
        d, box = self.decoding, self.default_box
        floats = _floats
        return {
            "index": self.index, "count": self.count, "label": self.label, "class_name": self.class_name,
            "score": float(self.score), "box": floats(self.box),
            "box_pixels": None if self.box_pixels is None else floats(self.box_pixels),
            "default_box": {
                "index": box.index, "map_index": box.map_index, "map_name": box.map_name,
                "map_size": box.map_size, "step": box.step, "row": box.row, "column": box.column,
                "box_in_cell": box.box_in_cell, "boxes_per_cell": box.boxes_per_cell, "shape": box.shape,
                "scale": box.scale, "aspect_ratio": box.aspect_ratio, "cxcywh": floats(box.cxcywh),
                "cell_xyxy": floats(box.cell_xyxy),
            },
            "decoding": {
                "offsets": floats(d.offsets), "variances": list(d.variances), "centre_shift": floats(d.centre_shift),
                "centre": floats(d.centre), "log_size": floats(d.log_size), "clamped": [bool(v) for v in d.clamped],
                "log_size_clamp": DECODE_LOG_SIZE_CLAMP, "size_factor": floats(d.size_factor),
                "size": floats(d.size), "xyxy": floats(d.xyxy), "clip": d.clip, "box": floats(d.box),
                "clipped": [bool(v) for v in d.clipped],
                "image_size": None if d.image_size is None else list(d.image_size),
                "pixels": None if d.pixels is None else floats(d.pixels),
            },
            "classes": [{"label": k, "name": str(name), "logit": float(self.logits[k]),
                         "probability": float(self.probabilities[k])} for k, name in enumerate(self.class_names)],
            "nms": {
                "score_threshold": self.score_threshold, "iou_threshold": self.iou_threshold,
                "top_k": self.top_k, "keep_top_k": self.keep_top_k, "above_threshold": self.above_threshold,
                "candidates": [int(p) for p in self.candidates],
                "suppressed": [{"prior": s.prior, "score": s.score, "iou": s.iou, "box": floats(s.box)}
                               for s in self.suppressed],
            },
        }


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values).reshape(-1)]


# --------------------------------------------------------------------------
# the post-processing, keeping default-box indices
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class TracedDetection:
    """One detection of ``trace_postprocess``: default box ``prior``, ``label``, ``score`` (model dtype),
    ``candidates`` (D,) the default boxes of its class that entered NMS (best first), ``above_threshold``
    (how many scored above the threshold before the top_k cut), ``removed``: [(prior, IoU), ...] it removed."""

    prior: int
    label: int
    score: np.floating
    candidates: np.ndarray
    above_threshold: int
    removed: list


@dataclass(frozen=True)
class Trace:
    """``trace_postprocess``'s result: boxes (P, 4) xyxy decoded (and clipped) of every default box,
    probabilities (P, L), both NumPy; detections: [TracedDetection, ...] by descending score, exactly
    ``postprocess``'s order."""

    boxes: np.ndarray
    probabilities: np.ndarray
    detections: list


def trace_postprocess(loc, conf, priors, score_threshold: float = 0.01, iou_threshold: float = 0.45,
                      top_k: int = 400, keep_top_k: int = 200, variances=DEFAULT_VARIANCES, clip: bool = True,
                      function: str = "trace_postprocess") -> Trace:
    """``minissd.nms.postprocess`` of one image in plain steps that keep each candidate's default-box index.

    loc (P, 4) offsets, conf (P, L) logits (class 0 the background), priors (P, 4) cxcywh.
    1. decode and clip every default box, softmax every row (the same calls as ``postprocess``);
    2. per class c in 1..L-1: the default boxes scoring > score_threshold, by descending score (stable:
       ties by lower index), the best top_k;
    3. greedy NMS over them in float IoU, as ``nms``: the best box left is kept and removes every later
       box with IoU >= iou_threshold; each removal is recorded with the box that caused it;
    4. the kept boxes of all classes (class by class, best first), stable-sorted by descending score,
       the best keep_top_k.
    The detections are ``postprocess``'s (boxes, scores, labels, order) exactly; the arguments are
    checked as it checks them.
    """
    xp = get_array_module(loc, conf, priors)
    loc, conf, priors = (as_float_array(a, name, function, xp) for a, name in ((loc, "loc"), (conf, "conf"),
                                                                              (priors, "priors")))
    if loc.ndim != 2 or conf.ndim != 2:
        raise ValueError(f"{function}: loc (P, 4) and conf (P, L) are one image's outputs; "
                         f"got {tuple(loc.shape)} and {tuple(conf.shape)}")
    check_finite({"loc": loc, "conf": conf, "priors": priors}, function,
                 {"loc": NOT_FINITE_RULE, "conf": NOT_FINITE_RULE, "priors": "default boxes must be finite"})
    _, _, _, score_threshold, iou_threshold, top_k, keep_top_k, variances = check_detection_inputs(
        loc[None], conf[None], priors, score_threshold, iou_threshold, top_k, keep_top_k, variances, function,
        check_values=False)
    boxes = decode(loc, priors, variances, validate=False)  # (P, 4)
    if clip:
        boxes = xp.clip(boxes, 0.0, 1.0)
    boxes, probabilities = to_numpy(boxes), to_numpy(softmax(conf))  # (P, 4), (P, L)

    kept = []  # (prior, label, score, candidates, above, removed), class by class, best first
    for label in range(1, probabilities.shape[1]):
        scores = probabilities[:, label]  # (P,)
        above = np.nonzero(scores > score_threshold)[0]
        candidates = above[np.argsort(-scores[above], kind="stable")][:top_k]  # (D,) best first
        for position, removed in _greedy_nms(boxes[candidates], iou_threshold):
            kept.append((int(candidates[position]), label, scores[candidates[position]], candidates, len(above),
                         [(int(candidates[j]), overlap) for j, overlap in removed]))
    if not kept:
        return Trace(boxes, probabilities, [])
    kept_scores = np.array([item[2] for item in kept], dtype=probabilities.dtype)
    best = np.argsort(-kept_scores, kind="stable")[:keep_top_k]
    return Trace(boxes, probabilities, [TracedDetection(*kept[i]) for i in best])


def _greedy_nms(boxes, iou_threshold: float):
    """[(kept position, [(removed position, IoU), ...]), ...] over score-sorted (D, 4) boxes.

    The IoU table is ``minissd.boxes.iou`` in the boxes' dtype, compared as ``nms`` compares it,
    so the kept boxes are ``nms``'s to the bit, ties included.
    """
    count = boxes.shape[0]
    if count == 0:
        return []
    overlaps = iou(boxes, boxes, validate=False)  # (D, D)
    alive = np.ones(count, dtype=bool)
    steps = []
    for i in range(count):
        if not alive[i]:
            continue
        hit = alive[i + 1:] & (overlaps[i, i + 1:] >= iou_threshold)  # (D-i-1,) removed by box i now
        gone = np.nonzero(hit)[0] + i + 1
        alive[gone] = False
        steps.append((i, [(int(j), float(overlaps[i, j])) for j in gone]))
    return steps


# --------------------------------------------------------------------------
# one default box: where it is, and its decoding
# --------------------------------------------------------------------------

def locate_default_box(config, index: int, priors=None, map_names=None) -> DefaultBox:
    """Where default box ``index`` of a ``PriorConfig`` (or preset name) sits, and its nominal shape.

    From ``prior_slices`` and the order contract: map k, then the cell (row i, column j) and the box b
    in the cell, p = offset_k + (i |f_k| + j) B_k + b. priors: the (P, 4) default boxes the model uses
    (default: ``default_boxes(config)``), to report the box as stored. map_names: one name per map.
    """
    from .priors import default_boxes

    config = get_config(config)
    if isinstance(index, (bool, np.bool_)) or int(index) != index or not 0 <= index < config.num_priors:
        raise ValueError(f"locate_default_box: index = {index!r} is not a default box of {config.name!r} "
                         f"(0..{config.num_priors - 1})")
    index = int(index)
    k = next(k for k, rows in enumerate(prior_slices(config)) if rows.start <= index < rows.stop)
    side, per_cell = config.feature_maps[k], config.boxes_per_cell[k]
    cell, b = divmod(index - prior_slices(config)[k].start, per_cell)
    row, column = divmod(cell, side)
    step = None if config.steps is None else float(config.steps[k])
    centres = cell_centres(side, step, config.image_size)  # (f,) float64
    spacing = (step / config.image_size) if step is not None else 1.0 / side
    cx, cy = centres[column], centres[row]
    ratios = config.aspect_ratios[k]
    if b < 2:
        shape, ratio = ("s_k", "s'_k")[b], 1.0
        scale = config.min_sizes[k] if b == 0 else math.sqrt(config.min_sizes[k] * config.max_sizes[k])
    else:
        r = float(ratios[(b - 2) // 2])
        shape, ratio = (f"a={r:g}", r) if b % 2 == 0 else (f"a=1/{r:g}", 1.0 / r)
        scale = float(config.min_sizes[k])
    stored = default_boxes(config) if priors is None else np.asarray(to_numpy(priors))
    name = None if map_names is None else str(list(map_names)[k])
    return DefaultBox(index, k, name, side, step, int(row), int(column), int(b), per_cell, shape, float(scale),
                      float(ratio), np.array(stored[index]),
                      np.array([cx - spacing / 2, cy - spacing / 2, cx + spacing / 2, cy + spacing / 2]),
                      float(spacing))


def decoding_steps(offsets, default_box, variances=DEFAULT_VARIANCES, clip: bool = True,
                   image_size=None) -> Decoding:
    """``decode`` of one default box, keeping each intermediate value.

    offsets (4,) (l_cx, l_cy, l_w, l_h); default_box (4,) cxcywh; image_size (W, H) for the pixels.
    The operations are ``decode``'s, in its order and dtype (arrays, so NumPy rounds as it does over all
    default boxes), then post-processing's clip and ``Detector.predict``'s scaling: the result is bit for
    bit the detector's box on the CPU (on a GPU, where the network's decode ran on the device, the last
    bit of exp may differ).
    """
    offsets = np.asarray(to_numpy(offsets))
    d = np.asarray(to_numpy(default_box))
    check_last_axis(offsets, "offsets", "decoding_steps", ndim=1, layout="(4,)")
    check_last_axis(d, "default_box", "decoding_steps", ndim=1, layout="(4,) cxcywh")
    v_center, v_size = check_variances(variances, "decoding_steps")
    centre_shift = offsets[:2] * v_center * d[2:]  # decode: d_cxcy + loc_cxcy * v_center * d_wh
    centre = d[:2] + centre_shift
    log_size = offsets[2:] * v_size
    size_factor = np.exp(np.minimum(log_size, DECODE_LOG_SIZE_CLAMP))
    size = d[2:] * size_factor
    half = size / 2
    xyxy = np.concatenate([centre - half, centre + half])
    box = np.clip(xyxy, 0.0, 1.0) if clip else xyxy
    pixels = _pixels(box, image_size)
    image_size = None if image_size is None else tuple(int(v) for v in image_size)
    return Decoding(offsets.copy(), (v_center, v_size), d.copy(), centre_shift, centre, log_size,
                    log_size > DECODE_LOG_SIZE_CLAMP, size_factor, size, xyxy, bool(clip), box, box != xyxy,
                    image_size, pixels)


def _pixels(box, image_size):
    """(4,) normalised xyxy -> float32 pixels of a (W, H) picture, as ``Detector.predict_many`` scales; None
    without an image size."""
    if image_size is None:
        return None
    width, height = image_size
    return (box * np.array([width, height, width, height], dtype=np.float32)).astype(np.float32)


# --------------------------------------------------------------------------
# putting it together
# --------------------------------------------------------------------------

def explain_outputs(loc, conf, priors, config, class_names=None, image_size=None, map_names=None,
                    score_threshold: float = 0.01, iou_threshold: float = 0.45, top_k: int = 400,
                    keep_top_k: int = 200, variances=DEFAULT_VARIANCES, clip: bool = True) -> list[Explanation]:
    """Every detection of one image's raw outputs, explained, best first (the detector's order).

    loc (P, 4), conf (P, L) logits, priors (P, 4) cxcywh: one image's network outputs and the model's
    default boxes; config: their ``PriorConfig`` (or preset name). class_names: L names (default
    "background", "class 1", ...). image_size (W, H): the picture's, for pixel boxes. map_names: one
    per feature map. The post-processing settings are ``postprocess``'s.
    """
    config = get_config(config)
    trace = trace_postprocess(loc, conf, priors, score_threshold, iou_threshold, top_k, keep_top_k, variances,
                              clip, function="explain_outputs")
    num_priors, num_classes = trace.probabilities.shape
    if config.num_priors != num_priors:
        raise ValueError(f"explain_outputs: config {config.name!r} has {config.num_priors} default boxes but "
                         f"loc and conf have {num_priors} rows")
    if class_names is None:
        class_names = ["background"] + [f"class {k}" for k in range(1, num_classes)]
    class_names = tuple(str(name) for name in class_names)
    if len(class_names) != num_classes:
        raise ValueError(f"explain_outputs: class_names has {len(class_names)} names but conf has {num_classes} "
                         "classes (the background included)")
    loc_host, conf_host, priors_host = (np.asarray(to_numpy(a)) for a in (loc, conf, priors))
    explanations = []
    for rank, found in enumerate(trace.detections):
        p = found.prior
        decoding = decoding_steps(loc_host[p], priors_host[p], variances, clip, image_size)
        suppressed = tuple(Suppressed(q, float(trace.probabilities[q, found.label]), overlap,
                                      trace.boxes[q].copy()) for q, overlap in found.removed)
        box = trace.boxes[p].copy()  # (4,) the post-processing's own box, computed where the model runs
        explanations.append(Explanation(
            index=rank, count=len(trace.detections), label=found.label, class_name=class_names[found.label],
            score=found.score, box=box, box_pixels=_pixels(box, image_size),
            default_box=locate_default_box(config, p, priors_host, map_names), decoding=decoding,
            logits=conf_host[p].copy(), probabilities=trace.probabilities[p].copy(), class_names=class_names,
            candidates=found.candidates.copy(), above_threshold=found.above_threshold, suppressed=suppressed,
            score_threshold=float(score_threshold), iou_threshold=float(iou_threshold), top_k=int(top_k),
            keep_top_k=int(keep_top_k),
        ))
    return explanations


def explain_image(detector, image, score_threshold: float | None = None) -> list[Explanation]:
    """Every detection of ``detector`` (a ``minissd.detect.Detector``) on ``image``, explained, best first.

    image: a path, PIL image or array, read and preprocessed as ``Detector.predict`` does, and run
    through the network alone (a batch of one, as ``predict`` runs one picture), so explanation k is
    ``detector.predict(image).boxes[k]`` etc. to the bit. score_threshold: None for the detector's.
    """
    from .detect import preprocess, read_image

    model = detector.model
    picture = read_image(image)
    height, width = picture.shape[:2]
    batch = preprocess(picture, model.image_size, model.info.mean)[None]  # (1, 3, S, S)
    xp = get_array_module(*model.params.values())
    inputs = xp.asarray(batch, dtype=next(iter(model.params.values())).dtype)
    loc, conf = model.forward(inputs)  # (1, P, 4), (1, P, L)
    model.clear_cache()
    threshold = detector.score_threshold if score_threshold is None else score_threshold
    return explain_outputs(loc[0], conf[0], model.priors, model.prior_config, detector.class_names, (width, height),
                           getattr(model, "stage_names", None), threshold, detector.iou_threshold, detector.top_k,
                           detector.keep_top_k)


# --------------------------------------------------------------------------
# as text
# --------------------------------------------------------------------------

def _f(value, digits: int = 4) -> str:
    """A number as the text shows it: 4 decimals (0.1 not 0.1000), never '-0'."""
    text = f"{float(value):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _term(value, digits: int = 4) -> str:
    """A factor inside a formula: a negative one in parentheses (0.5 + (-1.2) * 0.1, not 0.5 + -1.2 * 0.1)."""
    text = _f(value, digits)
    return f"({text})" if text.startswith("-") else text


def _p(value) -> str:
    """A probability: 4 decimals; two significant digits below 0.00005 (2.3e-05, not 0); all the digits
    it needs just below 1 (0.99999994, not 1)."""
    value = float(value)
    if 0 < value < 5e-5:
        return f"{value:.1e}"
    if 1 - 5e-5 < value < 1:
        return np.format_float_positional(np.float32(value))
    return _f(value)


def _tuple(values, digits: int = 4) -> str:
    return "(" + ", ".join(_f(v, digits) for v in np.asarray(values).reshape(-1)) + ")"


def explanation_text(e: Explanation, top_classes: int = 5, most_suppressed: int = 10) -> str:
    """``Explanation.text``: map, cell, default box, offsets, the decoding step by step, classes, NMS."""
    d, box = e.decoding, e.default_box
    (l_cx, l_cy, l_w, l_h), (v_c, v_s) = d.offsets, d.variances
    lines = [f"detection {e.index} of {e.count}: {e.class_name}, score {_p(e.score)}"]
    if e.box_pixels is not None:
        width, height = d.image_size
        lines.append(f"  box (x1, y1, x2, y2) = {_tuple(e.box_pixels, 1)} px in the {width} x {height} picture, "
                     f"{_tuple(e.box)} normalised")
    else:
        lines.append(f"  box (x1, y1, x2, y2) = {_tuple(e.box)} normalised")
    where = f" ({box.map_name}" if box.map_name else " ("
    where += f"{', ' if box.map_name else ''}{box.map_size} x {box.map_size} cells"
    where += f", step {box.step:g} px)" if box.step is not None else ")"
    lines.append(f"default box {box.index}: feature map {box.map_index}{where}, cell row {box.row}, "
                 f"column {box.column}, box {box.box_in_cell} of the cell's {box.boxes_per_cell} (from 0)")
    lines.append(f"  shape {box.shape}: scale s = {_f(box.scale)}, aspect ratio a = w / h = {_f(box.aspect_ratio)} "
                 f"(w = s sqrt(a), h = s / sqrt(a))")
    cell_cx, cell_cy = (box.cell_xyxy[:2] + box.cell_xyxy[2:]) / 2
    lines.append(f"  (d_cx, d_cy, d_w, d_h) = {_tuple(box.cxcywh)}; the cell's centre is "
                 f"{_tuple((cell_cx, cell_cy))}, its side {_f(box.cell_spacing)}")
    lines.append(f"offsets (l_cx, l_cy, l_w, l_h) = {_tuple(d.offsets)}, variances (v_center, v_size) = "
                 f"({v_c:g}, {v_s:g})")
    lines.append("decoding:")
    dx, dy, dw, dh = d.default_box
    lines.append(f"  cx = d_cx + l_cx * v_center * d_w = {_f(dx)} + {_term(l_cx)} * {v_c:g} * {_f(dw)} = "
                 f"{_f(d.centre[0])}")
    lines.append(f"  cy = d_cy + l_cy * v_center * d_h = {_f(dy)} + {_term(l_cy)} * {v_c:g} * {_f(dh)} = "
                 f"{_f(d.centre[1])}")
    for axis, (name, default, offset) in enumerate((("w", dw, l_w), ("h", dh, l_h))):
        exponent = f"l_{name} * v_size"
        if d.clamped[axis]:
            lines.append(f"  {name}  = d_{name} * exp(min({exponent}, log(1000 / 16))) = {_f(default)} * exp(min("
                         f"{_f(d.log_size[axis])}, {_f(DECODE_LOG_SIZE_CLAMP)})) = {_f(d.size[axis])}   "
                         f"clamped: {exponent} is above log(1000 / 16), the box would be over 62.5 times its "
                         "default box")
        else:
            lines.append(f"  {name}  = d_{name} * exp({exponent}) = {_f(default)} * exp({_term(offset)} * {v_s:g}) = "
                         f"{_f(default)} * {_f(d.size_factor[axis])} = {_f(d.size[axis])}")
    x1, y1, x2, y2 = d.xyxy
    lines.append(f"  x1 = cx - w / 2 = {_f(x1)}, y1 = cy - h / 2 = {_f(y1)}, x2 = cx + w / 2 = {_f(x2)}, "
                 f"y2 = cy + h / 2 = {_f(y2)}")
    if not d.clip:
        lines.append("  no clip: the post-processing keeps the boxes as decoded")
    elif d.clipped.any():
        moved = [f"{name} {_f(before)} -> {_f(after)}" for name, before, after, hit
                 in zip(("x1", "y1", "x2", "y2"), d.xyxy, d.box, d.clipped) if hit]
        lines.append(f"  clip to [0, 1]: {', '.join(moved)}")
    else:
        lines.append("  clip to [0, 1]: inside already, nothing moves")
    if d.pixels is not None:
        width, height = d.image_size
        lines.append(f"  pixels: (x1 * {width}, y1 * {height}, x2 * {width}, y2 * {height}) = {_tuple(d.pixels, 1)}")
    classes = ", ".join(f"{name} {_p(p)}" for _, name, p in e.top_classes(top_classes))
    more = "" if top_classes >= len(e.class_names) else f" (the best {top_classes})"
    lines.append(f"classes, softmax over the {len(e.class_names)} logits{more}: {classes}")
    if e.label != int(np.argmax(e.probabilities)):
        best = e.class_names[int(np.argmax(e.probabilities))]
        lines.append(f"  {e.class_name} is not this default box's most probable class ({best}): every class "
                     "above the threshold gets its own detections")
    took_part = f"{e.class_name} boxes above {e.score_threshold:g}: {len(e.candidates)}"
    if e.above_threshold > len(e.candidates):
        took_part = (f"{e.class_name} boxes above {e.score_threshold:g}: {e.above_threshold}, the best "
                     f"{len(e.candidates)} (top_k) take part")
    if e.suppressed:
        shown = ", ".join(f"default box {s.prior} (score {_p(s.score)}, IoU {_f(s.iou, 3)})"
                          for s in e.suppressed[:most_suppressed])
        if len(e.suppressed) > most_suppressed:
            shown += f" and {len(e.suppressed) - most_suppressed} more"
        lines.append(f"NMS (IoU >= {e.iou_threshold:g} removes): {took_part}; this detection removed "
                     f"{len(e.suppressed)}: {shown}")
    else:
        lines.append(f"NMS (IoU >= {e.iou_threshold:g} removes): {took_part}; this detection removed none")
    return "\n".join(lines)
