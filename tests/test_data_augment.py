"""SSD augmentation: boxes stay on their pixels through every geometric step; the crop sampler's IoU test fires."""

import colorsys

import numpy as np
import pytest

from minissd.boxes import iou
from minissd.data import (
    CROP_MIN_IOUS,
    MEAN_RGB,
    SSDAugmentation,
    bilinear_resize,
    eval_transform,
    expand,
    horizontal_flip,
    photometric_distort,
    random_crop,
    resize,
    sample_crop,
    to_model_input,
)
from minissd.data.photometric import hsv_to_rgb, random_saturation_hue, rgb_to_hsv

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]], dtype=np.float32)


def painted_scene():
    """A 60 x 80 black image with 4 rectangles, each filled with its own colour: (image, boxes, labels)."""
    image = np.zeros((60, 80, 3), dtype=np.float32)
    boxes = np.array([[4, 5, 24, 30], [30, 2, 50, 20], [55, 30, 78, 58], [10, 38, 40, 55]], dtype=np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        image[y1:y2, x1:x2] = COLOURS[k]
    return image, boxes, np.arange(1, len(boxes) + 1)


def colour_extent(image, colour, tolerance=60.0):
    """xyxy extent of the pixels within ``tolerance`` of ``colour``, or None."""
    close = np.linalg.norm(image - colour, axis=-1) < tolerance
    rows, cols = np.nonzero(close)
    if len(rows) == 0:
        return None
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32)


def assert_boxes_on_their_pixels(image, boxes, labels, slack=2.0):
    for box, label in zip(boxes, labels):
        extent = colour_extent(image, COLOURS[label - 1])
        assert extent is not None, f"box of label {label} kept but its colour is gone"
        np.testing.assert_allclose(extent, box, atol=slack, err_msg=f"label {label}")


def geometric_steps():
    return {
        "expand": lambda im, b, l, r: expand(im, b, l, r),
        "crop": lambda im, b, l, r: random_crop(im, b, l, r),
        "flip": lambda im, b, l, r: horizontal_flip(im, b, l, r),
        "resize": lambda im, b, l, r: resize(im, b, l, r, size=96),
    }


@pytest.mark.parametrize("step", sorted(geometric_steps()))
def test_each_step_keeps_boxes_on_their_pixels(step):
    function = geometric_steps()[step]
    changed = 0
    for seed in range(25):
        image, boxes, labels = painted_scene()
        out_image, out_boxes, out_labels = function(image, boxes, labels, np.random.default_rng(seed))
        assert out_boxes.dtype == np.float32 and out_boxes.shape == (len(out_labels), 4)
        changed += out_image.shape != image.shape or not np.array_equal(out_image, image)
        assert_boxes_on_their_pixels(out_image, out_boxes, out_labels)
        # a box that was dropped (the crop) has its centre outside: at most a sliver of its colour remains
        for label in set(labels.tolist()) - set(out_labels.tolist()):
            extent = colour_extent(out_image, COLOURS[label - 1])
            if extent is not None:
                original = boxes[label - 1]
                assert (extent[2] - extent[0]) * (extent[3] - extent[1]) < (original[2] - original[0]) * (
                    original[3] - original[1]
                )
    assert changed >= 5  # the step did act on some seeds


def test_the_whole_geometric_chain_keeps_boxes_on_their_pixels():
    for seed in range(25):
        rng = np.random.default_rng(seed)
        triple = painted_scene()
        for function in (expand, random_crop, horizontal_flip):
            triple = function(*triple, rng)
        image, boxes, labels = resize(*triple, size=100)
        assert image.shape == (100, 100, 3)
        assert_boxes_on_their_pixels(image, boxes, labels, slack=3.0)


def test_expand_fills_with_the_mean_and_shifts_boxes():
    image, boxes, labels = painted_scene()
    for seed in range(20):
        out, out_boxes, _ = expand(image, boxes, labels, np.random.default_rng(seed), p=1.0)
        assert out.shape[0] >= 60 and out.shape[1] >= 80 and out.shape[0] <= 240 and out.shape[1] <= 320
        shift = out_boxes[0, :2] - boxes[0, :2]
        left, top = int(shift[0]), int(shift[1])
        np.testing.assert_array_equal(out[top:top + 60, left:left + 80], image)
        np.testing.assert_allclose(out_boxes - boxes, np.tile(shift, 2)[None].repeat(len(boxes), 0))
        if top > 0:
            np.testing.assert_array_equal(out[0, 0], np.float32(MEAN_RGB))


