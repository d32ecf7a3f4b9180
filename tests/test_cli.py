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
    "arguments, message",
    [
        (["--image", "/no/such/file.png"], "image not found: /no/such/file.png"),
        (["--cells", "3-4"], "--cells takes ROW,COL pairs"),
        (["-o", "/no/such/folder/out.png"], "output folder does not exist"),
    ],
)
def test_boxes_errors_are_one_clear_line(capsys, tmp_path, arguments, message):
    assert main(["boxes", *arguments]) == 1
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
