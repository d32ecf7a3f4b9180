"""minissd.explain: each detection traced back to its default box, decoded step by step, exactly.

The oracles: ``Detector.predict`` (boxes, scores, labels, order, to the bit), ``minissd.nms.postprocess``
and ``postprocess_batched`` on the same raw outputs, ``minissd.nms.nms_steps`` for what NMS removed,
``minissd.boxes.decode`` and ``default_boxes`` for the default box and its decoding.
"""

import io
import json
import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from minissd import models  # noqa: E402
from minissd.backend import to_numpy  # noqa: E402
from minissd.boxes import DECODE_LOG_SIZE_CLAMP, cxcywh_to_xyxy, decode  # noqa: E402
from minissd.data import ShapesDataset  # noqa: E402
from minissd.detect import Detector  # noqa: E402
from minissd.explain import (decoding_steps, explain_image, explain_outputs, locate_default_box,  # noqa: E402
                             trace_postprocess)
from minissd.nms import nms_steps, postprocess  # noqa: E402
from minissd.nms_batched import postprocess_batched  # noqa: E402
from minissd.priors import PRESETS, box_shapes, cell_centres, default_boxes, get_config, prior_slices  # noqa: E402

DEMO_WEIGHTS = os.path.join(os.path.dirname(__file__), "..", "notebooks", "assets", "demo_tiny_ssd.npz")


@pytest.fixture(scope="module")
def demo():
    return Detector.load(DEMO_WEIGHTS)


@pytest.fixture(scope="module")
def pictures():
    data = ShapesDataset("test", num_images=8)
    return [data[i].image for i in range(len(data))]


def assert_same_as_predict(detector, picture, threshold):
    """The explained chain gives predict's detections, bit for bit, in predict's order."""
    explanations = detector.explain(picture, threshold)
    found = detector.predict(picture, threshold)
    assert len(explanations) == len(found)
    for k, e in enumerate(explanations):
        assert (e.index, e.count) == (k, len(found))
        assert np.array_equal(e.box_pixels, found.boxes[k]), (k, e.box_pixels, found.boxes[k])
        assert e.box_pixels.dtype == found.boxes.dtype
        assert e.score == found.scores[k] and e.label == found.labels[k] and e.class_name == found.names[k]
        assert np.array_equal(e.decoding.box, e.box)  # the step-by-step decoding ends on the detection's box
        assert e.probabilities[e.label] == e.score
    return explanations


def test_the_chain_reproduces_every_detection_of_the_demo_weights(demo, pictures):
    total = suppressed = 0
    for picture in pictures:
        for threshold in (0.01, 0.5):
            explanations = assert_same_as_predict(demo, picture, threshold)
            total += len(explanations)
            suppressed += sum(len(e.suppressed) for e in explanations)
    assert total > 30 and suppressed > 20  # a trained model: many detections, NMS at work


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_chain_reproduces_random_models_with_every_cut_at_work(seed, pictures):
    model = models.tiny_ssd(4, class_names=["a", "b", "c"], widths=(6,) * 8, seed=seed)
    # an untrained model scores many boxes alike: top_k and keep_top_k both cut
    detector = Detector(model, score_threshold=0.2, top_k=30, keep_top_k=25)
    explanations = assert_same_as_predict(detector, pictures[seed], None)
    assert len(explanations) == 25
    assert any(e.above_threshold > len(e.candidates) == 30 for e in explanations)


def random_outputs(rng, priors=None, classes=4, ties=True):
    priors = default_boxes("tiny") if priors is None else priors
    count = priors.shape[0]
    loc = rng.normal(0, 1.5, (count, 4)).astype(np.float32)
    conf = rng.normal(0, 2, (count, classes)).astype(np.float32)
    if ties:  # equal scores on different default boxes: the order must follow the lower index
        conf[1::7] = conf[0]
        conf = np.round(conf * 2) / 2
    return loc, conf, priors