def test_flip_twice_is_the_identity():
    image, boxes, labels = painted_scene()
    once = horizontal_flip(image, boxes, labels, np.random.default_rng(0), p=1.0)
    twice = horizontal_flip(*once, np.random.default_rng(0), p=1.0)
    assert not np.array_equal(once[0], image)
    np.testing.assert_array_equal(twice[0], image)
    np.testing.assert_array_equal(twice[1], boxes)
    np.testing.assert_array_equal(once[1][0], [80 - 24, 5, 80 - 4, 30])


def test_steps_do_not_modify_their_inputs():
    image, boxes, labels = painted_scene()
    saved = image.copy(), boxes.copy(), labels.copy()
    augment = SSDAugmentation(64)
    for seed in range(10):
        augment(image, boxes, labels, np.random.default_rng(seed))
        photometric_distort(image, boxes, labels, np.random.default_rng(seed), channel_swap=True)
    for before, after in zip(saved, (image, boxes, labels)):
        np.testing.assert_array_equal(before, after)


# --------------------------------------------------------------------------
# the crop sampler
# --------------------------------------------------------------------------

def random_boxes(rng, count, width=200, height=150, related=False):
    """(count, 4) boxes of 30-90 % of each side; ``related``: jittered copies of one box."""
    corners = rng.uniform(0, 1, size=(count, 2)) * (width * 0.1, height * 0.1)
    sizes = rng.uniform(0.3, 0.9, size=(count, 2)) * (width, height)
    if related:
        corners = corners[:1] + rng.uniform(-2, 2, size=(count, 2))
        sizes = sizes[:1] + rng.uniform(-2, 2, size=(count, 2))
    corners = np.clip(corners, 0, None)
    return np.concatenate([corners, np.minimum(corners + sizes, (width, height))], axis=1).astype(np.float32)


