"""VOC average precision (minissd.evaluate.voc), the input checks, and the PR-curve picture."""

import math

import numpy as np
import pytest

from minissd.evaluate import coco_ap, interpolated_ap, voc_ap, voc_ap_reference
from tests.detection_data import random_dataset


def one_image(pred_boxes, pred_labels, pred_scores, gt_boxes, gt_labels, gt_difficult=None):
    """Wrap one image's arrays as the per-image lists the evaluators take."""
    wrap = lambda values, dtype: [np.asarray(values, dtype=dtype)]  # noqa: E731
    return dict(
        pred_boxes=wrap(pred_boxes, float), pred_labels=wrap(pred_labels, int), pred_scores=wrap(pred_scores, float),
        gt_boxes=wrap(gt_boxes, float), gt_labels=wrap(gt_labels, int),
        gt_difficult=None if gt_difficult is None else wrap(gt_difficult, bool),
    )


KEYS = ("pred_boxes", "pred_labels", "pred_scores", "gt_boxes", "gt_labels")
CAT, DOG = [0, 0, 10, 10], [20, 20, 40, 40]
FAR = [100, 100, 110, 110]  # overlaps nothing


# --------------------------------------------------------------------------
# hand-computed cases
# --------------------------------------------------------------------------

@pytest.mark.parametrize("use_07_metric", [False, True])
def test_perfect_detections_give_ap_one(use_07_metric):
    data = one_image([DOG, CAT], [2, 1], [0.9, 0.8], [CAT, DOG], [1, 2])
    result = voc_ap(**data, use_07_metric=use_07_metric)
    assert result.ap == {1: 1.0, 2: 1.0} and result.mAP == 1.0
    assert result.true_positives == {1: 1, 2: 1} and result.false_positives == {1: 0, 2: 0}


def test_one_tp_then_one_fp_by_hand():
    # Two cats; the detections, best first: TP (cat 1), FP (nowhere).
    # precision = [1/1, 1/2], recall = [1/2, 1/2].
    # all-point: recall rises 0 -> 1/2 under envelope 1:           AP = 1/2 * 1 = 0.5
    # 11-point: t = 0, 0.1, ..., 0.5 reach precision 1 (6 levels), t >= 0.6 is never reached (0):
    #           AP = 6/11
    data = one_image([CAT, FAR], [1, 1], [0.9, 0.8], [CAT, DOG], [1, 1])
    result = voc_ap(**data)
    np.testing.assert_allclose(result.precision[1], [1.0, 0.5])
    np.testing.assert_allclose(result.recall[1], [0.5, 0.5])
    assert result.ap[1] == pytest.approx(0.5, abs=1e-15)
    assert voc_ap(**data, use_07_metric=True).ap[1] == pytest.approx(6 / 11, abs=1e-15)


def test_one_fp_then_one_tp_by_hand():
    # The same two detections, scores swapped: FP first, then TP.
    # precision = [0, 1/2], recall = [0, 1/2]; envelope 1/2 up to recall 1/2, then 0.
    # all-point: 1/2 * 1/2 = 0.25;  11-point: six levels t <= 0.5 at 1/2:  AP = 3/11
    data = one_image([CAT, FAR], [1, 1], [0.8, 0.9], [CAT, DOG], [1, 1])
    assert voc_ap(**data).ap[1] == pytest.approx(0.25, abs=1e-15)
    assert voc_ap(**data, use_07_metric=True).ap[1] == pytest.approx(3 / 11, abs=1e-15)


def test_tp_fp_tp_by_hand():
    # Two objects, detections TP, FP, TP: precision [1, 1/2, 2/3], recall [1/2, 1/2, 1].
    # all-point: 1/2 * 1 + 1/2 * 2/3 = 5/6;  11-point: (6 * 1 + 5 * 2/3) / 11 = 28/33
    data = one_image([CAT, FAR, DOG], [1, 1, 1], [0.9, 0.8, 0.7], [CAT, DOG], [1, 1])
    assert voc_ap(**data).ap[1] == pytest.approx(5 / 6, abs=1e-15)
    assert voc_ap(**data, use_07_metric=True).ap[1] == pytest.approx(28 / 33, abs=1e-15)


