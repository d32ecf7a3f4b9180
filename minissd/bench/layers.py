"""Where a model spends its time, layer by layer (minissd only).

    python -m minissd.bench layers --model tiny --batch-size 32 --threads 1
    python -m minissd.bench layers --model ssd300 --batch-size 1 --forward-only

Wraps every layer's ``forward`` and ``backward`` of a model with a timer,
runs a few forward + backward passes with a random upstream gradient, and
prints the slowest layers and the time per image. It is how the tiny model's
layout was chosen (docs/performance.md): the first layers, at the highest
resolution, are where a CPU spends its time.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

from .. import backend
from .timing import machine_description, use_threads


def _timed(table, key, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        table[key] += time.perf_counter() - start
        return result
    return wrapper


def _wrap_layers(model, table) -> list:
    """Time every stage layer, norm and head of ``model`` into ``table``; returns what to restore."""
    named = [(name, layer) for stage in model.stages for name, layer in stage.layers.items()]
    named += [(model.norm_name(k), norm) for k, norm in model.norms.items()]
    named += [(f"head{k}", head) for k, head in enumerate(model.heads)]
    originals = []
    for name, layer in named:
        originals.append((layer, layer.forward, layer.backward))
        layer.forward = _timed(table, f"{name}.forward", layer.forward)
        layer.backward = _timed(table, f"{name}.backward", layer.backward)
    return originals


def profile_step(model, batch_size: int, repeats: int = 3, seed: int = 0, backward: bool = True) -> tuple[dict, float]:
    """({"layer.forward"/"layer.backward": best seconds}, best seconds per image) of forward (+ backward).

    Each of ``repeats`` runs follows an untimed one (buffers, BLAS threads); every layer's figure
    and the whole run's are the minimum over the runs (``timing``). ``backward=False`` times
    the forward in eval mode, the inference path.
    """
    rng = np.random.default_rng(seed)
    xp = backend.get_array_module(*model.params.values())
    size = model.image_size
    images = xp.asarray(rng.standard_normal((batch_size, 3, size, size), dtype=np.float32))
    table = defaultdict(float)
    best: dict = {}
    best_wall = float("inf")
    originals = _wrap_layers(model, table)
    try:
        model.train(backward)
        for run in range(repeats + 1):  # run 0 is the untimed one
            table.clear()
            start = time.perf_counter()
            loc, conf = model.forward(images)
            if backward:
                model.zero_grad()
                model.backward(xp.full(loc.shape, 1e-3, dtype=loc.dtype), xp.full(conf.shape, 1e-3, dtype=conf.dtype))
            backend.synchronize(xp)
            wall = time.perf_counter() - start
            if run:
                best_wall = min(best_wall, wall)
                for key, seconds in table.items():
                    best[key] = min(best.get(key, float("inf")), seconds)
    finally:
        for layer, forward, backward_fn in originals:
            layer.forward, layer.backward = forward, backward_fn
    return best, best_wall / batch_size


def main(argv=None) -> None:
    from .. import models

    parser = argparse.ArgumentParser(prog="python -m minissd.bench layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("tiny", "ssd300", "ssd512"), default="tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None,
                        help="minissd's threads (worker threads, BLAS one per part; default: as the library starts)")
    parser.add_argument("--no-pool", action="store_true", help="give --threads to the BLAS only")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best of them; default 3)")
    parser.add_argument("--forward-only", action="store_true", help="the eval-mode forward alone")
    parser.add_argument("--top", type=int, default=12, help="how many layers to list (default 12)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.batch_size < 1:
        parser.error("--repeat and --batch-size must be positive")
    how = use_threads(args.threads, pool=not args.no_pool) if args.threads is not None else "threads as the library starts"
    builder = {"tiny": lambda: models.tiny_ssd(6), "ssd300": models.ssd300, "ssd512": models.ssd512}[args.model]
    model = builder().to(args.device)
    for line in machine_description(backend.resolve_device(args.device)):
        print(line)
    print(how)
    table, per_image = profile_step(model, args.batch_size, args.repeat, backward=not args.forward_only)
    what = "forward" if args.forward_only else "forward + backward"
    print(f"{args.model}, batch {args.batch_size}, {what}: {per_image * 1000:.1f} ms per image "
          f"(best of {args.repeat}); the slowest layers, ms per batch:")
    total = sum(table.values()) or 1.0
    for key, seconds in sorted(table.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {key:<20s} {seconds * 1000:8.1f} ms  {100 * seconds / total:5.1f} %")
