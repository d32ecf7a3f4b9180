"""ShapesDataset: a synthetic detection dataset, generated on access, no download.

Each picture has a textured background (gradient, stripes, checks or smooth
blotches), clutter that belongs to no class (thin lines, scribbles, dot
clusters), 1-4 filled shapes (by default) of distinct silhouettes in varied colours, and a
little sensor noise. Item i of a split is always the same picture: it is drawn
from a generator seeded with (seed, split, i), and the splits use different
seed streams, so train, val and test never share a picture.

How a picture is made (``render``):

1. background, then clutter behind the objects;
2. object sizes drawn log-uniformly in [min_size, max_size] of the image side
   (the longer side of the rotated shape's bounding box), largest first; each object is placed
   entirely inside the image, at a random position, with a random aspect
   stretch and rotation. A placement is rejected (and retried) if it would
   hide more than ``max_occlusion`` of any earlier object's area, so every
   labelled object stays recognisable;
3. each object's colour is at least ``min_contrast`` away (RGB distance) from
   the mean colour of the pixels it covers, with a gentle shading ramp;
4. a few clutter marks on top, then noise;
5. each box is the tight extent of the object's *visible* pixels, so a box
   shrinks when a later object covers one side of it.

Boxes are pixel xyxy (continuous: a shape covering columns 3..9 has x1 = 3,
x2 = 10); labels are 1 + the class's index in ``classes``.

How hard it is (the ``ShapesConfig`` defaults). A PyTorch copy of
``minissd.models.tiny_ssd`` (same layers and default boxes), trained with
AdamW and a one-cycle schedule peaking at 3e-3, batch 16,
``SSDAugmentation(128, expand_ratio=2)``, reached VOC mAP@0.5 0.86 on the
test split after 2500 steps (8.6 minutes on two CPU cores) and was still
improving; the small objects (under 20 px) are the hardest. SSD's full 4x
zoom out leaves objects of 3-4 pixels on 128 px pictures and slowed that run
down markedly (mAP 0.66 after 3000 steps with a constant learning rate and
slightly harder settings).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from .sample import Sample
from .shapes_draw import (
    ROUND_SHAPES, SHAPES, background, contrasting_colour, draw_clutter, shape_frame, shape_window,
)

DEFAULT_CLASSES = ("circle", "square", "triangle", "star", "cross")
SPLIT_SIZES = {"train": 4000, "val": 300, "test": 500}
_SPLIT_STREAMS = {"train": 1, "val": 2, "test": 3}
_PLACEMENT_TRIES = 12


@dataclass(frozen=True)
class ShapesConfig:
    """The difficulty knobs of ``ShapesDataset``, with their defaults.

    min_objects, max_objects: objects per image, uniform in [min, max] (1, 4);
        fewer appear when no placement obeys ``max_occlusion``.
    min_size, max_size: the longer side of a shape's bounding box as a fraction
        of the image side, drawn log-uniformly (0.15 to 0.6: 19 to 77 px at 128 px).
    max_stretch: width / height of a shape drawn log-uniformly in
        [1 / max_stretch, max_stretch] (1.25).
    max_rotation_deg: shapes other than circle and ring turn by up to this
        many degrees either way (15).
    max_occlusion: the largest fraction of an object that later objects may
        hide (0.25).
    min_contrast: RGB distance between an object's colour and the mean colour
        under it (90, in 0..255 units).
    shading: relative brightness change across an object (0.15).
    texture_contrast: the amplitude of stripes, checks and blotches (25).
    clutter_behind, clutter_on_top: the most distractors drawn under and over
        the objects, each count uniform from 0 (4 and 1).
    max_dot: the side of the largest clutter dot in pixels (3).
    noise_std: the largest per-image noise standard deviation (6).

    The defaults are what the demo trains on: a tiny SSD reaches VOC mAP@0.5
    above 0.9 on the test split in about 6 minutes of CPU (README). Harder
    settings (e.g. max_objects=6, min_size=0.1, max_occlusion=0.4) make a
    real problem for longer training.
    """

    min_objects: int = 1
    max_objects: int = 4
    min_size: float = 0.15
    max_size: float = 0.6
    max_stretch: float = 1.25
    max_rotation_deg: float = 15.0
    max_occlusion: float = 0.25
    min_contrast: float = 90.0
    shading: float = 0.15
    texture_contrast: float = 25.0
    clutter_behind: int = 4
    clutter_on_top: int = 1
    max_dot: int = 3
    noise_std: float = 6.0

    def __post_init__(self):
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects; got {self.min_objects}, {self.max_objects}")
        if not 0 < self.min_size <= self.max_size <= 1:
            raise ValueError(f"need 0 < min_size <= max_size <= 1; got {self.min_size}, {self.max_size}")
        if self.max_stretch < 1:
            raise ValueError(f"max_stretch must be >= 1; got {self.max_stretch}")
        if not 0 <= self.max_occlusion < 1:
            raise ValueError(f"max_occlusion must be in [0, 1); got {self.max_occlusion}")


class Rendering(NamedTuple):
    """One drawn picture and what the drawing knows about it.

    image (S, S, 3) uint8; boxes (G, 4) float32 pixel xyxy of the visible
    pixels; labels (G,) int64; owner (S, S) int16: the object each pixel
    shows (-1 where none); full_area (G,) int64: each object's pixel count
    before later objects covered part of it.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    owner: np.ndarray
    full_area: np.ndarray