def test_interpolated_ap_of_curves_by_hand():
    # A dip in precision is filled by the envelope: [1, 0.5, 0.75] at recall [0.25, 0.25, 0.75].
    # all-point: 0.25 * 1 + 0.5 * 0.75 = 0.625
    assert interpolated_ap([0.25, 0.25, 0.75], [1.0, 0.5, 0.75]) == pytest.approx(0.625, abs=1e-15)
    # 11-point: t = 0, 0.1, 0.2 -> 1; t = 0.3 .. 0.7 -> 0.75 (5 levels); t = 0.8 .. 1 -> 0
    assert interpolated_ap([0.25, 0.25, 0.75], [1.0, 0.5, 0.75], True) == pytest.approx((3 + 5 * 0.75) / 11)
    assert interpolated_ap([], []) == 0.0 and interpolated_ap([], [], True) == 0.0
    # recall exactly 0.3 reaches the level 0.3 (k / 10 is exactly rounded, unlike arange(0, 1.1, 0.1))
    assert interpolated_ap([3 / 10], [1.0], True) == pytest.approx(4 / 11, abs=1e-15)
    with pytest.raises(ValueError, match="recall and precision"):
        interpolated_ap([0.1, 0.2], [1.0])


def test_difficult_objects_are_ignored_both_ways():
    # Object 0 (a cat) is difficult, object 1 (a dog... also of class 1) is not.
    gt, difficult = [CAT, DOG], [True, False]
    # (a) a detection on the difficult object is neither TP nor FP ...
    with_hit = voc_ap(**one_image([DOG, CAT], [1, 1], [0.9, 0.8], gt, [1, 1], difficult))
    assert with_hit.true_positives[1] == 1 and with_hit.false_positives[1] == 0 and with_hit.ignored[1] == 1
    assert with_hit.ap[1] == 1.0 and with_hit.precision[1].tolist() == [1.0]
    # ... even above the detections that count, and twice
    first = voc_ap(**one_image([CAT, CAT, DOG], [1, 1, 1], [0.9, 0.9, 0.1], gt, [1, 1], difficult))
    assert first.ap[1] == 1.0 and first.ignored[1] == 2
    # (b) a difficult object that nobody finds does not lower recall: P counts only object 1
    missed = voc_ap(**one_image([DOG], [1], [0.9], gt, [1, 1], difficult))
    assert missed.num_positives[1] == 1 and missed.recall[1].tolist() == [1.0] and missed.ap[1] == 1.0
    # without the flag the cat counts: P = 2, recall 1/2
    assert voc_ap(**one_image([DOG], [1], [0.9], gt, [1, 1])).ap[1] == pytest.approx(0.5)


def test_a_class_with_only_difficult_objects_has_no_ap():
    result = voc_ap(**one_image([CAT, DOG], [1, 2], [0.9, 0.8], [CAT, DOG], [1, 2], [False, True]))
    assert math.isnan(result.ap[2]) and result.num_positives[2] == 0
    assert result.mAP == 1.0  # the mean over the classes with objects only


def test_duplicates_are_false_positives():
    # Three detections of the one cat: the best is the TP, the two others are FP.
    shifted = [1, 0, 11, 10]  # IoU 9/11 with the cat
    result = voc_ap(**one_image([CAT, shifted, CAT], [1, 1, 1], [0.9, 0.8, 0.7], [CAT], [1]))
    assert result.true_positives[1] == 1 and result.false_positives[1] == 2
    np.testing.assert_allclose(result.precision[1], [1.0, 0.5, 1 / 3])


def test_a_taken_best_object_makes_a_duplicate_even_next_to_a_free_one():
    # The devkit's rule: a detection is judged against the object it overlaps most,
    # taken or not. The second detection overlaps object a by 95/105 (taken by the first)
    # and object b by 85/115 (free): it is a duplicate, an FP. (COCO would give it b.)
    a, b = [0, 0, 10, 10], [2, 0, 12, 10]
    second = [0.5, 0, 10.5, 10]
    data = one_image([a, second], [1, 1], [0.9, 0.8], [a, b], [1, 1])
    result = voc_ap(**data)
    assert result.true_positives[1] == 1 and result.false_positives[1] == 1
    data.pop("gt_difficult")
    assert coco_ap(**data).AP50 == 1.0  # COCO's greedy matching hands the free object to the second one


