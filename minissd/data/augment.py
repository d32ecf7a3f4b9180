"""SSD's data augmentation: zoom out, the crop sampler, flip, resize, and their composition.

Every step maps the triple

    image  (H, W, 3) float32 RGB in 0..255
    boxes  (G, 4) float32 pixel xyxy (continuous coordinates)
    labels (G,) any per-box array (labels, or box indices to track other fields)

plus an explicit ``numpy.random.Generator`` to a new triple; no step writes
into its inputs. ``SSDAugmentation`` chains them in SSD's order

    photometric distortion -> zoom out -> crop -> horizontal flip -> resize

and, like ``eval_transform`` (resize only), ends in the model's input
convention: the image as (3, S, S) float32 minus the mean colour, the boxes
normalised to [0, 1] by the output size.
"""

from __future__ import annotations

import numpy as np

from ..boxes import iou
from .photometric import photometric_distort

MEAN_RGB = (123.0, 117.0, 104.0)  # the Caffe / torchvision SSD300 mean, RGB, 0..255

# The crop sampler's choices: None keeps the whole image; a number is the
# minimum IoU a crop must reach with a ground-truth box; -inf accepts any crop.
CROP_MIN_IOUS = (None, 0.1, 0.3, 0.5, 0.7, 0.9, -np.inf)


def expand(image, boxes, labels, rng, mean=MEAN_RGB, max_ratio: float = 4.0, p: float = 0.5):
    """Zoom out: with probability p put the image on a larger canvas filled with ``mean``.

    The canvas is r times the image's width and height, r ~ U(1, max_ratio);
    the image's top-left corner lands at (left, top) ~ U(0, (r - 1) W) x
    U(0, (r - 1) H), rounded down to whole pixels, and every box moves by
    (left, top). Objects become smaller: SSD's way to train small-object detection.
    """
    if rng.uniform() >= p:
        return image, boxes, labels
    height, width, channels = image.shape
    ratio = rng.uniform(1, max_ratio)
    left = int(rng.uniform(0, width * ratio - width))
    top = int(rng.uniform(0, height * ratio - height))
    canvas_height, canvas_width = int(height * ratio), int(width * ratio)
    canvas = np.empty((canvas_height, canvas_width * channels), dtype=np.float32)  # rows of R, G, B, R, ...
    canvas[:] = np.tile(np.asarray(mean, dtype=np.float32), canvas_width)  # one long row, broadcast down
    canvas = canvas.reshape(canvas_height, canvas_width, channels)  # (rH, rW, 3)
    canvas[top:top + height, left:left + width] = image
    shift = np.array([left, top, left, top], dtype=np.float32)
    return canvas, (boxes + shift).astype(np.float32), labels


def sample_crop(boxes, width: int, height: int, rng, min_iou, trials: int = 50,
                min_scale: float = 0.3, aspect_range=(0.5, 2.0), iou_rule: str = "any"):
    """Draw a crop window for one sampler choice; returns [x1, y1, x2, y2] (ints) or None.

    boxes: (G, 4) pixel xyxy, G >= 1.  min_iou: a number, or -inf for "any crop".
    Each of up to ``trials`` candidates has width w ~ U(min_scale W, W) and
    height h ~ U(min_scale H, H), kept only if w / h is in ``aspect_range``,
    at a uniformly random position inside the image. It is accepted when

    * IoU(crop, box) >= min_iou for at least one ground-truth box (``iou_rule``
      "any": the original Caffe sampler's constraint, which asks one box to be
      well covered) or for every box ("all": the rule ssd.pytorch meant to
      write; its test uses an infinite max IoU and never fires); and
    * at least one box centre lies strictly inside the crop.

    None when no candidate is accepted.
    """
    if iou_rule not in ("any", "all"):
        raise ValueError(f"iou_rule must be 'any' or 'all'; got {iou_rule!r}")
    # All trials are drawn at once and the first acceptable one is taken: the
    # same distribution as trying them one after the other, without 50 small loops.
    w = rng.uniform(min_scale * width, width, size=trials)  # (T,)
    h = rng.uniform(min_scale * height, height, size=trials)  # (T,)
    left = rng.uniform(0, 1, size=trials) * (width - w)  # (T,)
    top = rng.uniform(0, 1, size=trials) * (height - h)  # (T,)
    crops = np.stack([left, top, left + w, top + h], axis=1).astype(np.int64)  # (T, 4) whole pixels
    shaped = (w / h >= aspect_range[0]) & (w / h <= aspect_range[1])  # (T,)
    overlaps = iou(crops.astype(np.float32), boxes.astype(np.float32), validate=False)  # (T, G)
    enough = overlaps >= min_iou  # (T, G)
    covered = enough.any(axis=1) if iou_rule == "any" else enough.all(axis=1)  # (T,)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # (G, 2)
    inside = centres_inside(centres, crops).any(axis=1)  # (T,)
    accepted = np.flatnonzero(shaped & covered & inside)
    return crops[accepted[0]] if len(accepted) else None