@pytest.mark.parametrize("case", range(6))
def test_trace_postprocess_is_postprocess_and_postprocess_batched(case):
    rng = np.random.default_rng(case)
    loc, conf, priors = random_outputs(rng, ties=case % 2 == 0)
    options = [dict(), dict(score_threshold=0.3, top_k=20, keep_top_k=15), dict(iou_threshold=0.2, clip=False),
               dict(score_threshold=0.0, iou_threshold=0.7, top_k=5), dict(score_threshold=0.6, keep_top_k=3),
               dict(iou_threshold=0.0, score_threshold=0.2)][case]
    trace = trace_postprocess(loc, conf, priors, **options)
    for reference in (postprocess(loc[None], conf[None], priors, **options)[0],
                      postprocess_batched(loc[None], conf[None], priors, **options)[0]):
        boxes, scores, labels = (to_numpy(a) for a in reference)
        assert len(trace.detections) == len(scores)
        assert np.array_equal(np.array([trace.boxes[d.prior] for d in trace.detections]).reshape(-1, 4), boxes)
        assert np.array_equal(np.array([d.score for d in trace.detections], dtype=scores.dtype), scores)
        assert np.array_equal(np.array([d.label for d in trace.detections], dtype=np.int64), labels)


def test_trace_postprocess_on_the_device(xp):
    loc, conf, priors = random_outputs(np.random.default_rng(7))
    trace = trace_postprocess(xp.asarray(loc), xp.asarray(conf), xp.asarray(priors), score_threshold=0.2)
    boxes, scores, labels = (to_numpy(a) for a in postprocess_batched(
        xp.asarray(loc[None]), xp.asarray(conf[None]), xp.asarray(priors), score_threshold=0.2)[0])
    assert [d.label for d in trace.detections] == labels.tolist()
    np.testing.assert_allclose([d.score for d in trace.detections], scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array([trace.boxes[d.prior] for d in trace.detections]), boxes, atol=1e-6)


def nms_record(explanation, boxes, probabilities):
    """What nms_steps says this detection removed, on its class's candidates: [(prior, IoU), ...]."""
    candidates = explanation.candidates
    steps = nms_steps(boxes[candidates], probabilities[candidates, explanation.label], explanation.iou_threshold)
    position = int(np.nonzero(candidates == explanation.default_box.index)[0][0])
    removed = dict(steps)[position]  # KeyError: nms_steps did not keep it
    return [(int(candidates[j]), overlap) for j, overlap in removed]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_removed_boxes_are_nms_steps_on_the_same_candidates(seed):
    loc, conf, priors = random_outputs(np.random.default_rng(10 + seed), ties=False)
    explanations = explain_outputs(loc, conf, priors, "tiny", score_threshold=0.5, iou_threshold=0.4)
    trace = trace_postprocess(loc, conf, priors, score_threshold=0.5, iou_threshold=0.4)
    assert sum(len(e.suppressed) for e in explanations) > 30
    for e in explanations:
        expected = nms_record(e, trace.boxes, trace.probabilities)
        assert [s.prior for s in e.suppressed] == [prior for prior, _ in expected]
        np.testing.assert_allclose([s.iou for s in e.suppressed], [overlap for _, overlap in expected], atol=1e-6)
        for s in e.suppressed:
            assert s.iou >= e.iou_threshold and s.score <= e.score
            assert s.score == trace.probabilities[s.prior, e.label]
            assert np.array_equal(s.box, trace.boxes[s.prior])
        # the candidates: every default box of the class above the threshold (no top_k cut here), best first
        scores = trace.probabilities[:, e.label]
        assert sorted(e.candidates.tolist()) == np.nonzero(scores > 0.5)[0].tolist()
        assert e.above_threshold == len(e.candidates)
        assert (np.diff(scores[e.candidates]) <= 0).all()


def test_the_removed_boxes_of_the_demo_weights_are_nms_steps(demo, pictures):
    model = demo.model
    for picture in pictures[:4]:
        explanations = demo.explain(picture, 0.3)
        loc, conf = model.forward(np.stack([_input(demo, picture)]))
        model.clear_cache()
        trace = trace_postprocess(loc[0], conf[0], model.priors, 0.3)
        for e in explanations:
            assert [(s.prior, pytest.approx(s.iou, abs=1e-6)) for s in e.suppressed] == nms_record(
                e, trace.boxes, trace.probabilities)


