"""bipartite_steps_figure: the pairs circled, in order, are the greedy bipartite step of minissd.matching."""

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
pytest.importorskip("matplotlib")

from minissd import boxes as B  # noqa: E402
from minissd import matching as M  # noqa: E402
from minissd import viz  # noqa: E402

# notebook 02's table: C-d3 is taken first, then A-d0; B's best box d0 is gone, so B takes d1;
# the threshold step then adds d2 to A
GT = np.array([[0.05, 0.1, 0.45, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.55, 0.95, 0.95]])
CORNERS = np.array([[0.08, 0.1, 0.48, 0.5], [0.2, 0.1, 0.6, 0.5], [0.0, 0.05, 0.4, 0.45],
                    [0.6, 0.57, 0.95, 0.95], [0.7, 0.4, 1.0, 0.7]])


def pairs_in_order(figure):
    """The picks as the step panels show them: panel k circles pick k in red, and numbers 1..k."""
    order = []
    for ax in figure.axes:
        if not ax.axison or not ax.get_title().startswith("step"):
            continue
        red = [patch.get_gid() for patch in ax.patches if (patch.get_gid() or "").startswith("pick:")
               and _is_red(patch)]
        assert len(red) == 1, ax.get_title()
        g, p = (int(v) for v in red[0].split(":")[1:])
        numbers = sorted(int(t.get_gid().split(":")[1]) for t in ax.texts if (t.get_gid() or "").startswith("order:"))
        assert numbers == list(range(1, len(order) + 2)), ax.get_title()
        order.append((g, p))
    return order


def _is_red(patch):
    from matplotlib.colors import to_rgba

    return np.allclose(patch.get_edgecolor(), to_rgba(viz.PALETTE[0]))


def result_panel(figure):
    ax = [ax for ax in figure.axes if ax.axison][-1]
    picks = [tuple(int(v) for v in patch.get_gid().split(":")[1:]) for patch in ax.patches
             if (patch.get_gid() or "").startswith("pick:")]
    added = [tuple(int(v) for v in patch.get_gid().split(":")[1:]) for patch in ax.patches
             if (patch.get_gid() or "").startswith("threshold:")]
    return ax, picks, added


def test_the_notebook_table_step_by_step():
    table = B.iou(GT, CORNERS)  # (3, 5)
    figure = viz.bipartite_steps_figure(table, gt_names=["A", "B", "C"])
    assert pairs_in_order(figure) == [(2, 3), (0, 0), (1, 1)]  # C-d3 0.95, A-d0 0.86, B-d1 0.67
    assert viz.greedy_bipartite_pairs(table) == [(2, 3), (0, 0), (1, 1)]
    ax, picks, added = result_panel(figure)
    assert sorted(picks) == [(0, 0), (1, 1), (2, 3)] and added == [(0, 2)]  # the threshold step: d2 -> A
    assert [label.get_text() for label in ax.get_xticklabels()] == [
        "d0\n\u2192 A", "d1\n\u2192 B", "d2\n\u2192 A", "d3\n\u2192 C", "d4\n\u2192 bg"]
    matched = M.match_indices(GT, B.xyxy_to_cxcywh(CORNERS))
    assert matched.tolist() == [0, 1, 0, 2, -1]
    # every cell carries its IoU, written with two decimals
    numbers = [text.get_text() for text in ax.texts if text.get_gid() is None]
    assert numbers == [f"{value:.2f}" for value in table.reshape(-1)]


def test_the_circled_order_is_the_greedy_order_of_match_indices(rng):
    for trial in range(25):
        num_gt, num_priors = int(rng.integers(1, 6)), int(rng.integers(1, 10))
        corner = rng.uniform(0, 0.6, size=(num_gt + num_priors, 2))
        corners = np.concatenate([corner, corner + rng.uniform(0.1, 0.4, size=corner.shape)], axis=1)
        gt, priors = corners[:num_gt], B.xyxy_to_cxcywh(corners[num_gt:])
        table = B.iou(gt, corners[num_gt:])  # (G, P)
        figure = viz.bipartite_steps_figure(table)
        order = pairs_in_order(figure)
        # the same pairs as match_indices' bipartite step (a threshold of 1 adds nothing to it here) ...
        bipartite = M.match_indices(gt, priors, iou_threshold=1.0)
        assert sorted((int(g), p) for p, g in enumerate(bipartite) if g >= 0) == sorted(order), f"trial {trial}"
        # ... taken in the greedy order: each pick is the best pair left after striking out the earlier ones
        left = table.copy()
        for g, p in order:
            assert left[g, p] == left.max() > 0, f"trial {trial}"
            left[g, :] = -1
            left[:, p] = -1
        assert len(order) == min(num_gt, num_priors) or left.max() <= 0
        # the result panel shows the whole matching: both steps, as match_indices and match_reference
        _, picks, added = result_panel(figure)
        final = np.full(num_priors, -1)
        for g, p in picks + added:
            final[p] = g
        np.testing.assert_array_equal(final, M.match_indices(gt, priors), err_msg=f"trial {trial}")
        _, conf = M.match_reference(gt, np.arange(1, num_gt + 1), priors)
        np.testing.assert_array_equal(final + 1, conf, err_msg=f"trial {trial}")


def test_ties_and_tables_without_overlap():
    # equal IoUs: the first in row-major order wins, as in match_indices
    assert viz.greedy_bipartite_pairs(np.array([[0.5, 0.5], [0.5, 0.5]])) == [(0, 0), (1, 1)]
    # nothing overlaps: no picks, only the result panel
    figure = viz.bipartite_steps_figure(np.zeros((2, 3)))
    assert pairs_in_order(figure) == [] and result_panel(figure)[1:] == ([], [])
    # more ground truths than default boxes: one pick per default box
    assert viz.greedy_bipartite_pairs(np.array([[0.3], [0.6], [0.1]])) == [(1, 0)]


def test_bad_tables_are_named():
    with pytest.raises(ValueError, match=r"iou_table\[1, 0\] = 1\.5 is not an IoU"):
        viz.bipartite_steps_figure(np.array([[0.2, 0.1], [1.5, 0.0]]))
    with pytest.raises(ValueError, match=r"iou_table\[0, 1\] = nan"):
        viz.bipartite_steps_figure(np.array([[0.2, np.nan]]))
    with pytest.raises(ValueError, match=r"shape \(G, P\)"):
        viz.bipartite_steps_figure(np.array([0.2, 0.1]))
    with pytest.raises(ValueError, match=r"has shape \(3, 8732\); a readable table"):
        viz.bipartite_steps_figure(np.zeros((3, 8732)))
    with pytest.raises(ValueError, match="gt_names has 1 names for 2 rows"):
        viz.bipartite_steps_figure(np.zeros((2, 3)), gt_names=["A"])
    with pytest.raises(ValueError, match=r"iou_threshold = 2 must be a number in \[0, 1\]"):
        viz.bipartite_steps_figure(np.zeros((2, 3)), iou_threshold=2)
