"""Default boxes: the slides' scales, shapes and centres (examples.md sections 1-4)."""

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from minissd import priors as P


def test_scales_for_m_6_match_the_slides():
    np.testing.assert_allclose(P.scales(6, 0.2, 0.9), [0.2, 0.34, 0.48, 0.62, 0.76, 0.9], atol=1e-12)


def test_scales_endpoints_and_bad_input():
    s = P.scales(4, 0.1, 0.7)
    assert s[0] == pytest.approx(0.1) and s[-1] == pytest.approx(0.7)
    assert P.scales(1, 0.3, 0.9) == [0.3]
    with pytest.raises(ValueError, match="positive integer"):
        P.scales(0)
    with pytest.raises(ValueError, match="s_min <= s_max"):
        P.scales(6, 0.9, 0.2)


def test_box_table_for_k_3_matches_the_slides():
    s = P.scales(6)
    shapes = P.box_shapes(s[2], s[3], aspect_ratios=(2, 3))
    # per-cell order [s_k, s'_k, 2, 1/2, 3, 1/3]
    expected = [
        (0.48, 0.48),
        (0.5455, 0.5455),
        (0.6788, 0.3394),
        (0.3394, 0.6788),
        (0.8314, 0.2771),
        (0.2771, 0.8314),  # the slide prints 0.84: a rounding slip
    ]
    np.testing.assert_allclose(shapes, expected, atol=5e-5)
    # rounded to two digits, as the slide prints them
    assert [(round(w, 2), round(h, 2)) for w, h in shapes] == [
        (0.48, 0.48), (0.55, 0.55), (0.68, 0.34), (0.34, 0.68), (0.83, 0.28), (0.28, 0.83)
    ]
    for (w, h), ratio in zip(shapes[2:], (2, 0.5, 3, 1 / 3)):
        assert w / h == pytest.approx(ratio)
        assert w * h == pytest.approx(0.48 ** 2)


def test_all_25_centres_of_a_5_by_5_map():
    centres = P.cell_centres(5)
    np.testing.assert_allclose(centres, [0.1, 0.3, 0.5, 0.7, 0.9], atol=1e-12)
    config = P.paper_config((5,), aspect_ratios=[()])  # 2 boxes per cell
    boxes = P.default_boxes(config)
    cells = {(round(float(x), 6), round(float(y), 6)) for x, y in boxes[:, :2]}
    expected = {(x, y) for x, y in itertools.product([0.1, 0.3, 0.5, 0.7, 0.9], repeat=2)}
    assert len(cells) == 25 and cells == expected
    assert (0.1, 0.3) in cells  # the pair the slide's list drops


def test_step_rule_differs_from_the_paper_rule_on_the_38_map():
    paper = P.cell_centres(38)
    caffe = P.cell_centres(38, step=8, image_size=300)
    assert paper[0] == pytest.approx(0.5 / 38) and caffe[0] == pytest.approx(4 / 300)
    assert not np.allclose(paper, caffe)
    # on the 19 map 300 / 16 = 18.75 != 19 too, but on the 3 and 1 maps the rules agree
    np.testing.assert_allclose(P.cell_centres(1), P.cell_centres(1, step=300, image_size=300))


@pytest.mark.parametrize(
    "name, count",
    [("ssd300-paper", 8732), ("ssd300-voc", 8732), ("ssd300-coco", 8732), ("ssd512-voc", 24564)],
)
def test_box_counts(name, count):
    boxes = P.default_boxes(name)
    assert boxes.shape == (count, 4) and boxes.dtype == np.float32
    assert P.PRESETS[name].num_priors == count


def test_ssd300_per_map_counts():
    config = P.PRESETS["ssd300-voc"]
    counts = [s.stop - s.start for s in P.prior_slices(config)]
    assert counts == [38 * 38 * 4, 19 * 19 * 6, 10 * 10 * 6, 5 * 5 * 6, 3 * 3 * 4, 4]
    assert config.boxes_per_cell == (4, 6, 6, 6, 4, 4)