def centres_inside(centres, crops):
    """(G, 2) box centres, (T, 4) xyxy crops -> (T, G) bool: centre strictly inside the crop."""
    x, y = centres[None, :, 0], centres[None, :, 1]  # (1, G) each
    return (x > crops[:, None, 0]) & (y > crops[:, None, 1]) & (x < crops[:, None, 2]) & (y < crops[:, None, 3])


def random_crop(image, boxes, labels, rng, choices=CROP_MIN_IOUS, trials: int = 50, iou_rule: str = "any"):
    """SSD's crop sampler: pick one of ``choices`` uniformly and crop accordingly.

    Choices: None keeps the whole image; a minimum IoU m in {0.1, 0.3, 0.5,
    0.7, 0.9} or -inf ("any crop") runs ``sample_crop`` with that bound. When
    all ``trials`` candidates fail, the image is kept whole (the Caffe
    sampler's fallback). Of the boxes, those whose centre lies inside the crop
    are kept, clipped to it and shifted into its coordinates; ``labels`` follow.
    An image without boxes is returned as it is.
    """
    if len(boxes) == 0:
        return image, boxes, labels
    min_iou = choices[int(rng.integers(len(choices)))]
    if min_iou is None:
        return image, boxes, labels
    height, width = image.shape[:2]
    crop = sample_crop(boxes, width, height, rng, min_iou, trials, iou_rule=iou_rule)
    if crop is None:
        return image, boxes, labels
    x1, y1, x2, y2 = (int(v) for v in crop)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # (G, 2)
    keep = centres_inside(centres, crop[None])[0]  # (G,)
    kept = boxes[keep]  # (K, 4)
    clipped = np.concatenate([np.maximum(kept[:, :2], crop[:2]), np.minimum(kept[:, 2:], crop[2:])], axis=1)
    shifted = (clipped - np.array([x1, y1, x1, y1])).astype(np.float32)  # (K, 4)
    return image[y1:y2, x1:x2], shifted, labels[keep]


def horizontal_flip(image, boxes, labels, rng, p: float = 0.5):
    """With probability p mirror left-right: x -> W - x, so (x1, x2) -> (W - x2, W - x1)."""
    if rng.uniform() >= p:
        return image, boxes, labels
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return image[:, ::-1], flipped, labels


def bilinear_resize(image: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """Bilinear resampling (H, W, C) -> (out_height, out_width, C) float32, pixel centres aligned.

    Output pixel centre x_out + 0.5 maps to x_in + 0.5 = (x_out + 0.5) * W / out_width
    (the convention of OpenCV's INTER_LINEAR and of box scaling by W / out_width);
    each output value mixes the 2 x 2 nearest input pixels, edges repeated.
    No antialiasing: a big reduction skips pixels, as in the reference SSD.
    At the same size every weight is exactly 0, so the result is the image as float32 (finite
    pixels), returned as a copy without interpolating: the shapes pictures are drawn at the
    model's size, and the trainer's loader resizes every one.
    """
    height, width = image.shape[:2]
    if (height, width) == (out_height, out_width):
        return np.array(image, dtype=np.float32)  # (H, W, C), a new array like the interpolation's
    return _bilinear_interpolate(image, out_height, out_width)


def _bilinear_interpolate(image: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """``bilinear_resize``'s interpolation at any size (the same size included: the tests' reference)."""
    height, width = image.shape[:2]

    def taps(out_size: int, in_size: int):
        source = (np.arange(out_size, dtype=np.float64) + 0.5) * (in_size / out_size) - 0.5
        source = np.clip(source, 0, in_size - 1)
        low = np.minimum(np.floor(source).astype(np.intp), in_size - 1)
        high = np.minimum(low + 1, in_size - 1)
        return low, high, (source - low).astype(np.float32)

    row_low, row_high, row_weight = taps(out_height, height)  # (Ho,) each
    col_low, col_high, col_weight = taps(out_width, width)  # (Wo,) each
    channels = image.shape[2]
    flat = np.asarray(image, dtype=np.float32).reshape(height, width * channels)  # (H, W * C)
    # np.take on 2-D rows is several times faster than fancy indexing a middle axis
    top = np.take(flat, row_low, axis=0)  # (Ho, W * C)
    bottom = np.take(flat, row_high, axis=0)  # (Ho, W * C)
    rows = top + (bottom - top) * row_weight[:, None]  # (Ho, W * C)
    offsets = np.arange(channels)
    left = np.take(rows, (col_low[:, None] * channels + offsets).ravel(), axis=1)  # (Ho, Wo * C)
    right = np.take(rows, (col_high[:, None] * channels + offsets).ravel(), axis=1)  # (Ho, Wo * C)
    weight = np.repeat(col_weight, channels)  # (Wo * C,) one weight per channel value
    return (left + (right - left) * weight).reshape(out_height, out_width, channels)  # (Ho, Wo, C)


def resize(image, boxes, labels, rng=None, size: int = 300):
    """Resize to size x size (bilinear); boxes scale by (size / W, size / H). ``rng`` is unused."""
    height, width = image.shape[:2]
    scale = np.array([size / width, size / height, size / width, size / height], dtype=np.float32)
    return bilinear_resize(image, size, size), (boxes * scale).astype(np.float32), labels


def to_model_input(image, boxes, labels, mean=MEAN_RGB):
    """(S, S, 3) image and pixel boxes -> ((3, S, S) float32 image - mean, boxes / S in [0, 1], labels)."""
    height, width, channels = image.shape
    planes = np.empty((channels, height, width), dtype=np.float32)  # (3, S, S)
    for channel in range(channels):  # plane by plane: much faster than one strided transpose
        np.subtract(image[:, :, channel], np.float32(mean[channel]), out=planes[channel])
    scale = np.array([width, height, width, height], dtype=np.float32)
    return planes, (boxes / scale).astype(np.float32), labels


def _as_triple(image, boxes, labels):
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3); got {image.shape}")
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)  # (G, 4)
    labels = np.asarray(labels)
    if labels.shape != (len(boxes),):
        raise ValueError(f"labels must have shape ({len(boxes)},) to go with boxes; got {labels.shape}")
    return image, boxes, labels


