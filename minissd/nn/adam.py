"""Adam with decoupled weight decay (AdamW), the alternative to SGD for short runs.

For every parameter w with gradient g, at step t = 1, 2, ...:

    m <- beta1 m + (1 - beta1) g            first moment (a momentum of the gradient)
    v <- beta2 v + (1 - beta2) g^2          second moment (its typical size)
    m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)      (the moments start at 0)
    w <- w - lr (m_hat / (sqrt(v_hat) + eps) + wd w)

Each parameter's step is scaled by its own gradient size, so layers whose
gradients are small (the heads early on) move as fast as the rest. SSD's
recipe is SGD (``minissd.nn.optim.SGD``); the demo uses Adam because in a
budget of a few minutes it reaches a higher mAP (0.926 against SGD's 0.904;
docs/training.md has the measurement). Biases are not decayed (``bias_decay=False`` by default).

Same interface as ``SGD``: ``step()`` returns the lr used, ``schedule`` is a
callable iteration -> lr, ``state_dict()`` / ``load_state_dict()`` hold the
moments for checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict

from .. import backend
from .optim import WarmupMultiStepLR, is_bias


class Adam:
    """AdamW over dicts of params and grads (updated in place; grads only read)."""

    def __init__(self, params, grads, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-4, bias_decay: bool = False, schedule=None):
        missing = [name for name in params if name not in grads]
        if missing:
            raise KeyError(f"Adam: no gradient array for parameters {missing}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Adam: betas must be in [0, 1); got {betas}")
        self.params, self.grads = params, grads
        self.lr, self.betas, self.eps = lr, tuple(betas), eps
        self.weight_decay, self.bias_decay = weight_decay, bias_decay
        self.schedule = schedule
        self.iteration = 0
        self.first, self.second = {}, {}
        for name, param in params.items():
            xp = backend.get_array_module(param)
            self.first[name] = xp.zeros_like(param)
            self.second[name] = xp.zeros_like(param)

    def current_lr(self) -> float:
        return self.schedule(self.iteration) if self.schedule is not None else self.lr

    def step(self) -> float:
        """One update of every parameter; returns the lr used."""
        lr = self.current_lr()
        beta1, beta2 = self.betas
        t = self.iteration + 1
        correction1, correction2 = 1 - beta1**t, 1 - beta2**t
        for name, param in self.params.items():
            grad = self.grads[name]
            xp = backend.get_array_module(param, grad)
            m, v = self.first[name], self.second[name]
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * (grad * grad)
            denominator = xp.sqrt(v / correction2)
            denominator += self.eps
            update = (m / correction1) / denominator  # (shape of w)
            if self.weight_decay and (self.bias_decay or not is_bias(name)):
                update += self.weight_decay * param
            param -= lr * update
        self.iteration = t
        return lr

    def state_dict(self) -> dict:
        return {
            "kind": "adam",
            "lr": self.lr, "betas": list(self.betas), "eps": self.eps,
            "weight_decay": self.weight_decay, "bias_decay": self.bias_decay,
            "iteration": self.iteration,
            "schedule": asdict(self.schedule) if isinstance(self.schedule, WarmupMultiStepLR) else None,
            "velocity": {f"m/{n}": backend.to_numpy(a).copy() for n, a in self.first.items()}
            | {f"v/{n}": backend.to_numpy(a).copy() for n, a in self.second.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "adam":
            raise ValueError(f"Adam.load_state_dict: the saved state is of a {state.get('kind', 'sgd')!r} optimiser")
        saved = state["velocity"]
        expected = {f"m/{n}" for n in self.first} | {f"v/{n}" for n in self.second}
        if set(saved) != expected:
            raise KeyError("Adam.load_state_dict: the saved moments are for other parameters "
                           f"({len(saved)} arrays, expected {len(expected)})")
        for prefix, table in (("m/", self.first), ("v/", self.second)):
            for name, target in table.items():
                value = backend.to_numpy(saved[prefix + name])
                if tuple(value.shape) != tuple(target.shape):
                    raise ValueError(f"Adam.load_state_dict: {prefix + name} has shape {value.shape}, expected {target.shape}")
                xp = backend.get_array_module(target)
                target[...] = xp.asarray(value.astype(target.dtype, copy=False))
        self.lr, self.betas, self.eps = state["lr"], tuple(state["betas"]), state["eps"]
        self.weight_decay, self.bias_decay = state["weight_decay"], state["bias_decay"]
        self.iteration = int(state["iteration"])
        if state.get("schedule") is not None:
            self.schedule = WarmupMultiStepLR(**{**state["schedule"], "milestones": tuple(state["schedule"]["milestones"])})
