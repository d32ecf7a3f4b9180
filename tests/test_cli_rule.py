"""The error rule of the command: one line 'minissd CMD: error: ...', exit 1 (2 for usage), no traceback;
every option range-checked while parsing; outputs checked before any work; --debug for the traceback."""

import errno
import os

import pytest
from PIL import Image

from minissd.cli import main


def one_error_line(capsys, command):
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"minissd {command}: error: "), lines[0]
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from minissd import models

    path = tmp_path_factory.mktemp("weights") / "tiny.npz"
    models.tiny_ssd(3, class_names=["a", "b"], widths=(4,) * 8).save(path)
    return str(path)


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(path)
    return str(path)


@pytest.mark.parametrize("arguments, flag, value", [
    (["detect", "w.npz", "x.png", "--iou-threshold", "-1"], "--iou-threshold", "'-1'"),
    (["detect", "w.npz", "x.png", "--iou-threshold", "2"], "--iou-threshold", "'2'"),
    (["detect", "w.npz", "x.png", "--iou-threshold", "nan"], "--iou-threshold", "'nan'"),
    (["detect", "w.npz", "x.png", "--threshold", "1.5"], "--threshold", "'1.5'"),
    (["detect", "w.npz", "x.png", "--batch-size", "0"], "--batch-size", "'0'"),
    (["train", "--eval-every", "-1"], "--eval-every", "'-1'"),
    (["train", "--milestones", "-3"], "--milestones", "'-3'"),
    (["train", "--weight-decay", "-1"], "--weight-decay", "'-1'"),
    (["train", "--warmup", "-5"], "--warmup", "'-5'"),
    (["train", "--seed", "-1"], "--seed", "'-1'"),
    (["train", "--lr", "0"], "--lr", "'0'"),
    (["train", "--lr", "inf"], "--lr", "'inf'"),
    (["train", "--iterations", "1e3"], "--iterations", "'1e3'"),
    (["demo", "--seed", "-1"], "--seed", "'-1'"),
    (["eval", "w.npz", "--limit", "0"], "--limit", "'0'"),
    (["convert", "x.pth", "-o", "y.npz", "--num-classes", "0"], "--num-classes", "'0'"),
    (["boxes", "--s-min", "nan"], "--s-min", "'nan'"),
    (["boxes", "-f", "100000"], "--feature-maps/-f", "'100000'"),
])
def test_out_of_range_options_stop_while_parsing(capsys, arguments, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    line = one_error_line(capsys, arguments[0])
    assert f"argument {flag}" in line and value in line and f"see minissd {arguments[0]} --help" in line


@pytest.mark.parametrize("arguments, message", [
    (["boxes", "--cells", "100,100"], "--cells 100,100: no feature map has this cell"),
    (["boxes", "--cells", "3-4"], "--cells takes ROW,COL pairs"),
    (["boxes", "--s-min", "0.6", "--s-max", "0.4"], "--s-min 0.6 is larger than --s-max 0.4"),
    (["train", "--milestones", "600", "300"], "--milestones must be increasing"),
    (["train", "--milestones", "2000"], "--milestones 2000 is not before the end of the run"),
    (["train", "--warmup", "1000"], "--warmup 1000 is not shorter than the run"),
    (["train", "--extend", "10"], "--extend continues a finished or interrupted run: it needs --resume"),
    (["train", "--freeze-backbone"], "--freeze-backbone keeps loaded weights fixed"),
    (["train", "--dataset", "shapes", "--data-root", "x"], "--data-root does not apply to --dataset shapes"),
    (["eval", "w.npz", "--coco-results", "r.json"], "--coco-results needs --dataset coco"),
])
def test_contradicting_options_are_usage_errors(capsys, tmp_path, arguments, message):
    os.chdir(tmp_path)
    assert main(arguments) == 2
    assert message in one_error_line(capsys, arguments[0])


def test_boxes_output_must_be_a_picture_file(capsys, tmp_path):
    (tmp_path / "folder").mkdir()
    assert main(["boxes", "-o", str(tmp_path / "folder")]) == 1
    assert "is a folder; give a file name" in one_error_line(capsys, "boxes")
    assert main(["boxes", "-o", str(tmp_path / "noextension")]) == 1
    assert "must end in one of .png" in one_error_line(capsys, "boxes")
    assert os.listdir(tmp_path) == ["folder"]


@pytest.mark.parametrize("command", ["detect", "train", "demo", "eval"])
def test_an_output_folder_that_is_a_file_stops_before_any_work(capsys, tmp_path, monkeypatch, command, weights,
                                                               picture):
    existing = tmp_path / "results"
    existing.write_text("my notes")

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.setattr("minissd.evaluate.run.predict_dataset", no_work)
    monkeypatch.setattr("minissd.train.train", no_work)
    monkeypatch.setattr("minissd.demo.run_demo", no_work)
    monkeypatch.setattr("minissd.detect.Detector.predict_many", no_work)
    arguments = {"detect": ["detect", weights, picture], "train": ["train", "--num-images", "4"],
                 "demo": ["demo", "--fast"], "eval": ["eval", weights, "--num-images", "2"]}[command]
    assert main([*arguments, "-o", str(existing)]) == 1
    assert "is an existing file, not a folder" in one_error_line(capsys, command)
    assert existing.read_text() == "my notes"


def test_an_unwritable_output_folder_is_one_line(capsys, weights, picture, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = os.path.join(os.path.dirname(picture), "out")
    assert main(["detect", weights, picture, "-o", out]) == 1
    assert "cannot write in" in one_error_line(capsys, "detect")


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs /sys, which refuses writes even to root")
def test_a_real_permission_error_is_one_line(capsys, weights, picture):
    assert main(["detect", weights, picture, "-o", "/sys/kernel/minissd-out"]) == 1
    line = one_error_line(capsys, "detect")
    assert "/sys/kernel/minissd-out" in line


def test_a_folder_given_as_the_image(capsys, tmp_path, weights):
    (tmp_path / "empty").mkdir()
    assert main(["detect", weights, str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 1
    assert "is a folder without pictures" in one_error_line(capsys, "detect")


def test_an_unexpected_exception_is_one_line_and_debug_shows_it(capsys, monkeypatch, tmp_path):
    from minissd.cli import boxes

    def broken(args):
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(boxes, "run", broken)  # add() looks the name up when the parser is built
    arguments = ["boxes", "-o", str(tmp_path / "b.png")]
    assert main(arguments) == 1
    line = one_error_line(capsys, "boxes")
    assert "unexpected TypeError" in line and "--debug" in line
    with pytest.raises(TypeError):
        main(["--debug", *arguments])
    with pytest.raises(TypeError):
        main([*arguments, "--debug"])
    monkeypatch.setenv("MINISSD_DEBUG", "1")
    with pytest.raises(TypeError):
        main(arguments)


def test_memory_errors_and_pillow_errors_are_one_line():
    from PIL import Image as PILImage

    from minissd.cli.errors import one_line

    assert one_line(MemoryError()).startswith("not enough memory")
    assert one_line(ImportError("reading x.pth needs PyTorch (pip install torch)")) == \
        "reading x.pth needs PyTorch (pip install torch)"
    bomb = one_line(PILImage.DecompressionBombError("Image size (400000000 pixels) exceeds limit"))
    assert "--max-pixels" in bomb
    full = one_line(OSError(errno.ENOSPC, "No space left on device", "/data/run/checkpoint.npz"))
    assert full.startswith("/data/run/checkpoint.npz: no space left on the disk") and "intact" in full
    assert one_line(ValueError("a\nb")) == "a b"


def test_warnings_are_one_line_too(capsys, monkeypatch):
    import warnings

    from minissd.cli import boxes

    def warn(args):
        warnings.warn("VOCDataset: skipped 1 bad sample(s):\n x.jpg cannot be decoded", UserWarning)
        return 0

    monkeypatch.setattr(boxes, "run", warn)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["boxes"]) == 0
    assert capsys.readouterr().err == "minissd boxes: warning: VOCDataset: skipped 1 bad sample(s): x.jpg cannot be decoded\n"


def test_numpy_gives_no_runtime_warning_in_a_whole_detect_run(capsys, tmp_path, weights, picture):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["detect", weights, picture, "-o", str(tmp_path / "out"), "--threshold", "0"]) == 0


def test_no_runtime_warning_in_short_train_and_eval_runs(tmp_path, capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["train", "--num-images", "4", "--iterations", "2", "--batch-size", "2", "--no-progress",
                     "-o", str(tmp_path / "run")]) == 0
        assert main(["eval", str(tmp_path / "run" / "model.npz"), "--num-images", "4", "--no-progress"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_boxes_help_lists_every_preset(capsys):
    from minissd.priors import PRESETS

    with pytest.raises(SystemExit):
        main(["boxes", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, config in PRESETS.items():
        assert f"{name} ({config.num_priors} boxes)" in text, name