class SSDAugmentation:
    """SSD's training augmentation (Liu et al. 2016, section 3.6), step by step.

    photometric_distort -> expand (p 0.5, 1-4x, filled with ``mean``) ->
    random_crop ({whole, IoU 0.1, 0.3, 0.5, 0.7, 0.9, any}, 50 trials) ->
    horizontal_flip (p 0.5) -> resize to size x size -> to_model_input.

    ``aug(image (H, W, 3), boxes (G, 4) pixel xyxy, labels (G,), rng)`` returns
    (image (3, S, S) float32 minus ``mean``, boxes (K, 4) float32 in [0, 1],
    labels (K,)); K <= G, as the crop drops boxes whose centre it cuts off.

    Options (SSD's values by default): ``channel_swap`` (False) adds the
    random channel order; ``iou_rule`` ("any") is the crop sampler's rule;
    ``expand_ratio`` (4.0) and ``expand_p`` (0.5) bound the zoom out: on small
    pictures a 4x zoom out leaves objects of a few pixels, so a smaller ratio
    can make a short training run learn faster. ``photometric`` and ``crop``
    (True) switch those steps off, e.g. for synthetic data that is already
    varied enough (flip and resize always run).
    """

    def __init__(self, size: int, mean=MEAN_RGB, channel_swap: bool = False, iou_rule: str = "any",
                 expand_ratio: float = 4.0, expand_p: float = 0.5, photometric: bool = True, crop: bool = True):
        if not expand_ratio >= 1:
            raise ValueError(f"expand_ratio must be >= 1; got {expand_ratio!r}")
        self.size = int(size)
        self.mean = tuple(float(m) for m in mean)
        self.channel_swap = channel_swap
        self.iou_rule = iou_rule
        self.expand_ratio = float(expand_ratio)
        self.expand_p = float(expand_p)
        self.photometric = bool(photometric)
        self.crop = bool(crop)

    def __call__(self, image, boxes, labels, rng):
        image, boxes, labels = _as_triple(image, boxes, labels)
        if self.photometric:
            image, boxes, labels = photometric_distort(image, boxes, labels, rng, channel_swap=self.channel_swap)
        if self.expand_p > 0:
            image, boxes, labels = expand(image, boxes, labels, rng, mean=self.mean, max_ratio=self.expand_ratio,
                                          p=self.expand_p)
        if self.crop:
            image, boxes, labels = random_crop(image, boxes, labels, rng, iou_rule=self.iou_rule)
        image, boxes, labels = horizontal_flip(image, boxes, labels, rng)
        image, boxes, labels = resize(image, boxes, labels, size=self.size)
        return to_model_input(image, boxes, labels, self.mean)

    def __repr__(self) -> str:
        return (f"SSDAugmentation(size={self.size}, mean={self.mean}, photometric={self.photometric}, "
                f"expand=({self.expand_ratio}, p={self.expand_p}), crop={self.crop})")


class eval_transform:  # noqa: N801 - used like a function: eval_transform(size, mean)(image, boxes, labels)
    """Resize only, then the model's input convention: the transform for validation and testing.

    ``eval_transform(size, mean)(image, boxes, labels, rng=None)`` returns
    (image (3, S, S) float32 minus ``mean``, boxes (G, 4) in [0, 1], labels (G,)).
    """

    def __init__(self, size: int, mean=MEAN_RGB):
        self.size = int(size)
        self.mean = tuple(float(m) for m in mean)

    def __call__(self, image, boxes, labels, rng=None):
        image, boxes, labels = _as_triple(image, boxes, labels)
        image, boxes, labels = resize(image, boxes, labels, size=self.size)
        return to_model_input(image, boxes, labels, self.mean)

    def __repr__(self) -> str:
        return f"eval_transform(size={self.size}, mean={self.mean})"
