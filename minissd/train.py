"""The training loop: batches -> forward -> MultiBox loss -> backward -> SGD, with checkpoints.

One iteration, top to bottom:

    batch = next(loader)                                 # augmented, matched on the fly
    loc, conf = model.forward(batch.images)              # (N, P, 4), (N, P, L)
    out = multibox_loss(loc, conf, loc_t, conf_t)        # loss + exact gradients
    model.zero_grad(); model.backward(out.grad_loc, out.grad_conf)
    optimizer.step()                                     # SGD, momentum, decay, schedule

Around it: a progress bar (loss parts, learning rate, images/s), a CSV log of
every iteration, validation mAP every ``eval_every`` iterations, and a
checkpoint every ``checkpoint_every`` iterations, written atomically (a
temporary file renamed over the old one: never a half-written file).

Resuming reproduces the uninterrupted run: iteration t always uses epoch
t // batches_per_epoch and batch t % batches_per_epoch of the loader, whose
order and augmentation depend only on (seed, epoch, index); the checkpoint
holds the weights, BatchNorm statistics, momentum buffers and iteration.

A NaN or infinite loss stops training with ``TrainingDiverged``, and so does
a weight, BatchNorm statistic or optimiser moment that is no longer finite
when a checkpoint is due. A checkpoint is written only when every array in it
is finite and its weights have given a finite loss on the next batch (so it
is written one forward late), so "the last good checkpoint" is always true.

Resuming continues the same run or nothing: the checkpoint holds the run's
``TrainConfig`` and a description of its data and model (``run_info``), and
``train(resume=...)`` refuses a config or data that differ, listing each
difference (``ResumeMismatch``). The only change it accepts, when asked
(``allow_changes=("iterations",)``), is a longer run: the learning-rate schedule
stays the checkpoint's. A run resumed at its end does nothing.
"""

from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import backend
from .atomic import remove_stale_temporaries, save_figure, write_json
from .data import DataLoader, SSDAugmentation, eval_transform
from .loss import multibox_loss
from .models.io import read_npz, save_model
from .nn import SGD, WarmupMultiStepLR
from .nn.adam import Adam

CHECKPOINT_NAME = "checkpoint.npz"
LOG_NAME = "train_log.csv"
EVAL_LOG_NAME = "eval_log.json"
LOG_COLUMNS = ("iteration", "loss", "loc_loss", "conf_loss", "lr", "images_per_s", "elapsed_s")


class TrainingDiverged(RuntimeError):
    """The loss, a weight or an optimiser state became NaN or infinite."""


class ResumeMismatch(ValueError):
    """``resume`` was asked for with a config or data that differ from the checkpoint's."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (full disk, permissions); the previous one is intact."""


# settings that do not change the trajectory of a run: they may differ on resume
FREE_ON_RESUME = ("eval_every", "checkpoint_every", "log_every", "prefetch")


