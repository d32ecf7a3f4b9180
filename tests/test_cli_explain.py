"""``minissd explain``: the text, the picture and the JSON of one detection, and its one-line errors."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from minissd.cli import main
from minissd.data import ShapesDataset
from minissd.detect import Detector

DEMO_WEIGHTS = os.path.join(os.path.dirname(__file__), "..", "notebooks", "assets", "demo_tiny_ssd.npz")


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    path = tmp_path_factory.mktemp("pictures") / "shapes3.png"
    Image.fromarray(ShapesDataset("test", num_images=4)[3].image).save(path)
    return str(path)


@pytest.fixture(scope="module")
def found(picture):
    return Detector.load(DEMO_WEIGHTS).predict(picture, 0.5)


def test_the_best_detection_is_explained_drawn_and_written(picture, found, tmp_path, capsys):
    out, data = tmp_path / "best.png", tmp_path / "best.json"
    assert main(["explain", DEMO_WEIGHTS, picture, "-o", str(out), "--json", str(data)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"detection 0 of {len(found)}: {found.names[0]}")
    for part in ("default box ", "feature map ", "cell row ", "offsets (l_cx, l_cy, l_w, l_h)", "decoding:",
                 "cx = d_cx + l_cx * v_center * d_w", "h  = d_h * exp(l_h * v_size)", "pixels:",
                 "classes, softmax over the 6 logits (the best 5)", "NMS (IoU >= 0.45 removes)"):
        assert part in printed, part
    assert f"wrote {out} and {data}" in printed
    with Image.open(out) as drawn:
        assert drawn.format == "PNG" and drawn.size[0] > 600
    written = json.loads(data.read_text())
    assert written["index"] == 0 and written["label"] == int(found.labels[0])
    assert np.array_equal(np.float32(written["box_pixels"]), found.boxes[0])
    assert written["score"] == float(found.scores[0])


def test_index_options_and_the_nms_record(picture, found, tmp_path, capsys):
    assert len(found) >= 2
    data = tmp_path / "second.json"
    assert main(["explain", DEMO_WEIGHTS, picture, "--index", "1", "-o", str(tmp_path / "second.svg"),
                 "--json", str(data), "--top-classes", "2", "--whole-picture"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"detection 1 of {len(found)}: {found.names[1]}")
    assert "(the best 2)" in printed and (tmp_path / "second.svg").exists()
    written = json.loads(data.read_text())
    assert np.array_equal(np.float32(written["box_pixels"]), found.boxes[1])
    removed = written["nms"]["suppressed"]
    assert removed and all(s["iou"] >= 0.45 for s in removed)
    assert f"this detection removed {len(removed)}: default box {removed[0]['prior']} " in printed


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_an_index_out_of_range_says_how_many_detections_there_are(picture, found, tmp_path, capsys):
    count = len(found)
    assert main(["explain", DEMO_WEIGHTS, picture, "--index", str(count), "-o", str(tmp_path / "x.png")]) == 1
    line = one_error_line(capsys)
    assert line.startswith("minissd explain: error: --index")
    assert f"has {count} detections above --threshold 0.5" in line and f"from 0 to {count - 1}" in line
    assert not (tmp_path / "x.png").exists()


def test_no_detection_above_the_threshold_suggests_a_lower_one(picture, tmp_path, capsys):
    assert main(["explain", DEMO_WEIGHTS, picture, "--threshold", "1", "-o", str(tmp_path / "x.png")]) == 1
    line = one_error_line(capsys)
    assert "no detection in" in line and "scores above --threshold 1" in line and "try a lower --threshold" in line
    assert "its best score is 0.99" in line


@pytest.mark.parametrize("flags, message", [
    (["--index", "-1"], "argument --index/-k: must be an integer >= 0; got '-1'"),
    (["--threshold", "1.5"], "argument --threshold: must be a number in [0, 1]; got '1.5'"),
    (["--iou-threshold", "nan"], "argument --iou-threshold: must be a number in [0, 1]; got 'nan'"),
    (["--top-classes", "0"], "argument --top-classes: must be a positive integer; got '0'"),
])
def test_values_are_checked_while_parsing(picture, flags, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["explain", DEMO_WEIGHTS, picture, *flags])
    assert stop.value.code == 2
    assert message in one_error_line(capsys)


def test_outputs_and_inputs_are_checked_before_any_work(picture, tmp_path, capsys):
    missing_weights = str(tmp_path / "none.npz")  # never read: the output checks come first
    assert main(["explain", missing_weights, picture, "-o", str(tmp_path / "x.gif")]) == 1
    assert "-o/--output" in one_error_line(capsys)
    assert main(["explain", missing_weights, picture, "-o", str(tmp_path / "x.png"), "--json",
                 str(tmp_path / "x.txt")]) == 1
    assert "--json" in one_error_line(capsys)
    assert main(["explain", missing_weights, picture, "-o", str(tmp_path / "no" / "x.png")]) == 1
    assert "does not exist" in one_error_line(capsys)
    assert main(["explain", DEMO_WEIGHTS, str(tmp_path / "nope.png"), "-o", str(tmp_path / "x.png")]) == 1
    assert "nope.png" in one_error_line(capsys)
    assert main(["explain", missing_weights, picture, "-o", str(tmp_path / "x.png")]) == 1
    assert "none.npz" in one_error_line(capsys)
    assert os.listdir(tmp_path) == []
