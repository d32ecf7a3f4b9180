"""nms_steps_figure: the panels draw exactly what nms_steps did, and no caption hides another."""

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
pytest.importorskip("matplotlib")

from minissd import nms as N  # noqa: E402
from minissd import viz  # noqa: E402
from tests.test_nms import slides_example  # noqa: E402

NAMES = ["0.9", "0.8", "0.7", "0.65", "0.6 left", "0.6 right"]


def notebook_boxes():
    """The six boxes of notebook 04, in pixels of a 350 x 130 picture (same relations as slides_example)."""
    boxes = np.array([
        [220, 10, 320, 110], [10, 10, 110, 110], [220, 10, 320, 60],
        [10, 20, 110, 110], [20, 10, 120, 110], [240, 10, 340, 110],
    ], dtype=np.float64)
    scene = viz.toy_scene(boxes[[1, 0]] / [350, 130, 350, 130], ["cat", "dog"], size=(350, 130))
    return boxes, np.array([0.9, 0.8, 0.7, 0.65, 0.6, 0.6]), scene


def captions(ax):
    """{role: [(index, text), ...]} of the captions in one panel, read from their gids."""
    found = {}
    for text in ax.texts:
        role, index = text.get_gid().split(":")
        found.setdefault(role, []).append((int(index), text.get_text()))
    return found


def drawn_steps(figure):
    """[(reference, [(removed index, IoU as written), ...]), ...] read back from the step panels."""
    steps = []
    for ax in figure.axes[1:-1]:
        found = captions(ax)
        (reference, _), = found["reference"]
        removed = [(index, float(text.split("IoU ")[1])) for index, text in found.get("removed", [])]
        steps.append((reference, sorted(removed)))
    return steps


def expected_steps(boxes, scores, iou_threshold, score_threshold=None):
    steps = N.nms_steps(boxes, scores, iou_threshold, score_threshold)
    return [(reference, sorted((index, round(overlap, 2)) for index, overlap in removed))
            for reference, removed in steps]


def test_the_slides_six_boxes_panel_by_panel():
    boxes, scores, scene = notebook_boxes()
    figure = viz.nms_steps_figure(boxes, scores, 0.5, image=scene, names=NAMES)
    assert len(figure.axes) == 2 + 2  # before, two references, after
    assert drawn_steps(figure) == [(0, [(2, 0.5), (5, 0.67)]), (1, [(3, 0.9), (4, 0.82)])]
    # step 2 shows 0.9 as kept earlier, and nothing that step 1 removed
    step_two = captions(figure.axes[2])
    assert [index for index, _ in step_two["kept"]] == [0]
    assert not {2, 5} & {index for role in step_two.values() for index, _ in role}
    # after: the kept boxes, and each removed one with the reference that removed it
    after = captions(figure.axes[-1])
    assert [index for index, _ in after["kept"]] == N.nms(boxes, scores, 0.5).tolist()
    assert sorted(after["removed"]) == [(2, "0.7\nby 0.9"), (3, "0.65\nby 0.8"), (4, "0.6 left\nby 0.8"),
                                        (5, "0.6 right\nby 0.9")]
    assert "0.7" in figure.axes[1].get_title() and "0.6 right" in figure.axes[1].get_title()


def test_the_panels_equal_nms_steps_on_random_boxes(rng):
    for trial in range(8):
        count = int(rng.integers(1, 9))
        corner = rng.uniform(0, 60, size=(count, 2))
        boxes = np.concatenate([corner, corner + rng.uniform(5, 40, size=(count, 2))], axis=1)
        scores = rng.choice([0.3, 0.5, 0.8], size=count) if trial % 2 else rng.random(count)
        iou_threshold = float(rng.uniform(0.2, 0.8))
        score_threshold = None if trial % 3 == 0 else 0.5
        figure = viz.nms_steps_figure(boxes, scores, iou_threshold, score_threshold)
        expected = expected_steps(boxes, scores, iou_threshold, score_threshold)
        assert len(figure.axes) == len(expected) + 2, f"trial {trial}"
        assert drawn_steps(figure) == expected, f"trial {trial}"
        below = sorted(index for index, _ in captions(figure.axes[0]).get("below_score", []))
        assert below == ([] if score_threshold is None else np.nonzero(scores <= score_threshold)[0].tolist())


