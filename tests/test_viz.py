"""Pictures: they render without error and draw what they say (counted as patches)."""

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
plt = pytest.importorskip("matplotlib.pyplot")

from minissd import matching as M  # noqa: E402
from minissd import priors as P  # noqa: E402
from minissd import viz  # noqa: E402


@pytest.fixture
def ax():
    figure, axes = plt.subplots()
    yield axes
    plt.close(figure)


def figure_one():
    """The Figure 1 set-up of notebook 01: a cat, a dog, 8 x 8 and 4 x 4 maps."""
    gt = np.array([[0.1075, 0.2025, 0.2675, 0.4225], [0.35, 0.40, 0.90, 0.85]], dtype=np.float32)
    config = P.paper_config((8, 4), s_min=0.2, s_max=0.5, aspect_ratios=[(2,), (2,)])
    priors = P.default_boxes(config)
    return gt, priors, M.match_indices(gt, priors)


def test_toy_scene_paints_each_object_inside_its_box():
    boxes = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.3, 0.9, 0.7], [0.6, 0.05, 0.7, 0.15]])
    image = viz.toy_scene(boxes, ["cat", "dog", "ball"], size=(200, 100))
    assert image.shape == (100, 200, 3) and image.dtype == np.uint8
    sky = image[2, 2]
    for x1, y1, x2, y2 in (boxes * [200, 100, 200, 100]).astype(int):
        inside = image[y1:y2, x1:x2].reshape(-1, 3)
        assert (inside != sky).any(axis=1).mean() > 0.3  # the object covers much of its box
    outside = image[:15, :15].reshape(-1, 3)
    assert (outside == sky).all()


def test_toy_scene_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match=r"kinds\[1\] = 'cow'"):
        viz.toy_scene(np.zeros((2, 4)), ["cat", "cow"])
    with pytest.raises(ValueError, match="2 boxes but 1 kinds"):
        viz.toy_scene(np.zeros((2, 4)), ["cat"])


def test_plot_matches_draws_ground_truth_positives_and_others(ax):
    gt, priors, matched = figure_one()
    others = np.zeros(len(priors), dtype=bool)
    others[:12] = True  # three cells of the 8 x 8 map, all background
    assert (matched[:12] < 0).all()
    image = viz.toy_scene(gt, ["cat", "dog"])
    viz.plot_matches(image, gt, priors, matched, ax=ax, others=others, gt_labels=[1, 2], grid=8)
    assert len(ax.patches) == 2 + int((matched >= 0).sum()) + 12
    dashed = [p for p in ax.patches if p.get_linestyle() == "--"]
    assert len(dashed) == 12


def test_plot_matches_checks_its_inputs(ax):
    gt, priors, matched = figure_one()
    with pytest.raises(ValueError, match=r"matched has 5 entries but there are 320 priors"):
        viz.plot_matches(np.zeros((30, 30, 3), np.uint8), gt, priors, matched[:5], ax=ax)
    with pytest.raises(ValueError, match="only 1 are given"):
        viz.plot_matches(np.zeros((30, 30, 3), np.uint8), gt[:1], priors, matched, ax=ax)


def test_plot_hard_negatives_draws_each_kind_once(ax):
    gt, priors, matched = figure_one()
    positive = matched >= 0
    negative = np.zeros(len(priors), dtype=bool)
    negative[np.nonzero(~positive)[0][:7]] = True
    viz.plot_hard_negatives(viz.toy_scene(gt, ["cat", "dog"]), priors, positive, negative, gt, ax=ax)
    assert len(ax.patches) == 2 + int(positive.sum()) + 7
    assert sum(p.get_linestyle() == "--" for p in ax.patches) == 7
    assert len(ax.get_legend().get_texts()) == 3
    ax.clear()
    viz.plot_hard_negatives(np.zeros((9, 9, 3)), priors, None, negative, ax=ax)  # negatives alone
    assert len(ax.patches) == 7 and len(ax.get_legend().get_texts()) == 1
    with pytest.raises(ValueError, match=r"positive and negative must have shape \(320,\)"):
        viz.plot_hard_negatives(np.zeros((9, 9, 3)), priors, positive[:3], negative, ax=ax)


# --------------------------------------------------------------------------
# default boxes: centre dots and grid from the boxes, the two centre rules
# --------------------------------------------------------------------------

def centre_dots(ax):
    (dots,) = [line for line in ax.lines if line.get_label() == "cell centre"]
    return np.array([dots.get_xdata()[0], dots.get_ydata()[0]])


