"""``minissd anchors``: the coverage table, the picture and the JSON; the default presets; bad input in one line."""

import json
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("MPLBACKEND", "Agg")

from minissd import coverage as C  # noqa: E402
from minissd.cli import anchors, main  # noqa: E402
from minissd.data import ShapesDataset, VOCDataset  # noqa: E402

from . import real_layouts  # noqa: E402


def one_error_line(capsys):
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("minissd anchors: error: ") and "Traceback" not in captured.err
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the command gets as far as reading a dataset."""
    def refuse(*args, **kwargs):
        raise AssertionError("the dataset was read before the options were checked")

    monkeypatch.setattr(anchors, "dataset_from_args", refuse)


def test_shapes_with_a_comparison_prints_draws_and_writes_json(tmp_path, capsys):
    picture, numbers = tmp_path / "cover.png", tmp_path / "cover.json"
    code = main(["anchors", "--num-images", "12", "--compare", "ssd300-voc", "--iou-threshold", "0.4",
                 "-o", str(picture), "--json", str(numbers)])
    out = capsys.readouterr().out
    assert code == 0
    assert "best IoU < 0.4 (bipartite only)" in out and "ssd300-voc" in out and "38x38" in out
    assert f"wrote {picture}" in out and f"wrote {numbers}" in out
    with Image.open(picture) as image:
        assert image.size[1] > image.size[0] > 600  # two columns of four panels
    report = json.loads(numbers.read_text())
    assert [p["preset"] for p in report["presets"]] == ["tiny", "ssd300-voc"]
    expected = C.compare_presets(ShapesDataset("train", num_images=12), ["tiny", "ssd300-voc"], 0.4)
    for written, cov in zip(report["presets"], expected):
        assert written["objects"] == cov.num_objects and written["iou_threshold"] == 0.4
        assert written["share_below_threshold"] == cov.share_below_threshold
        assert [m["positives"] for m in written["maps"]] == cov.positives_per_map.tolist()
    assert "ShapesDataset(split='train'" in report["dataset"]


def test_the_default_picture_name_and_limit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["anchors", "--num-images", "30", "--limit", "5", "--split", "val"]) == 0
    assert os.listdir(tmp_path) == ["coverage.png"]
    assert "in 5 images" in capsys.readouterr().out


def test_a_voc_folder_defaults_to_ssd300_voc_and_leaves_difficult_objects_out(tmp_path, capsys):
    folder = real_layouts.voc_folder(tmp_path, names=("cat", "dog"), count=8)
    dataset = VOCDataset(folder, year=None, split="trainval", class_names=("cat", "dog"))
    difficult = sum(int(dataset[i].difficult.sum()) for i in range(len(dataset)))
    reports = []
    for extra in ([], ["--keep-difficult"]):
        numbers = tmp_path / f"voc{len(extra)}.json"
        assert main(["anchors", "--data-root", folder, "-o", str(tmp_path / "voc.png"), "--json", str(numbers),
                     *extra]) == 0
        reports.append(json.loads(numbers.read_text())["presets"][0])
    out = capsys.readouterr().out
    assert "classes read from the annotations" in out
    assert reports[0]["preset"] == "ssd300-voc" and reports[0]["images"] == len(dataset) == 5  # the trainval list: 8 - 3 test
    assert difficult >= 1 and reports[0]["difficult_left_out"] == difficult
    assert reports[1]["objects"] == reports[0]["objects"] + difficult
    assert reports[0]["objects"] == C.coverage(dataset, "ssd300-voc").num_objects


def test_coco_defaults_to_ssd300_coco(tmp_path):
    annotations, images = real_layouts.coco_folder(tmp_path)
    numbers = tmp_path / "coco.json"
    assert main(["anchors", "--coco-annotations", annotations, "--coco-images", images,
                 "-o", str(tmp_path / "coco.svg"), "--json", str(numbers)]) == 0
    report = json.loads(numbers.read_text())["presets"][0]
    assert report["preset"] == "ssd300-coco" and report["images"] == 6
    assert (tmp_path / "coco.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("arguments, words", [
    (["--iou-threshold", "1.5"], "argument --iou-threshold: must be a number in [0, 1]; got '1.5'"),
    (["--iou-threshold", "nan"], "argument --iou-threshold: must be a number in [0, 1]; got 'nan'"),
    (["--limit", "0"], "argument --limit: must be a positive integer; got '0'"),
    (["--limit", "two"], "argument --limit: must be an integer; got 'two'"),
    (["--preset", "ssd301"], "argument --preset/-p: invalid choice: 'ssd301'"),
    (["--compare", "huge"], "argument --compare: invalid choice: 'huge'"),
    (["--num-images", "-3"], "argument --num-images: must be a positive integer; got '-3'"),
    (["--dataset", "kitti"], "argument --dataset: invalid choice: 'kitti'"),
])
def test_bad_values_stop_while_parsing(arguments, words, capsys, no_work):
    with pytest.raises(SystemExit) as stopped:
        main(["anchors", *arguments])
    assert stopped.value.code == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("minissd anchors: error: ") and words in line and "\n" not in line


@pytest.mark.parametrize("arguments, words, code", [
    (["--compare", "tiny"], "--compare tiny is the preset being tested already", 2),
    (["--preset", "ssd300-voc", "--compare", "ssd300-voc"], "--compare ssd300-voc is the preset", 2),
    (["--num-images", "3", "--data-root", "somewhere"], "--num-images does not apply to --dataset voc", 2),
    (["-o", "coverage.txt"], "-o/--output coverage.txt: the file name must end in one of .png", 1),
    (["--json", "numbers.csv"], "--json numbers.csv: the file name must end in one of .json", 1),
    (["-o", "no/such/folder/c.png"], "the folder", 1),
])
def test_contradictions_and_bad_outputs_stop_before_any_work(arguments, words, code, tmp_path, monkeypatch,
                                                              capsys, no_work):
    monkeypatch.chdir(tmp_path)
    assert main(["anchors", *arguments]) == code
    assert words in one_error_line(capsys)


def test_a_json_path_that_is_a_folder_is_refused_first(tmp_path, capsys, no_work):
    (tmp_path / "out.json").mkdir()
    assert main(["anchors", "--json", str(tmp_path / "out.json"), "-o", str(tmp_path / "c.png")]) == 1
    assert "is a folder" in one_error_line(capsys)


def test_data_errors_are_one_line(tmp_path, capsys):
    assert main(["anchors", "--data-root", str(tmp_path / "nowhere"), "-o", str(tmp_path / "c.png")]) == 1
    assert "--data-root" in one_error_line(capsys) and not (tmp_path / "c.png").exists()
    folder = real_layouts.voc_folder(tmp_path, names=("cat", "dog"), count=4, test=1)
    os.remove(os.path.join(folder, "JPEGImages", "img_001.jpg"))
    assert main(["anchors", "--data-root", folder, "--split", "all", "-o", str(tmp_path / "c.png")]) == 1
    assert "img_001.jpg" in one_error_line(capsys)


def test_help_lists_the_presets(capsys):
    with pytest.raises(SystemExit):
        main(["anchors", "--help"])
    text = capsys.readouterr().out
    assert "ssd512-voc (24564 boxes)" in text and "--compare" in text and "--keep-difficult" in text
    assert np.isin(["tiny", "ssd300-voc", "ssd300-coco"], list(anchors.DEFAULT_PRESETS.values())).all()