def render(rng: np.random.Generator, image_size: int, classes, config: ShapesConfig,
           noise_bank: np.ndarray) -> Rendering:
    """Draw one picture with ``rng`` (see the module docstring for the recipe).

    classes: silhouette names; object k gets label 1 + its class's position.
    noise_bank: (3, >= S, >= S) float32 standard normal noise; a random window of it is added.
    """
    size = image_size
    canvas = background(rng, size, size, config.texture_contrast)  # (3, S, S), channel-first while drawing
    draw_clutter(canvas, rng, int(rng.integers(config.clutter_behind + 1)), config.max_dot)
    owner = np.full((size, size), -1, dtype=np.int16)  # which object each pixel shows

    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    log_sizes = rng.uniform(math.log(config.min_size), math.log(config.max_size), size=count)
    sides = np.sort(np.exp(log_sizes))[::-1] * size  # largest first: big shapes sit behind
    full_area, visible, windows, labels = [], [], [], []
    for side in sides:
        label = int(rng.integers(len(classes)))
        shape = classes[label]
        stretch = math.exp(rng.uniform(-1, 1) * math.log(config.max_stretch))
        width, height = (side, side / stretch) if stretch >= 1 else (side * stretch, side)
        angle = 0.0 if shape in ROUND_SHAPES else math.radians(rng.uniform(-1, 1) * config.max_rotation_deg)
        half_x, half_y = shape_window(width, height, angle)
        fit = side / (2 * max(half_x, half_y))  # the rotated shape's window, not the shape, is `side` long
        width, height, half_x, half_y = width * fit, height * fit, half_x * fit, half_y * fit
        for _ in range(_PLACEMENT_TRIES):
            cx, cy = rng.uniform(half_x, size - half_x), rng.uniform(half_y, size - half_y)
            x0, y0 = max(int(cx - half_x), 0), max(int(cy - half_y), 0)
            x1, y1 = min(int(math.ceil(cx + half_x)), size), min(int(math.ceil(cy + half_y)), size)
            u, v = shape_frame(cx, cy, width, height, angle, x0, y0, x1, y1)  # (h, w) each
            mask = SHAPES[shape](u, v)  # (h, w)
            area = int(np.count_nonzero(mask))
            if area == 0:
                continue
            window_owner = owner[y0:y1, x0:x1]  # (h, w) view
            if not labels:
                break
            covered = np.bincount(window_owner[mask] + 1, minlength=len(labels) + 1)[1:]  # (k,)
            if not np.any(np.subtract(visible, covered) < (1 - config.max_occlusion) * np.asarray(full_area)):
                break
        else:
            continue  # no acceptable place: the picture has one object fewer
        index = len(labels)
        visible = ([] if index == 0 else list(np.subtract(visible, covered))) + [area]
        full_area.append(area)
        windows.append((x0, y0, x1, y1))
        labels.append(label + 1)
        window = canvas[:, y0:y1, x0:x1]  # (3, h, w) view
        weights = mask.astype(np.float32).reshape(-1)  # (h*w,)
        under = window.reshape(3, -1) @ weights / area  # (3,) mean colour the shape will cover
        colour = contrasting_colour(rng, under, config.min_contrast)
        tilt_u, tilt_v = (rng.uniform(-1, 1, size=2) * config.shading).tolist()
        ramp = 1 + np.float32(tilt_u) * u + np.float32(tilt_v) * v  # (h, w) gentle shading across the shape
        np.copyto(window, np.minimum(colour[:, None, None] * ramp, 255), where=mask)
        np.copyto(window_owner, np.int16(index), where=mask)

    draw_clutter(canvas, rng, int(rng.integers(config.clutter_on_top + 1)), config.max_dot)
    row, col = rng.integers(noise_bank.shape[1] - size + 1), rng.integers(noise_bank.shape[2] - size + 1)
    canvas += np.float32(rng.uniform(0, config.noise_std)) * noise_bank[:, row:row + size, col:col + size]
    planes = np.clip(canvas, 0, 255).astype(np.uint8)  # (3, S, S)
    image = np.empty((size, size, 3), dtype=np.uint8)
    for channel in range(3):  # per-plane copies: far faster than one strided transpose
        image[:, :, channel] = planes[channel]

    boxes = np.zeros((len(labels), 4), dtype=np.float32)
    for index, (x0, y0, x1, y1) in enumerate(windows):
        seen = owner[y0:y1, x0:x1] == index  # (h, w)
        rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
        boxes[index] = (x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1)
    return Rendering(image, boxes, np.asarray(labels, dtype=np.int64), owner, np.asarray(full_area, dtype=np.int64))


