"""minissd.coverage: best IoU per object, the map it comes from, positives as the trainer's matching gives them.

Hand-made boxes whose numbers follow from the tiny preset by hand, the shapes data against the
DataLoader's own targets, made-up VOC and COCO folders read without decoding a picture, bad input,
and the pictures of minissd.viz.coverage.
"""

import json
import os

import numpy as np
import pytest

from minissd import coverage as C
from minissd import priors as P
from minissd.boxes import cxcywh_to_xyxy, iou
from minissd.data import (
    COCODataset,
    DataError,
    DataLoader,
    ShapesDataset,
    VOCDataset,
    eval_transform,
)
from minissd.matching import match_indices

from . import real_layouts

TINY = P.PRESETS["tiny"]  # maps 16, 8, 4, 2, 1 (steps 8..128 px at 128 px), s_k 0.08 ... 0.76, ratio 2
TINY_PRIORS = P.default_boxes(TINY)  # (1364, 4)
TINY_CORNERS = cxcywh_to_xyxy(TINY_PRIORS)
SMALL_OBJECTS = P.PriorConfig(  # the tiny network at 256 px: maps 32..2, smaller scales (notebook 02)
    name="small-objects", image_size=256, feature_maps=(32, 16, 8, 4, 2), steps=(8, 16, 32, 64, 128),
    min_sizes=(0.05, 0.1, 0.2, 0.4, 0.7), max_sizes=(0.1, 0.2, 0.4, 0.7, 0.95), aspect_ratios=((2,),) * 5)


def prior_index(config, k, row, column, box):
    """Row of default_boxes(config) of map k, cell (row, column), box ``box`` in per-cell order."""
    side, per_cell = config.feature_maps[k], config.boxes_per_cell[k]
    return P.prior_slices(config)[k].start + (row * side + column) * per_cell + box


class CountingDataset:
    """Any dataset of Samples (the item-by-item path), counting the items read."""

    def __init__(self, dataset):
        self.dataset, self.reads = dataset, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        self.reads += 1
        return self.dataset[index]


# --------------------------------------------------------------------------
# hand-made boxes
# --------------------------------------------------------------------------

def test_a_box_equal_to_a_default_box_has_best_iou_one_on_its_map():
    p = prior_index(TINY, 0, 3, 5, 2)  # the a=2 box of cell (3, 5) on the 16 x 16 map
    cov = C.coverage([TINY_CORNERS[p:p + 1]], "tiny")
    assert cov.num_objects == 1 and cov.num_images == 1
    assert cov.best_iou[0] == 1.0 and cov.best_prior[0] == p
    assert cov.best_map[0] == 0 and cov.kinds[cov.best_kind[0]] == "a=2"
    assert cov.best_iou_per_map[0, 0] == 1.0 and (cov.best_iou_per_map[0, 1:] < 1).all()
    assert cov.share_below_threshold == 0.0 and cov.share_below_low == 0.0 and cov.unmatched == 0


def test_the_whole_image_box_of_the_1x1_map_gets_four_positives_there():
    # g = the s_k box of the 1 x 1 map: [0.12, 0.88]^2. By hand, in that cell: s'_k = sqrt(0.76 * 0.96) = 0.854
    # contains g, IoU 0.5776 / 0.7296 = 0.79; a=2 (1.075 x 0.537): 0.4084 / 0.7468 = 0.547, a=1/2 the same.
    # The 2 x 2 map's best, s'_k = 0.652 at (0.25, 0.25): 0.456^2 / 0.7953 = 0.26 < 0.5, smaller maps less.
    p = prior_index(TINY, 4, 0, 0, 0)
    cov = C.coverage(TINY_CORNERS[p:p + 1], TINY)  # one (G, 4) array: one image
    assert cov.best_iou[0] == 1.0 and cov.best_map[0] == 4
    assert cov.positives.tolist() == [4]
    assert cov.positives_per_map.tolist() == [0, 0, 0, 0, 4]
    assert cov.positives_per_kind == {"s_k": 1, "s'_k": 1, "a=2": 1, "a=1/2": 1}
    assert np.isclose(cov.best_iou_per_map[0, 3], 0.456 ** 2 / (0.652 ** 2 + 0.76 ** 2 - 0.456 ** 2), atol=2e-3)
    assert cov.objects_per_best_map.tolist() == [0, 0, 0, 0, 1]