def test_centre_dots_sit_where_a_step_presets_boxes_are_centred(ax):
    config = P.PRESETS["ssd300-voc"]  # 10 x 10 map: step 32 of 300 px
    viz.plot_default_boxes(config, 2, cells=[(5, 5)], ax=ax)
    first = P.prior_slices(config)[2].start + (5 * 10 + 5) * config.boxes_per_cell[2]
    boxes = P.default_boxes(config)[first:first + config.boxes_per_cell[2]]  # (6, 4) of the cell
    assert np.allclose(boxes[:, :2], boxes[0, :2])  # one centre per cell
    assert np.allclose(centre_dots(ax), boxes[0, :2] * 300)  # 5.5 * 32 = 176 px
    assert np.allclose(centre_dots(ax), 176.0) and not np.allclose(centre_dots(ax), 165.0)  # not the paper's
    grid = np.array([line.get_xdata() for line in ax.lines if line.get_label() != "cell centre"])
    assert np.isclose(grid.max(), 320.0)  # Caffe's cells are 32 px: the grid overhangs the 300 px picture
    assert "cell centre" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_centre_dots_follow_the_papers_rule_on_a_paper_config(ax):
    config = P.paper_config((10,), aspect_ratios=[(2,)])
    viz.plot_default_boxes(config, 0, cells=[(5, 5)], ax=ax)
    assert np.allclose(centre_dots(ax), 165.0)  # (5 + 0.5) / 10 * 300


def test_cell_grid_is_read_from_the_boxes():
    centres, edges = viz.cell_grid("ssd300-voc", 2)
    assert np.allclose(centres, (np.arange(10) + 0.5) * 32 / 300, atol=1e-6)
    assert np.allclose(edges, np.arange(11) * 32 / 300, atol=1e-6)
    centres, edges = viz.cell_grid(P.paper_config((10,)), 0)
    assert np.allclose(centres, (np.arange(10) + 0.5) / 10) and np.allclose(edges, np.arange(11) / 10)
    for map_index in (4, 5):  # 3 x 3 (step 100) and 1 x 1 (step 300): the two rules agree
        centres, edges = viz.cell_grid("ssd300-voc", map_index)
        side = P.PRESETS["ssd300-voc"].feature_maps[map_index]
        assert np.allclose(edges, np.arange(side + 1) / side, atol=1e-6)


def test_plot_default_boxes_legend_explains_solid_and_dashed(ax):
    _, _, matched = figure_one()
    config = P.paper_config((8, 4), s_min=0.2, s_max=0.5, aspect_ratios=[(2,), (2,)])
    viz.plot_default_boxes(config, 0, cells=[(2, 1)], positive=matched >= 0, ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == viz.box_names((2,)) + ["cell centre", "solid, thick: positive", "dashed: negative"]
    assert sum(p.get_linestyle() == "-" for p in ax.patches) == int((matched[:256] >= 0).sum()) == 2


def test_centres_figure_shows_the_step_drift_on_the_10x10_map():
    figure = viz.centres_figure()  # SSD300's 10 x 10 map, step 32 of 300 px
    overlay, drift = figure.axes
    paper, caffe = (collection.get_offsets() for collection in overlay.collections)  # (100, 2) each, px
    index = np.arange(10) + 0.5
    assert np.allclose(np.unique(paper[:, 0]), index * 30) and np.allclose(np.unique(caffe[:, 0]), index * 32)
    assert np.allclose(caffe - paper, np.stack(np.meshgrid(index, index, indexing="ij")[::-1], -1).reshape(-1, 2) * 2)
    drift_line = drift.lines[0]
    assert np.allclose(drift_line.get_ydata(), index * 2)  # (i + 0.5) * (32 - 300 / 10) px: 1 ... 19
    assert np.allclose(P.cell_centres(10, step=32, image_size=300) - P.cell_centres(10), index * 2 / 300)
    assert np.isclose(P.cell_centres(10, step=32, image_size=300)[5], 0.58667, atol=1e-5)  # vs 0.55
    overlay_labels = [t.get_text() for t in overlay.get_legend().get_texts()]
    assert overlay_labels == ["paper: (i + 0.5) / 10 x 300 px", "Caffe: (i + 0.5) x 32 px", "the 300 px picture"]
    assert len(drift.get_legend().get_texts()) == 2
    assert "285 px (paper) vs 304 px (Caffe)" in overlay.get_title()