@pytest.mark.parametrize("min_iou", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("rule", ["any", "all"])
def test_accepted_crops_satisfy_the_iou_bound(min_iou, rule):
    rng = np.random.default_rng(42)
    accepted = 0
    for _ in range(150):
        boxes = random_boxes(rng, int(rng.integers(1, 4)), related=rule == "all")
        crop = sample_crop(boxes, 200, 150, rng, min_iou, trials=300, iou_rule=rule)  # more trials: 0.9 is rare
        if crop is None:
            continue
        accepted += 1
        overlaps = iou(crop[None].astype(np.float32), boxes)[0]
        assert (overlaps.max() if rule == "any" else overlaps.min()) >= min_iou
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        assert ((centres > crop[:2]) & (centres < crop[2:])).all(axis=1).any()
        w, h = crop[2] - crop[0], crop[3] - crop[1]
        assert 0.3 * 200 - 1 <= w <= 200 and 0.3 * 150 - 1 <= h <= 150 and 0.45 <= w / h <= 2.1
    assert accepted >= 10


def test_the_iou_test_fires():
    # Unconstrained ("any crop") windows often overlap every box by less than 0.5;
    # with min IoU 0.5 none may: so the bound rejects real candidates.
    rng = np.random.default_rng(7)
    free, bound = [], []
    for _ in range(300):
        boxes = random_boxes(rng, 2)
        for min_iou, store in ((-np.inf, free), (0.5, bound)):
            crop = sample_crop(boxes, 200, 150, rng, min_iou)
            if crop is not None:
                store.append(iou(crop[None].astype(np.float32), boxes)[0].max())
    free, bound = np.array(free), np.array(bound)
    assert (free < 0.5).mean() > 0.3
    assert len(bound) > 50 and (bound >= 0.5).all()
    assert bound.mean() > free.mean() + 0.15


def test_sampler_choices_include_every_bound():
    assert CROP_MIN_IOUS[0] is None and CROP_MIN_IOUS[-1] == -np.inf
    assert list(CROP_MIN_IOUS[1:-1]) == [0.1, 0.3, 0.5, 0.7, 0.9]


def test_random_crop_draws_every_choice_uniformly(monkeypatch):
    import minissd.data.augment as augment

    asked = []
    real = augment.sample_crop

    def recording(boxes, width, height, rng, min_iou, *args, **kwargs):
        asked.append(min_iou)
        return real(boxes, width, height, rng, min_iou, *args, **kwargs)

    monkeypatch.setattr(augment, "sample_crop", recording)
    image, boxes, labels = painted_scene()
    for seed in range(1400):
        random_crop(image, boxes, labels, np.random.default_rng(seed))
    counts = {m: asked.count(m) for m in CROP_MIN_IOUS[1:]}
    assert all(140 < count < 260 for count in counts.values()), counts  # 1400 / 7 = 200 each
    assert 140 < 1400 - len(asked) < 260  # "whole image" needs no sampling


def test_failed_sampler_keeps_the_whole_image():
    image, boxes, labels = painted_scene()  # small boxes: a 0.9 IoU crop is out of reach
    out = random_crop(image, boxes, labels, np.random.default_rng(0), choices=(0.99,))
    assert out[0] is image and out[1] is boxes


def test_crop_keeps_boxes_with_centre_inside_clipped():
    image, boxes, labels = painted_scene()
    choices = (0.1,)
    for seed in range(30):
        out, out_boxes, out_labels = random_crop(image, boxes, labels, np.random.default_rng(seed), choices=choices)
        assert len(out_labels) >= 1
        assert (out_boxes[:, :2] >= 0).all()
        assert (out_boxes[:, 2] <= out.shape[1]).all() and (out_boxes[:, 3] <= out.shape[0]).all()


def test_crop_without_boxes_keeps_the_image():
    image = np.zeros((10, 10, 3), np.float32)
    out, boxes, labels = random_crop(image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                                     np.random.default_rng(0))
    assert out is image and boxes.shape == (0, 4)


def test_bad_iou_rule():
    with pytest.raises(ValueError, match="iou_rule"):
        sample_crop(np.ones((1, 4), np.float32), 10, 10, np.random.default_rng(0), 0.5, iou_rule="most")


# --------------------------------------------------------------------------
# photometric distortion
# --------------------------------------------------------------------------

def test_photometric_leaves_boxes_alone_and_stays_in_range():
    image, boxes, labels = painted_scene()
    image = image * 0.8 + 20  # not only 0 and 255
    changed = 0
    for seed in range(40):
        out, out_boxes, out_labels = photometric_distort(image, boxes, labels, np.random.default_rng(seed),
                                                         channel_swap=seed % 2 == 0)
        assert out_boxes is boxes and out_labels is labels
        assert out.shape == image.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 255
        changed += not np.allclose(out, image)
    assert changed >= 30


def test_hsv_matches_colorsys_and_round_trips(rng):
    pixels = rng.uniform(0, 255, size=(20, 30, 3)).astype(np.float32)
    pixels[0, :3] = [[0, 0, 0], [128, 128, 128], [255, 0, 255]]  # black, grey, a hue at the wrap
    hsv = rgb_to_hsv(pixels)
    for (r, g, b), (h, s, v) in zip(pixels.reshape(-1, 3)[::7], hsv.reshape(-1, 3)[::7]):
        ref = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
        assert abs(h / 360 - ref[0]) < 1e-5 or abs(abs(h / 360 - ref[0]) - 1) < 1e-5
        assert abs(s - ref[1]) < 1e-5 and abs(v / 255 - ref[2]) < 1e-6
    assert (hsv[..., 0] >= 0).all() and (hsv[..., 0] < 360).all()
    np.testing.assert_allclose(hsv_to_rgb(hsv), pixels, atol=1e-3)


def test_hue_shift_moves_red_towards_yellow():
    red = np.full((2, 2, 3), [200, 0, 0], dtype=np.float32)
    for seed in range(50):
        out, _, _ = random_saturation_hue(red, None, None, np.random.default_rng(seed), p=1.0)
        hue = rgb_to_hsv(out)[0, 0, 0]
        shift = (hue + 180) % 360 - 180
        assert abs(shift) <= 18 + 1e-3


# --------------------------------------------------------------------------
# resize and the model's input convention
# --------------------------------------------------------------------------

def bilinear_reference(image, out_height, out_width):
    """One output pixel at a time: centre-aligned bilinear with edges repeated."""
    height, width, channels = image.shape
    out = np.zeros((out_height, out_width, channels))
    for i in range(out_height):
        y = min(max((i + 0.5) * height / out_height - 0.5, 0), height - 1)
        y0 = int(np.floor(y))
        y1, fy = min(y0 + 1, height - 1), y - y0
        for j in range(out_width):
            x = min(max((j + 0.5) * width / out_width - 0.5, 0), width - 1)
            x0 = int(np.floor(x))
            x1, fx = min(x0 + 1, width - 1), x - x0
            out[i, j] = ((1 - fy) * ((1 - fx) * image[y0, x0] + fx * image[y0, x1])
                         + fy * ((1 - fx) * image[y1, x0] + fx * image[y1, x1]))
    return out


@pytest.mark.parametrize("shape, size", [((7, 9), (12, 5)), ((20, 16), (6, 6)), ((5, 5), (5, 5))])
def test_bilinear_resize_matches_the_loop(rng, shape, size):
    image = rng.uniform(0, 255, size=(*shape, 3)).astype(np.float32)
    out = bilinear_resize(image, *size)
    assert out.shape == (*size, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, bilinear_reference(image, *size), atol=1e-3)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_bilinear_resize_at_the_same_size_is_the_interpolation_without_the_work(rng, dtype):
    """The shortcut (a float32 copy) gives the interpolation's result bit for bit, in a new array."""
    from minissd.data.augment import _bilinear_interpolate

    image = rng.uniform(0, 255, size=(13, 17, 3)).astype(dtype)
    out = bilinear_resize(image, 13, 17)
    assert out.dtype == np.float32 and out.shape == (13, 17, 3)
    np.testing.assert_array_equal(out, _bilinear_interpolate(image, 13, 17))
    assert not np.shares_memory(out, image)
    out[0, 0, 0] = -1.0  # the caller may write into it; the picture is untouched
    assert image[0, 0, 0] != -1.0


def test_to_model_input_layout():
    image, boxes, labels = resize(*painted_scene(), size=32)
    planes, normalised, _ = to_model_input(image, boxes, labels)
    assert planes.shape == (3, 32, 32) and planes.dtype == np.float32 and planes.flags.c_contiguous
    np.testing.assert_allclose(planes[1, 5, 7], image[5, 7, 1] - MEAN_RGB[1])
    np.testing.assert_allclose(normalised, boxes / 32)


def test_ssd_augmentation_output_and_determinism():
    augment = SSDAugmentation(64)
    image, boxes, labels = painted_scene()
    first = augment(image.astype(np.uint8), boxes, labels, np.random.default_rng(3))
    again = augment(image.astype(np.uint8), boxes, labels, np.random.default_rng(3))
    other = augment(image.astype(np.uint8), boxes, labels, np.random.default_rng(4))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    planes, out_boxes, out_labels = first
    assert planes.shape == (3, 64, 64) and planes.dtype == np.float32
    assert out_boxes.dtype == np.float32 and (out_boxes >= 0).all() and (out_boxes <= 1).all()
    assert set(out_labels.tolist()) <= set(labels.tolist())
    for seed in range(30):  # boxes never collapse: the crop keeps only boxes whose centre it holds
        _, b, _ = augment(image, boxes, labels, np.random.default_rng(seed))
        assert (b[:, 2:] > b[:, :2]).all()


def test_expand_options_bound_the_zoom_out(monkeypatch):
    import minissd.data.augment as augment

    image, boxes, labels = painted_scene()
    scale = []
    for seed in range(40):
        out, _, _ = expand(image, boxes, labels, np.random.default_rng(seed), max_ratio=1.5, p=1.0)
        scale.append(out.shape[1] / image.shape[1])
    assert 1.0 <= min(scale) and max(scale) <= 1.5 and max(scale) > 1.3
    asked = []
    monkeypatch.setattr(augment, "expand", lambda *args, **kwargs: asked.append(kwargs) or args[:3])
    SSDAugmentation(64, expand_ratio=1.5, expand_p=0.25)(image, boxes, labels, np.random.default_rng(0))
    assert asked[0]["max_ratio"] == 1.5 and asked[0]["p"] == 0.25
    with pytest.raises(ValueError, match="expand_ratio"):
        SSDAugmentation(64, expand_ratio=0.5)


def test_eval_transform_only_resizes():
    image, boxes, labels = painted_scene()
    planes, out_boxes, out_labels = eval_transform(48, MEAN_RGB)(image, boxes, labels)
    expected = resize(image, boxes, labels, size=48)
    np.testing.assert_allclose(planes.transpose(1, 2, 0) + np.float32(MEAN_RGB), expected[0], atol=1e-4)
    np.testing.assert_allclose(out_boxes, boxes / [80, 60, 80, 60], rtol=1e-6)
    np.testing.assert_array_equal(out_labels, labels)


@pytest.mark.parametrize("transform", [SSDAugmentation(32), eval_transform(32)])
def test_transforms_reject_bad_input(transform):
    boxes, labels = np.zeros((1, 4), np.float32), np.ones(1, np.int64)
    with pytest.raises(ValueError, match=r"image must have shape \(H, W, 3\)"):
        transform(np.zeros((10, 10)), boxes, labels, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"labels must have shape \(1,\)"):
        transform(np.zeros((10, 10, 3)), boxes, np.ones(2), np.random.default_rng(0))
