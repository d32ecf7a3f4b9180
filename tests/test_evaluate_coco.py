"""COCO-style AP (minissd.evaluate.coco): by hand, against its loop oracle, and against pycocotools."""

import contextlib
import io
import math

import numpy as np
import pytest

from minissd.evaluate import (
    IOU_THRESHOLDS, RECALL_THRESHOLDS, coco_ap, coco_iou, greedy_match, greedy_match_reference,
)
from tests.detection_data import random_dataset

KEYS = ("pred_boxes", "pred_labels", "pred_scores", "gt_boxes", "gt_labels")


def one_image(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, **extra):
    lists = dict(
        pred_boxes=[np.asarray(pred_boxes, float).reshape(-1, 4)], pred_labels=[np.asarray(pred_labels, int)],
        pred_scores=[np.asarray(pred_scores, float)], gt_boxes=[np.asarray(gt_boxes, float).reshape(-1, 4)],
        gt_labels=[np.asarray(gt_labels, int)],
    )
    lists.update({name: [np.asarray(values)] for name, values in extra.items()})
    return lists


SMALL = [0, 0, 20, 20]  # 400 px^2
LARGE = [100, 100, 300, 300]  # 40000 px^2
EPS = 1e-15  # pycocotools' precision is TP / (TP + FP + 2.2e-16): a hair below the exact value


# --------------------------------------------------------------------------
# by hand
# --------------------------------------------------------------------------

def test_perfect_detections():
    result = coco_ap(**one_image([LARGE, SMALL], [1, 2], [0.9, 0.8], [SMALL, LARGE], [2, 1]))
    for value in (result.AP, result.AP50, result.AP75, result.AP_small, result.AP_large, result.AR[100]):
        assert value == pytest.approx(1.0, abs=EPS)
    assert math.isnan(result.AP_medium) and math.isnan(result.AR_medium)  # no medium object anywhere
    assert result.max_dets == (1, 10, 100) and result.precision.shape == (10, 101, 2, 4, 3)


def test_sizes_by_hand():
    # One class, a small object found, a large one missed. Recall reaches 1/2 at precision 1:
    # the 51 recall levels 0, 0.01, ..., 0.50 read 1, the other 50 read 0, at every threshold.
    result = coco_ap(**one_image([SMALL], [1], [0.9], [SMALL, LARGE], [1, 1]))
    assert result.AP == pytest.approx(51 / 101, abs=EPS) and result.AR[100] == 0.5
    assert result.AP_small == pytest.approx(1.0, abs=EPS) and result.AP_large == 0.0
    assert result.AR[1] == 0.5 and result.per_class_ap[1] == pytest.approx(51 / 101, abs=EPS)


def test_a_partial_overlap_counts_below_its_iou_only():
    # IoU 0.7 exactly (a 10 x 7 box inside a 10 x 10 object): TP at t = 0.50 .. 0.70 (5 thresholds),
    # FP at 0.75 .. 0.95; AP = 5/10, AP50 = 1, AP75 = 0.
    result = coco_ap(**one_image([[0, 0, 10, 7]], [1], [0.9], [[0, 0, 10, 10]], [1]))
    assert result.AP == pytest.approx(0.5, abs=EPS)
    assert result.AP50 == pytest.approx(1.0, abs=EPS) and result.AP75 == 0.0


def test_crowd_regions_are_ignored_not_false_positives():
    crowd = [0, 0, 200, 200]
    inside = [[10, 10, 30, 30], [50, 50, 70, 70], [90, 0, 110, 40]]
    # Each detection lies wholly inside the crowd region: |d ∩ g| / |d| = 1, though IoU is tiny.
    np.testing.assert_allclose(coco_iou(np.array(inside, float), np.array([crowd], float), np.array([True])), 1.0)
    data = one_image(inside + [SMALL], [1, 1, 1, 1], [0.9, 0.8, 0.7, 0.6], [crowd, [0, 300, 20, 320]], [1, 1],
                     gt_iscrowd=[True, False])
    result = coco_ap(**data)
    # The three detections ranked first all sit on the crowd: ignored, so the fourth (an FP) ranks
    # first among the counted ones, and the only regular object is missed.
    assert result.AP == 0.0 and result.AR[100] == 0.0
    data["pred_boxes"][0][3] = [0, 300, 20, 320]  # now the fourth finds the regular object
    assert coco_ap(**data).AP == pytest.approx(1.0, abs=EPS)
    # Without the flag the region is an ordinary object and the detections inside it are FPs
    data.pop("gt_iscrowd")
    assert coco_ap(**data).AP < 0.5