def test_a_tiny_box_is_matched_by_the_bipartite_step_only():
    # a 0.02 x 0.02 box centred on the first cell of the 16 x 16 map, (1/32, 1/32): the s_k box (0.08^2) and the
    # a=2 / a=1/2 boxes (area 0.0064 too) contain it, IoU 0.0004 / 0.0064 = 0.0625 (equal on paper; float32
    # rounding of the three areas picks one of them); the s'_k box (0.12^2): 0.0004 / 0.0144 = 0.028
    centre = 1 / 32
    box = np.array([[centre - 0.01, centre - 0.01, centre + 0.01, centre + 0.01]], dtype=np.float32)
    cov = C.coverage([box], "tiny")
    assert np.isclose(cov.best_iou[0], 0.0625, rtol=1e-4)
    assert cov.best_prior[0] in (0, 2, 3) and cov.best_map[0] == 0
    assert cov.kinds[cov.best_kind[0]] in ("s_k", "a=2", "a=1/2")
    assert cov.positives.tolist() == [1]  # the bipartite step's box, no other
    assert cov.share_below_threshold == 1.0 and cov.share_below_low == 1.0
    # with T = 0.06 the threshold step adds the two other boxes of IoU 0.0625: a=2 and a=1/2
    low = C.coverage([box], "tiny", iou_threshold=0.06)
    assert low.positives.tolist() == [3] and low.share_below_threshold == 0.0
    assert low.positives_per_kind == {"s_k": 1, "s'_k": 0, "a=2": 1, "a=1/2": 1}


def test_objects_of_one_image_compete_as_in_training():
    # two identical objects on one default box: both have best IoU 1, but the greedy step gives that box to
    # the first; the second gets its next best box, and every box the threshold step hands out goes to the
    # first (ties go to the lower index, as in match_indices)
    p = prior_index(TINY, 1, 4, 4, 0)
    image = np.repeat(TINY_CORNERS[p:p + 1], 2, axis=0)  # (2, 4)
    cov = C.coverage([image], "tiny")
    assert cov.best_iou.tolist() == [1.0, 1.0]
    matched = match_indices(image, TINY_PRIORS)
    assert matched[p] == 0 and cov.positives[1] == 1
    assert cov.positives.sum() == (matched >= 0).sum() and cov.positives[0] == (matched == 0).sum()
    # in separate images there is no competition: each gets every box the pair shared out
    alone = C.coverage([image[:1], image[1:]], "tiny")
    assert alone.positives.tolist() == [cov.positives.sum()] * 2
    assert alone.image_index.tolist() == [0, 1] and cov.image_index.tolist() == [0, 0]


def test_positives_equal_match_indices_on_random_images(rng):
    images = []
    for _ in range(6):
        corner = rng.uniform(0, 0.6, size=(int(rng.integers(0, 5)), 2))
        images.append(np.concatenate([corner, corner + rng.uniform(0.02, 0.4, size=corner.shape)], 1)
                      .astype(np.float32))
    cov = C.coverage(images, "ssd300-voc", iou_threshold=0.45)
    config = P.PRESETS["ssd300-voc"]
    priors = P.default_boxes(config)
    expected_maps = np.zeros(len(config.feature_maps), dtype=np.int64)
    per_object = []
    for boxes in images:
        matched = match_indices(boxes, priors, 0.45)
        per_object += np.bincount(matched[matched >= 0], minlength=len(boxes)).tolist()
        expected_maps += [int((matched[rows] >= 0).sum()) for rows in P.prior_slices(config)]
    assert cov.positives.tolist() == per_object and cov.positives_per_map.tolist() == expected_maps.tolist()
    nonempty = np.concatenate(images)
    assert np.array_equal(cov.best_iou, iou(nonempty, cxcywh_to_xyxy(priors)).max(axis=1))
    assert cov.num_images == 6 and cov.num_objects == len(nonempty)


