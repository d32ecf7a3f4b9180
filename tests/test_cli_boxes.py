"""``minissd boxes --figure1``: the paper's Figure 1 from the command line, and its usage errors."""

import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("MPLBACKEND", "Agg")

from minissd import viz  # noqa: E402
from minissd.cli import main  # noqa: E402


def one_error_line(capsys):
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("minissd boxes: error: ") and "Traceback" not in captured.err
    return lines[0]


@pytest.fixture
def drawn(monkeypatch):
    """Every call the command makes to viz.figure1, with the Figure it returned."""
    calls = []
    original = viz.figure1

    def record(*args, **kwargs):
        figure = original(*args, **kwargs)
        calls.append((args, kwargs, figure))
        return figure

    monkeypatch.setattr(viz, "figure1", record)
    return calls


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (400, 200), (90, 140, 60)).save(path)
    return str(path)


def test_figure1_of_the_built_in_scene(tmp_path, capsys, drawn):
    out = tmp_path / "f1.png"
    assert main(["boxes", "--figure1", "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as picture:
        assert picture.size[0] > 800 and picture.size[1] > 300
    (_, _, figure), = drawn
    assert figure.matches.matched_maps(0) == (0,) and figure.matches.matched_maps(1) == (1,)  # cat 8x8, dog 4x4


def test_figure1_is_the_default_name_with_figure1(tmp_path, monkeypatch, drawn):
    monkeypatch.chdir(tmp_path)
    assert main(["boxes", "--figure1", "-f", "8"]) == 0
    assert os.listdir(tmp_path) == ["figure1.png"]
    assert drawn[0][2].matches.config.feature_maps == (8,)


def test_figure1_on_a_photo_with_pixel_boxes(tmp_path, photo, drawn):
    out = tmp_path / "mine.png"
    arguments = ["boxes", "--figure1", "--image", photo, "--box", "cat:40,20,100,120", "--box",
                 "dog:120,50,400,200", "--box", "cat:300,0,340,40", "--iou-threshold", "0.4", "-o", str(out)]
    assert main(arguments) == 0 and out.exists()
    (args, kwargs, figure), = drawn
    image, gt_boxes, labels, class_names = args
    assert image.shape == (200, 400, 3)  # drawn as it is, not resized
    assert np.allclose(gt_boxes, [[0.1, 0.1, 0.25, 0.6], [0.3, 0.25, 1.0, 1.0], [0.75, 0.0, 0.85, 0.2]])
    assert labels.tolist() == [1, 2, 1] and list(class_names) == ["background", "cat", "dog"]
    assert kwargs["iou_threshold"] == 0.4 and figure.matches.iou_threshold == 0.4


def test_boxes_without_an_image_are_painted_on_the_cartoon(tmp_path, drawn):
    out = tmp_path / "moved.png"
    assert main(["boxes", "--figure1", "--box", "cat:60,60,120,130", "--box", "ball:200,200,240,240",
                 "-o", str(out)]) == 0
    (args, _, _), = drawn
    image, gt_boxes, _, class_names = args
    assert image.shape == (300, 300, 3) and list(class_names) == ["background", "cat", "ball"]
    assert np.allclose(gt_boxes[0], [0.2, 0.2, 0.4, 130 / 300])
    assert (image[70:120, 70:110] != image[5, 5]).any(axis=2).mean() > 0.3  # a cat painted in its box


@pytest.mark.parametrize("box", ["cat", "cat:1,2,3", ":1,2,3,4", "cat:1,2,x,4", "cat:1,2,3,4,5"])
def test_a_malformed_box_is_a_usage_error_naming_the_flag(capsys, box):
    with pytest.raises(SystemExit) as exit_info:
        main(["boxes", "--figure1", "--box", box])
    assert exit_info.value.code == 2
    line = one_error_line(capsys)
    assert "argument --box: must be NAME:X1,Y1,X2,Y2 in pixels" in line and repr(box) in line


@pytest.mark.parametrize("box, message", [
    ("cat:5,5,2,8", "needs x1 < x2 and y1 < y2"),
    ("cat:5,5,5,8", "needs x1 < x2 and y1 < y2"),
    ("cat:-1,0,3,4", "pixel coordinates are >= 0"),
    ("cat:nan,0,3,4", "needs finite pixel coordinates"),
    ("cat:0,0,inf,4", "needs finite pixel coordinates"),
])
def test_a_box_without_area_or_with_bad_numbers_is_refused_while_parsing(capsys, box, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["boxes", "--figure1", "--box", box])
    assert exit_info.value.code == 2
    line = one_error_line(capsys)
    assert "argument --box" in line and message in line


def test_an_iou_threshold_out_of_range_is_refused_while_parsing(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["boxes", "--figure1", "--iou-threshold", "1.5"])
    assert exit_info.value.code == 2
    assert "argument --iou-threshold: must be a number in [0, 1]; got '1.5'" in one_error_line(capsys)


@pytest.mark.parametrize("extra, message", [
    (["--box", "dog:10,10,401,100"], "--box dog:10,10,401,100: x2 = 401 is outside"),
    (["--box", "dog:10,10,300,250"], "--box dog:10,10,300,250: y2 = 250 is outside"),
])
def test_a_box_outside_the_picture_is_a_usage_error(capsys, photo, extra, message):
    assert main(["boxes", "--figure1", "--image", photo, *extra]) == 2
    line = one_error_line(capsys)
    assert message in line and "(400 x 200 pixels)" in line and photo in line


@pytest.mark.parametrize("arguments, message", [
    (["--box", "cat:1,2,3,4"], "--box belongs to --figure1; add --figure1"),
    (["--iou-threshold", "0.5"], "--iou-threshold belongs to --figure1"),
    (["--figure1", "--preset", "tiny"], "--figure1 uses the paper's formula on --feature-maps; --preset does not apply"),
    (["--figure1", "--cells", "1,1"], "--figure1 draws the cells that hold each object; --cells does not apply"),
    (["--figure1", "--image", "x.png"], "--figure1 --image needs the objects in the picture: give --box"),
    (["--figure1", "-f", "8", "4", "2", "2", "1", "1", "1"], "give at most 6 --feature-maps; got 7"),
    (["--figure1", "--box", "cow:1,2,30,40"], "without --image the cartoon paints only cat, dog, ball"),
    (["--figure1", "--box", "cat:1,2,30,400"], "--box cat:1,2,30,400: y2 = 400 is outside the cartoon (300 x 300"),
    (["--figure1", "--s-min", "0.6", "--s-max", "0.4"], "--s-min 0.6 is larger than --s-max 0.4"),
])
def test_options_that_contradict_figure1_are_usage_errors(capsys, tmp_path, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    assert main(["boxes", *arguments]) == 2
    assert message in one_error_line(capsys)
    assert os.listdir(tmp_path) == []  # stopped before writing anything


def test_a_missing_photo_is_one_line_exit_1(capsys, tmp_path):
    assert main(["boxes", "--figure1", "--image", str(tmp_path / "none.png"), "--box", "cat:1,1,5,5"]) == 1
    assert "image not found" in one_error_line(capsys)


def test_help_describes_figure1(capsys):
    with pytest.raises(SystemExit):
        main(["boxes", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--figure1" in text and "NAME:X1,Y1,X2,Y2" in text and "figure1.png with --figure1" in text
