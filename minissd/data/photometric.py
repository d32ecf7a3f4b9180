"""SSD's photometric distortion: brightness, contrast, saturation, hue.

Every step takes and returns the augmentation triple
(image (H, W, 3) float32 RGB in 0..255, boxes (G, 4) pixel xyxy, labels (G,))
and draws from an explicit ``numpy.random.Generator``. Colours change, geometry
does not: boxes and labels pass through untouched. Each step clips back to
0..255, as the reference implementation's 8-bit images saturate.

HSV here means hue in degrees [0, 360), saturation in [0, 1] and value in
0..255 (the maximum of R, G, B).
"""

from __future__ import annotations

import numpy as np

BRIGHTNESS_DELTA = 32.0
CONTRAST_RANGE = (0.5, 1.5)
SATURATION_RANGE = (0.5, 1.5)
HUE_DELTA_DEG = 18.0


def rgb_to_hsv(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in 0..255 -> (H, W, 3) HSV: hue degrees [0, 360), saturation [0, 1], value 0..255.

    value V = max(R, G, B), chroma C = V - min(R, G, B), saturation C / V;
    hue = 60 x [(G - B) / C if V = R;  2 + (B - R) / C if V = G;  4 + (R - G) / C if V = B].
    Grey pixels (C = 0) get hue 0, black ones saturation 0.
    """
    # Masks times values instead of np.where, and a conditional add instead of
    # np.mod: both are several times slower in NumPy for float32 planes.
    red, green, blue = (np.ascontiguousarray(image[..., k]) for k in range(3))  # (H, W) planes
    value = np.maximum(np.maximum(red, green), blue)  # (H, W)
    chroma = value - np.minimum(np.minimum(red, green), blue)  # (H, W)
    inverse_chroma = 1 / np.maximum(chroma, np.float32(1e-12))  # grey: every numerator below is 0
    is_red = value == red
    is_green = (value == green) & ~is_red
    is_blue = ~(is_red | is_green)
    sixths = (is_red * ((green - blue) * inverse_chroma)
              + is_green * (2 + (blue - red) * inverse_chroma)
              + is_blue * (4 + (red - green) * inverse_chroma))  # (H, W) in (-1, 5]
    sixths += 6 * (sixths < 0)
    saturation = chroma / np.maximum(value, np.float32(1e-12))
    return np.stack([sixths * 60, saturation, value], axis=-1).astype(image.dtype, copy=False)  # (H, W, 3)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """The inverse of ``rgb_to_hsv``: (H, W, 3) HSV -> (H, W, 3) RGB in 0..255.

    Hue must lie in [0, 360). Channel n in (R, G, B) = (5, 3, 1): with
    k = (n + hue / 60) mod 6, it is value - value x saturation x clip(min(k, 4 - k), 0, 1).
    """
    hue, saturation, value = (np.ascontiguousarray(hsv[..., k]) for k in range(3))  # (H, W) planes
    sixths = hue * np.float32(1 / 60)  # (H, W) in [0, 6)
    chroma = value * saturation  # (H, W)
    planes = []
    for n in (5, 3, 1):
        k = sixths + n  # [n, n + 6): one subtraction of 6 is the mod
        k -= 6 * (k >= 6)
        planes.append(value - chroma * np.clip(np.minimum(k, 4 - k), 0, 1))
    return np.stack(planes, axis=-1).astype(hsv.dtype, copy=False)  # (H, W, 3)


def random_brightness(image, boxes, labels, rng, delta: float = BRIGHTNESS_DELTA, p: float = 0.5):
    """With probability p add one value b ~ U(-delta, delta) to every pixel and channel."""
    if rng.uniform() < p:
        image = np.clip(image + np.float32(rng.uniform(-delta, delta)), 0, 255)
    return image, boxes, labels


def random_contrast(image, boxes, labels, rng, value_range=CONTRAST_RANGE, p: float = 0.5):
    """With probability p multiply every pixel by c ~ U(value_range) (SSD scales about 0, not the mean)."""
    if rng.uniform() < p:
        image = np.clip(image * np.float32(rng.uniform(*value_range)), 0, 255)
    return image, boxes, labels


def random_saturation_hue(image, boxes, labels, rng, saturation_range=SATURATION_RANGE,
                          hue_delta_deg: float = HUE_DELTA_DEG, p: float = 0.5):
    """In HSV: with probability p scale saturation by s ~ U(saturation_range)
    (clipped to [0, 1]); then, independently with probability p, shift hue by
    h ~ U(-hue_delta_deg, hue_delta_deg) degrees (wrapping around 360)."""
    scale_saturation = rng.uniform() < p
    saturation = rng.uniform(*saturation_range) if scale_saturation else 1.0
    shift_hue = rng.uniform() < p
    hue = rng.uniform(-hue_delta_deg, hue_delta_deg) if shift_hue else 0.0
    if not (scale_saturation or shift_hue):
        return image, boxes, labels  # skip the round trip through HSV
    hsv = rgb_to_hsv(image)  # (H, W, 3)
    hsv[..., 1] = np.clip(hsv[..., 1] * np.float32(saturation), 0, 1)
    shifted = hsv[..., 0] + np.float32(hue)  # within (-18, 378): wrap once
    hsv[..., 0] = shifted + 360 * (shifted < 0) - 360 * (shifted >= 360)
    return np.clip(hsv_to_rgb(hsv), 0, 255), boxes, labels


def random_channel_swap(image, boxes, labels, rng, p: float = 0.5):
    """With probability p permute the three colour channels at random (one of the 6 orders)."""
    if rng.uniform() < p:
        image = image[..., rng.permutation(3)]
    return image, boxes, labels


def photometric_distort(image, boxes, labels, rng, channel_swap: bool = False):
    """SSD's colour augmentation: brightness, then contrast and saturation/hue in a random order.

    1. brightness: + U(-32, 32), p = 0.5;
    2. with probability 1/2 contrast first (x U(0.5, 1.5), p = 0.5) then
       saturation (x U(0.5, 1.5), p = 0.5) and hue (+ U(-18, 18) degrees,
       p = 0.5) in HSV; otherwise the HSV steps first and contrast last;
    3. optionally (``channel_swap``, off by default) a random channel order, p = 0.5.

    image: (H, W, 3) float32 in 0..255 -> the same shape, clipped to 0..255.
    boxes (G, 4) and labels (G,) are returned unchanged.
    """
    image = np.asarray(image, dtype=np.float32)
    image, boxes, labels = random_brightness(image, boxes, labels, rng)
    if rng.uniform() < 0.5:
        image, boxes, labels = random_contrast(image, boxes, labels, rng)
        image, boxes, labels = random_saturation_hue(image, boxes, labels, rng)
    else:
        image, boxes, labels = random_saturation_hue(image, boxes, labels, rng)
        image, boxes, labels = random_contrast(image, boxes, labels, rng)
    if channel_swap:
        image, boxes, labels = random_channel_swap(image, boxes, labels, rng)
    return image, boxes, labels
