"""Error analysis (minissd.evaluate.analysis, the SSD paper's Fig. 3 and 4 after Hoiem et al.) on hand-made
detection sets whose categories are known, and the pictures of minissd.viz.analysis."""

import json
import math

import numpy as np
import pytest

from minissd.boxes import iou
from minissd.data.voc import VOC_CLASSES
from minissd.evaluate import voc_ap
from minissd.evaluate.analysis import (
    BG,
    COR,
    IGNORED,
    LOC,
    OTH,
    SIM,
    VOC_GROUPS,
    analyze_predictions,
    default_groups,
    error_analysis,
    resolve_groups,
)
from minissd.evaluate.run import Predictions

NAMES = ["background", "cat", "dog", "car"]  # cat and dog are animals, car a vehicle (the VOC groups)
CAT, DOG, CAR = 1, 2, 3
CAT_BOX, DOG_BOX, CAR_BOX = [0, 0, 10, 10], [50, 50, 60, 60], [100, 0, 110, 10]
FAR = [200, 200, 210, 210]
# Six cat detections, best first, one of each kind:
SIX = [
    (CAT_BOX, 0.9),        # Cor: IoU 1 with the cat
    (CAT_BOX, 0.8),        # Loc: a duplicate (IoU 1 with the cat, already taken)
    ([0, 0, 10, 3], 0.7),  # Loc: IoU 0.3 with the cat
    (DOG_BOX, 0.6),        # Sim: on the dog (same group)
    (CAR_BOX, 0.5),        # Oth: on the car (another group)
    (FAR, 0.4),            # BG: on nothing
]


def images(*per_image):
    """Per-image lists from (detections [(box, label, score)], objects [(box, label, difficult)]) pairs."""
    out = {k: [] for k in ("pred_boxes", "pred_labels", "pred_scores", "gt_boxes", "gt_labels", "gt_difficult")}
    for detections, objects in per_image:
        out["pred_boxes"].append(np.array([d[0] for d in detections], float).reshape(-1, 4))
        out["pred_labels"].append(np.array([d[1] for d in detections], np.int64))
        out["pred_scores"].append(np.array([d[2] for d in detections], float))
        out["gt_boxes"].append(np.array([o[0] for o in objects], float).reshape(-1, 4))
        out["gt_labels"].append(np.array([o[1] for o in objects], np.int64))
        out["gt_difficult"].append(np.array([o[2] if len(o) > 2 else False for o in objects], bool))
    return out


def six_kinds():
    detections = [(box, CAT, score) for box, score in SIX]
    return images((detections, [(CAT_BOX, CAT), (DOG_BOX, DOG), (CAR_BOX, CAR)]))


def test_the_mislocalised_box_has_iou_three_tenths():
    assert float(iou(np.array([[0, 0, 10, 3.0]]), np.array([CAT_BOX], float))[0, 0]) == pytest.approx(0.3)


def test_one_detection_of_each_kind():
    analysis = error_analysis(**six_kinds(), class_names=NAMES)
    assert analysis.per_image()[0].tolist() == [COR, LOC, LOC, SIM, OTH, BG]
    assert analysis.ranked[CAT].tolist() == [COR, LOC, LOC, SIM, OTH, BG]
    assert analysis.num_positives == {CAT: 1, DOG: 1, CAR: 1}
    assert analysis.recall_strong[CAT].tolist() == [1.0] * 6