def _input(detector, picture):
    from minissd.detect import preprocess

    return preprocess(picture, detector.model.image_size, detector.model.info.mean)


@pytest.mark.parametrize("preset", ["tiny", "ssd300-voc", "ssd300-paper", "ssd512-voc"])
def test_map_cell_and_shape_agree_with_the_default_boxes(preset):
    config = get_config(preset)
    priors = default_boxes(config)
    rng = np.random.default_rng(0)
    picks = set()
    for rows in prior_slices(config):  # every map's first and last box, and a few in between
        picks |= {rows.start, rows.stop - 1, *rng.integers(rows.start, rows.stop, 6).tolist()}
    for p in sorted(picks):
        box = locate_default_box(config, p, priors)
        k, f, per_cell = box.map_index, box.map_size, box.boxes_per_cell
        assert prior_slices(config)[k].start + (box.row * f + box.column) * per_cell + box.box_in_cell == p
        assert f == config.feature_maps[k] and per_cell == config.boxes_per_cell[k]
        assert np.array_equal(box.cxcywh, priors[p])
        step = None if config.steps is None else config.steps[k]
        centres = cell_centres(f, step, config.image_size)
        np.testing.assert_allclose(box.cxcywh[:2], [centres[box.column], centres[box.row]], atol=1e-6)
        np.testing.assert_allclose((box.cell_xyxy[:2] + box.cell_xyxy[2:]) / 2, box.cxcywh[:2], atol=1e-6)
        width, height = box_shapes(config.min_sizes[k], config.max_sizes[k], config.aspect_ratios[k])[box.box_in_cell]
        np.testing.assert_allclose(box.cxcywh[2:], [width, height], rtol=1e-6)
        np.testing.assert_allclose([box.scale * np.sqrt(box.aspect_ratio), box.scale / np.sqrt(box.aspect_ratio)],
                                   [width, height], rtol=1e-6)
        # decoding the default box with zero offsets gives the default box back
        steps = decoding_steps(np.zeros(4, np.float32), priors[p], clip=False)
        assert np.array_equal(steps.xyxy, to_numpy(cxcywh_to_xyxy(priors[p:p + 1]))[0])
        assert np.array_equal(steps.xyxy, decode(np.zeros((1, 4), np.float32), priors[p:p + 1])[0])
        assert (steps.size_factor == 1).all() and (steps.centre_shift == 0).all()


def test_shape_names_follow_the_per_cell_order():
    config = PRESETS["ssd300-voc"]
    second = prior_slices(config)[1].start  # a map with ratios (2, 3): 6 boxes per cell
    shapes = [locate_default_box(config, second + b).shape for b in range(6)]
    assert shapes == ["s_k", "s'_k", "a=2", "a=1/2", "a=3", "a=1/3"]
    ratios = [locate_default_box(config, second + b).aspect_ratio for b in range(6)]
    np.testing.assert_allclose(ratios, [1, 1, 2, 0.5, 3, 1 / 3])
    box = locate_default_box(config, second + 6 * (19 * 2 + 5) + 4)  # row 2, column 5, a = 3
    assert (box.map_index, box.row, box.column, box.shape) == (1, 2, 5, "a=3")


