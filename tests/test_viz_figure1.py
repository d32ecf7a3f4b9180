"""The paper's Figure 1 (minissd.viz.figure1): the fact it shows, and that it draws what it says."""

import io
import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
pytest.importorskip("matplotlib")

from minissd import boxes as B  # noqa: E402
from minissd import matching as M  # noqa: E402
from minissd import priors as P  # noqa: E402
from minissd import viz  # noqa: E402
from minissd.viz.figure1 import CONF_TEXT, LOC_TEXT, NEGATIVE_COLOUR, OBJECT_COLOURS  # noqa: E402

CAT, DOG = 0, 1


@pytest.fixture(scope="module")
def matches():
    return viz.figure1_matches()


@pytest.fixture(scope="module")
def figure():
    return viz.figure1()


def map_panels(figure):
    return [ax for ax in figure.axes if ax.get_title().startswith(("(b)", "(c)"))]


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_default_scene_cat_only_on_8x8_and_dog_only_on_4x4(matches):
    assert matches.config.feature_maps == (8, 4)
    assert matches.matched_maps(CAT) == (0,)  # the 8 x 8 map
    assert matches.matched_maps(DOG) == (1,)  # the 4 x 4 map
    # as the paper's caption says: two default boxes matched with the cat, one with the dog
    assert matches.positives(CAT, 0).size == 2 and matches.positives(DOG, 1).size == 1
    assert int((matches.matched >= 0).sum()) == 3


def test_default_scene_ious_match_the_hand_arithmetic(matches):
    # cat 0.16 x 0.22 on the 0.2 x 0.2 square of its cell (same centre): 0.16 * 0.2 / (0.04 + 0.0352 - 0.032)
    cat_square = matches.positives(CAT, 0)[0]
    assert matches.cell_of(cat_square) == (0, 5, 1, 0)  # 8 x 8 map, row 5, column 1, box s_k
    assert matches.overlaps[CAT, cat_square] == pytest.approx(0.032 / 0.0432, abs=1e-5)
    # dog 0.7 x 0.3 inside the a = 2 box of its 4 x 4 cell (0.7071 x 0.3536): 0.21 / 0.25
    (dog_wide,) = matches.positives(DOG, 1)
    assert matches.cell_of(dog_wide) == (1, 2, 2, 2)  # 4 x 4 map, row 2, column 2, box a=2
    assert matches.overlaps[DOG, dog_wide] == pytest.approx(0.84, abs=1e-5)
    # the cat lies inside a 0.5 x 0.5 box of the 4 x 4 map: IoU 0.0352 / 0.25, its best there
    assert matches.best_iou(CAT, 1) == pytest.approx(0.0352 / 0.25, abs=1e-5)
    assert matches.best_iou(DOG, 0) < 0.5  # the 8 x 8 map's boxes are too small for the dog


def test_the_matching_is_minissds_and_equals_threshold_matching_here(matches):
    gt, priors = viz.FIGURE1_BOXES, matches.priors
    assert np.array_equal(matches.matched, M.match_indices(gt, priors))
    overlaps = B.iou(gt, B.cxcywh_to_xyxy(priors))  # (2, 320)
    by_threshold = np.where(overlaps.max(axis=0) >= 0.5, overlaps.argmax(axis=0), -1)
    assert np.array_equal(matches.matched, by_threshold) and matches.by_threshold_alone()
    config = P.paper_config((8, 4), s_min=0.2, s_max=0.5, aspect_ratios=[(2,), (2,)])
    assert np.array_equal(priors, P.default_boxes(config))


def test_centre_cells_hold_the_object_centres(matches):
    assert matches.centre_cell(CAT, 0) == (5, 1) and matches.centre_cell(CAT, 1) == (2, 0)
    assert matches.centre_cell(DOG, 1) == (2, 2)
    assert matches.centre_cell(DOG, 0) == (5, 5)  # on the corner of four cells: the lower-right one
    with pytest.raises(ValueError, match="p = 320 is not a default box index"):
        matches.cell_of(320)


