"""The ``minissd`` command: help, exit codes, the boxes picture."""

import subprocess
import sys

import pytest
from PIL import Image

from minissd.cli import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "boxes" in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: minissd" in capsys.readouterr().out


def test_boxes_writes_a_picture(tmp_path):
    out = tmp_path / "boxes.png"
    assert main(["boxes", "--feature-maps", "8", "4", "-o", str(out)]) == 0
    with Image.open(out) as picture:
        assert picture.size[0] > 300 and picture.size[1] > 200


def test_boxes_over_an_image_and_a_preset(tmp_path):
    image = tmp_path / "in.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(image)
    out = tmp_path / "boxes.png"
    assert main(["boxes", "--preset", "tiny", "--image", str(image), "--cells", "0,0", "-o", str(out)]) == 0
    assert out.exists()


def test_boxes_list_prints_every_preset(capsys):
    assert main(["boxes", "--list"]) == 0
    text = capsys.readouterr().out
    assert "ssd300-voc" in text and "8732 default boxes" in text and "24564 default boxes" in text


@pytest.mark.parametrize(
    "arguments, message, code",
    [
        (["--image", "/no/such/file.png"], "image not found: /no/such/file.png", 1),
        (["--cells", "3-4"], "--cells takes ROW,COL pairs", 2),
        (["-o", "/no/such/folder/out.png"], "the folder /no/such/folder does not exist", 1),
    ],
)
def test_boxes_errors_are_one_clear_line(capsys, tmp_path, arguments, message, code):
    assert main(["boxes", *arguments]) == code
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_bad_arguments_exit_with_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["boxes", "--preset", "ssd301"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    out = tmp_path / "m.png"
    done = subprocess.run([sys.executable, "-m", "minissd", "boxes", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.exists()


# --------------------------------------------------------------------------
# demo, train, eval, detect
# --------------------------------------------------------------------------

def test_demo_fast_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--fast", "--no-progress", "-o", str(out)]) == 0
    for name in ("report.md", "report.json", "loss_curve.png", "pr_curves.png", "detections.png", "model.npz"):
        assert (out / name).exists(), name
    text = capsys.readouterr().out
    assert "test VOC mAP@0.5" in text and "circle" in text


def test_train_eval_detect_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--num-images", "8", "--no-progress"]
    assert main(["train", "--iterations", "2", "--batch-size", "4", "-o", str(run), *common]) == 0
    weights = run / "model.npz"
    assert weights.exists() and (run / "checkpoint.npz").exists()
    # a second run into the same folder must say how to continue instead of overwriting
    assert main(["train", "--iterations", "2", "--batch-size", "4", "-o", str(run), *common]) == 1
    assert "pass --resume" in capsys.readouterr().err
    assert main(["train", "--extend", "3", "-o", str(run), "--resume", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(weights), "--split", "test", "--num-images", "4", "-o", str(tmp_path / "ev"),
                 "--no-progress"]) == 0
    assert "mAP" in capsys.readouterr().out
    assert (tmp_path / "ev" / "report.json").exists() and (tmp_path / "ev" / "pr_curves.png").exists()
    image = tmp_path / "photo.jpg"
    Image.new("RGB", (90, 60), (10, 200, 30)).save(image)
    assert main(["detect", str(weights), str(image), "-o", str(tmp_path / "det"), "--threshold", "0.0"]) == 0
    assert (tmp_path / "det" / "photo_detections.png").exists()
    assert (tmp_path / "det" / "detections.json").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["detect", "nope.npz", "x.png"], "image not found: x.png"),
        (["eval", "nope.npz"], "weights file not found: nope.npz"),
        (["train", "--dataset", "voc"], "--dataset voc needs --data-root"),
        (["train", "--dataset", "coco"], "--dataset coco needs --coco-annotations"),
    ],
)
def test_command_errors_are_one_clear_line(capsys, arguments, message):
    assert main(arguments) == 1
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error


def test_gpu_request_without_a_gpu_is_a_clear_error(capsys):
    from minissd import backend

    if backend.gpu_available():
        pytest.skip("this machine has a GPU")
    assert main(["demo", "--fast", "--device", "gpu"]) == 1
    assert "device 'gpu' was asked for" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "train", "eval", "detect", "boxes"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: minissd " + command in capsys.readouterr().out