def test_the_cumulative_fractions_by_hand():
    analysis = error_analysis(**six_kinds(), class_names=NAMES, multiples=[0.25, 0.5, 1, 2, 4, 8])
    trend = analysis.trends["animals"]
    assert trend.classes == (CAT, DOG) and trend.mean_objects == 1.0
    # cat has 1 object: its top round(m) detections; dog has none. round(0.25) = 0, round(0.5) = 1 (half up)
    assert np.isnan(trend.fractions[0]).all() and trend.counts[0].tolist() == [0] * 5
    np.testing.assert_allclose(trend.fractions[1:], [
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [1 / 2, 1 / 2, 0, 0, 0],
        [1 / 4, 2 / 4, 1 / 4, 0, 0],
        [1 / 6, 2 / 6, 1 / 6, 1 / 6, 1 / 6],
    ])
    # the recall lines average the classes: cat found at once, dog never
    np.testing.assert_allclose(trend.recall_strong, [0, 0.5, 0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(trend.recall_weak, [0, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert analysis.shares_at("animals") == {"Cor": 1.0, "Loc": 0.0, "Sim": 0.0, "Oth": 0.0, "BG": 0.0}
    assert np.isnan(analysis.trends["vehicles"].fractions).all()  # the car is never detected
    assert analysis.trends["vehicles"].recall_strong.tolist() == [0.0] * 6
    assert "vehicles (1 class, 1 objects per class): no detections" in analysis.summary()


def test_the_groups_pool_their_classes():
    data = six_kinds()
    data["pred_boxes"][0] = np.concatenate([data["pred_boxes"][0], [DOG_BOX, FAR]])
    data["pred_labels"][0] = np.concatenate([data["pred_labels"][0], [DOG, DOG]])
    data["pred_scores"][0] = np.concatenate([data["pred_scores"][0], [0.3, 0.2]])
    analysis = error_analysis(**data, class_names=NAMES, multiples=[1, 2])
    assert analysis.ranked[DOG].tolist() == [COR, BG]
    # m = 2: cat's (Cor, Loc) and dog's (Cor, BG)
    np.testing.assert_allclose(analysis.trends["animals"].fractions, [[1, 0, 0, 0, 0], [2 / 4, 1 / 4, 0, 0, 1 / 4]])
    assert "animals (2 classes, 1 objects per class): Cor 100.0%  Loc 0.0%" in analysis.summary()


def test_the_confusion_matrix_follows_the_categories():
    every = error_analysis(**six_kinds(), class_names=NAMES, confusion_multiple=8)
    # row cat: on its own object (Cor + 2 Loc), on the dog, on the car, on nothing
    assert every.confusion.tolist() == [[3, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    top = error_analysis(**six_kinds(), class_names=NAMES)  # N = objects: the top 1 cat detection
    assert top.confusion.tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    numbers = top.to_dict()["confusion"]
    assert numbers["rows"] == ["cat", "dog", "car"] and numbers["columns"][-1] == "background"


def test_precedence_loc_before_sim_before_oth():
    detections = [
        ([0, 0, 10, 3], CAT, 0.9),     # IoU 0.3 with the cat and 1.0 with a dog lying there: Loc wins
        ([20, 0, 30, 10], CAT, 0.8),   # IoU 0.2 with the dog at 20..30 x 0..2, 0.8 with the car at 20..30 x 2..10
    ]
    objects = [(CAT_BOX, CAT), ([0, 0, 10, 3], DOG), ([20, 0, 30, 2], DOG), ([20, 2, 30, 10], CAR)]
    analysis = error_analysis(**images((detections, objects)), class_names=NAMES, confusion_multiple=2)
    assert analysis.per_image()[0].tolist() == [LOC, SIM]
    assert analysis.confusion[0].tolist() == [1, 1, 0, 0]  # the Sim one counted under the dog, not the car


def test_the_iou_thresholds_are_inclusive():
    detections = [([0, 0, 10, 5], CAT, 0.9),        # IoU 0.5: correct
                  ([20, 0, 30, 1], CAT, 0.8),       # IoU 0.1 exactly: Loc
                  ([40, 0, 50, 0.99], CAT, 0.7)]    # IoU 0.099: background
    objects = [(CAT_BOX, CAT), ([20, 0, 30, 10], CAT), ([40, 0, 50, 10], CAT)]
    analysis = error_analysis(**images((detections, objects)), class_names=NAMES)
    assert analysis.per_image()[0].tolist() == [COR, LOC, BG]


def test_a_second_free_object_is_found_as_hoiem_does():
    # Two overlapping cats (IoU 0.8). The second detection's best object is taken, but the other one overlaps
    # it by 0.89: correct for Hoiem's rule, a duplicate for the VOC devkit's.
    detections = [(CAT_BOX, CAT, 0.9), ([0, 0, 10, 9], CAT, 0.8)]
    objects = [(CAT_BOX, CAT), ([0, 0, 10, 8], CAT)]
    data = images((detections, objects))
    analysis = error_analysis(**data, class_names=NAMES)
    assert analysis.per_image()[0].tolist() == [COR, COR]
    assert voc_ap(**data).true_positives[CAT] == 1


def test_difficult_objects_are_ignored_as_voc_does():
    detections = [(CAT_BOX, CAT, 0.9), (CAT_BOX, CAT, 0.8),   # both on the difficult cat: ignored
                  ([0, 0, 10, 3], CAT, 0.7),                  # IoU 0.3 with it: Loc
                  ([50, 50, 60, 60], CAT, 0.6)]               # on the ordinary cat: Cor
    objects = [(CAT_BOX, CAT, True), ([50, 50, 60, 60], CAT, False)]
    data = images((detections, objects))
    analysis = error_analysis(**data, class_names=NAMES)
    assert analysis.per_image()[0].tolist() == [IGNORED, IGNORED, LOC, COR]
    assert analysis.ranked[CAT].tolist() == [LOC, COR]
    assert analysis.num_positives[CAT] == 1 and analysis.ignored[CAT] == 2
    assert voc_ap(**data).ignored[CAT] == 2


def _disjoint_random_set(rng, num_images=12, num_classes=4):
    """Objects in the cells of a 4 x 4 grid (so no two overlap), difficult ones among them; detections:
    jittered objects, some with another label, some twice, and false alarms anywhere."""
    per_image = []
    for _ in range(num_images):
        cells = rng.permutation(16)[:int(rng.integers(0, 9))]
        objects = []
        for cell in cells:
            x, y = 40.0 * (cell % 4), 40.0 * (cell // 4)
            w, h = rng.uniform(8, 38, size=2)
            x0, y0 = x + rng.uniform(0, 40 - w), y + rng.uniform(0, 40 - h)
            objects.append(([x0, y0, x0 + w, y0 + h], int(rng.integers(1, num_classes + 1)), rng.random() < 0.15))
        detections = []
        for box, label, _ in objects:
            for _ in range(int(rng.integers(0, 3))):
                size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
                moved = np.array(box) + rng.normal(0, 0.12, 4) * size
                moved = [min(moved[0], moved[2]), min(moved[1], moved[3]), max(moved[0], moved[2]),
                         max(moved[1], moved[3])]
                wrong = rng.random() < 0.2
                detections.append((moved, int(rng.integers(1, num_classes + 1)) if wrong else label, rng.random()))
        for _ in range(int(rng.integers(0, 4))):
            x0, y0 = rng.uniform(0, 150, size=2)
            detections.append(([x0, y0, x0 + 10, y0 + 10], int(rng.integers(1, num_classes + 1)), rng.random()))
        per_image.append((detections, objects))
    return images(*per_image)


def test_correct_detections_are_voc_true_positives_when_objects_do_not_overlap(rng):
    data = _disjoint_random_set(rng)
    names = ["background", "bird", "cat", "car", "chair"]
    analysis = error_analysis(**data, class_names=names)
    result = voc_ap(**data)
    for label in range(1, 5):
        codes = analysis.ranked[label]
        assert np.count_nonzero(codes == COR) == result.true_positives.get(label, 0)
        assert np.count_nonzero(codes != COR) == result.false_positives.get(label, 0)
        assert analysis.ignored[label] == result.ignored.get(label, 0)
        if result.num_positives.get(label, 0):
            assert analysis.ap[label] == pytest.approx(result.ap[label], abs=1e-12)
            np.testing.assert_allclose(analysis.recall_strong[label], result.recall[label])
    assert sum(analysis.num_positives.values()) == sum(result.num_positives.values())
    # the weak recall forgives localisation: never below the strong one
    for label in range(1, 5):
        if analysis.num_positives[label]:
            assert np.all(analysis.recall_weak[label] >= analysis.recall_strong[label])


def _ten_squares_of_class(label, found_sides, false_alarm_score=None):
    """Ten cats, squares of sides 1..10 far apart; a correct detection of the sides in ``found_sides``."""
    objects = [([100.0 * s, 0, 100.0 * s + s, s], label) for s in range(1, 11)]
    detections = [([100.0 * s, 0, 100.0 * s + s, s], label, 0.5 + s / 100) for s in found_sides]
    if false_alarm_score is not None:
        detections.append(([5000, 5000, 5010, 5010], label, false_alarm_score))
    return images((detections, objects))


def test_size_bins_split_ten_objects_one_two_four_two_one():
    analysis = error_analysis(**_ten_squares_of_class(CAT, [1, 2, 4, 5, 6, 10]), class_names=NAMES)
    size = analysis.size[CAT]
    assert size.edges.tolist() == [1, 9, 49, 81]  # the areas at ranks 1, 3, 7, 9
    assert size.objects.tolist() == [1, 2, 4, 2, 1]
    np.testing.assert_allclose(size.recall, [1, 1 / 2, 3 / 4, 0, 1])
    np.testing.assert_allclose(size.ap, [1, 1 / 2, 3 / 4, 0, 1])  # no false positive: AP = recall per bin
    # all squares: every edge is 1, and a value on an edge falls into the lower bin, as in Hoiem's code
    assert analysis.aspect[CAT].edges.tolist() == [1, 1, 1, 1]
    assert analysis.aspect[CAT].objects.tolist() == [10, 0, 0, 0, 0]


def test_a_bins_ap_leaves_out_the_other_bins_hits_and_is_normalised():
    data = _ten_squares_of_class(CAT, [1, 10], false_alarm_score=0.99)
    analysis = error_analysis(**data, class_names=NAMES, normalized_count=3.0)
    size = analysis.size[CAT]
    # XS: the false alarm, then its one object: precision 1/2 at recall 1; normalised: 3 / (3 + 1)
    assert size.ap[0] == pytest.approx(0.5) and size.ap_normalized[0] == pytest.approx(0.75)
    assert size.ap[4] == pytest.approx(0.5) and size.ap_normalized[4] == pytest.approx(0.75)
    assert size.ap[2] == 0.0 and size.recall[2] == 0.0
    # the whole class: FP, TP, TP over 10 objects: precisions 1/2, 2/3, both 2/3 under the envelope;
    # normalised, TP scaled by 3 / 10: 0.3 / 1.3 then 0.6 / 1.6
    assert analysis.ap[CAT] == pytest.approx(2 * (2 / 3) / 10)
    assert analysis.ap_normalized[CAT] == pytest.approx(2 * (0.6 / 1.6) / 10)


def test_aspect_bins_from_tall_to_wide():
    objects = [([100.0 * k, 0, 100.0 * k + k, 5], DOG) for k in range(1, 11)]  # w / h = 0.2 ... 2
    analysis = error_analysis(**images(([], objects)), class_names=NAMES)
    aspect = analysis.aspect[DOG]
    np.testing.assert_allclose(aspect.edges, [0.2, 0.6, 1.4, 1.8])
    assert aspect.objects.tolist() == [1, 2, 4, 2, 1]
    assert aspect.recall.tolist() == [0.0] * 5


def test_three_objects_leave_bins_empty():
    objects = [([0, 0, 1, 1], CAT), ([10, 0, 12, 2], CAT), ([20, 0, 23, 3], CAT)]
    size = error_analysis(**images(([], objects)), class_names=NAMES).size[CAT]
    assert size.objects.tolist() == [1, 0, 1, 1, 0]  # edges at ranks 1, 1, 2, 3
    assert np.isnan(size.recall[1]) and np.isnan(size.ap_normalized[4])


def test_the_default_groups_are_the_papers():
    groups = default_groups(["background", *VOC_CLASSES])
    assert groups == {**{k: list(v) for k, v in VOC_GROUPS.items()},
                      "bottle": ["bottle"], "person": ["person"], "pottedplant": ["pottedplant"],
                      "tvmonitor": ["tvmonitor"]}
    assert default_groups(["background", "circle", "square", "triangle", "star", "cross"]) == {
        "with corners": ["square", "triangle", "star", "cross"], "round": ["circle"]}
    assert resolve_groups(["background", "cat", "dog", "person"]) == {"animals": (1, 2), "person": (3,)}


def test_own_groups_and_their_errors():
    assert resolve_groups(NAMES, {"pets": ["Cat", "dog"]}) == {"pets": (1, 2), "car": (3,)}
    with pytest.raises(ValueError, match=r"groups\['pets'\]\[1\] = 'kitty' is not a class of the data"):
        resolve_groups(NAMES, {"pets": ["cat", "kitty"]})
    with pytest.raises(ValueError, match="already in group 'pets'"):
        resolve_groups(NAMES, {"pets": ["cat"], "animals": ["dog", "cat"]})
    with pytest.raises(ValueError, match=r"groups\['none'\] is empty"):
        resolve_groups(NAMES, {"none": []})
    with pytest.raises(ValueError, match="must be a list of class names"):
        resolve_groups(NAMES, {"pets": "cat"})
    # with the cat and the dog in different groups, the dog detection on the cat is Oth
    analysis = error_analysis(**images(([(CAT_BOX, DOG, 0.9)], [(CAT_BOX, CAT)])), class_names=NAMES,
                              groups={"cats": ["cat"], "dogs": ["dog"]})
    assert analysis.per_image()[0].tolist() == [OTH]


def test_bad_inputs_are_one_clear_error():
    with pytest.raises(ValueError, match="pred_labels holds label 4 but class_names has only 4 entries"):
        error_analysis(**images(([(CAT_BOX, 4, 0.9)], [])), class_names=NAMES)
    with pytest.raises(ValueError, match=r"pred_boxes\[0\]\[0\]"):
        error_analysis(**images(([([5, 0, 1, 1], CAT, 0.9)], [])), class_names=NAMES)
    with pytest.raises(ValueError, match="multiples must be positive"):
        error_analysis(**six_kinds(), class_names=NAMES, multiples=[1, 0])
    with pytest.raises(ValueError, match="confusion_multiple"):
        error_analysis(**six_kinds(), class_names=NAMES, confusion_multiple=math.nan)


def test_no_detections_and_no_objects():
    analysis = error_analysis(**images(([], []), ([], [])), class_names=NAMES)
    assert analysis.category.size == 0 and analysis.confusion.sum() == 0
    assert "animals (2 classes): no objects" in analysis.summary()
    json.dumps(analysis.to_dict(), allow_nan=False)  # no NaN reaches the JSON
    only_detections = error_analysis(**images(([(CAT_BOX, CAT, 0.9), (FAR, DOG, 0.8)], [])), class_names=NAMES)
    assert only_detections.per_image()[0].tolist() == [BG, BG]
    assert np.isnan(only_detections.recall_strong[CAT]).all() and math.isnan(only_detections.ap[CAT])


def test_the_json_holds_the_counts():
    numbers = error_analysis(**six_kinds(), class_names=NAMES, multiples=[1, 8]).to_dict()
    json.dumps(numbers, allow_nan=False)
    cat = numbers["classes"]["cat"]
    assert cat["objects"] == 1 and cat["detections"] == 6 and cat["recall"] == 1.0
    assert cat["counts_at_objects"] == {"Cor": 1, "Loc": 0, "Sim": 0, "Oth": 0, "BG": 0}
    assert numbers["groups"]["animals"]["fractions"]["Loc"] == [0.0, pytest.approx(2 / 6)]
    assert numbers["groups"]["vehicles"]["fractions"]["Cor"] == [None, None]
    assert cat["size"]["bins"] == ["XS", "S", "M", "L", "XL"] and cat["size"]["objects"] == [1, 0, 0, 0, 0]


def test_crowd_regions_of_predictions_are_ignored_like_difficult_objects():
    predictions = Predictions(
        boxes=[np.array([CAT_BOX, DOG_BOX], np.float32)], labels=[np.array([CAT, CAT])],
        scores=[np.array([0.9, 0.8], np.float32)], gt_boxes=[np.array([DOG_BOX], np.float32)],
        gt_labels=[np.array([CAT])], gt_difficult=[np.array([False])],
        gt_crowd_boxes=[np.array([CAT_BOX], np.float32)], gt_crowd_labels=[np.array([CAT])], image_ids=["a"])
    analysis = analyze_predictions(predictions, NAMES)
    assert analysis.per_image()[0].tolist() == [IGNORED, COR]
    assert analysis.num_positives[CAT] == 1


# --------------------------------------------------------------------------
# the pictures
# --------------------------------------------------------------------------

def test_the_pictures_draw_what_was_measured():
    from minissd.viz import (
        error_breakdown_figure,
        figure_and_axes,
        plot_confusion_matrix,
        plot_error_breakdown,
        plot_sensitivity,
        sensitivity_figure,
    )

    analysis = error_analysis(**_ten_squares_of_class(CAT, [1, 2, 4, 5, 6, 10], false_alarm_score=0.99),
                              class_names=NAMES)
    _, axes = figure_and_axes(1, 3)
    ax = plot_error_breakdown(analysis, "animals", ax=axes[0][0])
    assert len(ax.collections) == 5 and len(ax.get_lines()) == 2  # five kinds stacked, two recall lines
    assert ax.get_xlabel() == "total detections (x 10)" and ax.get_title() == "animals"
    ax = plot_sensitivity(analysis, "size", "recall", ax=axes[0][1])
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_allclose(heights, [1, 1 / 2, 3 / 4, 0, 1])  # the classes with objects: only the cat
    ax = plot_confusion_matrix(analysis, ax=axes[0][2])
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown[0], analysis.confusion[0] / analysis.confusion[0].sum())
    assert len(error_breakdown_figure(analysis).axes) == 1  # only the animals have objects
    assert len(sensitivity_figure(analysis, "aspect", classes=["cat", "dog"]).axes) == 2
    with pytest.raises(ValueError, match="no group 'pets'"):
        plot_error_breakdown(analysis, "pets")
    with pytest.raises(ValueError, match="kind must be 'size' or 'aspect'"):
        plot_sensitivity(analysis, "height")
    with pytest.raises(ValueError, match="'horse' is not a class"):
        plot_sensitivity(analysis, classes=["horse"])