def test_a_score_at_the_threshold_is_drawn_as_removed_first():
    boxes, scores, scene = notebook_boxes()
    figure = viz.nms_steps_figure(boxes, scores, 0.5, score_threshold=0.7, image=scene, names=NAMES)
    before = captions(figure.axes[0])
    # 0.7 is exactly at the threshold: removed with 0.65 and both 0.6, before any step
    assert sorted(index for index, _ in before["below_score"]) == [2, 3, 4, 5]
    assert sorted(index for index, _ in before["waiting"]) == [0, 1]
    assert drawn_steps(figure) == [(0, []), (1, [])]
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "score \u2264 0.7: removed before NMS" in legend
    # without a score threshold the legend has no such entry
    plain = viz.nms_steps_figure(boxes, scores, 0.5)
    assert not any("score" in text.get_text() for text in plain.legends[0].get_texts())


def caption_boxes(figure):
    """Per panel: the window extents of the coloured caption patches, after a full Agg draw."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    return [(ax, [text.get_bbox_patch().get_window_extent(renderer) for text in ax.texts]) for ax in figure.axes]


@pytest.mark.parametrize("score_threshold", [None, 0.7], ids=["no score threshold", "score threshold 0.7"])
@pytest.mark.parametrize("dpi", [80, 100])
def test_no_caption_hides_another_on_the_six_boxes(score_threshold, dpi):
    import matplotlib

    boxes, scores, scene = notebook_boxes()
    for image in (scene, None):
        with matplotlib.rc_context({"figure.dpi": dpi}):
            figure = viz.nms_steps_figure(boxes, scores, 0.5, score_threshold, image=image, names=NAMES)
        for ax, extents in caption_boxes(figure):
            frame = ax.get_window_extent()
            assert len(extents) >= 2
            for i, a in enumerate(extents):
                assert frame.x0 - 0.5 <= a.x0 and a.x1 <= frame.x1 + 0.5 and frame.y0 - 0.5 <= a.y0 \
                    and a.y1 <= frame.y1 + 0.5, f"{ax.get_title()!r}: caption {ax.texts[i].get_text()!r} leaves the panel"
                for j, b in enumerate(extents[:i]):
                    width = min(a.x1, b.x1) - max(a.x0, b.x0)
                    height = min(a.y1, b.y1) - max(a.y0, b.y0)
                    assert width <= 0 or height <= 0, (
                        f"{ax.get_title()!r}: {ax.texts[i].get_text()!r} covers {ax.texts[j].get_text()!r}")


def test_the_old_overlap_is_gone():
    # the old before-NMS picture wrote "0.8" and "0.6 left" at the same offset; now they are apart
    boxes, scores, scene = notebook_boxes()
    figure = viz.nms_steps_figure(boxes, scores, 0.5, image=scene, names=NAMES)
    (ax, extents), = caption_boxes(figure)[:1]
    by_index = {int(text.get_gid().split(":")[1]): extent for text, extent in zip(ax.texts, extents)}
    assert not by_index[1].overlaps(by_index[4])


def test_bad_input_is_named():
    boxes, scores, _ = notebook_boxes()
    with pytest.raises(ValueError, match="names has 5 entries but there are 6 boxes"):
        viz.nms_steps_figure(boxes, scores, 0.5, names=NAMES[:5])
    with pytest.raises(ValueError, match="nms_steps: iou_threshold = 2"):
        viz.nms_steps_figure(boxes, scores, 2)
    with pytest.raises(ValueError, match=r"normalized boxes need size"):
        viz.nms_steps_figure(boxes / 400, scores, 0.5, normalized=True)
    with pytest.raises(ValueError, match="30 reference boxes would need 32 panels"):
        far = np.array([[10.0 * i, 0, 10.0 * i + 5, 5] for i in range(30)])
        viz.nms_steps_figure(far, np.linspace(0.9, 0.1, 30), 0.5)
    with pytest.raises(ValueError, match=r"size = \(10, 10\) but the image is 350 x 130"):
        viz.nms_steps_figure(boxes, scores, 0.5, image=notebook_boxes()[2], size=(10, 10))


def test_normalized_boxes_and_the_slides_example_of_the_tests():
    boxes, scores = slides_example()  # in units of a 32 x 10 frame
    figure = viz.nms_steps_figure(boxes / [40, 10, 40, 10], scores, 0.5, normalized=True, size=(400, 100))
    assert drawn_steps(figure) == expected_steps(boxes, scores, 0.5)
    rectangles = [patch for patch in figure.axes[0].patches if patch.get_gid() == "waiting:5"]
    assert rectangles and rectangles[0].get_x() == pytest.approx(220.0)  # 22 / 40 of 400 pixels
    empty = viz.nms_steps_figure(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert len(empty.axes) == 2 and not empty.axes[0].texts
