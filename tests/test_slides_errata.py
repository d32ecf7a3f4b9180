"""Every slip of the source slides (notebook 00's errata), found by comparing what the slides print
(minissd.slides.PRINTED_*) with what minissd computes; and the paper's published tables."""

import itertools
import math

import numpy as np
import pytest

from minissd import boxes as B
from minissd import matching as M
from minissd import models
from minissd import priors as P
from minissd import slides
from minissd.loss import hard_negative_mask

SSD300_MAPS = (38, 19, 10, 5, 3, 1)

# the slide's k = 3 table order -> minissd's per-cell order [s_k, s'_k, 2, 1/2, 3, 1/3]
SLIDE_ROW_TO_CELL = {1: 0, 2: 2, 3: 4, 1 / 2: 3, 1 / 3: 5, "extra": 1}


def k3_shapes_in_slide_order():
    s = P.scales(6)
    shapes = P.box_shapes(s[2], s[3], aspect_ratios=(2, 3))  # k = 3: s_3 = 0.48, s_4 = 0.62
    return [shapes[SLIDE_ROW_TO_CELL[ratio]] for ratio in slides.PRINTED_K3_RATIOS]


def test_the_scales_agree_but_the_last_map_not_the_second_uses_s_max():
    computed = P.scales(6)
    assert [round(s, 2) for s in computed] == list(slides.PRINTED_SCALES)  # the list itself is right
    k_of_s_max = [k for k, s in enumerate(computed, start=1) if math.isclose(s, 0.9)]
    assert k_of_s_max == [6] != [slides.PRINTED_MAP_WITH_S_MAX]  # the slide says the 2nd map
    assert computed[slides.PRINTED_MAP_WITH_S_MAX - 1] == pytest.approx(0.34)  # what the 2nd map really uses


def test_the_k3_table_has_one_slip_the_tall_box_is_0_83_high():
    computed = k3_shapes_in_slide_order()
    rounded = [(round(w, 2), round(h, 2)) for w, h in computed]
    slips = [(row, axis) for row, (mine, printed) in enumerate(zip(rounded, slides.PRINTED_K3_SHAPES))
             for axis in (0, 1) if mine[axis] != printed[axis]]
    assert slips == [(4, 1)]  # a_r = 1/3, height
    assert slides.PRINTED_K3_SHAPES[4][1] == 0.84 and rounded[4][1] == 0.83
    assert computed[4][1] == pytest.approx(0.48 * math.sqrt(3))  # 0.8314 = s_3 / sqrt(1/3)


def test_the_5x5_list_drops_one_centre():
    axis = [round(float(c), 6) for c in P.cell_centres(5)]
    computed = set(itertools.product(axis, repeat=2))
    printed = set(slides.PRINTED_5X5_CENTRES)
    assert len(computed) == slides.PRINTED_5X5_COUNT == 25 != len(slides.PRINTED_5X5_CENTRES) == 24
    assert printed < computed and computed - printed == {(0.1, 0.3)}


def test_a_5x5_map_is_k_4_in_ssd300_not_k_3():
    for preset in ("ssd300-paper", "ssd300-voc"):
        maps = P.PRESETS[preset].feature_maps
        assert maps == SSD300_MAPS
        assert maps.index(5) + 1 == 4 != slides.PRINTED_K_OF_5X5
        assert maps[slides.PRINTED_K_OF_5X5 - 1] == 10  # the k = 3 map is 10 x 10
    model = models.ssd300(21)
    model.forward(np.zeros((0, 3, 300, 300), np.float32))  # an empty batch walks the shapes
    assert [shape[2] for shape in model.feature_shapes] == list(SSD300_MAPS)
    assert P.scales(6)[3] == pytest.approx(0.62)  # the 5 x 5 map's scale in the paper's formula


def two_objects():
    gt = np.array([[0.10, 0.20, 0.45, 0.70], [0.50, 0.30, 0.95, 0.90]], np.float32)  # (G, 4) xyxy
    return gt, np.array([8, 12])  # a cat and a dog (VOC labels)


def test_x_ij_pairs_default_box_i_with_ground_truth_j():
    gt, labels = two_objects()
    priors = P.default_boxes("ssd300-voc")
    matched = M.match_indices(gt, priors)  # (P,): j for default box i, -1 for background
    x = np.zeros((priors.shape[0], gt.shape[0]), bool)  # x_ij, one class per column here
    positives = np.nonzero(matched >= 0)[0]
    x[positives, matched[positives]] = True
    assert (x.sum(axis=1) <= 1).all()  # a default box matches at most one ground truth
    assert (x.sum(axis=0) > 1).all()  # a ground truth matches many default boxes: i and j differ
    assert positives.max() >= gt.shape[0]  # "the i-th ground truth" would not even exist for these i
    _, conf_targets = M.match(gt, labels, priors)
    assert (conf_targets[positives] == labels[matched[positives]]).all()  # p is the label of j


