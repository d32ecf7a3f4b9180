"""``minissd train`` on data laid out as the real thing: VOC 07+12 with VOC2007 test as validation, a
VOC-style folder of any name with its own classes, fine-tuning to other classes, the learning rate of the
architecture trained, conflicting options, and resume that refuses other settings."""

import errno
import json
import os

import numpy as np
import pytest

from minissd import models
from minissd.cli import main

from . import real_layouts

FAST = ["--iterations", "2", "--batch-size", "2", "--no-progress", "--checkpoint-every", "1"]


def checkpoint_meta(folder):
    _, meta = models.read_npz(os.path.join(folder, "checkpoint.npz"))
    return meta["extra"]


def last_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    return real_layouts.voc_devkit(tmp_path_factory.mktemp("voc"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return real_layouts.voc_folder(tmp_path_factory.mktemp("own"), name="pets labelled by me")


def test_voc_07_plus_12_validates_on_voc2007_test(devkit, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data-root", devkit, "--year", "2007+2012", "-o", str(run), *FAST]) == 0
    out = capsys.readouterr().out
    assert "on 14 images (voc)" in out  # 8 trainval of 2007 + 6 trainval of 2012 (which has no test list)
    evaluations = json.loads((run / "eval_log.json").read_text())
    assert [e["iteration"] for e in evaluations] == [2]
    extra = checkpoint_meta(run)
    assert extra["config"]["drop_difficult"] is True  # difficult objects are not training targets by default
    assert extra["run"]["split"] == "trainval" and extra["run"]["images"] == 14


def test_validation_split_and_year_can_be_chosen_and_difficult_kept(devkit, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data-root", devkit, "--year", "2012", "--split", "train", "--val-year", "2012",
                 "--val-split", "val", "--keep-difficult", "-o", str(run), *FAST]) == 0
    assert "on 3 images (voc)" in capsys.readouterr().out
    assert checkpoint_meta(run)["config"]["drop_difficult"] is False
    # a test list that does not exist is named, before any training
    assert main(["train", "--data-root", devkit, "--year", "2012", "-o", str(tmp_path / "r2"), *FAST]) == 1
    line = last_error(capsys)
    assert "VOC2012" in line and "test.txt" in line
    assert not (tmp_path / "r2" / "checkpoint.npz").exists()


def test_a_voc_style_folder_of_any_name_trains_with_its_own_classes(folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data-root", folder, "-o", str(run), *FAST]) == 0
    out = capsys.readouterr().out
    assert "classes read from the annotations of" in out and "(2): cat, dog" in out
    model = models.load(run / "model.npz")
    assert model.info.class_names == ["background", "cat", "dog"]
    assert json.loads((run / "eval_log.json").read_text())  # validated on the folder's test list


def test_class_names_from_a_file(folder, tmp_path, capsys):
    names = tmp_path / "names.txt"
    names.write_text("# my classes\ndog\ncat\nbird\n")
    run = tmp_path / "run"
    assert main(["train", "--data-root", folder, "--class-names", str(names), "-o", str(run), *FAST]) == 0
    assert models.load(run / "model.npz").info.class_names == ["background", "dog", "cat", "bird"]
    names.write_text("dog\ndog\n")
    assert main(["train", "--data-root", folder, "--class-names", str(names), "-o", str(tmp_path / "r2"), *FAST]) == 1
    assert "'dog' appears twice" in last_error(capsys)
    names.write_text("dog\n")  # the folder also has cats: the reader names the object and the file
    assert main(["train", "--data-root", folder, "--class-names", str(names), "-o", str(tmp_path / "r3"), *FAST]) == 1
    assert "cat" in last_error(capsys)


@pytest.fixture(scope="module")
def shapes_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "shapes.npz"
    assert main(["train", "--num-images", "4", "-o", str(path.parent / "run"), *FAST]) == 0
    return str(path.parent / "run" / "model.npz")


def test_fine_tuning_to_other_classes_keeps_all_but_the_conf_heads(shapes_weights, folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--weights", shapes_weights, "--freeze-backbone", "--data-root", folder, "-o", str(run),
                 *FAST]) == 0
    out = capsys.readouterr().out
    assert "fine-tuning: the weights have 5 classes (circle" in out and "the dataset 2: the conf heads start afresh" in out
    assert "backbone arrays frozen" in out
    before, after = models.load(shapes_weights), models.load(run / "model.npz")
    assert after.info.class_names == ["background", "cat", "dog"]
    assert after.params["head0.conf.weight"].shape[0] == before.params["head0.conf.weight"].shape[0] // 6 * 3
    from minissd.models.transfer import backbone_parameter_names

    frozen = backbone_parameter_names(before)
    assert frozen
    for name in frozen:  # --freeze-backbone: exactly as loaded
        np.testing.assert_array_equal(after.params[name], before.params[name], err_msg=name)
    assert checkpoint_meta(run)["config"]["frozen"] == list(frozen)


def test_the_learning_rate_follows_the_architecture_trained(tmp_path, folder):
    weights = tmp_path / "ssd300.npz"
    models.ssd300(3, class_names=["cat", "dog"]).save(weights)
    run = tmp_path / "run"
    assert main(["train", "--weights", str(weights), "--data-root", folder, "-o", str(run), "--iterations", "1",
                 "--batch-size", "1", "--no-progress", "--no-val"]) == 0
    config = checkpoint_meta(run)["config"]
    assert config["lr"] == 1e-3  # SSD300's, not the tiny SSD's 0.05
    assert checkpoint_meta(run)["run"]["model"] == "ssd300"


def test_model_or_preset_against_the_weights_is_refused(shapes_weights, tmp_path, capsys):
    assert main(["train", "--weights", shapes_weights, "--model", "ssd300", "-o", str(tmp_path / "a"), *FAST]) == 2
    line = last_error(capsys)
    assert "--model ssd300, but" in line and "holds a tiny model" in line
    assert main(["train", "--weights", shapes_weights, "--preset", "ssd300-voc", "-o", str(tmp_path / "b"),
                 *FAST]) == 2
    assert "--preset ssd300-voc, but" in last_error(capsys)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--weights", shapes_weights, "--backbone", "x.npz"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in last_error(capsys)


def test_resume_continues_with_the_checkpoint_s_settings_and_refuses_others(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    arguments = ["--num-images", "4", "--iterations", "3", "--batch-size", "2", "--lr", "0.01", "--no-progress",
                 "-o", str(run)]

    from minissd import train as train_module

    original = train_module.train

    def killed_at_iteration_2(row):  # Ctrl-C after step 2 (the checkpoint of step 1 is on disk)
        if row["iteration"] == 2:
            raise KeyboardInterrupt

    def interrupted(model, dataset, config, *args, **kwargs):
        config.log_every = 1
        return original(model, dataset, config, *args, on_log=killed_at_iteration_2, **kwargs)

    monkeypatch.setattr(train_module, "train", interrupted)
    assert main(["train", *arguments, "--checkpoint-every", "1"]) == 130
    monkeypatch.setattr(train_module, "train", original)
    assert checkpoint_meta(run)["iteration"] == 1
    capsys.readouterr()
    assert main(["train", "-o", str(run), "--resume", "--batch-size", "4", "--lr", "0.5"]) == 1
    line = last_error(capsys)
    assert "batch_size 4 (checkpoint: 2)" in line and "lr 0.5 (checkpoint: 0.01)" in line and "--extend" in line
    assert main(["train", "-o", str(run), "--resume", "--num-images", "6"]) == 1
    assert "num_images 6 (checkpoint: 4)" in last_error(capsys)
    assert main(["train", "-o", str(run), "--resume", "--seed", "5", "--iterations", "9"]) == 1
    line = last_error(capsys)
    assert "seed 5 (checkpoint: 0)" in line and "iterations 9 (checkpoint: 3)" in line
    assert main(["train", "-o", str(run), "--resume", "--model", "ssd300"]) == 2
    assert "--model ssd300, but the checkpoint" in last_error(capsys)
    assert main(["train", "-o", str(run), "--resume", "--no-progress"]) == 0  # the settings come from the checkpoint
    assert checkpoint_meta(run)["iteration"] == 3
    assert main(["train", "-o", str(run), "--resume", "--no-progress"]) == 0
    assert "already finished at iteration 3" in capsys.readouterr().out
    assert main(["train", "-o", str(run), "--resume", "--extend", "2"]) == 2
    assert main(["train", "-o", str(run), "--resume", "--extend", "5", "--no-progress"]) == 0
    extra = checkpoint_meta(run)
    assert extra["iteration"] == 5 and extra["config"]["iterations"] == 5
    assert extra["config"]["milestones"] == [2]  # the schedule of the 3-iteration run: lr x 0.1 at 2
    assert not [n for n in os.listdir(run) if n.startswith(".minissd-")]


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", "--num-images", "4", "-o", str(run), *FAST]) == 0
    before = (run / "checkpoint.npz").read_bytes()
    capsys.readouterr()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    assert main(["train", "-o", str(run), "--resume", "--extend", "4", "--no-progress"]) == 1
    line = last_error(capsys)
    assert "could not write the checkpoint" in line and "No space left on device" in line and "intact" in line
    assert (run / "checkpoint.npz").read_bytes() == before
    assert not [n for n in os.listdir(run) if n.startswith(".minissd-")]


def test_nan_from_a_huge_learning_rate_names_no_bad_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--num-images", "4", "--lr", "1e30", "--checkpoint-every", "1", "--iterations", "6",
                 "--batch-size", "2", "--warmup", "0", "--no-progress", "--no-val", "-o", str(run)]) == 1
    line = last_error(capsys)
    assert "training stopped, the last good checkpoint is none" in line
    assert not (run / "checkpoint.npz").exists()