def test_decoding_steps_are_decode_with_the_clamp_and_the_clip_said():
    priors = default_boxes("tiny")
    loc = np.zeros((priors.shape[0], 4), np.float32)
    loc[10] = [0.5, -0.3, 40.0, 0.2]  # l_w * v_size = 8 > log(1000 / 16): clamped
    loc[320] = [-3.0, 0.0, 0.0, 0.0]  # map 0, row 5, column 0: the centre moves left, x1 < 0, clipped
    for p in (10, 320):
        steps = decoding_steps(loc[p], priors[p], image_size=(200, 100))
        decoded = decode(loc, priors)[p]
        assert np.array_equal(steps.xyxy, decoded)
        assert np.array_equal(steps.box, np.clip(decoded, 0, 1))
    clamped = decoding_steps(loc[10], priors[10])
    assert clamped.clamped.tolist() == [True, False]
    np.testing.assert_allclose(clamped.size[0], priors[10, 2] * np.exp(DECODE_LOG_SIZE_CLAMP), rtol=1e-6)
    clipped = decoding_steps(loc[320], priors[320], image_size=(200, 100))
    assert clipped.clipped.tolist() == [True, False, False, False] and clipped.box[0] == 0
    np.testing.assert_allclose(clipped.pixels, clipped.box * [200, 100, 200, 100], rtol=1e-6)
    conf = np.zeros((priors.shape[0], 2), np.float32)
    conf[[10, 320], 1] = 9.0
    texts = {e.default_box.index: e.text() for e in explain_outputs(loc, conf, priors, "tiny", score_threshold=0.9)}
    assert "clamped" in texts[10] and "log(1000 / 16)" in texts[10] and "clamped" not in texts[320]
    assert "clip to [0, 1]: x1 " in texts[320] and "-> 0" in texts[320]


def test_softmax_sums_to_one_and_the_class_need_not_be_the_argmax():
    priors = default_boxes("tiny")
    loc = np.zeros((priors.shape[0], 4), np.float32)
    conf = np.full((priors.shape[0], 3), -20.0, np.float32)
    conf[:, 0] = 20.0  # background everywhere, except one default box scoring two classes
    conf[300] = np.log([0.1, 0.5, 0.4])
    explanations = explain_outputs(loc, conf, priors, "tiny", class_names=["background", "cat", "dog"],
                                   score_threshold=0.3)
    assert [(e.default_box.index, e.class_name) for e in explanations] == [(300, "cat"), (300, "dog")]
    for e in explanations:
        assert e.probabilities.sum() == pytest.approx(1.0, abs=1e-6)
        assert e.probabilities[e.label] == e.score
        np.testing.assert_array_equal(e.logits, conf[300])
    dog = explanations[1]
    assert dog.label != int(np.argmax(dog.probabilities)) and dog.suppressed == ()
    assert "is not this default box's most probable class (cat)" in dog.text()
    assert [name for _, name, _ in dog.top_classes(3)] == ["cat", "dog", "background"]


def test_explanation_fields_text_and_json(demo, pictures):
    e = demo.explain(pictures[3], 0.5)[1]
    assert e.default_box.map_name == demo.model.stage_names[e.default_box.map_index]
    assert (e.score_threshold, e.iou_threshold, e.top_k, e.keep_top_k) == (0.5, 0.45, 400, 200)
    text = e.text()
    for part in (f"default box {e.default_box.index}", f"cell row {e.default_box.row}", "offsets (l_cx",
                 "cx = d_cx + l_cx * v_center * d_w", "w  = d_w * exp(l_w * v_size)", "pixels:", "softmax",
                 "NMS (IoU >= 0.45"):
        assert part in text, part
    for s in e.suppressed:
        assert f"default box {s.prior} " in text
    data = json.loads(json.dumps(e.to_dict(), allow_nan=False))
    assert data["default_box"]["index"] == e.default_box.index and len(data["classes"]) == len(e.class_names)
    assert np.array_equal(np.float32(data["box_pixels"]), e.box_pixels)  # full precision
    assert [s["prior"] for s in data["nms"]["suppressed"]] == [s.prior for s in e.suppressed]
    assert explain_image(demo, pictures[3], 0.5)[1].to_dict() == e.to_dict()