def test_figure_carries_the_matches_it_drew(figure, matches):
    assert np.array_equal(figure.matches.matched, matches.matched)
    assert np.array_equal(figure.matches.gt_boxes, matches.gt_boxes)


def test_figure_has_the_papers_three_panels(figure):
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert len(titles) == 3
    assert titles[0].startswith("(a) image with ground-truth boxes")
    assert titles[1].startswith("(b) 8 x 8 feature map") and titles[2].startswith("(c) 4 x 4 feature map")
    assert "match_indices" in figure._suptitle.get_text() and "IoU >= 0.5" in figure._suptitle.get_text()


def test_legend_names_every_colour_and_line(figure):
    (legend,) = figure.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["cat: ground truth", "default box matched to cat", "dog: ground truth",
                      "default box matched to dog", "other default boxes of those cells (negatives)",
                      "cell centre (black: a cell drawn)"]


def dashed(ax, colour):
    from matplotlib.colors import to_rgba

    return [p for p in ax.patches if p.get_linestyle() == "--" and p.get_edgecolor() == to_rgba(colour)]


def test_matched_boxes_are_dashed_in_their_objects_colour_and_ground_truth_solid(figure, matches):
    eight, four = map_panels(figure)
    cat_colour, dog_colour = OBJECT_COLOURS[CAT], OBJECT_COLOURS[DOG]
    assert len(dashed(eight, cat_colour)) == 2 and len(dashed(eight, dog_colour)) == 0
    assert len(dashed(four, dog_colour)) == 1 and len(dashed(four, cat_colour)) == 0
    # the grey ones: every other box of the two drawn cells (the cat's and the dog's) of each map
    assert len(dashed(eight, NEGATIVE_COLOUR)) == 2 * 4 - 2
    assert len(dashed(four, NEGATIVE_COLOUR)) == 2 * 4 - 1  # the cat's four 4 x 4 boxes drawn, failing
    for ax in figure.axes[:3]:
        solid = [p for p in ax.patches if p.get_linestyle() == "-"]
        assert len(solid) == 2 and all(p.get_linewidth() == 3.0 for p in solid)  # the two ground truths


def test_cell_centres_are_marked(figure):
    eight, four = map_panels(figure)
    for ax, side in ((eight, 8), (four, 4)):
        dots = [line for line in ax.lines if line.get_marker() == "o"]
        every = max(dots, key=lambda line: len(line.get_xdata()))
        assert len(every.get_xdata()) == side * side
        expected = (np.arange(side) + 0.5) / side * 300
        assert np.allclose(np.unique(every.get_xdata()), expected)
        drawn = [line for line in dots if len(line.get_xdata()) == 1]
        assert len(drawn) == 2  # the cat's cell and the dog's cell


def test_the_cat_fails_on_the_4x4_map_with_its_best_iou_written(figure):
    _, four = map_panels(figure)
    assert "cat: best IoU 0.14 < 0.5" in texts(four)
    assert four.get_xlabel().splitlines() == ["cat: none, best IoU 0.14 < 0.5", "dog: 1 positive (IoU 0.84)"]
    eight, _ = map_panels(figure)
    assert "dog: best IoU 0.33 < 0.5" in texts(eight)
    assert eight.get_xlabel().splitlines() == ["cat: 2 positives (IoU 0.74, 0.71)", "dog: none, best IoU 0.33 < 0.5"]