def test_a_class_without_detections_has_ap_zero():
    result = voc_ap(**one_image([CAT], [1], [0.9], [CAT, DOG], [1, 2]))
    assert result.ap == {1: 1.0, 2: 0.0} and result.mAP == 0.5
    assert result.precision[2].size == 0 and result.num_positives[2] == 1


def test_detections_on_an_image_without_objects_are_false_positives():
    data = dict(
        pred_boxes=[np.array([CAT], float), np.array([CAT], float)], pred_labels=[np.array([1]), np.array([1])],
        pred_scores=[np.array([0.8]), np.array([0.9])],  # the empty image's detection ranks first
        gt_boxes=[np.array([CAT], float), np.zeros((0, 4))], gt_labels=[np.array([1]), np.zeros(0, int)],
    )
    result = voc_ap(**data)
    assert result.true_positives[1] == 1 and result.false_positives[1] == 1
    assert result.ap[1] == pytest.approx(0.5)  # precision 1/2 when recall reaches 1


def test_iou_threshold_is_inclusive():
    half = [0, 0, 10, 5]  # IoU exactly 1/2 with the cat
    data = one_image([half], [1], [0.9], [CAT], [1])
    assert voc_ap(**data, iou_threshold=0.5).ap[1] == 1.0
    assert voc_ap(**data, iou_threshold=0.5 + 1e-9).ap[1] == 0.0
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="iou_threshold"):
            voc_ap(**data, iou_threshold=bad)


def test_another_class_is_never_a_match():
    result = voc_ap(**one_image([CAT], [2], [0.9], [CAT], [1]))
    assert result.ap[1] == 0.0 and math.isnan(result.ap[2])
    assert result.false_positives[2] == 1


# --------------------------------------------------------------------------
# the vectorised code against the devkit's loops
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("use_07_metric", [False, True])
def test_matches_the_plain_loop_reference(seed, use_07_metric):
    rng = np.random.default_rng(seed)
    data = random_dataset(rng, num_images=12, round_scores=seed % 2 == 0)
    inputs = {k: data[k] for k in ("pred_boxes", "pred_labels", "pred_scores", "gt_boxes", "gt_labels", "gt_difficult")}
    threshold = [0.5, 0.3, 0.7][seed % 3]
    fast = voc_ap(**inputs, iou_threshold=threshold, use_07_metric=use_07_metric)
    slow = voc_ap_reference(**inputs, iou_threshold=threshold, use_07_metric=use_07_metric)
    assert sorted(fast.ap) == sorted(slow)
    for label, ap in slow.items():
        if math.isnan(ap):
            assert math.isnan(fast.ap[label])
        else:
            assert fast.ap[label] == pytest.approx(ap, abs=1e-12), label
    assert any(0 < ap < 1 for ap in fast.ap.values())  # the data is not trivial
    assert sum(fast.ignored.values()) > 0 and sum(fast.false_positives.values()) > 0


def test_float32_and_list_inputs_give_the_same_result():
    rng = np.random.default_rng(7)
    data = random_dataset(rng, num_images=6)
    keys = ("pred_boxes", "pred_labels", "pred_scores", "gt_boxes", "gt_labels")
    as64 = voc_ap(**{k: data[k] for k in keys})
    as32 = voc_ap(**{k: [np.asarray(a, np.float32) if "boxes" in k else a for a in data[k]] for k in keys})
    as_lists = voc_ap(**{k: [np.asarray(a).tolist() for a in data[k]] for k in keys})
    assert as_lists.ap == as64.ap
    assert all(as32.ap[c] == pytest.approx(as64.ap[c], abs=1e-6) for c in as64.ap if not math.isnan(as64.ap[c]))


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------

