"""Atomic writes: the old file survives a failed write, no temporary is left, JSON is strict."""

import errno
import json
import os

import numpy as np
import pytest
from PIL import Image

from minissd import atomic


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    atomic.write_json(path, {"a": [1, 2.5, None]})
    atomic.write_json(path, {"b": 1})
    assert json.loads(path.read_text()) == {"b": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_nan_is_refused_naming_where_and_the_old_file_stays(tmp_path):
    path = tmp_path / "out.json"
    atomic.write_json(path, {"ok": 1})
    with pytest.raises(ValueError, match=r"value\['ap'\]\[1\] is nan: JSON has no NaN"):
        atomic.write_json(path, {"ap": [0.5, float("nan")]})
    assert json.loads(path.read_text()) == {"ok": 1}


def test_a_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "log.txt"
    atomic.write_text(path, "old")
    real_open = open

    def full(file, mode="r", *args, **kwargs):
        if "w" in mode and ".minissd-" in os.fspath(file):
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(atomic.OutputError, match=r"cannot write .*log.txt: No space left on device"):
        atomic.write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["log.txt"]


def test_pictures_and_figures_keep_their_format(tmp_path):
    from minissd.viz import figure_and_axes

    figure, axes = figure_and_axes()
    axes[0][0].plot([0, 1], [0, 1])
    atomic.save_figure(figure, tmp_path / "curve.png")
    atomic.save_image(Image.fromarray(np.zeros((4, 5, 3), np.uint8)), tmp_path / "picture.jpg")
    with Image.open(tmp_path / "curve.png") as picture:
        assert picture.format == "PNG"
    with Image.open(tmp_path / "picture.jpg") as picture:
        assert picture.format == "JPEG" and picture.size == (5, 4)
    with pytest.raises(atomic.OutputError, match="extension"):
        atomic.save_figure(figure, tmp_path / "no_extension")
    assert sorted(os.listdir(tmp_path)) == ["curve.png", "picture.jpg"]


def test_errors_name_the_file(tmp_path):
    with pytest.raises(atomic.OutputError, match="does not exist"):
        atomic.write_text(tmp_path / "missing" / "x.txt", "")
    (tmp_path / "folder").mkdir()
    with pytest.raises(atomic.OutputError, match="it is a folder"):
        atomic.write_text(tmp_path / "folder", "")


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    for name in (".minissd-abc.npz.tmp", ".minissd-x.tmp.png", "model.npz", ".hidden"):
        (tmp_path / name).write_text("x")
    assert atomic.remove_stale_temporaries(tmp_path) == [".minissd-abc.npz.tmp", ".minissd-x.tmp.png"]
    assert sorted(os.listdir(tmp_path)) == [".hidden", "model.npz"]


def test_written_files_get_the_usual_permissions(tmp_path):
    from minissd.models import write_npz

    umask = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "a.txt", "x")
        write_npz(tmp_path / "w.npz", {"x": np.zeros(2, np.float32)}, {"arch": "none"})
    finally:
        os.umask(umask)
    for name in ("a.txt", "w.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