def test_a_regular_object_is_preferred_to_a_crowd_region_with_more_overlap():
    regular, crowd = [0, 0, 10, 10], [0, 0, 12, 10]
    detection = [0, 0, 12, 10]  # IoU 10/12 with the regular object, 1 with the crowd region
    result = coco_ap(**one_image([detection], [1], [0.9], [regular, crowd], [1, 1], gt_iscrowd=[False, True]))
    assert result.AP50 == pytest.approx(1.0, abs=EPS)  # a TP at IoU 0.5: the regular object took it
    assert result.AP75 == pytest.approx(1.0, abs=EPS) and result.recall[-1, 0, 0, -1] == 0.0  # at 0.95: ignored


def test_area_bounds_belong_to_both_ranges_and_gt_areas_decide():
    edge = [0, 0, 32, 32]  # exactly 32^2: small and medium at once
    result = coco_ap(**one_image([edge], [1], [0.9], [edge], [1]))
    assert result.AP_small == pytest.approx(1.0, abs=EPS) and result.AP_medium == pytest.approx(1.0, abs=EPS)
    assert math.isnan(result.AP_large)
    # An object whose (segmentation) area is given as large is judged large, though its box is small;
    # the detection's own area is its box area, so it is outside 'large' but matched: a TP there.
    declared = coco_ap(**one_image([edge], [1], [0.9], [edge], [1], gt_areas=[100.0**2]))
    assert declared.AP_large == pytest.approx(1.0, abs=EPS) and math.isnan(declared.AP_small)


def test_unmatched_detections_outside_the_range_do_not_count():
    # A large object found; a small false alarm scored higher. For 'large', the false alarm
    # (area 400, outside the range) is ignored; for 'all' it is an FP that ranks first.
    result = coco_ap(**one_image([SMALL, LARGE], [1, 1], [0.9, 0.8], [LARGE], [1]))
    assert result.AP_large == pytest.approx(1.0, abs=EPS)
    assert result.AP == pytest.approx(0.5, abs=EPS)  # precision 1/2 at every recall level


def test_max_dets_keeps_the_best_detections_per_image_and_class():
    # Two objects, two detections; with max_dets = 1 only the better one is evaluated.
    data = one_image([SMALL, LARGE], [1, 1], [0.8, 0.9], [SMALL, LARGE], [1, 1])
    assert coco_ap(**data).AP == pytest.approx(1.0, abs=EPS)
    truncated = coco_ap(**data, max_dets=1)
    assert truncated.max_dets == (1,) and truncated.AR == {1: 0.5}
    assert truncated.AP_large == pytest.approx(1.0, abs=EPS) and truncated.AP_small == 0.0
    for bad in (0, 1.5, -3):
        with pytest.raises(ValueError, match="max_dets"):
            coco_ap(**data, max_dets=bad)


def test_equal_iou_goes_to_the_later_object():
    # Two identical objects: pycocotools' scan replaces its choice on >=, so the later one is taken;
    # the next detection takes the earlier one.
    ious = np.array([[[0.8, 0.8], [0.8, 0.8]]])  # (B=1, D=2, G=2)
    matched = greedy_match(ious, np.ones((1, 1, 2), bool), np.zeros((1, 2), bool))
    assert matched[0, 0, 0].tolist() == [1, 0]  # threshold 0.5
    assert (matched[0, 0, 7:] == -1).all()  # 0.85 and above: no match


def test_bad_flags_and_areas_name_the_image():
    data = one_image([SMALL], [1], [0.9], [SMALL, LARGE], [1, 1])
    with pytest.raises(ValueError, match=r"gt_iscrowd\[0\] \(image 0\) has shape \(1,\) but gt_boxes\[0\] has 2"):
        coco_ap(**data, gt_iscrowd=[np.array([True])])
    message = r"gt_areas\[0\]\[1\] = -5.0 \(image 0, box 1\): values must be finite and >= 0"
    with pytest.raises(ValueError, match=message):
        coco_ap(**data, gt_areas=[np.array([10.0, -5.0])])


# --------------------------------------------------------------------------
# the batched greedy matching against pycocotools' loops
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_greedy_match_equals_the_loop_reference(seed):
    rng = np.random.default_rng(seed)
    groups, dets, gts, areas = 6, 9, 5, 3
    ious = np.round(rng.uniform(0.3, 1.0, size=(groups, dets, gts)), 2)  # rounded: many ties
    ious[rng.random(ious.shape) < 0.3] = -1.0  # padding / other classes
    regular = rng.random((groups, areas, gts)) < 0.7
    crowd = rng.random((groups, gts)) < 0.2
    regular &= ~crowd[:, None, :]
    fast = greedy_match(ious, regular, crowd)
    for b in range(groups):
        np.testing.assert_array_equal(fast[b], greedy_match_reference(ious[b], regular[b], crowd[b]))
    assert (fast >= 0).any() and (fast == -1).any()


