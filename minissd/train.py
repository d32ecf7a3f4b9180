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

A NaN or infinite loss stops training with ``TrainingDiverged``: nothing is
written after it, so the last checkpoint on disk is the last good one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import backend
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
    """The loss became NaN or infinite."""


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

    def __post_init__(self):
        self.milestones = tuple(int(m) for m in self.milestones)
        for name in ("iterations", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive; got {self.lr!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {self.optimizer!r}")

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


def make_optimizer(model, config: TrainConfig):
    """SGD (SSD's recipe) or Adam, both following the warmup + multistep schedule."""
    schedule = WarmupMultiStepLR(config.lr, config.milestones, config.gamma,
                                 config.warmup_iterations, config.warmup_factor)
    if config.optimizer == "adam":
        return Adam(model.params, model.grads, lr=config.lr, weight_decay=config.weight_decay,
                    bias_decay=config.bias_decay, schedule=schedule)
    return SGD(model.params, model.grads, lr=config.lr, momentum=config.momentum,
               weight_decay=config.weight_decay, bias_lr_factor=config.bias_lr_factor,
               bias_decay=config.bias_decay, schedule=schedule)


def make_loader(model, dataset, config: TrainConfig) -> DataLoader:
    size, mean = model.image_size, model.info.mean
    transform = SSDAugmentation(size, mean, **config.augment_options) if config.augment else eval_transform(size, mean)
    return DataLoader(dataset, config.batch_size, backend.to_numpy(model.priors), transform,
                      shuffle=True, seed=config.seed, drop_last=True, prefetch=config.prefetch)


# --------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------

def save_checkpoint(path, model, optimizer, config: TrainConfig, state: TrainState) -> None:
    """Weights + optimiser + progress in one .npz, written atomically."""
    opt = optimizer.state_dict()
    velocity = opt.pop("velocity")
    extra = {
        "kind": "checkpoint",
        "iteration": state.iteration,
        "elapsed_s": state.elapsed_s,
        "config": asdict(config),
        "optimizer": opt,
        "evaluations": state.evaluations,
    }
    save_model(model, path, extra, extra_arrays={f"optimizer/velocity/{n}": v for n, v in velocity.items()})


def load_checkpoint(path, model, optimizer) -> dict:
    """Restore weights and optimiser from ``path`` into ``model`` / ``optimizer``; returns the metadata."""
    arrays, meta = read_npz(path)
    extra = meta.get("extra", {})
    if extra.get("kind") != "checkpoint":
        raise ValueError(f"{path} holds weights but no training state (not a checkpoint): cannot resume from it")
    for key, expected in (("arch", model.info.arch), ("num_classes", model.num_classes), ("preset", model.info.preset)):
        if meta.get(key) != expected:
            raise ValueError(f"{path}: checkpoint {key} is {meta.get(key)!r}, the model being trained has {expected!r}")
    prefix = "optimizer/velocity/"
    model.load_state_dict({n: a for n, a in arrays.items() if not n.startswith("optimizer/")}, source=str(path))
    opt = dict(extra["optimizer"])
    opt["velocity"] = {n[len(prefix):]: a for n, a in arrays.items() if n.startswith(prefix)}
    optimizer.load_state_dict(opt)
    return meta


# --------------------------------------------------------------------------
# logs and pictures
# --------------------------------------------------------------------------

def _open_log(path, resume_from: int):
    """The CSV log, truncated to the rows up to ``resume_from`` (the checkpoint's iteration) when resuming."""
    rows = []
    if resume_from > 0 and os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as stream:
            rows = [row for row in csv.DictReader(stream) if int(row["iteration"]) <= resume_from]
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


def plot_loss_curve(history, path, evaluations=None, title="training loss") -> None:
    """Save the loss (and its parts, and validation mAP if any) against the iteration."""
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
    figure.savefig(path, dpi=110)


# --------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------

def train(model, dataset, config: TrainConfig, output_dir, val_dataset=None, resume: bool | str = False,
          progress: bool = True, evaluate_fn=None, on_log=None) -> TrainState:
    """Train ``model`` on ``dataset`` following ``config``; files go to ``output_dir``.

    resume: False, True (continue from output_dir/checkpoint.npz) or a checkpoint path.
    evaluate_fn(model, dataset) -> (mAP, {label: AP}) for periodic validation
    (default: VOC all-point mAP@0.5 via ``minissd.evaluate.evaluate_model``).
    Writes checkpoint.npz, model.npz (final weights), train_log.csv,
    eval_log.json and loss_curve.png. Returns a ``TrainState``.
    """
    os.makedirs(output_dir, exist_ok=True)
    checkpoint_path = os.path.join(output_dir, CHECKPOINT_NAME)
    model.train()
    optimizer = make_optimizer(model, config)
    state = TrainState()
    if resume:
        source = checkpoint_path if resume is True else os.fspath(resume)
        if not os.path.exists(source):
            raise FileNotFoundError(f"cannot resume: no checkpoint at {source}")
        meta = load_checkpoint(source, model, optimizer)
        state.iteration = int(meta["extra"]["iteration"])
        state.elapsed_s = float(meta["extra"].get("elapsed_s", 0.0))
        state.evaluations = list(meta["extra"].get("evaluations", []))
    if evaluate_fn is None and val_dataset is not None:
        from .evaluate.run import voc_map_of

        evaluate_fn = voc_map_of
    loader = make_loader(model, dataset, config)
    per_epoch = len(loader)
    if per_epoch < 1:
        raise ValueError(f"the dataset has {len(dataset)} images, fewer than one batch of {config.batch_size}")
    xp = backend.get_array_module(*model.params.values())
    dtype = next(iter(model.params.values())).dtype
    log_stream, log_writer, state.history = _open_log(os.path.join(output_dir, LOG_NAME), state.iteration)
    bar = _progress_bar(progress, config.iterations, state.iteration)
    epoch, position = divmod(state.iteration, per_epoch)
    batches = loader.epoch(epoch, position)
    window_start, window_images = time.perf_counter(), 0
    run_start = time.perf_counter() - state.elapsed_s
    last_row = None
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
            loc, conf = model.forward(images)
            out = multibox_loss(loc, conf, loc_targets, conf_targets, config.neg_pos_ratio, config.alpha)
            loss = float(out.loss)  # one host sync per iteration, to stop at once on NaN
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss} at iteration {state.iteration} (loc {float(out.loc_loss)}, "
                    f"conf {float(out.conf_loss)}); training stopped, the last good checkpoint is "
                    f"{checkpoint_path if os.path.exists(checkpoint_path) else 'none (none was written yet)'}; "
                    "try a lower --lr or a longer warmup"
                )
            model.zero_grad()
            model.backward(out.grad_loc, out.grad_conf)
            lr = optimizer.step()
            state.iteration += 1
            window_images += len(batch)
            state.elapsed_s = time.perf_counter() - run_start
            if state.iteration % config.log_every == 0 or state.iteration == config.iterations or state.iteration == 1:
                now = time.perf_counter()
                rate = window_images / max(now - window_start, 1e-9)
                window_start, window_images = now, 0
                last_row = {"iteration": state.iteration, "loss": loss, "loc_loss": float(out.loc_loss),
                            "conf_loss": float(out.conf_loss), "lr": lr, "images_per_s": rate,
                            "elapsed_s": state.elapsed_s}
                log_writer.writerow(last_row)
                log_stream.flush()
                state.history.append(last_row)
                if bar is not None:
                    bar.set_postfix(loss=f"{loss:.3f}", loc=f"{last_row['loc_loss']:.3f}",
                                    conf=f"{last_row['conf_loss']:.3f}", lr=f"{lr:.2g}", img_s=f"{rate:.1f}")
                if on_log is not None:
                    on_log(last_row)
            if bar is not None:
                bar.update(1)
            if evaluate_fn is not None and config.eval_every and state.iteration % config.eval_every == 0 \
                    and state.iteration < config.iterations:
                _validate(model, val_dataset, evaluate_fn, state, output_dir, bar)
            if config.checkpoint_every and state.iteration % config.checkpoint_every == 0:
                save_checkpoint(checkpoint_path, model, optimizer, config, state)
        if evaluate_fn is not None:
            _validate(model, val_dataset, evaluate_fn, state, output_dir, bar)
        save_checkpoint(checkpoint_path, model, optimizer, config, state)
        save_model(model, os.path.join(output_dir, "model.npz"), {"kind": "weights", "iteration": state.iteration})
    finally:
        batches.close()
        log_stream.close()
        if bar is not None:
            bar.close()
        model.clear_cache()
    if state.history:
        plot_loss_curve(state.history, os.path.join(output_dir, "loss_curve.png"), state.evaluations)
    return state


def _validate(model, val_dataset, evaluate_fn, state: TrainState, output_dir, bar) -> None:
    model.eval()
    try:
        mean_ap, per_class = evaluate_fn(model, val_dataset)
    finally:
        model.train()
    state.evaluations.append({"iteration": state.iteration, "mAP": float(mean_ap),
                              "ap": {str(k): float(v) for k, v in per_class.items()}})
    with open(os.path.join(output_dir, EVAL_LOG_NAME), "w", encoding="utf-8") as stream:
        json.dump(state.evaluations, stream, indent=1)
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