def test_order_contract_map_row_column_box():
    config = P.PRESETS["ssd300-voc"]
    boxes = P.default_boxes(config)
    first = P.prior_slices(config)[0]
    grid = boxes[first].reshape(38, 38, 4, 4)  # (row, column, box, cxcywh)
    # along a row x grows, down a column y grows, within a cell the centre is constant
    assert np.all(np.diff(grid[0, :, 0, 0]) > 0) and np.all(np.diff(grid[0, :, 0, 1]) == 0)
    assert np.all(np.diff(grid[:, 0, 0, 1]) > 0) and np.all(np.diff(grid[:, 0, 0, 0]) == 0)
    assert np.all(grid[5, 7, :, :2] == grid[5, 7, :1, :2])
    # per-cell order: s_k, s'_k, a = 2, a = 1/2 with the VOC sizes 30 and 60 px
    s, extra = 30 / 300, math.sqrt(30 * 60) / 300
    np.testing.assert_allclose(
        grid[0, 0, :, 2:],
        [[s, s], [extra, extra], [s * math.sqrt(2), s / math.sqrt(2)], [s / math.sqrt(2), s * math.sqrt(2)]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(grid[0, 0, 0, :2], [4 / 300, 4 / 300], rtol=1e-6)


def test_ssd300_paper_preset_uses_the_formula():
    config = P.PRESETS["ssd300-paper"]
    np.testing.assert_allclose(config.min_sizes, [0.2, 0.34, 0.48, 0.62, 0.76, 0.9], atol=1e-12)
    np.testing.assert_allclose(config.max_sizes[-1], 1.04, atol=1e-12)
    assert config.steps is None


def test_ssd300_coco_preset_and_size_clipping_as_torchvision():
    boxes = P.default_boxes("ssd300-coco")
    assert boxes[:, 2:].max() > 1  # a = 2 on the 0.87 map is 1.23 wide
    clipped = P.default_boxes("ssd300-coco", clip="size")
    assert clipped[:, 2:].max() == pytest.approx(1.0)
    np.testing.assert_array_equal(clipped[:, :2], boxes[:, :2])


def test_corner_clipping_keeps_boxes_inside_the_image():
    boxes = P.default_boxes("ssd300-voc", clip=True)
    corners = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], 1)
    assert corners.min() >= -1e-6 and corners.max() <= 1 + 1e-6
    unclipped = P.default_boxes("ssd300-voc")
    assert unclipped[:, 2:].max() > 1


def test_ssd512_preset_follows_caffe():
    # Caffe's ssd_pascal_512.py (and ChainerCV's converted SSD512): conv4_3 at 7 % / 15 % of 512, then
    # 15 % steps; not COCO's 4 % / 10 % for the first map
    config = P.PRESETS["ssd512-voc"]
    np.testing.assert_allclose(np.array(config.min_sizes) * 512, [35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8],
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.array(config.max_sizes) * 512, [76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6],
                               rtol=0, atol=1e-6)
    assert config.steps == (8, 16, 32, 64, 128, 256, 512) and config.image_size == 512
    assert "35.84" in config.description and "4 %" not in config.description
    # the first map's boxes: 35.84 px square, then sqrt(35.84 * 76.8) px
    first = P.default_boxes(config)[:4]
    np.testing.assert_allclose(first[:2, 2] * 512, [35.84, np.sqrt(35.84 * 76.8)], rtol=1e-6)


def test_docs_list_every_preset_with_its_sizes():
    page = (Path(__file__).resolve().parents[1] / "docs" / "default_boxes.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line for line in page.splitlines()
            if line.startswith("| `")}
    assert set(P.PRESETS) <= set(rows), sorted(set(P.PRESETS) - set(rows))
    assert "35.84" in rows["ssd512-voc"] and "537.6" in rows["ssd512-voc"]
    assert "0.08" in rows["tiny"] and "0.96" in rows["tiny"]


def test_tiny_preset_exists():
    config = P.PRESETS["tiny"]
    assert P.default_boxes(config).shape == (config.num_priors, 4)