def test_matching_is_not_only_iou_at_least_0_5():
    # a thin object: no default box reaches IoU 0.5, yet it gets one positive (its best box)
    gt = np.array([[0.05, 0.48, 0.95, 0.52]], np.float32)
    priors = P.default_boxes("ssd300-voc")
    overlaps = B.iou(gt, B.cxcywh_to_xyxy(priors))  # (1, P)
    assert overlaps.max() < 0.5
    matched = M.match_indices(gt, priors)
    assert np.nonzero(matched >= 0)[0].tolist() == [int(overlaps.argmax())]


def test_hard_negatives_are_at_most_three_per_positive():
    loss = np.arange(10, dtype=np.float32)[None] / 10  # (1, P) background loss
    few = np.zeros((1, 10), bool)
    few[0, :1] = True  # 1 positive, 9 negatives: keeps 3
    assert hard_negative_mask(loss, few, slides.PRINTED_NEG_POS_RATIO).sum() == 3
    many = np.zeros((1, 10), bool)
    many[0, :4] = True  # 4 positives, only 6 negatives: all 6 kept, 6 : 4, not 3 : 1
    kept = hard_negative_mask(loss, many, slides.PRINTED_NEG_POS_RATIO)
    assert kept.sum() == 6 < slides.PRINTED_NEG_POS_RATIO * 4
    assert not hard_negative_mask(loss, np.zeros((1, 10), bool)).any()  # no positive, no negative


def test_the_trained_ssd300_uses_0_1_on_conv4_3():
    # not a slip: the slides give the formula of section 2.2; the VOC model of section 3.1 differs
    voc = P.PRESETS["ssd300-voc"]
    assert voc.min_sizes[0] == pytest.approx(0.1)
    np.testing.assert_allclose(voc.min_sizes[1:], [0.2, 0.37, 0.54, 0.71, 0.88], atol=1e-12)
    np.testing.assert_allclose(P.PRESETS["ssd300-paper"].min_sizes, slides.PRINTED_SCALES, atol=1e-12)


# --- the published tables ------------------------------------------------------------------

@pytest.mark.parametrize("row", slides.VOC2007_TEST, ids=[f"{r.method} {r.data}" for r in slides.VOC2007_TEST])
def test_each_map_is_the_mean_of_its_20_class_aps(row):
    assert len(row.ap) == len(slides.VOC_CLASS_COLUMNS) == 20
    # each AP is rounded to 0.1, so their mean is within 0.05 of the unrounded mAP, itself rounded to 0.1
    assert abs(float(np.mean(row.ap)) - row.mAP) <= 0.05 + 0.05 + 1e-9


def test_table_columns_are_the_voc_classes_in_order():
    short = {"aeroplane": "aero", "bicycle": "bike", "diningtable": "table", "motorbike": "mbike",
             "pottedplant": "plant", "tvmonitor": "tv"}
    assert tuple(short.get(name, name) for name in models.vgg.VOC_CLASSES) == slides.VOC_CLASS_COLUMNS


def test_speed_table_agrees_with_table_1_and_with_minissd_box_counts():
    counts = {"SSD300": P.PRESETS["ssd300-voc"].num_priors, "SSD512": P.default_boxes("ssd512-voc").shape[0]}
    assert counts == {"SSD300": 8732, "SSD512": 24564}
    for speed in slides.SPEED:
        name = speed.method.split(" ")[0]
        if name in counts:
            assert speed.boxes == counts[name] and speed.input_size == (int(name[3:]),) * 2
            assert speed.mAP == slides.result(name, "07+12").mAP
    yolo = [s for s in slides.SPEED if "YOLO" in s.method]
    assert {s.boxes for s in yolo} == {slides.YOLO_GRID ** 2 * slides.YOLO_BOXES_PER_CELL} == {98}
    assert slides.SPEED[0].mAP == slides.result("Faster R-CNN", "07+12").mAP and slides.SPEED[0].approximate
    fps = {(s.method, s.batch): s.fps for s in slides.SPEED}
    assert fps[("SSD300", 8)] > fps[("SSD300", 1)] > fps[("YOLO (VGG16)", 1)] > fps[("Faster R-CNN (VGG16)", 1)]


def test_the_slides_headline_ssd300_beats_both_on_one_axis_each():
    speed = {s.method: s for s in slides.SPEED if s.batch == 1}
    ssd, yolo, faster = speed["SSD300"], speed["YOLO (VGG16)"], speed["Faster R-CNN (VGG16)"]
    assert ssd.mAP > faster.mAP > yolo.mAP and ssd.fps > yolo.fps > faster.fps


def test_result_lookup_names_the_rows_there_are():
    assert slides.result("SSD300", "07").mAP == 68.0
    with pytest.raises(ValueError, match="SSD300 07\\+12"):
        slides.result("SSD300", "VOC2012")
