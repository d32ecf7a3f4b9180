"""Two minissd trees, the same model and pass, timed in alternation: a before / after figure.

    python -m minissd.bench trees /tmp/old . --model tiny --batch-size 32 --pass train --pairs 40

Each tree runs in a process of its own, started once (``PYTHONPATH=TREE``: the tree's own
``minissd`` is the one imported there), which builds the model, warms it up, then waits for
requests on its standard input. The parent asks the processes in turn, A B, then B A, and so
on, for one timed call each (right after an untimed one, as ``timing.best_of_paired`` does),
so the two trees share every minute of the machine's noise; a ratio taken pair by pair
cancels most of it. Reported per tree: the best and the median ms per image, and for the
first tree against each other one the ratio of the bests and the median of the pairwise
ratios (above 1: the later tree is faster).

A tree is a folder that holds a ``minissd`` package with this ``bench`` package in it: an older
commit is ``git archive <commit> minissd | tar -x -C /tmp/old``, then ``cp -r minissd/bench
/tmp/old/minissd/``. ``--no-pool-first`` gives the first tree's threads to its BLAS (a tree
from before ``minissd.nn.parallel`` does that anyway).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from .timing import machine_description

PASSES = ("forward", "fwd+bwd", "train")
READY = "ready"


def serve(model_name: str, batch: int, threads: int, pool: bool, stream_in=None, stream_out=None) -> None:
    """The worker's side: build the model and its calls, warm up, then one timing per request line.

    A request is a pass name; the answer is the seconds of one call, after an untimed call.
    """
    import numpy as np

    from .network import MODELS, minissd_calls, random_targets
    from .timing import use_threads

    stream_in = stream_in or sys.stdin
    stream_out = stream_out or sys.stdout
    use_threads(threads, pool=pool)
    rng = np.random.default_rng(0)
    model = MODELS[model_name]()
    size = model.image_size
    images = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    calls = minissd_calls(model, images, random_targets(batch, rng, num_classes=model.num_classes), rng)
    calls["train"]()  # the first calls allocate scratch buffers and kept columns
    print(READY, flush=True, file=stream_out)
    for line in stream_in:
        step = line.strip()
        if step not in PASSES:
            print(f"error: unknown pass {step!r}", flush=True, file=stream_out)
            continue
        calls[step]()  # untimed
        start = time.perf_counter()
        calls[step]()
        print(repr(time.perf_counter() - start), flush=True, file=stream_out)


class TreeProcess:
    """One tree's worker process (``serve``), asked for timings one line at a time."""

    def __init__(self, tree: str, model: str, batch: int, threads: int, pool: bool):
        self.tree = tree
        package = os.path.join(tree, "minissd", "bench", "trees.py")
        if not os.path.isfile(package):
            raise FileNotFoundError(f"{tree}: no minissd/bench/trees.py there; copy minissd/bench into the "
                                    "tree's minissd package first (see python -m minissd.bench trees --help)")
        environment = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
        code = (f"from minissd.bench.trees import serve; serve({model!r}, {int(batch)}, {int(threads)}, "
                f"{bool(pool)})")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=environment,
                                        cwd=os.path.abspath(tree))
        first = self.process.stdout.readline().strip()
        if first != READY:
            self.close()
            raise RuntimeError(f"{tree}: the worker did not start (it said {first!r}; run it by hand with "
                               f"PYTHONPATH={tree} python -c \"{code}\" to see why)")

    def time(self, step: str) -> float:
        self.process.stdin.write(step + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        try:
            return float(answer)
        except ValueError:
            raise RuntimeError(f"{self.tree}: the worker answered {answer!r} for pass {step!r}") from None

    def close(self) -> None:
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait(timeout=60)


def compare(trees, model: str = "tiny", batch: int = 32, step: str = "train", pairs: int = 30,
            threads: int = 2, pool_first: bool = True, log=print) -> dict:
    """Seconds per call of every tree, in alternation; returns {"seconds": [[...] per tree], "rows": [...]}."""
    if len(trees) < 2:
        raise ValueError("trees: give at least two trees to compare")
    if pairs < 1:
        raise ValueError(f"trees: pairs must be >= 1; got {pairs}")
    workers = []
    try:
        for index, tree in enumerate(trees):
            workers.append(TreeProcess(tree, model, batch, threads, pool_first or index > 0))
        seconds = [[] for _ in workers]
        for round_ in range(pairs):
            order = range(len(workers)) if round_ % 2 == 0 else reversed(range(len(workers)))
            for index in order:  # A B, then B A: neither tree always runs right after the other
                seconds[index].append(workers[index].time(step))
    finally:
        for worker in workers:
            worker.close()
    rows = []
    for tree, values in zip(trees, seconds):
        rows.append({"tree": tree, "best_ms": 1e3 * min(values) / batch,
                     "median_ms": 1e3 * statistics.median(values) / batch})
        log(f"{tree}: best {rows[-1]['best_ms']:.2f} ms/img, median {rows[-1]['median_ms']:.2f} ms/img")
    for index in range(1, len(trees)):
        pairwise = [a / b for a, b in zip(seconds[0], seconds[index])]
        rows[index]["ratio_of_bests"] = min(seconds[0]) / min(seconds[index])
        rows[index]["median_pair_ratio"] = statistics.median(pairwise)
        log(f"{trees[0]} / {trees[index]}: ratio of the bests {rows[index]['ratio_of_bests']:.3f}, "
            f"median of the {pairs} pairwise ratios {rows[index]['median_pair_ratio']:.3f}")
    return {"seconds": seconds, "rows": rows}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m minissd.bench trees", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", help="two or more folders, each holding a minissd package")
    parser.add_argument("--model", choices=("tiny", "ssd300", "ssd512"), default="tiny")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pass", dest="step", choices=PASSES, default="train",
                        help="what is timed, as in the network benchmark (default train)")
    parser.add_argument("--pairs", type=int, default=30, help="timed calls of each tree (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="each tree's threads (default 2)")
    parser.add_argument("--no-pool-first", action="store_true",
                        help="the first tree's threads go to its BLAS, not to worker threads")
    return parser


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.trees) < 2:
        parser.error("give at least two trees")
    if args.batch_size < 1 or args.pairs < 1 or args.threads < 1:
        parser.error("--batch-size, --pairs and --threads must be positive")
    for line in machine_description("cpu"):
        print(line)
    print(f"{args.model}, batch {args.batch_size}, pass {args.step}, {args.threads} threads; "
          f"{args.pairs} calls per tree in alternation, each after an untimed one")
    try:
        return compare(args.trees, args.model, args.batch_size, args.step, args.pairs, args.threads,
                       pool_first=not args.no_pool_first)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"python -m minissd.bench trees: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