@pytest.mark.parametrize("field, value, message", [
    ("aspect_ratios", ((2,), (0,)), r"aspect_ratios\[1\]\[0\] = 0 must be > 0"),
    ("aspect_ratios", ((2,), (-3,)), r"aspect_ratios\[1\]\[0\] = -3 must be > 0"),
    ("aspect_ratios", ((float("nan"),), (2,)), r"aspect_ratios\[0\]\[0\] = nan is not finite"),
    ("min_sizes", (0.1, float("nan")), r"min_sizes\[1\] = nan is not finite"),
    ("max_sizes", (0.2, float("inf")), r"max_sizes\[1\] = inf is not finite"),
    ("min_sizes", (0.1, -0.2), r"min_sizes\[1\] = -0.2 must be > 0"),
    ("steps", (8, 0), r"steps\[1\] = 0 must be > 0"),
    ("image_size", 0, r"image_size = 0 must be a positive integer"),
    ("image_size", float("nan"), r"image_size = nan must be a positive integer"),
    ("feature_maps", (4, 2.5), r"feature_maps\[1\] = 2.5: feature map sizes must be positive integers"),
])
def test_prior_config_names_the_bad_field_and_value(field, value, message):
    fields = dict(name="bad", image_size=64, feature_maps=(4, 2), min_sizes=(0.1, 0.3), max_sizes=(0.3, 0.6),
                  aspect_ratios=((2,), (2,)), steps=(16, 32))
    P.PriorConfig(**fields)  # the valid baseline
    fields[field] = value
    with pytest.raises(ValueError, match=r"PriorConfig 'bad': " + message):
        P.PriorConfig(**fields)


def test_box_functions_refuse_bad_ratios_sizes_and_image_sizes():
    with pytest.raises(ValueError, match=r"box_shapes: aspect_ratios\[1\] = 0 must be > 0"):
        P.box_shapes(0.2, 0.3, (2, 0))  # was a ZeroDivisionError
    with pytest.raises(ValueError, match=r"box_shapes: aspect_ratios\[0\] = -2 must be > 0"):
        P.box_shapes(0.2, 0.3, (-2,))  # was "math domain error"
    with pytest.raises(ValueError, match=r"box_shapes: next_scale = nan is not finite"):
        P.box_shapes(0.2, float("nan"))
    with pytest.raises(ValueError, match=r"paper_config: aspect_ratios\[1\]\[0\] = 0 must be > 0"):
        P.paper_config((4, 2), aspect_ratios=[(2,), (0,)])
    with pytest.raises(ValueError, match=r"scales: s_max = nan is not finite"):
        P.paper_config((4, 2), s_max=float("nan"))
    with pytest.raises(ValueError, match=r"PriorConfig 'paper': image_size = 0 must be a positive integer"):
        P.paper_config((4, 2), image_size=0)
    with pytest.raises(ValueError, match=r"scales: m = 2.5 must be a positive integer"):
        P.scales(2.5)
    with pytest.raises(ValueError, match=r"cell_centres: image_size = 0 must be > 0"):
        P.cell_centres(4, step=8, image_size=0)
    with pytest.raises(ValueError, match=r"cell_centres: step = nan is not finite"):
        P.cell_centres(4, step=float("nan"), image_size=64)
    with pytest.raises(ValueError, match=r"cell_centres: size = 0 must be a positive integer"):
        P.cell_centres(0)


def test_unknown_preset_and_bad_config():
    with pytest.raises(ValueError, match="unknown default-box preset 'ssd301'.*ssd300-voc"):
        P.default_boxes("ssd301")
    with pytest.raises(ValueError, match="min_sizes has 2 entries but there are 3 feature maps"):
        P.PriorConfig("bad", 300, (8, 4, 2), (0.1, 0.2), (0.2, 0.3, 0.4), ((2,),) * 3)
    with pytest.raises(ValueError, match="clip must be"):
        P.default_boxes("tiny", clip="yes")