def test_bad_input_is_named():
    priors = default_boxes("tiny")
    loc, conf = np.zeros((priors.shape[0], 4), np.float32), np.zeros((priors.shape[0], 3), np.float32)
    with pytest.raises(ValueError, match=r"explain_outputs: loc \(P, 4\) and conf \(P, L\) are one image's"):
        explain_outputs(loc[None], conf[None], priors, "tiny")
    bad = loc.copy()
    bad[17, 2] = np.nan
    with pytest.raises(ValueError, match=r"explain_outputs: loc\[17, 2\] is nan"):
        explain_outputs(bad, conf, priors, "tiny")
    with pytest.raises(ValueError, match="class_names has 2 names but conf has 3 classes"):
        explain_outputs(loc, conf, priors, "tiny", class_names=["background", "cat"])
    with pytest.raises(ValueError, match="'ssd300-voc' has 8732 default boxes but loc and conf have 1364"):
        explain_outputs(loc, conf, priors, "ssd300-voc")
    with pytest.raises(ValueError, match="score_threshold = 1.5 is outside"):
        trace_postprocess(loc, conf, priors, score_threshold=1.5)
    with pytest.raises(ValueError, match=r"index = 1364 is not a default box of 'tiny' \(0..1363\)"):
        locate_default_box("tiny", 1364)


# --------------------------------------------------------------------------
# the picture
# --------------------------------------------------------------------------

def gids(ax):
    return [artist.get_gid() for artist in ax.get_children() if artist.get_gid()]


def test_the_picture_has_its_parts(demo, pictures):
    pytest.importorskip("matplotlib")
    from minissd.viz import explain_figure

    e = demo.explain(pictures[3], 0.5)[1]
    assert len(e.suppressed) >= 2
    figure = explain_figure(e, pictures[3])
    picture_ax, bars_ax, text_ax = figure.axes
    drawn = gids(picture_ax)
    for gid in ("cell", "cell_centre", "default_box", "detection", "arrow:centre", "arrow:width", "arrow:height"):
        assert drawn.count(gid) == 1, gid
    assert sorted(g for g in drawn if g.startswith("suppressed:")) == sorted(f"suppressed:{s.prior}"
                                                                              for s in e.suppressed)
    assert "unclipped" not in drawn  # nothing was clipped
    written = {t.get_gid(): t.get_text() for t in picture_ax.texts}
    for s in e.suppressed:
        assert written[f"caption:suppressed:{s.prior}"] == f"IoU {s.iou:.2f}\nscore {s.score:.2f}"
    bars = [artist for artist in bars_ax.patches if (artist.get_gid() or "").startswith("class:")]
    assert len(bars) == len(e.class_names) == 6
    np.testing.assert_allclose([bar.get_width() for bar in bars], e.probabilities, atol=1e-7)
    assert "threshold" in gids(bars_ax) and "decoding" in gids(text_ax)
    arrow = next(a for a in picture_ax.patches if a.get_gid() == "arrow:centre")
    (x0, y0), (x1, y1) = arrow._posA_posB  # matplotlib keeps the end points there (no public getter)
    np.testing.assert_allclose([x1 - x0, y1 - y0], e.decoding.centre_shift * 128, atol=1e-4)
    assert figure.legends and len(figure.legends[0].get_texts()) == 5
    figure.savefig(io.BytesIO(), format="png", dpi=60)


def test_the_picture_of_a_clipped_box_and_its_errors():
    pytest.importorskip("matplotlib")
    from minissd.viz import explain_figure

    priors = default_boxes("tiny")
    loc = np.zeros((priors.shape[0], 4), np.float32)
    loc[320] = [-3.0, 0.0, 0.0, 0.0]
    conf = np.zeros((priors.shape[0], 2), np.float32)
    conf[320, 1] = 9.0
    e, = explain_outputs(loc, conf, priors, "tiny", score_threshold=0.9, image_size=(64, 48))
    figure = explain_figure(e, zoom=False)  # a blank canvas of the explanation's size
    assert "unclipped" in gids(figure.axes[0]) and len(figure.legends[0].get_texts()) == 6
    assert figure.axes[0].get_xlim() == (0.0, 64.0)
    with pytest.raises(ValueError, match="the image is 30 x 20 but the detection was found in a 64 x 48 picture"):
        explain_figure(e, np.zeros((20, 30, 3), np.uint8))