def _good():
    return dict(
        pred_boxes=[np.array([CAT], float), np.zeros((0, 4))], pred_labels=[np.array([1]), np.zeros(0, int)],
        pred_scores=[np.array([0.9]), np.zeros(0)],
        gt_boxes=[np.array([CAT], float), np.array([DOG, CAT], float)], gt_labels=[np.array([1]), np.array([2, 1])],
    )


@pytest.mark.parametrize("evaluate", [voc_ap, coco_ap], ids=["voc", "coco"])
@pytest.mark.parametrize(
    "key, value, message",
    [
        ("pred_scores", [np.array([0.9])], r"pred_scores has 1 images but gt_boxes has 2"),
        ("gt_labels", [np.array([1])] * 3, r"gt_labels has 3 images but gt_boxes has 2"),
        ("pred_boxes", [np.array([CAT], float), np.zeros((1, 3))], r"pred_boxes\[1\] \(image 1\) has shape \(1, 3\)"),
        ("gt_boxes", [np.array([CAT], float), np.array(DOG, float)], r"gt_boxes\[1\] \(image 1\) has shape \(4,\)"),
        ("gt_labels", [np.array([1]), np.array([2])],
         r"gt_labels\[1\] \(image 1\) has shape \(1,\) but gt_boxes\[1\] has 2"),
        ("pred_labels", [np.array([1, 1]), np.zeros(0, int)], r"pred_labels\[0\] \(image 0\) has shape \(2,\)"),
        ("gt_boxes", [np.array([CAT], float), np.array([DOG, [5, 0, 4, 10]], float)],
         r"gt_boxes\[1\]\[1\] = \[5.0, 0.0, 4.0, 10.0\] breaks x2 >= x1"),
        ("pred_boxes", [np.array([[0, 0, np.nan, 1]]), np.zeros((0, 4))], r"pred_boxes\[0\]\[0\] .* is not finite"),
        ("gt_labels", [np.array([1]), np.array([2, 0])],
         r"gt_labels\[1\]\[1\] = 0 \(image 1, box 1\): labels are integers >= 1"),
        ("pred_labels", [np.array([1.5]), np.zeros(0)], r"pred_labels\[0\]\[0\] = 1.5 \(image 0, box 0\)"),
        ("pred_scores", [np.array([np.inf]), np.zeros(0)],
         r"pred_scores\[0\]\[0\] = inf \(image 0, box 0\): scores must be finite"),
        ("pred_scores", 0.5, r"pred_scores must be a list with one array per image; got float"),
        ("pred_boxes", np.array([CAT, CAT], float), r"pred_boxes\[0\] \(image 0\) has shape \(4,\).*wrap"),
    ],
)
def test_bad_input_names_the_list_the_image_and_the_box(evaluate, key, value, message):
    data = _good()
    data[key] = value
    with pytest.raises(ValueError, match=message):
        evaluate(**data)


def test_bad_difficult_flags_name_the_image():
    data = _good()
    with pytest.raises(ValueError, match=r"gt_difficult\[1\] \(image 1\) has shape \(1,\) but gt_boxes\[1\] has 2"):
        voc_ap(**data, gt_difficult=[np.array([False]), np.array([True])])
    with pytest.raises(ValueError, match=r"gt_difficult has 1 images"):
        voc_ap(**data, gt_difficult=[np.array([False])])


@pytest.mark.parametrize("evaluate", [voc_ap, coco_ap], ids=["voc", "coco"])
def test_arrays_on_the_device_give_the_host_result(xp, evaluate):
    # Evaluation is host-side bookkeeping: device arrays are copied once and give the same numbers.
    data = random_dataset(np.random.default_rng(3), num_images=6)
    on_host = evaluate(**{k: data[k] for k in KEYS})
    on_device = evaluate(**{k: [xp.asarray(a) for a in data[k]] for k in KEYS})
    summary = (lambda result: result.ap) if evaluate is voc_ap else (lambda result: result.stats())
    np.testing.assert_equal(summary(on_device), summary(on_host))  # NaN == NaN here