def test_prior_kinds_follow_the_per_cell_order():
    config = P.PRESETS["ssd300-voc"]  # ratios (2,) on maps 0, 4, 5 and (2, 3) on maps 1..3
    names, prior_map, prior_kind = C.prior_kinds(config)
    assert names == ("s_k", "s'_k", "a=2", "a=1/2", "a=3", "a=1/3")
    assert prior_map.shape == prior_kind.shape == (config.num_priors,)
    for k, rows in enumerate(P.prior_slices(config)):
        assert (prior_map[rows] == k).all()
        cell = prior_kind[rows][:config.boxes_per_cell[k]]
        assert cell.tolist() == list(range(config.boxes_per_cell[k]))
    priors = P.default_boxes(config)
    a3 = prior_kind == names.index("a=3")
    assert np.allclose(priors[a3, 2] / priors[a3, 3], 3, rtol=1e-5)  # w / h = a
    assert a3.sum() == sum(side * side for side in (19, 10, 5))


def test_summary_and_table():
    p = prior_index(TINY, 0, 2, 2, 0)  # inside the picture (the first cell's boxes stick out of it)
    tiny_box = np.array([[0.0, 0.0, 0.02, 0.02]], dtype=np.float32)
    cov = C.coverage([TINY_CORNERS[p:p + 1], tiny_box], "tiny")
    summary = json.loads(json.dumps(cov.summary()))
    assert summary["objects"] == 2 and summary["images"] == 2 and summary["share_below_threshold"] == 0.5
    assert sum(summary["best_iou_histogram"]["counts"]) == 2
    assert [m["side"] for m in summary["maps"]] == [16, 8, 4, 2, 1]
    assert sum(m["positives"] for m in summary["maps"]) == summary["positives"] == sum(summary["kinds"].values())
    text = cov.table()
    assert "tiny" in text and "50.0 %" in text and "16x16" in text and "a=1/2" in text
    both = C.coverage_table(C.compare_presets([tiny_box], ["tiny", "ssd300-voc"]))
    assert "ssd300-voc" in both and "38x38" in both and "a=1/3" in both


# --------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------

def test_shapes_coverage_is_the_data_loaders_matching():
    dataset = ShapesDataset("val", num_images=24)
    cov = C.coverage(dataset, "tiny")
    loader = DataLoader(dataset, 8, TINY_PRIORS, eval_transform(128), shuffle=False, prefetch=0)
    batches = [loader.make_batch(0, indices) for indices in loader.batch_indices(0)]
    conf = np.concatenate([b.conf_targets for b in batches])  # (24, P)
    assert cov.positives_per_map.tolist() == [int((conf[:, rows] > 0).sum()) for rows in P.prior_slices(TINY)]
    boxes = np.concatenate([box for b in batches for box in b.boxes])
    assert np.array_equal(cov.boxes, boxes) and cov.num_objects == len(boxes)
    assert cov.num_images == 24 and cov.positives.min() >= 1


def test_small_shapes_need_a_finer_grid_and_smaller_scales():
    small = ShapesDataset("val", num_images=120, min_size=0.05, max_size=0.15)
    tiny, fine = C.compare_presets(small, ["tiny", SMALL_OBJECTS])
    default = C.coverage(ShapesDataset("val", num_images=120), "tiny")
    assert tiny.share_below_threshold > 0.5 > default.share_below_threshold  # the tiny preset misses small ones
    assert tiny.share_below_low > 0.1
    assert fine.share_below_threshold < tiny.share_below_threshold / 2 and fine.share_below_low < 0.03
    assert fine.num_objects == tiny.num_objects and np.array_equal(fine.boxes, tiny.boxes)
    assert fine.positives_per_object > tiny.positives_per_object


def test_compare_presets_reads_the_data_once_and_limit_counts_images():
    counting = CountingDataset(ShapesDataset("val", num_images=10))
    first, second = C.compare_presets(counting, ["tiny", "ssd300-coco"], limit=6)
    assert counting.reads == 6 and first.num_images == second.num_images == 6
    assert first.config.name == "tiny" and second.config.name == "ssd300-coco"
    read = C.dataset_boxes(counting, limit=4)
    assert C.coverage(read, "tiny", limit=2).num_images == 2 and len(read.boxes) == 4


