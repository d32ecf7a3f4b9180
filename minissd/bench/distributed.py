"""Data-parallel throughput: 1 process x T threads against K processes x 1 thread, same global batch.

    python -m minissd.bench distributed [--models tiny ssd300] [--batch-size 32 4] [--steps 6] [--processes 2]

Each configuration runs the training step of ``minissd.train`` (forward, MultiBox loss, backward, the
gradient allreduce, the optimiser step) on real shapes batches from the DataLoader; the first step is a
warm-up, the rest are timed. With K processes it also times the allreduce alone, so its share of a step is
measured, not guessed. The K-process runs are started with ``mpiexec -n K`` (the ``distributed`` extra).
One process is timed twice: with T BLAS threads (OpenBLAS's own, for the matrix products only) and with
T of minissd's worker threads (``minissd.nn.parallel``, BLAS one thread per part).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

MODELS = {"tiny": 32, "ssd300": 4}  # model -> default global batch


def _steps(model_name: str, batch: int, steps: int, group) -> dict:
    """Time ``steps`` training steps (after one warm-up) on this rank; returns seconds and the allreduce's."""
    from minissd import models
    from minissd.data import ShapesDataset
    from minissd.distributed import GradientBuffer, shard_of, sum_scalar
    from minissd.loss import multibox_loss
    from minissd.train import TrainConfig, make_loader, make_optimizer

    model = {"tiny": models.tiny_ssd, "ssd300": models.ssd300}[model_name](6, seed=0)
    config = TrainConfig(iterations=steps + 1, batch_size=batch, lr=1e-3, prefetch=0, warmup_iterations=0)
    loader = make_loader(model, ShapesDataset("train", num_images=batch * (steps + 1)), config,
                         shard_of(batch, group))
    optimizer = make_optimizer(model, config)
    reducer = GradientBuffer(model.grads, extra=3) if group.size > 1 else None
    batches = loader.epoch(0)
    step_times, reduce_times = [], []
    for step in range(steps + 1):
        item = next(batches)
        group.barrier()
        start = time.perf_counter()
        positives = sum_scalar(group, int((item.conf_targets > 0).sum())) if reducer else None
        loc, conf = model.forward(item.images)
        out = multibox_loss(loc, conf, item.loc_targets, item.conf_targets, num_positives=positives)
        model.zero_grad()
        model.backward(out.grad_loc, out.grad_conf)
        if reducer is not None:
            reduce_start = time.perf_counter()
            reducer.reduce(group, model.grads, [float(out.loss), 0.0, 0.0])
            reduce_times.append(time.perf_counter() - reduce_start)
        optimizer.step()
        step_times.append(time.perf_counter() - start)
    batches.close()
    timed = slice(1, None)  # the first step warms caches and the allocator up
    return {"step_s": float(np.median(step_times[timed])), "best_step_s": float(np.min(step_times[timed])),
            "allreduce_s": float(np.median(reduce_times[timed])) if reduce_times else 0.0,
            "gradient_mb": reducer.nbytes / 1e6 if reducer else 0.0}


def worker(argv) -> int:
    """Inside ``mpiexec``: time the steps on every rank, rank 0 prints one JSON line."""
    from minissd.backend import blas_threads
    from minissd.distributed import world
    from minissd.nn import parallel

    model_name, batch, steps, threads, mode = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), argv[4]
    group = world("cpu")
    workers = threads if mode == "workers" else 1
    with blas_threads(1 if mode == "workers" else threads), parallel.threads(workers):
        result = _steps(model_name, batch, steps, group)
    if group.rank == 0:
        print("RESULT " + json.dumps(result), flush=True)
    return 0


def _run(processes: int, threads: int, model_name: str, batch: int, steps: int, mode: str = "blas") -> dict:
    command = [sys.executable, "-m", "minissd.bench.distributed", "--worker", model_name, str(batch), str(steps),
               str(threads), mode]
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    if processes > 1:
        mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
        command = [mpiexec, "-n", str(processes), *command]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def run(model_names, batches, steps: int = 6, processes: int = 2, threads: int = 2, log=print) -> list[dict]:
    rows = []
    log(f"{'model':<7} {'batch':>5}  {'setup':<32} {'step s':>7} {'img/s':>7} {'allreduce':>10} {'share':>6}")
    setups = ((f"1 process x {threads} BLAS threads", 1, threads, "blas"),
              (f"1 process x {threads} worker threads", 1, threads, "workers"),
              (f"{processes} processes x 1 thread", processes, 1, "blas"))
    for name, batch in zip(model_names, batches):
        for setup, k, t, mode in setups:
            result = _run(k, t, name, batch, steps, mode)
            row = {"model": name, "batch": batch, "setup": setup, "processes": k, "threads": t, **result,
                   "images_per_s": batch / result["step_s"], "allreduce_share": result["allreduce_s"] / result["step_s"]}
            rows.append(row)
            share = f"{100 * row['allreduce_share']:.1f} %" if k > 1 else "-"
            log(f"{name:<7} {batch:>5}  {setup:<32} {result['step_s']:7.2f} {row['images_per_s']:7.1f} "
                f"{1e3 * result['allreduce_s']:8.1f} ms {share:>6}")
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return worker(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m minissd.bench distributed", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["tiny", "ssd300"])
    parser.add_argument("--batch-size", type=int, nargs="+", default=None, help="global batch per model")
    parser.add_argument("--steps", type=int, default=6, help="timed steps after one warm-up (median)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads of the one-process run")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    batches = args.batch_size or [MODELS[m] for m in args.models]
    rows = run(args.models, batches, args.steps, args.processes, args.threads)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(rows, stream, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
