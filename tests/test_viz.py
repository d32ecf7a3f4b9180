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