@pytest.fixture
def voc(tmp_path):
    folder = real_layouts.voc_folder(tmp_path, names=("cat", "dog"), count=8)
    return VOCDataset(folder, year=None, split="all", class_names=("cat", "dog"))


def test_a_voc_folder_is_read_without_decoding_a_picture(voc, monkeypatch):
    decoded = []
    for index in range(len(voc)):  # what reading the items gives: the pictures decoded
        sample = voc[index]
        keep = ~sample.difficult
        decoded.append(sample.boxes[keep] / np.array([sample.width, sample.height] * 2, dtype=np.float32))
    difficult = sum(int(voc[i].difficult.sum()) for i in range(len(voc)))
    assert difficult >= 1  # the folder flags every 7th object

    import minissd.data.voc

    def no_decoding(path, **_):
        raise AssertionError(f"{path} was decoded")

    monkeypatch.setattr(minissd.data.voc, "load_rgb_image", no_decoding)
    cov = C.coverage(voc, "ssd300-voc")
    assert cov.difficult_left_out == difficult and cov.num_images == len(voc)
    assert np.array_equal(cov.boxes, np.concatenate(decoded))
    kept = C.coverage(voc, "ssd300-voc", drop_difficult=False)
    assert kept.num_objects == cov.num_objects + difficult and kept.difficult_left_out == 0


def test_voc_coverage_is_the_data_loaders_matching(voc):
    cov = C.coverage(voc, "tiny")
    loader = DataLoader(voc, 4, TINY_PRIORS, eval_transform(128), shuffle=False, prefetch=0, drop_difficult=True)
    conf = np.concatenate([loader.make_batch(0, indices).conf_targets for indices in loader.batch_indices(0)])
    assert cov.positives_per_map.tolist() == [int((conf[:, rows] > 0).sum()) for rows in P.prior_slices(TINY)]


def test_a_picture_that_went_missing_is_named_or_skipped(tmp_path):
    folder = real_layouts.voc_folder(tmp_path, names=("cat", "dog"), count=5)
    strict = VOCDataset(folder, year=None, split="all", class_names=("cat", "dog"))
    lenient = VOCDataset(folder, year=None, split="all", class_names=("cat", "dog"), skip_bad=True)
    missing = os.path.join(folder, "JPEGImages", "img_002.jpg")
    os.remove(missing)
    with pytest.raises(DataError, match="img_002.jpg"):
        C.coverage(strict, "tiny")
    with pytest.warns(UserWarning, match="skipped 1 picture"):
        cov = C.coverage(lenient, "tiny")
    assert cov.num_images == 4 and [index for index, _ in cov.skipped] == [2]


