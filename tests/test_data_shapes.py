"""ShapesDataset: determinism, splits, well-formed samples, tight visible boxes, the occlusion limit."""

import math

import numpy as np
import pytest

from minissd.data import DEFAULT_CLASSES, ShapesConfig, ShapesDataset
from minissd.data.shapes_draw import SHAPES, contrasting_colour, shape_mask


def test_item_is_the_same_picture_every_time():
    first, second = ShapesDataset("train", num_images=20), ShapesDataset("train", num_images=20)
    for index in (0, 7, 19):
        a, b = first[index], second[index]
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
    # access order does not matter: item 7 after item 19 is still item 7
    np.testing.assert_array_equal(first[7].image, second[7].image)


def test_splits_and_seeds_give_different_pictures():
    images = {
        (split, seed): ShapesDataset(split, num_images=5, seed=seed)[3].image
        for split in ("train", "val", "test")
        for seed in (0, 1)
    }
    keys = list(images)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not np.array_equal(images[a], images[b]), f"{a} and {b} drew the same picture"


def test_default_split_sizes_and_indexing():
    assert [len(ShapesDataset(s)) for s in ("train", "val", "test")] == [4000, 300, 500]
    dataset = ShapesDataset("val", num_images=3)
    np.testing.assert_array_equal(dataset[-1].image, dataset[2].image)
    with pytest.raises(IndexError, match="out of range"):
        dataset[3]


def test_samples_are_well_formed():
    dataset = ShapesDataset("train", num_images=40)
    assert dataset.class_names == ["background", *DEFAULT_CLASSES]
    assert dataset.num_classes == len(DEFAULT_CLASSES) + 1
    counts = []
    for index in range(len(dataset)):
        sample = dataset[index]
        assert sample.image.shape == (128, 128, 3) and sample.image.dtype == np.uint8
        assert sample.boxes.dtype == np.float32 and sample.boxes.shape == (len(sample.labels), 4)
        assert sample.labels.dtype == np.int64 and sample.difficult.dtype == bool
        assert not sample.difficult.any()
        assert ((sample.labels >= 1) & (sample.labels < dataset.num_classes)).all()
        assert (sample.boxes[:, :2] >= 0).all() and (sample.boxes[:, 2:] <= 128).all()
        assert (sample.boxes[:, 2:] > sample.boxes[:, :2]).all()
        assert sample.image_id == f"shapes-train-{index:06d}" and sample.path is None
        counts.append(len(sample.labels))
    assert min(counts) >= 1 and max(counts) <= 6
    assert len(set(counts)) >= 4  # the number of objects varies


def test_boxes_are_the_extent_of_the_visible_pixels_and_occlusion_is_limited():
    dataset = ShapesDataset("train", num_images=30)
    limit = dataset.config.max_occlusion
    for index in range(len(dataset)):
        drawn = dataset.rendering(index)
        for k, box in enumerate(drawn.boxes):
            rows, cols = np.nonzero(drawn.owner == k)
            assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            assert len(rows) >= (1 - limit) * drawn.full_area[k] - 1e-9, (index, k)
        np.testing.assert_array_equal(drawn.image, dataset[index].image)


def test_object_sizes_span_small_to_large():
    dataset = ShapesDataset("train", num_images=150)
    sides = np.concatenate([
        np.maximum(s.boxes[:, 2] - s.boxes[:, 0], s.boxes[:, 3] - s.boxes[:, 1]) / 128
        for s in (dataset[i] for i in range(len(dataset)))
    ])
    config = dataset.config
    # from near min_size (small, 19 px) to near max_size (large, 77 px at 128 px)
    assert sides.min() < config.min_size * 1.15 and sides.max() > config.max_size * 0.9
    assert sides.max() <= config.max_size + 0.01  # (occlusion may shrink a box below min_size, never grow one)


def test_objects_contrast_with_what_is_under_them():
    dataset = ShapesDataset("train", num_images=20, noise_std=0.0)
    for index in range(len(dataset)):
        drawn = dataset.rendering(index)
        image = drawn.image.astype(np.float32)
        for k in range(len(drawn.labels)):
            inside = image[drawn.owner == k].mean(axis=0)
            rows, cols = np.nonzero(drawn.owner == k)
            ring = np.zeros_like(drawn.owner, dtype=bool)
            ring[max(rows.min() - 2, 0):rows.max() + 3, max(cols.min() - 2, 0):cols.max() + 3] = True
            ring &= drawn.owner != k
            if ring.sum() < 10:
                continue
            assert np.linalg.norm(inside - image[ring].mean(axis=0)) > 20, (index, k)