def test_greedy_match_without_objects():
    assert (greedy_match(np.zeros((2, 3, 0)), np.zeros((2, 4, 0), bool), np.zeros((2, 0), bool)) == -1).all()


# --------------------------------------------------------------------------
# pycocotools itself
# --------------------------------------------------------------------------

def run_pycocotools(data, categories, use_areas, max_dets):
    """COCOeval (iouType 'bbox') on the same boxes, through in-memory COCO objects."""
    coco_module = pytest.importorskip("pycocotools.coco")
    cocoeval_module = pytest.importorskip("pycocotools.cocoeval")
    images, annotations, results = [], [], []
    for image, (boxes, labels, crowd, areas) in enumerate(
        zip(data["gt_boxes"], data["gt_labels"], data["gt_iscrowd"], data["gt_areas"])
    ):
        images.append({"id": image + 1, "width": 640, "height": 480})
        for box, label, is_crowd, area in zip(boxes, labels, crowd, areas):
            width, height = box[2] - box[0], box[3] - box[1]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image + 1, "category_id": int(label),
                "bbox": [box[0], box[1], width, height], "iscrowd": int(is_crowd),
                "area": float(area) if use_areas else float(width * height),
            })
    for image, (boxes, labels, scores) in enumerate(zip(data["pred_boxes"], data["pred_labels"], data["pred_scores"])):
        for box, label, score in zip(boxes, labels, scores):
            results.append({
                "image_id": image + 1, "category_id": int(label), "score": float(score),
                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
            })
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = coco_module.COCO()
        truth.dataset = {
            "images": images, "annotations": annotations,
            "categories": [{"id": c, "name": str(c)} for c in categories],
        }
        truth.createIndex()
        evaluation = cocoeval_module.COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.params.maxDets = [1, 10, max_dets]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


@pytest.mark.parametrize(
    "seed, round_scores, use_areas, many_detections",
    [(0, False, False, False), (1, True, False, False), (2, False, True, False),
     (3, True, True, False), (4, False, False, True), (5, True, True, True)],
)
def test_reproduces_pycocotools(seed, round_scores, use_areas, many_detections):
    data = random_dataset(np.random.default_rng(seed), num_images=16, num_classes=4,
                          round_scores=round_scores, many_detections=many_detections)
    max_dets = 20 if many_detections else 100  # 20: the 30-odd detections per image get cut
    reference = run_pycocotools(data, categories=range(1, 8), use_areas=use_areas, max_dets=max_dets)
    ours = coco_ap(**{k: data[k] for k in KEYS}, gt_iscrowd=data["gt_iscrowd"],
                   gt_areas=data["gt_areas"] if use_areas else None, max_dets=max_dets)

    # pycocotools writes -1 where we write NaN; category 7 never occurs, so it is not in ours.
    columns = [int(c) - 1 for c in ours.labels]
    precision = reference.eval["precision"][:, :, columns]
    recall = reference.eval["recall"][:, columns]
    np.testing.assert_allclose(ours.precision, np.where(precision == -1, np.nan, precision), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.recall, np.where(recall == -1, np.nan, recall), rtol=0, atol=1e-12)
    stats = np.where(reference.stats == -1, np.nan, reference.stats)
    ours_stats = np.array(list(ours.stats().values()))
    # (pycocotools' first number always reads maxDets = 100; with another budget it is -1)
    start = 0 if max_dets == 100 else 1
    np.testing.assert_allclose(ours_stats[start:], stats[start:], rtol=0, atol=1e-12)
    if max_dets != 100:
        assert ours.AP == pytest.approx(float(np.mean(precision[:, :, :, 0, -1][precision[:, :, :, 0, -1] > -1])))
    # the data exercises what it should
    assert 0.05 < ours.AP < 0.9 and not math.isnan(ours.AP_small) and not math.isnan(ours.AP_large)
    assert any(crowd.any() for crowd in data["gt_iscrowd"])
    assert np.isnan(ours.per_class_ap[5]) and ours.per_class_ap[6] == 0.0  # only detected / never detected


def test_precision_is_read_at_the_101_recall_levels():
    assert RECALL_THRESHOLDS.shape == (101,) and IOU_THRESHOLDS.shape == (10,)
    assert IOU_THRESHOLDS[0] == 0.5 and IOU_THRESHOLDS[5] == 0.75