def test_coco_crowd_regions_are_not_objects(tmp_path, monkeypatch):
    annotations, images = real_layouts.coco_folder(tmp_path)
    dataset = COCODataset(annotations, images)
    expected = [dataset[i].boxes / np.array([dataset[i].width, dataset[i].height] * 2, dtype=np.float32)
                for i in range(len(dataset))]
    import minissd.data.coco

    monkeypatch.setattr(minissd.data.coco, "load_rgb_image", lambda path, **_: pytest.fail(f"{path} decoded"))
    cov = C.coverage(dataset, "ssd300-coco")
    with open(annotations) as stream:
        crowd = sum(a["iscrowd"] for a in json.load(stream)["annotations"])
    assert crowd == 1 and cov.num_objects == sum(len(e) for e in expected)
    assert np.array_equal(cov.boxes, np.concatenate(expected))


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, words", [
    (lambda: C.coverage([[[0.1, 0.1, 0.2, 0.2]]], "nope"), ValueError, "unknown default-box preset 'nope'"),
    (lambda: C.coverage([[[0.1, 0.1, 0.2, 0.2]]], "tiny", iou_threshold=1.5), ValueError, "iou_threshold"),
    (lambda: C.coverage([[[0.1, 0.1, 0.2, 0.2]]], "tiny", limit=0), ValueError, "limit = 0"),
    (lambda: C.coverage([[[0.1, 0.1, 0.2, 0.2]]], "tiny", limit=2.5), TypeError, "limit = 2.5"),
    (lambda: C.coverage([[[0.1, 0.1, 0.2, 0.2]]], "tiny", bipartite="best"), ValueError, "bipartite"),
    (lambda: C.coverage([np.zeros(4)], "tiny"), ValueError, "boxes[0] has shape (4,)"),
    (lambda: C.coverage([np.zeros((0, 4)), [[0.5, 0.1, 0.4, 0.9]]], "tiny"), ValueError, "boxes[1][0]"),
    (lambda: C.coverage([[[10, 20, 50, 60]]], "tiny"), ValueError, "outside [0, 1]"),
    (lambda: C.coverage([np.zeros((0, 4))] * 3, "tiny"), ValueError, "3 image(s)"),
    (lambda: C.coverage(5, "tiny"), TypeError, "data is a int"),
    (lambda: C.compare_presets([], "tiny"), TypeError, "list of preset names"),
    (lambda: C.coverage_table([]), ValueError, "at least one Coverage"),
])
def test_bad_input_is_one_clear_error(call, error, words):
    with pytest.raises(error) as caught:
        call()
    assert words in str(caught.value)


# --------------------------------------------------------------------------
# pictures
# --------------------------------------------------------------------------

def test_the_pictures_show_the_numbers():
    from minissd import viz

    small = ShapesDataset("val", num_images=30, min_size=0.05, max_size=0.15)
    tiny, fine = C.compare_presets(small, ["tiny", SMALL_OBJECTS])
    figure = viz.coverage_figure(tiny)
    best, sizes, per_map, per_kind = figure.axes
    heights = [patch.get_height() for patch in best.patches]
    assert np.isclose(sum(heights), tiny.num_objects)  # stacked bars: every object once
    assert [line.get_xdata()[0] for line in best.lines] == [0.5, 0.3]
    assert np.isclose(sum(patch.get_height() for patch in sizes.patches), tiny.num_objects)
    assert [line.get_xdata()[0] for line in sizes.lines[::2]] == list(TINY.min_sizes)  # s_k, then s'_k, per map
    assert len(sizes.lines) == 2 * len(TINY.feature_maps)
    top = sizes.child_axes[0]  # the map names, above the plot at their s_k
    assert [t.get_text() for t in top.get_xticklabels()] == ["16x16", "8x8", "4x4", "2x2", "1x1"]
    assert [t.get_text() for t in per_map.get_xticklabels()] == ["16x16", "8x8", "4x4", "2x2", "1x1"]
    assert np.allclose([b.get_height() for b in per_map.patches], tiny.positives_per_map / tiny.num_objects)
    assert [t.get_text() for t in per_kind.get_xticklabels()] == ["s_k", "s'_k", "a=2", "a=1/2"]
    pair = viz.compare_coverage_figure(tiny, fine)
    axes = np.array(pair.axes).reshape(4, 2)
    assert [ax.get_ylim() for ax in axes[:, 0]] == [ax.get_ylim() for ax in axes[:, 1]]
    assert axes[2, 1].get_xticklabels()[0].get_text() == "32x32"
    with pytest.raises(ValueError, match="by = 'size'"):
        viz.plot_positives(tiny, by="size")


def test_the_small_objects_preset_fits_the_tiny_network_at_256_px():
    # notebook 02's claim: the tiny SSD on 256 x 256 pictures makes exactly the maps 32 ... 2 of SMALL_OBJECTS
    from dataclasses import replace

    from minissd.models import tiny_ssd

    model = tiny_ssd(6, preset=SMALL_OBJECTS)
    assert np.array_equal(model.priors, P.default_boxes(SMALL_OBJECTS)) and model.priors.shape == (5456, 4)
    with pytest.raises(ValueError, match=r"makes maps \(16, 8, 4, 2, 1\)"):
        tiny_ssd(6, preset=replace(SMALL_OBJECTS, image_size=128))