def test_contrasting_colour_keeps_its_distance(rng):
    for under in rng.uniform(0, 255, size=(200, 3)):
        colour = contrasting_colour(rng, under, 70.0)
        assert colour.shape == (3,) and colour.dtype == np.float32
        assert np.linalg.norm(colour - under) >= 70.0 - 1e-3
    # no random colour can be 1000 away: the fallback darkens light and lightens dark
    light, dark = np.array([200.0, 220, 210]), np.array([20.0, 40, 30])
    np.testing.assert_allclose(contrasting_colour(rng, light, 1000.0), light * 0.25, rtol=1e-6)
    np.testing.assert_allclose(contrasting_colour(rng, dark, 1000.0), dark + (255 - dark) * 0.75, rtol=1e-6)


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("circle", math.pi / 4),
        ("square", 1.0),
        ("triangle", 0.5),
        ("diamond", 0.5),
        ("cross", 2 * 0.34 - 0.34**2),
        ("star", 10 * 0.5 * 0.45 * math.sin(math.radians(36)) / 4),
        ("ring", math.pi / 4 * (1 - 0.55**2)),
    ],
)
def test_silhouette_areas_match_geometry(shape, expected):
    # A 400 x 400 shape in its own 400 x 400 window: covered fraction = area / bounding square.
    mask = shape_mask(shape, 200.0, 200.0, 400.0, 400.0, 0.0, 0, 0, 400, 400)
    assert abs(mask.mean() - expected) < 0.01
    assert set(SHAPES) >= set(DEFAULT_CLASSES)


def test_star_has_five_points_up():
    mask = shape_mask("star", 50.0, 50.0, 100.0, 100.0, 0.0, 0, 0, 100, 100)
    assert mask[2, 50] and not mask[2, 30]  # the top point is centred
    ring = [(50 - 45 * math.cos(a), 50 + 45 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 720, endpoint=False)]
    inside = np.array([mask[int(y), int(x)] for y, x in ring])
    runs = np.count_nonzero(inside & ~np.roll(inside, 1))  # entries into a point, going round
    assert runs == 5


def test_classes_are_a_parameter():
    dataset = ShapesDataset("val", num_images=30, classes=("ring", "diamond"))
    assert dataset.class_names == ["background", "ring", "diamond"] and dataset.num_classes == 3
    labels = np.concatenate([dataset[i].labels for i in range(30)])
    assert set(labels.tolist()) == {1, 2}


def test_difficulty_knobs_change_the_pictures():
    easy = ShapesDataset("train", num_images=10, max_objects=1, clutter_behind=0, clutter_on_top=0)
    assert all(len(easy[i].labels) == 1 for i in range(10))
    assert easy.config.max_objects == 1 and easy.config.min_size == ShapesConfig().min_size
    smooth = ShapesDataset("train", num_images=1, noise_std=0.0, texture_contrast=0.0, clutter_behind=0,
                           clutter_on_top=0, max_objects=1, min_size=0.2, max_size=0.2)
    drawn = smooth.rendering(0)
    background = drawn.image[drawn.owner < 0].astype(np.float32)
    # without noise and texture the background is one colour or a smooth gradient
    both_background = (drawn.owner[:, 1:] < 0) & (drawn.owner[:, :-1] < 0)  # (S, S - 1)
    assert np.abs(np.diff(drawn.image.astype(np.float32), axis=1)[both_background]).max() <= 3
    assert background.std(axis=0).max() < 60


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(split="holdout"), "split must be one of"),
        (dict(classes=("circle", "hexagon")), "classes must be distinct names"),
        (dict(classes=("circle", "circle")), "classes must be distinct names"),
        (dict(min_objects=3, max_objects=2), "min_objects"),
        (dict(min_size=0.5, max_size=0.2), "min_size"),
        (dict(max_occlusion=1.0), "max_occlusion"),
        (dict(image_size=8), "image_size"),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShapesDataset(**kwargs)


def test_cache_returns_the_stored_sample():
    dataset = ShapesDataset("test", num_images=4, cache=True)
    assert dataset[1] is dataset[1]
    np.testing.assert_array_equal(dataset[1].image, ShapesDataset("test", num_images=4)[1].image)