class ShapesDataset:
    """Synthetic shapes on cluttered backgrounds; item i of a split is always the same picture.

    split:      "train", "val" or "test" (default sizes 4000 / 300 / 500).
    num_images: the split's length (None: the default size).
    image_size: side S of the square pictures, in pixels.
    seed:       the dataset's seed; (seed, split, index) fixes every picture.
    classes:    silhouettes to use, from ``minissd.data.shapes_draw.SHAPES``
                (circle, square, triangle, diamond, cross, star, ring); the
                label of classes[k] is k + 1.
    cache:      keep generated samples in memory (they are cheap to redraw).
    config:     a ``ShapesConfig``; keyword ``difficulty`` arguments override
                its fields, e.g. ``ShapesDataset(max_objects=3, noise_std=0)``.
    """

    def __init__(self, split: str = "train", num_images: int | None = None, image_size: int = 128,
                 seed: int = 0, classes=DEFAULT_CLASSES, cache: bool = False,
                 config: ShapesConfig | None = None, **difficulty):
        if split not in SPLIT_SIZES:
            raise ValueError(f"split must be one of {sorted(SPLIT_SIZES)}; got {split!r}")
        unknown = [name for name in classes if name not in SHAPES]
        if unknown or len(classes) == 0 or len(set(classes)) != len(classes):
            raise ValueError(
                f"classes must be distinct names from {sorted(SHAPES)}; got {list(classes)}"
            )
        if int(image_size) < 16:
            raise ValueError(f"image_size must be at least 16 pixels; got {image_size}")
        self.split = split
        self.num_images = SPLIT_SIZES[split] if num_images is None else int(num_images)
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.classes = tuple(classes)
        self.class_names = ["background", *self.classes]
        self.num_classes = len(self.class_names)
        self.config = ShapesConfig(**{**asdict(config or ShapesConfig()), **difficulty})
        # One noise texture per dataset; each picture takes a random window of it
        # (drawing fresh Gaussian noise per picture would cost more than the picture).
        bank_rng = np.random.default_rng([self.seed, 0])
        self._noise_bank = bank_rng.standard_normal((3, 2 * self.image_size, 2 * self.image_size)).astype(np.float32)
        self._cache: dict[int, Sample] | None = {} if cache else None

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> Sample:
        index = int(index)
        if index < 0:
            index += self.num_images
        if not 0 <= index < self.num_images:
            raise IndexError(f"index {index} out of range for ShapesDataset {self.split!r} of length {self.num_images}")
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        rng = self.item_rng(index)
        image, boxes, labels, _, _ = render(rng, self.image_size, self.classes, self.config, self._noise_bank)
        sample = Sample(
            image=image,
            boxes=boxes,
            labels=labels,
            difficult=np.zeros(len(labels), dtype=bool),
            image_id=f"shapes-{self.split}-{index:06d}",
            path=None,
        )
        if self._cache is not None:
            self._cache[index] = sample
        return sample

    def item_rng(self, index: int) -> np.random.Generator:
        """The generator that draws item ``index``: seeded by (seed, split stream, index)."""
        return np.random.default_rng([self.seed, _SPLIT_STREAMS[self.split], int(index)])

    def rendering(self, index: int) -> Rendering:
        """Item ``index`` with the drawing's own records (which object owns each pixel)."""
        return render(self.item_rng(index), self.image_size, self.classes, self.config, self._noise_bank)

    def __repr__(self) -> str:
        return (f"ShapesDataset(split={self.split!r}, num_images={self.num_images}, "
                f"image_size={self.image_size}, seed={self.seed}, classes={list(self.classes)})")
