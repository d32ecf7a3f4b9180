"""The training loop: it learns, checkpoints are atomic, resume is exact, NaN stops it cleanly."""

import csv
import os

import numpy as np
import pytest

from minissd import models
from minissd.loss import multibox_loss
from minissd.data import ShapesDataset
from minissd.priors import PriorConfig
from minissd.train import (
    CHECKPOINT_NAME, LOG_NAME, CheckpointWriteError, ResumeMismatch, TrainConfig, TrainingDiverged, load_checkpoint,
    make_optimizer, read_log, train,
)

# A 32 x 32 input with maps 4, 2, 1 keeps every test run in seconds.
MINI = PriorConfig("test-mini", 32, (4, 2, 1), (0.25, 0.5, 0.75), (0.5, 0.75, 1.0), ((2,), (2,), (2,)), (8, 16, 32))


def mini_model(seed=0):
    from minissd.nn import Conv2d, ReLU, Sequential
    from minissd.models.ssd import SSD, ModelInfo, MultiBoxHead

    rng = np.random.default_rng(seed)
    stages = [
        Sequential(("c1", Conv2d(3, 4, 3, stride=4, padding=1, rng=rng)), ("r1", ReLU()),
                   ("c1b", Conv2d(4, 6, 3, stride=2, padding=1, rng=rng)), ("r1b", ReLU())),  # 32 -> 4
        Sequential(("c2", Conv2d(6, 6, 3, stride=2, padding=1, rng=rng)), ("r2", ReLU())),  # 4 -> 2
        Sequential(("c3", Conv2d(6, 6, 3, stride=2, padding=1, rng=rng)), ("r3", ReLU())),  # 2 -> 1
    ]
    stages[0].layers["c1"].needs_input_grad = False
    heads = [MultiBoxHead(6, 4, 6, rng) for _ in range(3)]
    info = ModelInfo("test-mini", 6, MINI.name, ["background", "a", "b", "c", "d", "e"])
    return SSD(info, stages, {}, heads)


@pytest.fixture(autouse=True)
def register_mini(monkeypatch):
    from minissd import priors

    monkeypatch.setitem(priors.PRESETS, MINI.name, MINI)


def tiny_data(count=24):
    return ShapesDataset("train", num_images=count, image_size=32, min_size=0.3, max_size=0.8, max_objects=2)


def config(**changes):
    values = dict(iterations=6, batch_size=4, lr=0.01, log_every=1, checkpoint_every=3, prefetch=0, seed=3)
    values.update(changes)
    return TrainConfig(**values)


def test_training_lowers_the_loss_and_writes_its_files(tmp_path):
    model = mini_model()
    state = train(model, tiny_data(), config(iterations=30, lr=0.01, warmup_iterations=5), tmp_path, progress=False)
    losses = [row["loss"] for row in state.history]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    for name in (CHECKPOINT_NAME, LOG_NAME, "model.npz", "loss_curve.png"):
        assert (tmp_path / name).exists(), name
    rows = read_log(tmp_path / LOG_NAME)
    assert [int(r["iteration"]) for r in rows] == list(range(1, 31))
    assert all(r["images_per_s"] > 0 and r["lr"] > 0 for r in rows)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, optimizer):
    whole = train(mini_model(), tiny_data(), config(iterations=8, optimizer=optimizer), tmp_path / "whole",
                  progress=False)

    def killed_after_the_checkpoint(row):  # a kill at iteration 6, after the checkpoint of iteration 5
        if row["iteration"] == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(mini_model(), tiny_data(), config(iterations=8, checkpoint_every=5, optimizer=optimizer),
              tmp_path / "split", progress=False, on_log=killed_after_the_checkpoint)
    assert not (tmp_path / "split" / "model.npz").exists()
    resumed = train(mini_model(seed=99), tiny_data(), config(iterations=8, optimizer=optimizer), tmp_path / "split",
                    resume=True, progress=False)
    assert resumed.iteration == 8
    np.testing.assert_allclose([r["loss"] for r in resumed.history], [r["loss"] for r in whole.history],
                               rtol=1e-5)
    final_whole, _ = models.read_npz(tmp_path / "whole" / "model.npz")
    final_split, _ = models.read_npz(tmp_path / "split" / "model.npz")
    assert sorted(final_whole) == sorted(final_split)
    for name in final_whole:
        np.testing.assert_allclose(final_split[name], final_whole[name], rtol=1e-5, atol=1e-7)
    with open(tmp_path / "split" / LOG_NAME, newline="") as stream:
        assert [int(r["iteration"]) for r in csv.DictReader(stream)] == list(range(1, 9))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    poisoned = mini_model()
    poisoned.params["head0.conf.weight"][...] = np.nan
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at iteration 0 .*none was written yet"):
        train(poisoned, tiny_data(), config(iterations=6), tmp_path / "other", progress=False)
    # a run that diverges after its checkpoint: the checkpoint on disk stays the good one
    train(mini_model(), tiny_data(), config(iterations=3, checkpoint_every=3), tmp_path, progress=False)
    checkpoint = tmp_path / CHECKPOINT_NAME
    before = checkpoint.read_bytes()
    real_loss = multibox_loss

    def diverging(*args, **kwargs):
        result = real_loss(*args, **kwargs)
        result.loss = np.float32(np.inf)
        return result

    monkeypatch.setattr("minissd.train.multibox_loss", diverging)
    with pytest.raises(TrainingDiverged, match=rf"became inf at iteration 3 .*{CHECKPOINT_NAME}"):
        train(mini_model(), tiny_data(), config(iterations=6), tmp_path, resume=True, progress=False,
              allow_changes=("iterations",))
    assert checkpoint.read_bytes() == before


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = mini_model()
    train(model, tiny_data(), config(iterations=3, checkpoint_every=3), tmp_path, progress=False)
    checkpoint = tmp_path / CHECKPOINT_NAME
    before = checkpoint.read_bytes()

    def broken_savez(stream, **arrays):
        stream.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("numpy.savez", broken_savez)
    with pytest.raises(CheckpointWriteError, match="could not write the checkpoint .* at iteration 6 "
                                                   r"\(disk full\); the previous checkpoint, if any, is intact"):
        train(mini_model(), tiny_data(), config(iterations=6), tmp_path, resume=True, progress=False,
              allow_changes=("iterations",))
    assert checkpoint.read_bytes() == before
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_checkpoint_holds_optimizer_state(tmp_path):
    model = mini_model()
    train(model, tiny_data(), config(iterations=3, checkpoint_every=3), tmp_path, progress=False)
    fresh = mini_model(seed=5)
    optimizer = make_optimizer(fresh, config())
    meta = load_checkpoint(tmp_path / CHECKPOINT_NAME, fresh, optimizer)
    assert meta["extra"]["iteration"] == 3 and optimizer.iteration == 3
    assert any(np.abs(v).max() > 0 for v in optimizer.velocity.values())
    for name in model.params:
        np.testing.assert_array_equal(fresh.params[name], model.params[name])


