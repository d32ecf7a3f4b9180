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

    explain_outputs(loc, conf, priors, config, ...)  one image's raw outputs -> [Explanation, ...]
    explain_image(detector, image)                   a picture -> [Explanation, ...] (``Detector.explain``)
    trace_postprocess(loc, conf, priors, ...)        one image's post-processing, default-box indices kept
                                                     (explain_trace.py)
    locate_default_box(config, p)                    where default box p sits      (explain_default_box.py)
    decoding_steps(offsets, default_box, ...)        its decoding step by step     (explain_default_box.py)
    explanation_text(explanation)                    ``Explanation.text``; explanation_dict: ``to_dict``
                                                     (explain_text.py)

This module holds what an explanation is (``Explanation``, ``Suppressed``) and puts one together; the
parts named above live in their files and are importable from here too.

The network runs where the model lives; decoding and softmax of all default boxes run there too (the
same calls as ``postprocess``), and the per-class selection and NMS on the host: a teaching tool, not a
fast path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import get_array_module, to_numpy
from .boxes import DEFAULT_VARIANCES
from .explain_default_box import (  # noqa: F401 - re-exported: they lived here
    Decoding,
    DefaultBox,
    box_pixels,
    decoding_steps,
    locate_default_box,
)
from .explain_text import explanation_dict, explanation_text
from .explain_trace import Trace, TracedDetection, trace_postprocess  # noqa: F401 - re-exported: they lived here
from .priors import get_config


# --------------------------------------------------------------------------
# what an explanation holds
# --------------------------------------------------------------------------

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
        return explanation_dict(self)


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
            score=found.score, box=box, box_pixels=box_pixels(box, image_size),
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
