"""The detection API: weights in, pictures in, boxes out.

    detector = Detector.load("model.npz")          # or Detector(model)
    found = detector.predict("photo.jpg")          # a path, a PIL image or an array
    found.boxes, found.scores, found.labels, found.names   # pixel xyxy of the input picture
    detector.draw("photo.jpg", found).save("out.png")

An image of any size and mode (grayscale, RGBA, palette, ...) is converted to
RGB, turned upright by its EXIF orientation (as photo viewers show it),
resized to the network's square input, and the mean is subtracted; the
detections come back in the pixel coordinates of the picture as displayed.
Pictures larger than minissd's pixel limit are refused before decoding
(``minissd.data.sample``: a guard against decompression bombs).
Post-processing is SSD's (``minissd.nms.postprocess``): softmax, per-class
score threshold, top 400 per class, NMS at IoU 0.45, best 200 per image,
computed for the whole batch at once by ``minissd.nms_batched`` (about 5x
faster on the CPU, identical results).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import backend
from .atomic import write_json
from .data.augment import bilinear_resize, to_model_input
from .data.sample import open_image, to_rgb_array
from .nms_batched import postprocess_batched


@dataclass
class Detections:
    """Detections of one picture, in its pixel coordinates.

    boxes (D, 4) float32 xyxy pixels; scores (D,) float32; labels (D,) int64
    in 1..L-1; names: D class names; image_size (width, height).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    names: list
    image_size: tuple

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> "Detections":
        """Only the detections scoring above ``threshold`` (the one rule: at or below is removed)."""
        keep = self.scores > threshold
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep],
                          [n for n, k in zip(self.names, keep) if k], self.image_size)

    def to_dict(self) -> dict:
        """JSON-ready: {"image_size": [W, H], "detections": [{"box", "score", "label", "name"}, ...]}."""
        return {
            "image_size": [int(v) for v in self.image_size],
            "detections": [
                {"box": [round(float(v), 2) for v in box], "score": round(float(score), 4),
                 "label": int(label), "name": name}
                for box, score, label, name in zip(self.boxes, self.scores, self.labels, self.names)
            ],
        }


def read_image(image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a path, a PIL image, or an array (H, W), (H, W, 1|3|4).

    A path or PIL image is turned upright by its EXIF orientation first. Arrays of floats in
    [0, 1] are scaled by 255 (as float image files are); other values are clipped to 0..255.
    Errors (``DataError``, a ``ValueError``) name the file: missing, a folder, not an image,
    undecodable, or over the pixel limit.
    """
    from PIL import Image, ImageOps

    if isinstance(image, (str, os.PathLike)):
        return open_image(os.fspath(image), exif_transpose=True)
    if isinstance(image, Image.Image):
        return to_rgb_array(ImageOps.exif_transpose(image))
    array = np.asarray(backend.to_numpy(image))
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(f"an image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}")
    if array.dtype.kind not in "uifb":
        raise ValueError(f"an image array must hold numbers; got dtype {array.dtype}")
    if array.dtype != np.uint8:
        if array.dtype.kind == "f" and array.size and float(np.nanmax(array)) <= 1.0:
            array = array * 255.0  # floats in [0, 1]
        array = np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:
        array = array[:, :, :3]  # alpha dropped, as to_rgb_array does for RGBA files
    return np.ascontiguousarray(array)


def preprocess(image, size: int, mean) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, size, size) float32 input: bilinear resize, minus the mean."""
    resized = bilinear_resize(np.asarray(image, dtype=np.float32), size, size)  # (S, S, 3)
    planes, _, _ = to_model_input(resized, np.zeros((0, 4), np.float32), np.zeros(0), mean)
    return planes  # (3, S, S)


class Detector:
    """A model plus SSD's post-processing.

    score_threshold: detections scoring at or below it are dropped (0.01 for evaluation,
    as the reference; raise it for pictures). iou_threshold, top_k,
    keep_top_k: as ``minissd.nms.postprocess``. batch_size: images per forward.
    """

    def __init__(self, model, score_threshold: float = 0.01, iou_threshold: float = 0.45,
                 top_k: int = 400, keep_top_k: int = 200, batch_size: int = 8):
        self.model = model.eval()
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.top_k = top_k
        self.keep_top_k = keep_top_k
        self.batch_size = int(batch_size)

    @classmethod
    def load(cls, path, device: str | None = None, **options) -> "Detector":
        """A detector from weights saved by ``model.save`` or by training."""
        from .models import load

        return cls(load(path, device=device), **options)

    @property
    def class_names(self) -> list:
        return list(self.model.info.class_names)

    def predict(self, image, score_threshold: float | None = None) -> Detections:
        """Detections of one picture (a path, PIL image or array)."""
        return self.predict_many([image], score_threshold)[0]

    def predict_many(self, images, score_threshold: float | None = None) -> list:
        """Detections of several pictures, batched ``batch_size`` at a time.

        Pictures are read one batch at a time, so a long list of paths never sits in memory at once.
        """
        images = list(images)
        size, mean = self.model.image_size, self.model.info.mean
        results = []
        for start in range(0, len(images), self.batch_size):
            chunk = [read_image(image) for image in images[start:start + self.batch_size]]
            batch = np.stack([preprocess(p, size, mean) for p in chunk])  # (n, 3, S, S)
            outputs = self.predict_batch(batch, score_threshold)
            for picture, (boxes, scores, labels) in zip(chunk, outputs):
                height, width = picture.shape[:2]
                scale = np.array([width, height, width, height], dtype=np.float32)
                labels = labels.astype(np.int64)
                results.append(Detections(
                    (boxes * scale).astype(np.float32), scores.astype(np.float32), labels,
                    [self.class_names[k] for k in labels], (width, height),
                ))
        return results

    def predict_batch(self, batch, score_threshold: float | None = None) -> list:
        """A preprocessed batch (N, 3, S, S) -> per image (boxes (D, 4) normalised xyxy, scores, labels), NumPy."""
        xp = backend.get_array_module(*self.model.params.values())
        inputs = xp.asarray(batch, dtype=next(iter(self.model.params.values())).dtype)
        loc, conf = self.model.forward(inputs)
        self.model.clear_cache()
        threshold = self.score_threshold if score_threshold is None else score_threshold
        # the batched fast path; minissd.nms.postprocess is its plain reference (tests/test_nms_batched.py)
        found = postprocess_batched(loc, conf, self.model.priors, score_threshold=threshold,
                            iou_threshold=self.iou_threshold, top_k=self.top_k, keep_top_k=self.keep_top_k)
        return [tuple(backend.to_numpy(a) for a in item) for item in found]

    def explain(self, image, score_threshold: float | None = None) -> list:
        """Every detection of one picture explained, best first: ``minissd.explain.Explanation`` each.

        Explanation k is detection k of ``predict(image, score_threshold)``, to the bit, with its
        default box (map, cell, shape), raw offsets and decoding, softmax and what NMS removed for it.
        """
        from .explain import explain_image

        return explain_image(self, image, score_threshold)

    def draw(self, image, detections: Detections | None = None, score_threshold: float = 0.5):
        """A PIL picture of ``image`` with its detections (scoring above the threshold) drawn."""
        from .viz import render_detections

        picture = read_image(image)
        if detections is None:
            detections = self.predict(picture, score_threshold)
        return render_detections(picture, detections.above(score_threshold))


def save_json(path, detections_by_image: dict) -> None:
    """Write {image name: detections.to_dict()} as strict JSON, atomically."""
    write_json(path, {name: d.to_dict() for name, d in detections_by_image.items()})