def test_loc_and_conf_note_points_at_the_dogs_matched_box(figure, matches):
    eight, four = map_panels(figure)
    notes = [a for a in four.texts if LOC_TEXT in a.get_text()]
    assert len(notes) == 1 and CONF_TEXT in notes[0].get_text()
    assert LOC_TEXT == "loc: Δ(cx, cy, w, h)" and CONF_TEXT == "conf: (c1, c2, …, cp)"
    assert not any(LOC_TEXT in text for text in texts(eight))
    (dog_wide,) = matches.positives(DOG, 1)
    _, y1, x2, _ = B.cxcywh_to_xyxy(matches.priors[dog_wide:dog_wide + 1])[0] * 300
    assert np.allclose(notes[0].xy, (x2, y1), atol=1e-3)
    target = B.encode(viz.FIGURE1_BOXES[DOG:DOG + 1], matches.priors[dog_wide:dog_wide + 1])[0]
    assert f"({', '.join(f'{v:.2f}' for v in target)}), class dog" in notes[0].get_text()


def test_figure_is_deterministic():
    def png():
        buffer = io.BytesIO()
        viz.figure1().savefig(buffer, format="png", dpi=30)
        return buffer.getvalue()

    assert png() == png()


def test_own_picture_and_boxes_any_size():
    image = np.zeros((100, 200, 3), np.uint8)
    gt = np.array([[0.1, 0.2, 0.3, 0.6]], np.float32)
    figure = viz.figure1(image, gt, labels=[1], class_names=["background", "car"], feature_maps=(4,))
    assert [ax.get_title()[:3] for ax in figure.axes if ax.get_title()] == ["(a)", "(b)"]
    assert figure.axes[0].images[0].get_array().shape[:2] == (100, 200)
    assert [t.get_text() for t in figure.legends[0].get_texts()][:2] == ["car: ground truth",
                                                                         "default box matched to car"]
    unnamed = viz.figure1(image, gt)
    assert "object 1: ground truth" in [t.get_text() for t in unnamed.legends[0].get_texts()]


def test_an_object_with_no_box_above_the_threshold_still_gets_its_best_box():
    # a thin box: IoU < 0.5 with every default box, so only the bipartite step matches it
    gt = np.array([[0.40, 0.45, 0.60, 0.47]], np.float32)
    matches = viz.figure1_matches(gt)
    assert int((matches.matched >= 0).sum()) == 1 and not matches.by_threshold_alone()
    figure = viz.figure1(None, gt)
    assert any(LOC_TEXT in t.get_text() for ax in figure.axes for t in ax.texts)


@pytest.mark.parametrize("arguments, error, message", [
    (dict(image=np.zeros((9, 9, 3), np.uint8)), ValueError, "give gt_boxes with image"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 1.2]]), ValueError, r"gt_boxes\[0\] = \[0.1, 0.1, 0.5, 1.2\] is outside \[0, 1\]"),
    (dict(gt_boxes=[[0.5, 0.1, 0.4, 0.9]]), ValueError, r"figure1: gt_boxes\[0\] .* breaks x2 >= x1"),
    (dict(gt_boxes=np.zeros((0, 4))), ValueError, "gt_boxes is empty"),
    (dict(gt_boxes=[0.1, 0.1, 0.5, 0.5]), ValueError, r"gt_boxes must have shape \(G, 4\)"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], labels=[1, 2]), ValueError, r"labels must have shape \(1,\)"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], labels=[0]), ValueError, r"labels\[0\] = 0"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], labels=[1.5]), ValueError, r"labels\[0\] = 1.5 is not an integer"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], class_names=["bg", "cat"]), ValueError, "class_names needs labels"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], labels=[3], class_names=["bg", "cat"]), ValueError,
     r"labels\[0\] = 3 has no name: class_names holds 2 names"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], image=np.zeros((9, 9))), ValueError, r"image must be \(H, W, 3\)"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], feature_maps=(8, 0)), ValueError, r"feature_maps\[1\] = 0"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], iou_threshold=1.5), ValueError, "iou_threshold"),
    (dict(gt_boxes=[[0.1, 0.1, 0.5, 0.5]], aspect_ratios=2), TypeError, "aspect_ratios = 2 must be a sequence"),
])
def test_bad_input_is_one_clear_error(arguments, error, message):
    with pytest.raises(error, match=message):
        viz.figure1(**arguments)