def test_resume_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot resume: no checkpoint"):
        train(mini_model(), tiny_data(), config(), tmp_path, resume=True, progress=False)
    model = mini_model()
    model.save(tmp_path / "weights.npz")
    with pytest.raises(ValueError, match="not a checkpoint"):
        train(mini_model(), tiny_data(), config(), tmp_path, resume=tmp_path / "weights.npz", progress=False)


def test_validation_runs_during_training(tmp_path):
    val = ShapesDataset("val", num_images=6, image_size=32, min_size=0.3, max_size=0.8, max_objects=2)
    state = train(mini_model(), tiny_data(), config(iterations=4, eval_every=2), tmp_path, val_dataset=val,
                  progress=False)
    assert [e["iteration"] for e in state.evaluations] == [2, 4]
    assert all(0.0 <= e["mAP"] <= 1.0 for e in state.evaluations)
    assert (tmp_path / "eval_log.json").exists()


def test_bad_config():
    with pytest.raises(ValueError, match="iterations must be a positive integer"):
        TrainConfig(iterations=0)
    with pytest.raises(ValueError, match="lr must be positive"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'adam'"):
        TrainConfig(optimizer="rmsprop")


def test_too_small_dataset(tmp_path):
    with pytest.raises(ValueError, match="fewer than one batch of 4"):
        train(mini_model(), tiny_data(3), config(), tmp_path, progress=False)


# --------------------------------------------------------------------------
# faults: nothing lost, nothing misreported (issue 9)
# --------------------------------------------------------------------------

def test_a_blown_up_step_is_never_checkpointed(tmp_path, monkeypatch):
    """A step that leaves huge but finite weights: its loss was fine, the next forward's is not."""
    from minissd.nn import SGD

    train(mini_model(), tiny_data(), config(iterations=2, checkpoint_every=2), tmp_path, progress=False)
    checkpoint = tmp_path / CHECKPOINT_NAME
    before = checkpoint.read_bytes()
    real_step = SGD.step

    def blow_up_at_step_4(self):
        lr = real_step(self)
        if self.iteration == 4:
            for param in self.params.values():
                param *= np.float32(1e30)
        return lr

    monkeypatch.setattr(SGD, "step", blow_up_at_step_4)
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at iteration 4 .*the last good checkpoint is "
                                               rf".*{CHECKPOINT_NAME} \(iteration 3\)"):
        train(mini_model(), tiny_data(), config(iterations=8, checkpoint_every=1), tmp_path, resume=True,
              progress=False, allow_changes=("iterations",))
    assert checkpoint.read_bytes() != before  # iteration 3's checkpoint replaced iteration 2's ...
    arrays, meta = models.read_npz(checkpoint)
    assert meta["extra"]["iteration"] == 3  # ... and iteration 4's (huge weights) was never written
    assert all(np.isfinite(a).all() and np.abs(a).max() < 1e6 for a in arrays.values())