def test_empty_images_may_be_given_as_empty_lists():
    result = voc_ap([[CAT], []], [[1], []], [[0.9], []], [[CAT], []], [[1], []])
    assert result.ap == {1: 1.0}
    assert voc_ap([], [], [], [], []).ap == {} and math.isnan(voc_ap([], [], [], [], []).mAP)


# --------------------------------------------------------------------------
# COCO's AP50 beside VOC's all-point AP
# --------------------------------------------------------------------------

def _separated_dataset(rng, num_images=10):
    """Objects in distinct grid cells, so that no detection overlaps two objects: then VOC's and
    COCO's matching rules agree, and only the interpolation differs."""
    data = {k: [] for k in ("pred_boxes", "pred_labels", "pred_scores", "gt_boxes", "gt_labels")}
    for _ in range(num_images):
        cells = rng.choice(16, size=int(rng.integers(1, 7)), replace=False)
        corner = np.stack([cells % 4 * 100.0, cells // 4 * 100.0], axis=1) + 10
        gt = np.concatenate([corner, corner + rng.uniform(40, 70, size=(len(cells), 2))], axis=1)
        labels = rng.integers(1, 4, size=len(cells))
        found = rng.random(len(cells)) < 0.8
        pred = gt[found] + rng.normal(0, 4, size=(int(found.sum()), 4))
        pred = np.concatenate([pred, gt[: int(rng.integers(0, 3))] + 30])  # duplicates and misses
        data["pred_boxes"].append(pred)
        data["pred_labels"].append(np.concatenate([labels[found], labels[: len(pred) - int(found.sum())]]))
        data["pred_scores"].append(rng.random(len(pred)))
        data["gt_boxes"].append(gt)
        data["gt_labels"].append(labels)
    return data


def test_coco_ap50_is_voc_all_point_ap_up_to_the_101_point_sampling():
    # Perfect detections: both are exactly 1.
    data = one_image([CAT, DOG], [1, 2], [0.9, 0.8], [CAT, DOG], [1, 2])
    data.pop("gt_difficult")
    # (pycocotools' precision is TP / (TP + FP + 2.2e-16), a hair below 1 even here)
    assert voc_ap(**data).mAP == 1.0 and coco_ap(**data).AP50 == pytest.approx(1.0, abs=1e-15)
    # In general COCO averages the envelope p(r) at r = 0, 0.01, ..., 1 while VOC integrates it.
    # p is non-increasing, so the integral lies between the left and right Riemann sums of width
    # 1/100, and the 101-point mean differs from it by at most 1/100 (per class, so for the mean).
    for seed in range(4):
        data = _separated_dataset(np.random.default_rng(seed))
        voc, coco = voc_ap(**data), coco_ap(**data)
        for label, ap in voc.ap.items():
            ap50 = float(np.mean(coco.precision[0, :, list(coco.labels).index(label), 0, -1]))
            assert abs(ap50 - ap) <= 0.01 + 1e-12, (seed, label, ap50, ap)
        assert abs(coco.AP50 - voc.mAP) <= 0.01 + 1e-12
        assert 0.2 < voc.mAP < 0.99


# --------------------------------------------------------------------------
# the picture
# --------------------------------------------------------------------------

def test_plot_pr_curves_draws_one_curve_per_class_with_its_ap():
    import matplotlib.pyplot as plt

    from minissd.viz import plot_pr_curves

    data = one_image([CAT, FAR, DOG, DOG], [1, 1, 1, 2], [0.9, 0.8, 0.7, 0.6], [CAT, DOG, DOG], [1, 1, 2])
    result = voc_ap(**data)
    ax = plot_pr_curves(result, class_names={1: "cat", 2: "dog"})
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["cat (AP 0.833)", "dog (AP 1.000)"]
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), [0.5, 0.5, 1.0])
    np.testing.assert_allclose(line.get_ydata(), [1.0, 0.5, 2 / 3])
    data.pop("gt_difficult")
    coco_ax = plot_pr_curves(coco_ap(**data))
    assert len(coco_ax.get_lines()) == 2 and len(coco_ax.get_lines()[0].get_xdata()) == 101
    plt.close("all")
