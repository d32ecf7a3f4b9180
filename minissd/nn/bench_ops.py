"""Time a few SSD300 layers on the CPU, minissd.nn against PyTorch, in the same run.

    python -m minissd.nn.bench_ops                 # forward, 2 threads, batch 1
    python -m minissd.nn.bench_ops --backward      # forward + backward

Each layer is timed as the median of ``repeats`` calls, every framework right
after an untimed call of its own: OpenBLAS's worker threads spin for ~0.1 s
after a GEMM and would slow whatever runs next (design.md, "Performance").
PyTorch is optional; without it only minissd's times are printed. Set
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before starting Python to pin NumPy's
threads; ``--threads`` sets PyTorch's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from .conv import conv2d_backward, conv2d_forward
from .pool import maxpool2d_backward, maxpool2d_forward

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # PyTorch is only a yardstick here
    torch = None

# name, (C, O, H, K, stride, padding, dilation): convolutions of SSD300 at batch 1
CONV_LAYERS = {
    "conv1_2": (64, 64, 300, 3, 1, 1, 1),
    "conv2_1": (64, 128, 150, 3, 1, 1, 1),
    "conv4_3": (512, 512, 38, 3, 1, 1, 1),
    "fc6 (dilated)": (512, 1024, 19, 3, 1, 6, 6),
    "fc7 (1x1)": (1024, 1024, 19, 1, 1, 0, 1),
    "conv8_2 (s2)": (256, 512, 19, 3, 2, 1, 1),
}
# name, (C, H, kernel, stride, padding, ceil_mode)
POOL_LAYERS = {
    "pool1": (64, 300, 2, 2, 0, False),
    "pool3 (ceil)": (256, 75, 2, 2, 0, True),
    "pool5 (3x3 s1)": (512, 19, 3, 1, 1, False),
}


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of fn() over ``repeats`` calls, after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _conv_calls(spec, batch: int, backward: bool, rng):
    c, o, h, k, s, p, d = spec
    x = rng.standard_normal((batch, c, h, h), dtype=np.float32)
    w = (rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.01).astype(np.float32)
    b = np.zeros(o, dtype=np.float32)

    def ours():
        out, cache = conv2d_forward(x, w, b, s, p, d)
        np.maximum(out, 0, out=out)  # the ReLU every SSD conv is followed by, in place
        if backward:
            conv2d_backward(out, cache)

    theirs = None
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_(backward) for a in (x, w, b))

        def theirs():
            with torch.set_grad_enabled(backward):
                out = F.relu(F.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d), inplace=True)
                if backward:
                    out.backward(out.detach())

    return ours, theirs


def _pool_calls(spec, batch: int, backward: bool, rng):
    c, h, k, s, p, ceil_mode = spec
    x = rng.standard_normal((batch, c, h, h), dtype=np.float32)

    def ours():
        out, cache = maxpool2d_forward(x, k, s, p, ceil_mode)
        if backward:
            maxpool2d_backward(out, cache)

    theirs = None
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_(backward)

        def theirs():
            with torch.set_grad_enabled(backward):
                out = F.max_pool2d(tx, k, s, p, ceil_mode=ceil_mode)
                if backward:
                    out.backward(out.detach())

    return ours, theirs


def run(batch: int = 1, repeats: int = 5, backward: bool = False, threads: int = 2, seed: int = 0) -> list[dict]:
    """Time every layer; returns one dict per layer: name, ours_ms, torch_ms (or None), ratio."""
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    rows = []
    layers = [(name, _conv_calls(spec, batch, backward, rng)) for name, spec in CONV_LAYERS.items()]
    layers += [(name, _pool_calls(spec, batch, backward, rng)) for name, spec in POOL_LAYERS.items()]
    for name, (ours, theirs) in layers:
        ours_s = median_seconds(ours, repeats)
        torch_s = median_seconds(theirs, repeats) if theirs is not None else None
        rows.append({
            "name": name,
            "ours_ms": 1e3 * ours_s,
            "torch_ms": None if torch_s is None else 1e3 * torch_s,
            "ratio": None if torch_s is None else ours_s / torch_s,
        })
    return rows


def format_rows(rows) -> str:
    lines = [f"{'layer':<16} {'minissd ms':>11} {'torch ms':>9} {'ratio':>6}"]
    for row in rows:
        torch_ms = "-" if row["torch_ms"] is None else f"{row['torch_ms']:.1f}"
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"{row['name']:<16} {row['ours_ms']:>11.1f} {torch_ms:>9} {ratio:>6}")
    conv_rows = [r for r in rows if r["name"] in CONV_LAYERS and r["torch_ms"] is not None]
    if conv_rows:
        total = sum(r["ours_ms"] for r in conv_rows) / sum(r["torch_ms"] for r in conv_rows)
        lines.append(f"{'convs, summed':<16} {'':>11} {'':>9} {total:>6.2f}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads")
    parser.add_argument("--backward", action="store_true", help="time forward + backward")
    args = parser.parse_args(argv)
    rows = run(args.batch, args.repeats, args.backward, args.threads)
    mode = "forward + backward" if args.backward else "forward"
    print(f"SSD300 layers, batch {args.batch}, {mode}, median of {args.repeats}")
    print(format_rows(rows))


if __name__ == "__main__":
    main()