def test_a_first_checkpoint_of_inf_weights_is_not_written(tmp_path):
    with pytest.raises(TrainingDiverged, match="none was written yet"):
        train(mini_model(), tiny_data(), config(iterations=6, checkpoint_every=1, lr=1e30), tmp_path, progress=False)
    assert not (tmp_path / CHECKPOINT_NAME).exists() and not (tmp_path / "model.npz").exists()


def test_resume_refuses_other_settings_listing_each(tmp_path):
    train(mini_model(), tiny_data(), config(iterations=3, checkpoint_every=3), tmp_path, progress=False,
          run_info={"dataset": "shapes", "num_images": 24})
    changed = config(iterations=3, batch_size=2, lr=0.5, seed=9)
    with pytest.raises(ResumeMismatch) as error:
        train(mini_model(), tiny_data(), changed, tmp_path, resume=True, progress=False,
              run_info={"dataset": "shapes", "num_images": 24})
    message = str(error.value)
    for part in ("batch_size 2 (checkpoint: 4)", "lr 0.5 (checkpoint: 0.01)", "seed 9 (checkpoint: 3)"):
        assert part in message
    with pytest.raises(ResumeMismatch, match=r"images 20 \(checkpoint: 24\)"):
        train(mini_model(), tiny_data(20), config(iterations=3), tmp_path, resume=True, progress=False)
    # the settings that do not change the run may differ
    train(mini_model(), tiny_data(), config(iterations=3, checkpoint_every=1, eval_every=5, log_every=2), tmp_path,
          resume=True, progress=False, run_info={"dataset": "shapes", "num_images": 24})


def test_a_lower_iteration_count_than_the_checkpoint_is_refused(tmp_path):
    train(mini_model(), tiny_data(), config(iterations=4, checkpoint_every=4), tmp_path, progress=False)
    with pytest.raises(ResumeMismatch, match="it is at iteration 4, beyond the run's 2 iterations"):
        train(mini_model(), tiny_data(), config(iterations=2), tmp_path, resume=True, progress=False,
              allow_changes=("iterations",))


def test_resuming_a_finished_run_twice_adds_nothing(tmp_path):
    import json

    val = ShapesDataset("val", num_images=4, image_size=32, min_size=0.3, max_size=0.8, max_objects=2)
    train(mini_model(), tiny_data(), config(iterations=4, eval_every=2), tmp_path, val_dataset=val, progress=False)
    log_before = (tmp_path / "eval_log.json").read_text()
    for _ in range(2):
        state = train(mini_model(), tiny_data(), config(iterations=4, eval_every=2), tmp_path, val_dataset=val,
                      resume=True, progress=False)
        assert state.iteration == 4
    assert (tmp_path / "eval_log.json").read_text() == log_before
    assert [e["iteration"] for e in json.loads(log_before)] == [2, 4]


def test_stale_temporary_files_are_removed(tmp_path):
    (tmp_path / ".minissd-abcd.npz.tmp").write_bytes(b"half a checkpoint")
    train(mini_model(), tiny_data(), config(iterations=2), tmp_path, progress=False)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".minissd-")]


def test_frozen_parameters_stay_exactly_as_loaded(tmp_path):
    model = mini_model()
    frozen = ("c1.weight", "c1.bias", "c1b.weight")
    before = {name: model.params[name].copy() for name in model.params}
    train(model, tiny_data(), config(iterations=3, frozen=frozen, weight_decay=0.1), tmp_path, progress=False)
    for name in frozen:
        np.testing.assert_array_equal(model.params[name], before[name])
    assert not np.array_equal(model.params["c2.weight"], before["c2.weight"])
    with pytest.raises(ValueError, match=r"frozen names parameters the model does not have: \['nope'\]"):
        make_optimizer(mini_model(), config(frozen=("nope",)))


def test_bad_config_values_name_the_field():
    for changes, message in (({"weight_decay": -1}, "weight_decay must be a finite number >= 0"),
                             ({"lr": float("nan")}, "lr must be positive and finite"),
                             ({"warmup_iterations": -5}, "warmup_iterations must be an integer >= 0"),
                             ({"seed": -1}, "seed must be an integer >= 0"),
                             ({"milestones": (30, 10)}, "milestones must be increasing"),
                             ({"neg_pos_ratio": float("nan")}, "neg_pos_ratio must be a finite number")):
        with pytest.raises(ValueError, match=message):
            TrainConfig(**changes)


def test_training_leaves_the_plotting_backend_alone(tmp_path):
    """A notebook's inline backend must survive train() (which saves loss_curve.png without pyplot)."""
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        train(mini_model(), tiny_data(), config(iterations=2), tmp_path, progress=False)
        assert matplotlib.get_backend() == "svg"
        assert (tmp_path / "loss_curve.png").exists()
    finally:
        matplotlib.use(before)