@dataclass
class TrainConfig:
    """Hyperparameters of a run (saved in every checkpoint).

    The SSD300 VOC recipe of the paper: lr 1e-3, momentum 0.9, weight decay
    5e-4, batch 32, 120k iterations, lr x 0.1 at 80k and 100k, Caffe's bias
    multipliers (bias_lr_factor 2, bias_decay False).
    """

    iterations: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple = ()
    gamma: float = 0.1
    warmup_iterations: int = 0
    warmup_factor: float = 1.0 / 3
    bias_lr_factor: float = 1.0
    bias_decay: bool = True
    optimizer: str = "sgd"
    neg_pos_ratio: float = 3.0
    alpha: float = 1.0
    seed: int = 0
    augment: bool = True
    augment_options: dict = field(default_factory=dict)  # SSDAugmentation options, e.g. {"expand_ratio": 2}
    prefetch: int = 2
    log_every: int = 10
    eval_every: int = 0
    checkpoint_every: int = 200
    drop_difficult: bool = False  # leave VOC's "difficult" objects out of the training targets
    frozen: tuple = ()  # parameter names the optimiser leaves alone (``--freeze-backbone``)

    def __post_init__(self):
        self.milestones = tuple(int(m) for m in self.milestones)
        self.frozen = tuple(str(name) for name in self.frozen)
        for name in ("iterations", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"TrainConfig: {name} must be a positive integer; got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig: lr must be positive and finite; got {self.lr!r}")
        for name in ("weight_decay", "momentum", "gamma", "warmup_factor", "bias_lr_factor", "neg_pos_ratio",
                     "alpha"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"TrainConfig: {name} must be a finite number >= 0; got {value!r}")
        for name in ("warmup_iterations", "eval_every", "checkpoint_every", "seed", "prefetch"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ValueError(f"TrainConfig: {name} must be an integer >= 0; got {value!r}")
        if int(self.log_every) < 1:
            raise ValueError(f"TrainConfig: log_every must be a positive integer; got {self.log_every!r}")
        if any(m < 1 for m in self.milestones) or list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"TrainConfig: milestones must be increasing positive iterations; got {list(self.milestones)}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"TrainConfig: optimizer must be 'sgd' or 'adam'; got {self.optimizer!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainState:
    """What a run has done so far (returned by ``train``)."""

    iteration: int = 0
    history: list = field(default_factory=list)  # one dict per logged iteration
    evaluations: list = field(default_factory=list)  # {"iteration", "mAP", "ap"} per validation
    elapsed_s: float = 0.0


def trainable_parameters(model, config: TrainConfig) -> dict:
    """name -> parameter of every parameter the optimiser updates (all but ``config.frozen``)."""
    unknown = [name for name in config.frozen if name not in model.params]
    if unknown:
        raise ValueError(f"TrainConfig.frozen names parameters the model does not have: {unknown[:5]}")
    frozen = set(config.frozen)
    return {name: p for name, p in model.params.items() if name not in frozen}


def make_optimizer(model, config: TrainConfig):
    """SGD (SSD's recipe) or Adam, both following the warmup + multistep schedule.

    Frozen parameters (``config.frozen``) are not given to the optimiser: no update, no
    momentum, no weight decay, so they stay exactly as loaded.
    """
    schedule = WarmupMultiStepLR(config.lr, config.milestones, config.gamma,
                                 config.warmup_iterations, config.warmup_factor)
    params = trainable_parameters(model, config)
    if config.optimizer == "adam":
        return Adam(params, model.grads, lr=config.lr, weight_decay=config.weight_decay,
                    bias_decay=config.bias_decay, schedule=schedule)
    return SGD(params, model.grads, lr=config.lr, momentum=config.momentum,
               weight_decay=config.weight_decay, bias_lr_factor=config.bias_lr_factor,
               bias_decay=config.bias_decay, schedule=schedule)


def make_loader(model, dataset, config: TrainConfig, shard=(0, 1)) -> DataLoader:
    """The training batches of ``config`` (``shard`` = (rank, count): this process's part of each)."""
    size, mean = model.image_size, model.info.mean
    transform = SSDAugmentation(size, mean, **config.augment_options) if config.augment else eval_transform(size, mean)
    return DataLoader(dataset, config.batch_size, backend.to_numpy(model.priors), transform,
                      shuffle=True, seed=config.seed, drop_last=True, prefetch=config.prefetch,
                      drop_difficult=config.drop_difficult, shard=shard)


# --------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------

def first_non_finite(model, optimizer=None) -> str | None:
    """The name of the first weight, buffer or optimiser array holding a NaN or infinity, else None.

    One reduction per array (on a GPU one host sync each): done when a checkpoint is due, not every step.
    """
    tables = [("parameter", model.params), ("buffer", model.buffers)]
    if optimizer is not None:  # the live arrays: SGD's velocities, Adam's two moments
        for attribute in ("velocity", "first", "second"):
            tables.append((f"optimiser {attribute}", getattr(optimizer, attribute, {})))
    for kind, table in tables:
        for name, array in table.items():
            xp = backend.get_array_module(array)
            if not bool(xp.isfinite(array).all()):
                return f"{kind} {name!r}"
    return None


def save_checkpoint(path, model, optimizer, config: TrainConfig, state: TrainState, run_info: dict | None = None) -> None:
    """Weights + optimiser + progress in one .npz, written atomically.

    Raises ``TrainingDiverged`` (writing nothing) when any array is not finite, and
    ``CheckpointWriteError`` when the file cannot be written; the previous file is intact either way.
    """
    bad = first_non_finite(model, optimizer)
    if bad is not None:
        raise TrainingDiverged(f"{bad} is not finite at iteration {state.iteration}")
    opt = optimizer.state_dict()
    velocity = opt.pop("velocity")
    extra = {
        "kind": "checkpoint",
        "iteration": state.iteration,
        "elapsed_s": state.elapsed_s,
        "config": asdict(config),
        "run": run_info or {},
        "optimizer": opt,
        "evaluations": state.evaluations,
    }
    try:
        save_model(model, path, extra, extra_arrays={f"optimizer/velocity/{n}": v for n, v in velocity.items()})
    except OSError as error:
        reason = error.strerror or str(error)
        raise CheckpointWriteError(
            f"could not write the checkpoint {path} at iteration {state.iteration} ({reason}); "
            "the previous checkpoint, if any, is intact"
        ) from None


def config_differences(saved: dict, config: TrainConfig, allow=()) -> list[str]:
    """'field: value (checkpoint: saved value)' for every setting that changes the run."""
    current = asdict(config)
    differences = []
    for name, value in current.items():
        if name in FREE_ON_RESUME or name in allow or name not in saved:
            continue
        old = saved[name]
        if isinstance(value, tuple):
            value, old = list(value), list(old)
        if value != old:
            differences.append(f"{name} {value!r} (checkpoint: {old!r})")
    return differences


def run_differences(saved: dict, run_info: dict) -> list[str]:
    """The same for the description of the data and the model (``run_info``)."""
    return [f"{key} {value!r} (checkpoint: {saved[key]!r})"
            for key, value in run_info.items() if key in saved and saved[key] != value]


def read_checkpoint_meta(path) -> dict:
    """The metadata of a checkpoint (its ``extra`` holds config, run, iteration); clear errors otherwise."""
    _, meta = read_npz(path)
    if meta.get("extra", {}).get("kind") != "checkpoint":
        raise ValueError(f"{path} holds weights but no training state (not a checkpoint): cannot resume from it")
    return meta


def load_checkpoint(path, model, optimizer, config: TrainConfig | None = None, run_info: dict | None = None,
                    allow_changes=()) -> dict:
    """Restore weights and optimiser from ``path`` into ``model`` / ``optimizer``; returns the metadata.

    With ``config`` (and ``run_info``), refuses with ``ResumeMismatch`` when they differ from the
    checkpoint's, listing every difference; ``allow_changes`` names config fields that may differ.
    """
    arrays, meta = read_npz(path)
    extra = meta.get("extra", {})
    if extra.get("kind") != "checkpoint":
        raise ValueError(f"{path} holds weights but no training state (not a checkpoint): cannot resume from it")
    for key, expected in (("arch", model.info.arch), ("num_classes", model.num_classes), ("preset", model.info.preset)):
        if meta.get(key) != expected:
            raise ValueError(f"{path}: checkpoint {key} is {meta.get(key)!r}, the model being trained has {expected!r}")
    differences = []
    if config is not None:
        differences += config_differences(extra.get("config", {}), config, allow_changes)
    if run_info:
        differences += run_differences(extra.get("run", {}), run_info)
    if differences:
        raise ResumeMismatch(
            f"cannot resume from {path}: the run's settings differ from the checkpoint's: " + "; ".join(differences)
        )
    prefix = "optimizer/velocity/"
    model.load_state_dict({n: a for n, a in arrays.items() if not n.startswith("optimizer/")}, source=str(path))
    opt = dict(extra["optimizer"])
    opt["velocity"] = {n[len(prefix):]: a for n, a in arrays.items() if n.startswith(prefix)}
    try:
        optimizer.load_state_dict(opt)
    except KeyError as error:  # the saved moments belong to other parameters (another --freeze-backbone)
        raise ValueError(f"{path}: {error.args[0] if error.args else error}") from None
    return meta


# --------------------------------------------------------------------------
# logs and pictures
# --------------------------------------------------------------------------

def _read_log_rows(path, resume_from: int):
    """(raw rows, rows as floats) of the CSV log up to ``resume_from``; none when the log is missing."""
    rows = []
    if resume_from > 0 and os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as stream:
            rows = [row for row in csv.DictReader(stream) if int(float(row["iteration"])) <= resume_from]
    return rows, [{k: float(v) for k, v in row.items()} for row in rows]


def _open_log(path, resume_from: int):
    """The CSV log, truncated to the rows up to ``resume_from`` (the checkpoint's iteration) when resuming."""
    rows, _ = _read_log_rows(path, resume_from)
    stream = open(path, "w", newline="", encoding="utf-8")
    writer = csv.DictWriter(stream, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    stream.flush()
    return stream, writer, [{k: float(v) for k, v in row.items()} for row in rows]


def read_log(path) -> list:
    """The rows of a training CSV log as dicts of floats."""
    with open(path, newline="", encoding="utf-8") as stream:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(stream)]


def plot_loss_curve(history, path=None, evaluations=None, title="training loss"):
    """The loss (and its parts, and validation mAP if any) against the iteration: saved to ``path``
    when given; returns the figure."""
    from .viz import figure_and_axes

    figure, axes = figure_and_axes(figsize=(7, 4))
    ax = axes[0][0]
    steps = [row["iteration"] for row in history]
    for key, style in (("loss", "-"), ("conf_loss", "--"), ("loc_loss", ":")):
        values = [row[key] for row in history]
        ax.plot(steps, values, style, label=key.replace("_", " "))
        if len(values) > 20:  # a moving average makes the trend readable
            window = max(5, len(values) // 25)
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            if key == "loss":
                ax.plot(steps[window - 1:], smooth, "-", color="black", linewidth=1.5, label="loss (moving average)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if evaluations:
        twin = ax.twinx()
        twin.plot([e["iteration"] for e in evaluations], [e["mAP"] for e in evaluations], "o-",
                  color="tab:green", label="validation mAP")
        twin.set_ylabel("mAP")
        twin.set_ylim(0, 1)
        twin.legend(loc="upper center", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    figure.tight_layout()
    if path is not None:
        save_figure(figure, path, dpi=110)
    return figure


# --------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------

def train(model, dataset, config: TrainConfig, output_dir, val_dataset=None, resume: bool | str = False,
          progress: bool = True, evaluate_fn=None, on_log=None, run_info: dict | None = None,
          allow_changes=(), group=None) -> TrainState:
    """Train ``model`` on ``dataset`` following ``config``; files go to ``output_dir``.

    resume: False, True (continue from output_dir/checkpoint.npz) or a checkpoint path; the
            checkpoint's config and ``run_info`` must equal this call's (``ResumeMismatch`` lists
            the differences), except the fields in ``allow_changes`` (only "iterations" makes
            sense: a longer run on the same schedule).
    run_info: a JSON-able description of the data and the model (dataset, split, size, classes,
            starting weights), saved in every checkpoint and compared on resume.
    evaluate_fn(model, dataset) -> (mAP, {label: AP}) for periodic validation
    (default: VOC all-point mAP@0.5 via ``minissd.evaluate.evaluate_model``).
    group:  the processes that train together (``minissd.distributed``; default one process):
            each reads its shard of every global batch, the gradients are summed with one
            allreduce, every process takes the same step; rank 0 alone writes files, logs,
            validates and shows the progress bar. An error on one rank stops them all.
    Writes checkpoint.npz, model.npz (final weights), train_log.csv,
    eval_log.json and loss_curve.png. Returns a ``TrainState``.
    """
    from .distributed import GradientBuffer, SingleProcess, broadcast_buffers, shard_of, sum_scalar

    group = group or SingleProcess()
    lead = group.rank == 0
    try:
        return _train(model, dataset, config, output_dir, val_dataset, resume, progress, evaluate_fn, on_log,
                      run_info, allow_changes, group, lead, GradientBuffer, broadcast_buffers, shard_of, sum_scalar)
    except BaseException as error:
        if group.size > 1:  # the other ranks wait in an allreduce that will never come: stop the job
            from .distributed import abort_job

            abort_job(group, error)
        raise


def _train(model, dataset, config, output_dir, val_dataset, resume, progress, evaluate_fn, on_log, run_info,
           allow_changes, group, lead, GradientBuffer, broadcast_buffers, shard_of, sum_scalar) -> TrainState:
    if lead:
        os.makedirs(output_dir, exist_ok=True)
        remove_stale_temporaries(output_dir)  # left by a run killed while writing
    group.barrier()
    checkpoint_path = os.path.join(output_dir, CHECKPOINT_NAME)
    run_info = dict(run_info or {})
    if "images" not in run_info:
        run_info["images"] = len(dataset)
    if group.size > 1:
        run_info["processes"] = group.size
    model.train()
    model.freeze(config.frozen)  # the backward then skips what only frozen parameters need
    optimizer = make_optimizer(model, config)
    state = TrainState()
    if resume:
        source = checkpoint_path if resume is True else os.fspath(resume)
        if not os.path.exists(source):
            raise FileNotFoundError(f"cannot resume: no checkpoint at {source}")
        meta = load_checkpoint(source, model, optimizer, config, run_info, allow_changes)
        state.iteration = int(meta["extra"]["iteration"])
        state.elapsed_s = float(meta["extra"].get("elapsed_s", 0.0))
        state.evaluations = list(meta["extra"].get("evaluations", []))
        if state.iteration > config.iterations:
            raise ResumeMismatch(f"cannot resume from {source}: it is at iteration {state.iteration}, "
                                 f"beyond the run's {config.iterations} iterations")
    last_good = state.iteration if resume else None  # iteration of the checkpoint on disk that we trust
    if evaluate_fn is None and val_dataset is not None:
        from .evaluate.run import voc_map_of

        evaluate_fn = voc_map_of
    if not lead:
        evaluate_fn = None  # rank 0 validates
    loader = make_loader(model, dataset, config, shard_of(config.batch_size, group))
    per_epoch = len(loader)
    if per_epoch < 1:
        raise ValueError(f"the dataset has {len(dataset)} images, fewer than one batch of {config.batch_size}")
    finished = resume and state.iteration == config.iterations and os.path.exists(os.path.join(output_dir, "model.npz"))
    if finished:  # nothing to do: no second validation, no duplicate log entry
        model.clear_cache()
        _, state.history = _read_log_rows(os.path.join(output_dir, LOG_NAME), state.iteration)
        return state
    xp = backend.get_array_module(*model.params.values())
    dtype = next(iter(model.params.values())).dtype
    trained = list(trainable_parameters(model, config))
    reducer = GradientBuffer(model.grads, trained, extra=3) if group.size > 1 else None
    log_stream, log_writer, state.history = (_open_log(os.path.join(output_dir, LOG_NAME), state.iteration) if lead
                                             else (None, None, []))
    bar = _progress_bar(progress and lead, config.iterations, state.iteration)
    epoch, position = divmod(state.iteration, per_epoch)
    batches = loader.epoch(epoch, position)
    window_start, window_images = time.perf_counter(), 0
    run_start = time.perf_counter() - state.elapsed_s

    def diverged(what: str) -> TrainingDiverged:
        good = (f"{checkpoint_path} (iteration {last_good})" if last_good is not None and os.path.exists(checkpoint_path)
                else "none (none was written yet)")
        return TrainingDiverged(f"{what}; training stopped, the last good checkpoint is {good}; "
                                "try a lower --lr or a longer --warmup")

    def checkpoint(buffers=None):
        """Write the checkpoint of ``state.iteration`` (rank 0); ``buffers``: the BatchNorm statistics
        to save instead of the current ones (those from before the forward that proved the weights)."""
        nonlocal last_good
        if not lead:
            return
        current = None
        if buffers is not None:
            current = {name: b.copy() for name, b in model.buffers.items()}
            for name, b in model.buffers.items():
                b[...] = buffers[name]
        try:
            save_checkpoint(checkpoint_path, model, optimizer, config, state, run_info)
        except TrainingDiverged as error:
            raise diverged(str(error)) from None
        finally:
            for name, b in (current or {}).items():
                model.buffers[name][...] = b
        last_good = state.iteration

    # A checkpoint due after step t is written during iteration t + 1, once the next forward has
    # given a finite loss with those weights: a step that blows the weights up (finite but huge)
    # never reaches the disk. The BatchNorm statistics saved are those from before that forward,
    # so a resume repeats it exactly.
    pending = False
    try:
        while state.iteration < config.iterations:
            try:
                batch = next(batches)
            except StopIteration:
                epoch += 1
                batches = loader.epoch(epoch)
                continue
            images = xp.asarray(batch.images, dtype=dtype)
            loc_targets = xp.asarray(batch.loc_targets, dtype=dtype)
            conf_targets = xp.asarray(batch.conf_targets)
            # the N of the loss: the positives of the whole global batch (a sum over the shards)
            positives = None if reducer is None else sum_scalar(group, int((batch.conf_targets > 0).sum()))
            before = {name: b.copy() for name, b in model.buffers.items()} if pending else None
            # overflow is detected below (a non-finite loss or weight stops the run with one clear
            # message), so NumPy's own RuntimeWarnings would only add noise while it diverges
            with np.errstate(over="ignore", invalid="ignore"):
                loc, conf = model.forward(images)
                out = multibox_loss(loc, conf, loc_targets, conf_targets, config.neg_pos_ratio, config.alpha,
                                    num_positives=positives)
            if reducer is None:
                loss = float(out.loss)  # one host sync per iteration, to stop at once on NaN
                if not math.isfinite(loss):
                    raise diverged(f"the loss became {loss} at iteration {state.iteration} "
                                   f"(loc {float(out.loc_loss)}, conf {float(out.conf_loss)})")
            model.zero_grad()
            with np.errstate(over="ignore", invalid="ignore"):
                model.backward(out.grad_loc, out.grad_conf)
            if reducer is None:
                loc_loss, conf_loss = float(out.loc_loss), float(out.conf_loss)
            else:  # one allreduce: every rank's gradient share, plus the loss parts for the log
                loss, loc_loss, conf_loss = reducer.reduce(
                    group, model.grads, [float(out.loss), float(out.loc_loss), float(out.conf_loss)])
                if not math.isfinite(loss):  # the same sum on every rank: they all stop together
                    raise diverged(f"the loss became {loss} at iteration {state.iteration} "
                                   f"(loc {loc_loss}, conf {conf_loss})")
            if pending:
                checkpoint(before)
                pending = False
            with np.errstate(over="ignore", invalid="ignore"):
                lr = optimizer.step()
            if reducer is not None:
                broadcast_buffers(group, model.buffers)  # rank 0's BatchNorm statistics, as DDP
            state.iteration += 1
            window_images += len(batch) * group.size
            state.elapsed_s = time.perf_counter() - run_start
            if lead and (state.iteration % config.log_every == 0 or state.iteration == config.iterations
                         or state.iteration == 1):
                now = time.perf_counter()
                rate = window_images / max(now - window_start, 1e-9)
                window_start, window_images = now, 0
                row = {"iteration": state.iteration, "loss": loss, "loc_loss": loc_loss,
                       "conf_loss": conf_loss, "lr": lr, "images_per_s": rate,
                       "elapsed_s": state.elapsed_s}
                log_writer.writerow(row)
                log_stream.flush()
                state.history.append(row)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.3f}", loc=f"{loc_loss:.3f}",
                                    conf=f"{conf_loss:.3f}", lr=f"{lr:.2g}", img_s=f"{rate:.1f}")
                if on_log is not None:
                    on_log(row)
            if bar is not None:
                bar.update(1)
            if evaluate_fn is not None and config.eval_every and state.iteration % config.eval_every == 0 \
                    and state.iteration < config.iterations:
                _validate(model, val_dataset, evaluate_fn, state, output_dir, bar)
            if config.checkpoint_every and state.iteration % config.checkpoint_every == 0:
                pending = True
        bad = first_non_finite(model, optimizer)
        if bad is not None:
            raise diverged(f"{bad} is not finite at iteration {state.iteration}")
        if evaluate_fn is not None:
            _validate(model, val_dataset, evaluate_fn, state, output_dir, bar)
        checkpoint()
        if lead:
            try:
                save_model(model, os.path.join(output_dir, "model.npz"),
                           {"kind": "weights", "iteration": state.iteration})
            except OSError as error:
                raise CheckpointWriteError(f"could not write {os.path.join(output_dir, 'model.npz')} "
                                           f"({error.strerror or error}); the checkpoint {checkpoint_path} "
                                           "holds the same weights") from None
    finally:
        batches.close()
        if log_stream is not None:
            log_stream.close()
        if bar is not None:
            bar.close()
        model.clear_cache()
        if lead:
            remove_stale_temporaries(output_dir)
    if lead and state.history:
        plot_loss_curve(state.history, os.path.join(output_dir, "loss_curve.png"), state.evaluations)
    group.barrier()
    return state


def _validate(model, val_dataset, evaluate_fn, state: TrainState, output_dir, bar) -> None:
    model.eval()
    try:
        mean_ap, per_class = evaluate_fn(model, val_dataset)
    finally:
        model.train()
    entry = {"iteration": state.iteration, "mAP": float(mean_ap),
             "ap": {str(k): float(v) for k, v in per_class.items()}}
    # one entry per iteration: a validation repeated after a resume replaces the earlier one
    state.evaluations = [e for e in state.evaluations if e["iteration"] != state.iteration] + [entry]
    write_json(os.path.join(output_dir, EVAL_LOG_NAME), state.evaluations)
    message = f"iteration {state.iteration}: validation mAP {mean_ap:.4f}"
    if bar is not None:
        bar.write(message)
    else:
        print(message)


def _progress_bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="it", dynamic_ncols=True)
