"""Where a training step spends its time, layer by layer.

    python -m minissd.profile_layers --model tiny --batch-size 32 --threads 1

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

from . import backend


def _timed(table, key, function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        table[key] += time.perf_counter() - start
        return result
    return wrapper


def profile_step(model, batch_size: int, repeats: int = 2, seed: int = 0) -> tuple[dict, float]:
    """({"layer.forward"/"layer.backward": seconds of the last repeat}, seconds per image) of fwd + bwd."""
    rng = np.random.default_rng(seed)
    xp = backend.get_array_module(*model.params.values())
    size = model.image_size
    images = xp.asarray(rng.standard_normal((batch_size, 3, size, size), dtype=np.float32))
    table = defaultdict(float)
    originals = []
    for stage in model.stages:
        for name, layer in stage.layers.items():
            originals.append((layer, layer.forward, layer.backward))
            layer.forward = _timed(table, f"{name}.forward", layer.forward)
            layer.backward = _timed(table, f"{name}.backward", layer.backward)
    for k, head in enumerate(model.heads):
        originals.append((head, head.forward, head.backward))
        head.forward = _timed(table, f"head{k}.forward", head.forward)
        head.backward = _timed(table, f"head{k}.backward", head.backward)
    try:
        model.train()
        wall = 0.0
        for _ in range(repeats):  # the first call is a warm-up (buffers, BLAS threads)
            table.clear()
            start = time.perf_counter()
            loc, conf = model.forward(images)
            model.zero_grad()
            model.backward(xp.full(loc.shape, 1e-3, dtype=loc.dtype), xp.full(conf.shape, 1e-3, dtype=conf.dtype))
            backend.synchronize(xp)
            wall = time.perf_counter() - start
    finally:
        for layer, forward, backward in originals:
            layer.forward, layer.backward = forward, backward
    return dict(table), wall / batch_size


def main(argv=None) -> None:
    from . import models

    parser = argparse.ArgumentParser(prog="python -m minissd.profile_layers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("tiny", "ssd300", "ssd512"), default="tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: the library's)")
    parser.add_argument("--top", type=int, default=12, help="how many layers to list (default 12)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None)
    args = parser.parse_args(argv)
    builder = {"tiny": lambda: models.tiny_ssd(6), "ssd300": models.ssd300, "ssd512": models.ssd512}[args.model]
    model = builder().to(args.device)
    with backend.blas_threads(args.threads):
        table, per_image = profile_step(model, args.batch_size)
    print(f"{args.model}, batch {args.batch_size}, forward + backward: {per_image * 1000:.1f} ms per image")
    for key, seconds in sorted(table.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {key:<20s} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":  # pragma: no cover
    main()
