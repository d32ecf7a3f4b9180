"""SGD with momentum and weight decay, and the warmup + multistep learning-rate schedule.

The update is Caffe's (the original SSD recipe), for every parameter w with gradient g:

    v <- mu * v + lr_w * (g + wd_w * w)
    w <- w - v

mu the momentum (0.9), lr_w = lr * lr_mult and wd_w = weight_decay * decay_mult
(5e-4). Caffe's SSD doubles the biases' learning rate (lr_mult 2) and does
not decay them (decay_mult 0): ``bias_lr_factor=2, bias_decay=False``.

PyTorch's SGD instead keeps v <- mu v + (g + wd w) and steps w <- w - lr v.
The two agree while lr is constant; they differ when lr changes: in Caffe's
form the velocity already carries the old lr and the drop takes effect
gradually, in PyTorch's it applies at once to the whole velocity. We keep
Caffe's because the bias multipliers and the schedule come from that recipe.

Schedule (``WarmupMultiStepLR``): a linear warmup from warmup_factor * lr to lr
over the first warmup_iterations steps (small batches otherwise blow up early),
then lr times gamma = 0.1 at each milestone (VOC: 80k and 100k of 120k).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import backend


def is_bias(name: str) -> bool:
    """A parameter whose last name component is 'bias' ('conv1_1.bias')."""
    return name.rsplit(".", 1)[-1] == "bias"


@dataclass(frozen=True)
class WarmupMultiStepLR:
    """lr(t) for the step with 0-based index t:

    lr(t) = base_lr * gamma ** (number of milestones <= t) * warmup(t)
    warmup(t) = warmup_factor + (1 - warmup_factor) * t / warmup_iterations  for t < warmup_iterations, else 1
    """

    base_lr: float
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_iterations: int = 0
    warmup_factor: float = 1.0 / 3

    def __post_init__(self):
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"milestones must be increasing; got {self.milestones}")
        if self.warmup_iterations < 0 or not 0 <= self.warmup_factor <= 1:
            raise ValueError("warmup_iterations must be >= 0 and warmup_factor in [0, 1]")

    def __call__(self, iteration: int) -> float:
        decays = sum(1 for milestone in self.milestones if milestone <= iteration)
        lr = self.base_lr * self.gamma**decays
        if iteration < self.warmup_iterations:
            lr *= self.warmup_factor + (1 - self.warmup_factor) * iteration / self.warmup_iterations
        return lr


class SGD:
    """SGD with momentum and weight decay, Caffe's update (module docstring).

    params, grads: dicts name -> array (a layer's ``params`` / ``grads``); the
    params are updated in place, the grads only read.
    schedule:      optional callable iteration -> lr; when given, ``step()``
                   uses schedule(iteration) and ``lr`` is ignored.
    """

    def __init__(self, params, grads, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 5e-4,
                 bias_lr_factor: float = 1.0, bias_decay: bool = True, schedule=None):
        missing = [name for name in params if name not in grads]
        if missing:
            raise KeyError(f"SGD: no gradient array for parameters {missing}")
        self.params, self.grads = params, grads
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.bias_lr_factor, self.bias_decay = bias_lr_factor, bias_decay
        self.schedule = schedule
        self.iteration = 0  # steps taken so far
        self.velocity = {}
        for name, param in params.items():
            xp = backend.get_array_module(param)
            self.velocity[name] = xp.zeros_like(param)

    def multipliers(self, name: str) -> tuple[float, float]:
        """(lr multiplier, weight-decay multiplier) of one parameter."""
        if is_bias(name):
            return self.bias_lr_factor, (1.0 if self.bias_decay else 0.0)
        return 1.0, 1.0

    def current_lr(self) -> float:
        return self.schedule(self.iteration) if self.schedule is not None else self.lr

    def step(self) -> float:
        """One update of every parameter; returns the lr used."""
        lr = self.current_lr()
        for name, param in self.params.items():
            lr_mult, decay_mult = self.multipliers(name)
            velocity = self.velocity[name]
            update = param * (self.weight_decay * decay_mult)  # wd_w * w, a new array
            update += self.grads[name]  # g + wd_w * w (the gradient itself is not touched)
            update *= lr * lr_mult
            velocity *= self.momentum
            velocity += update
            param -= velocity
        self.iteration += 1
        return lr

    def state_dict(self) -> dict:
        """Hyperparameters, iteration and host copies of the velocities (save with a checkpoint)."""
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "bias_lr_factor": self.bias_lr_factor,
            "bias_decay": self.bias_decay,
            "iteration": self.iteration,
            "schedule": asdict(self.schedule) if isinstance(self.schedule, WarmupMultiStepLR) else None,
            "velocity": {name: backend.to_numpy(v).copy() for name, v in self.velocity.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict``; the velocities are copied onto the params' device."""
        velocity = state["velocity"]
        if set(velocity) != set(self.velocity):
            raise KeyError(
                f"SGD.load_state_dict: the saved velocities are for {sorted(velocity)}, "
                f"this optimiser has {sorted(self.velocity)}"
            )
        for name, target in self.velocity.items():
            value = backend.to_numpy(velocity[name])
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"SGD.load_state_dict: velocity {name!r} has shape {value.shape}, expected {target.shape}")
            xp = backend.get_array_module(target)
            target[...] = xp.asarray(value.astype(target.dtype, copy=False))
        self.lr, self.momentum, self.weight_decay = state["lr"], state["momentum"], state["weight_decay"]
        self.bias_lr_factor, self.bias_decay = state["bias_lr_factor"], state["bias_decay"]
        self.iteration = int(state["iteration"])
        if state.get("schedule") is not None:
            self.schedule = WarmupMultiStepLR(**{**state["schedule"], "milestones": tuple(state["schedule"]["milestones"])})
