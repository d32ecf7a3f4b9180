"""Single layers of SSD300 and of the tiny SSD: minissd's fast path, its plain im2col reference, PyTorch.

    python -m minissd.bench ops                      # forward, batch 1, 2 threads
    python -m minissd.bench ops --backward           # forward + backward
    python -m minissd.bench ops --set tiny --batch 32 --threads 1 --backward

Every convolution is timed three ways in the same rounds (``timing.best_of_paired``): minissd's
``conv2d_forward`` as the networks call it (Winograd F(2x2, 3x3) where it applies), the same
with ``algorithm="im2col"`` (the reference it is tested against) and ``torch.nn.functional.conv2d``;
each is followed by its ReLU, in place, as in the networks. Pooling layers are timed against
``max_pool2d``. PyTorch is optional: without it the torch column stays empty.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..nn.conv import conv2d_backward, conv2d_forward
from ..nn.pool import maxpool2d_backward, maxpool2d_forward
from .timing import best_of_paired, load_torch, machine_description, use_threads

# name: (C, O, H, K, stride, padding, dilation), at the batch size given on the command line
CONV_LAYERS = {
    "ssd300": {
        "conv1_2": (64, 64, 300, 3, 1, 1, 1),
        "conv2_1": (64, 128, 150, 3, 1, 1, 1),
        "conv2_2": (128, 128, 150, 3, 1, 1, 1),
        "conv3_2": (256, 256, 75, 3, 1, 1, 1),
        "conv4_3": (512, 512, 38, 3, 1, 1, 1),
        "conv5_1": (512, 512, 19, 3, 1, 1, 1),
        "head0 (38x38)": (512, 100, 38, 3, 1, 1, 1),
        "fc6 (dilated)": (512, 1024, 19, 3, 1, 6, 6),
        "fc7 (1x1)": (1024, 1024, 19, 1, 1, 0, 1),
        "conv8_2 (s2)": (256, 512, 19, 3, 2, 1, 1),
    },
    "tiny": {
        "conv1 (s2)": (3, 16, 128, 3, 2, 1, 1),
        "conv2 (s2)": (16, 32, 64, 3, 2, 1, 1),
        "conv3": (32, 64, 32, 3, 1, 1, 1),
        "conv4": (64, 64, 16, 3, 1, 1, 1),
        "head0 (16x16)": (64, 40, 16, 3, 1, 1, 1),
        "conv5 (s2)": (64, 96, 16, 3, 2, 1, 1),
    },
}
# name: (C, H, kernel, stride, padding, ceil_mode)
POOL_LAYERS = {
    "ssd300": {
        "pool1": (64, 300, 2, 2, 0, False),
        "pool3 (ceil)": (256, 75, 2, 2, 0, True),
        "pool5 (3x3 s1)": (512, 19, 3, 1, 1, False),
    },
    "tiny": {"pool3": (64, 32, 2, 2, 0, False)},
}


def _conv_calls(spec, batch: int, backward: bool, rng, torch):
    c, o, h, k, s, p, d = spec
    x = rng.standard_normal((batch, c, h, h), dtype=np.float32)
    w = (rng.standard_normal((o, c, k, k), dtype=np.float32) * np.float32(0.05))
    b = np.zeros(o, dtype=np.float32)
    dout = rng.standard_normal((batch, o, (h + 2 * p - d * (k - 1) - 1) // s + 1, (h + 2 * p - d * (k - 1) - 1) // s + 1),
                               dtype=np.float32)

    def ours(algorithm="auto"):
        def call():
            out, cache = conv2d_forward(x, w, b, s, p, d, algorithm=algorithm)
            np.maximum(out, 0, out=out)  # the ReLU every SSD conv is followed by, in place
            if backward:
                conv2d_backward(dout * (out > 0), cache)
        return call

    calls = {"minissd": ours(), "im2col": ours("im2col")}
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_(backward) for a in (x, w, b))
        tdout = torch.from_numpy(dout)

        def theirs():
            with torch.set_grad_enabled(backward):
                out = torch.nn.functional.relu(torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d))
                if backward:
                    out.backward(tdout)

        calls["torch"] = theirs
    return calls


def _pool_calls(spec, batch: int, backward: bool, rng, torch):
    c, h, k, s, p, ceil_mode = spec
    x = rng.standard_normal((batch, c, h, h), dtype=np.float32)

    def ours():
        out, cache = maxpool2d_forward(x, k, s, p, ceil_mode)
        if backward:
            maxpool2d_backward(out, cache)

    calls = {"minissd": ours}
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_(backward)

        def theirs():
            with torch.set_grad_enabled(backward):
                out = torch.nn.functional.max_pool2d(tx, k, s, p, ceil_mode=ceil_mode)
                if backward:
                    out.backward(out.detach())

        calls["torch"] = theirs
    return calls


def run(layer_set: str = "ssd300", batch: int = 1, repeat: int = 7, backward: bool = False, threads: int = 2,
        use_torch: bool = True, seed: int = 0) -> list[dict]:
    """One dict per layer: name, minissd_ms, im2col_ms (convolutions), torch_ms (or None), ratio."""
    torch, _ = load_torch(threads) if use_torch else (None, None)
    rng = np.random.default_rng(seed)
    layers = [(name, _conv_calls(spec, batch, backward, rng, torch)) for name, spec in CONV_LAYERS[layer_set].items()]
    layers += [(name, _pool_calls(spec, batch, backward, rng, torch)) for name, spec in POOL_LAYERS[layer_set].items()]
    rows = []
    for name, calls in layers:
        times = best_of_paired(calls, repeat)
        ms = {key: 1e3 * timing.best for key, timing in times.items()}
        rows.append({
            "name": name, "minissd_ms": ms["minissd"], "im2col_ms": ms.get("im2col"), "torch_ms": ms.get("torch"),
            "ratio": None if "torch" not in ms else ms["minissd"] / ms["torch"],
        })
    return rows


def format_rows(rows) -> str:
    def cell(value, digits=1):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [f"{'layer':<16} {'minissd ms':>11} {'im2col ms':>10} {'gain':>5} {'torch ms':>9} {'ratio':>6}"]
    for row in rows:
        gain = None if row["im2col_ms"] is None else row["im2col_ms"] / row["minissd_ms"]
        lines.append(f"{row['name']:<16} {row['minissd_ms']:>11.1f} {cell(row['im2col_ms']):>10} {cell(gain, 2):>5} "
                     f"{cell(row['torch_ms']):>9} {cell(row['ratio'], 2):>6}")
    convs = [r for r in rows if r["im2col_ms"] is not None and r["torch_ms"] is not None]
    if convs:
        total = sum(r["minissd_ms"] for r in convs) / sum(r["torch_ms"] for r in convs)
        lines.append(f"{'convs, summed':<16} {'':>11} {'':>10} {'':>5} {'':>9} {total:>6.2f}")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m minissd.bench ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="layer_set", choices=sorted(CONV_LAYERS), default="ssd300",
                        help="whose layers (default ssd300)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (best of them; default 7)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads of both: PyTorch's and minissd's (worker threads, BLAS one per part)")
    parser.add_argument("--no-pool", action="store_true", help="give minissd's threads to the BLAS only")
    parser.add_argument("--backward", action="store_true", help="time forward + backward")
    parser.add_argument("--no-torch", action="store_true", help="time minissd only")
    args = parser.parse_args(argv)
    if min(args.batch, args.repeat, args.threads) < 1:
        parser.error("--batch, --repeat and --threads must be positive")
    how = use_threads(args.threads, pool=not args.no_pool)
    for line in machine_description():
        print(line)
    print(how)
    rows = run(args.layer_set, args.batch, args.repeat, args.backward, args.threads, not args.no_torch)
    mode = "forward + backward" if args.backward else "forward"
    print(f"{args.layer_set} layers, batch {args.batch}, {mode}, best of {args.repeat}, {args.threads} threads")
    print(format_rows(rows))
    return rows
