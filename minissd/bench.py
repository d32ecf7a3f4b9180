"""Time the SSD networks per image: forward, and forward + backward, against torchvision in the same run.

    python -m minissd.bench                                   # SSD300 and tiny, batch 1 and 4, CPU
    python -m minissd.bench --models ssd300 --batch-sizes 1 --repeat 7
    python -m minissd.bench --device gpu                      # CuPy (and torch on CUDA where present)

What is timed (median of ``--repeat`` runs, each framework right after an untimed call of its own:
OpenBLAS's worker threads spin ~0.1 s after a GEMM and slow whatever runs next, design.md
"Performance"):

    forward        minissd: model.forward(images) in eval mode, the network only
                   torchvision: head(backbone(images)) under no_grad, the same network
    fwd+bwd        minissd: zero_grad, forward, backward(grad_loc, grad_conf) with random upstream
                   gradients, down to every parameter (the image gets none)
                   torchvision: the same network in train mode, autograd backward of
                   sum(loc * grad_loc) + sum(conf * grad_conf)
    train          (with --train-step) minissd: forward, matching of 3 random boxes per image,
                   MultiBox loss, backward; torchvision: model(images, targets) in train mode
                   (its transform, anchors, matching and loss) and backward of the summed losses

Per-image times are the batch time over the batch size. torchvision's ssd300_vgg16 is built with
random weights (``weights=None``), only where torch and torchvision are installed; the tiny model
has no torchvision counterpart. PyTorch gets ``--threads`` threads (2 on the reference machine);
NumPy's BLAS takes its thread count from OPENBLAS_NUM_THREADS / OMP_NUM_THREADS at start-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from . import backend, models

MODELS = {"ssd300": lambda: models.ssd300(21), "ssd512": lambda: models.ssd512(21),
          "tiny": lambda: models.tiny_ssd(21)}


def median_seconds(fn, repeat: int, synchronize=lambda: None, warmup: int = 1) -> float:
    """Median wall time of fn() over ``repeat`` calls, after ``warmup`` untimed calls, each synchronised."""
    for _ in range(warmup):
        fn()
    synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_description(device: str) -> list[str]:
    """CPU model, cores, NumPy and BLAS, and the GPU when timing on one."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            cpu = next(line.split(":", 1)[1].strip() for line in stream if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = "unknown BLAS"
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{config.get('name', '?')} {config.get('version', '')}".strip()
    except Exception:  # older NumPy: no dict mode
        pass
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"
    lines = [
        f"machine: {cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}",
        f"numpy {np.__version__} with {blas} (BLAS threads: {threads}), Python {platform.python_version()}",
    ]
    if device == "gpu":
        cupy = backend.cupy_module()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        lines.append(f"device: gpu, {props['name'].decode()} (CuPy {cupy.__version__})")
    else:
        lines.append("device: cpu")
    return lines


def _minissd_calls(model, batch: int, rng, xp):
    size = model.image_size
    images = xp.asarray(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
    grad_loc = grad_conf = None

    def forward():
        model.eval()
        model.forward(images)

    def forward_backward():
        nonlocal grad_loc, grad_conf
        model.train()
        model.zero_grad()
        loc, conf = model.forward(images)
        if grad_loc is None:  # drawn once, outside the timing (the warm-up call makes them)
            grad_loc = xp.asarray(rng.standard_normal(loc.shape, dtype=np.float32))
            grad_conf = xp.asarray(rng.standard_normal(conf.shape, dtype=np.float32))
        model.backward(grad_loc, grad_conf)

    return images, forward, forward_backward


def random_targets(batch: int, rng, boxes_per_image: int = 3, num_classes: int = 21):
    """Per image (G, 4) normalised xyxy boxes and (G,) labels in 1..L-1, for a timing run."""
    targets = []
    for _ in range(batch):
        corner = rng.uniform(0.0, 0.6, (boxes_per_image, 2))
        size = rng.uniform(0.1, 0.4, (boxes_per_image, 2))
        targets.append((np.concatenate([corner, corner + size], axis=1).astype(np.float32),
                        rng.integers(1, num_classes, boxes_per_image)))
    return targets


def _minissd_train_step(model, images, targets, xp):
    """forward, matching, MultiBox loss and backward: what one training iteration computes."""
    from .loss import multibox_loss
    from .matching import match_batch

    boxes = [xp.asarray(b) for b, _ in targets]
    labels = [xp.asarray(l) for _, l in targets]

    def step():
        model.train()
        model.zero_grad()
        loc, conf = model.forward(images)
        loc_targets, conf_targets = match_batch(boxes, labels, model.priors)
        out = multibox_loss(loc, conf, loc_targets, conf_targets)
        model.backward(out.grad_loc, out.grad_conf)

    return step


def _torchvision_train_step(torch, network, images, targets, device: str):
    target = "cuda" if device == "gpu" else "cpu"
    size = images.shape[-1]
    inputs = [torch.from_numpy(backend.to_numpy(image)).to(target) for image in images]
    wanted = [{"boxes": torch.from_numpy(b * size).to(target), "labels": torch.from_numpy(l).to(target)}
              for b, l in targets]

    def step():
        network.train()
        network.zero_grad(set_to_none=False)
        losses = network(inputs, wanted)
        sum(losses.values()).backward()

    return step


def _torchvision_calls(torch, network, images, grads, device: str):
    """forward and fwd+bwd of torchvision's backbone + head on the same images and gradients."""
    target = "cuda" if device == "gpu" else "cpu"
    inputs = torch.from_numpy(backend.to_numpy(images)).to(target)
    grad_loc, grad_conf = (torch.from_numpy(backend.to_numpy(g)).to(target) for g in grads)

    def run():
        features = network.backbone(inputs)
        out = network.head(list(features.values()))
        return out["bbox_regression"], out["cls_logits"]

    def forward():
        network.eval()
        with torch.no_grad():
            run()

    def forward_backward():
        network.train()
        network.zero_grad(set_to_none=False)
        loc, conf = run()
        ((loc * grad_loc).sum() + (conf * grad_conf).sum()).backward()

    return forward, forward_backward


def _load_torchvision(threads: int, device: str):
    try:
        import torch
        from torchvision.models.detection import ssd300_vgg16
    except ImportError:
        return None, None
    torch.set_num_threads(threads)
    if device == "gpu" and not torch.cuda.is_available():
        return torch, None
    network = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
    return torch, network.to("cuda" if device == "gpu" else "cpu")


def run(model_names=("ssd300", "tiny"), batch_sizes=(1, 4), repeat: int = 5, device: str = "cpu",
        threads: int = 2, use_torch: bool = True, seed: int = 0, train_step: bool = False,
        frozen_step: bool = False, log=print) -> list[dict]:
    """Time every (model, batch size, pass); returns one dict per row (ms per image, ratio or None)."""
    device = backend.resolve_device(device)
    xp = backend.array_module(device)
    sync = (lambda: backend.synchronize(xp))
    torch, network = _load_torchvision(threads, device) if use_torch and "ssd300" in model_names else (None, None)
    torch_sync = (lambda: torch.cuda.synchronize()) if torch is not None and device == "gpu" else (lambda: None)
    if network is not None:
        import torchvision

        log(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {threads} threads")
    rng = np.random.default_rng(seed)
    rows = []
    log(HEADER)
    for name in model_names:
        model = MODELS[name]().to(device)
        for batch in batch_sizes:
            images, forward, forward_backward = _minissd_calls(model, batch, rng, xp)
            timings = {"forward": median_seconds(forward, repeat, sync)}
            try:
                timings["fwd+bwd"] = median_seconds(forward_backward, repeat, sync)
            except ValueError as error:  # BatchNorm in train mode needs two values per channel
                log(f"{name:<7} {batch:>5}  fwd+bwd  skipped: {error}")
            targets = random_targets(batch, rng, num_classes=model.num_classes)
            if train_step and "fwd+bwd" in timings:
                timings["train"] = median_seconds(_minissd_train_step(model, images, targets, xp), repeat, sync)
                if frozen_step:  # --freeze-backbone: the backward stops above the frozen body
                    from .models.transfer import backbone_parameter_names

                    model.freeze(backbone_parameter_names(model))
                    timings["frozen"] = median_seconds(_minissd_train_step(model, images, targets, xp), repeat, sync)
                    model.freeze()
            theirs = {}
            if name == "ssd300" and network is not None:
                loc_shape, conf_shape = (batch, 8732, 4), (batch, 8732, 21)
                grads = (rng.standard_normal(loc_shape, dtype=np.float32),
                         rng.standard_normal(conf_shape, dtype=np.float32))
                tv_forward, tv_forward_backward = _torchvision_calls(torch, network, images, grads, device)
                theirs = {"forward": median_seconds(tv_forward, repeat, torch_sync),
                          "fwd+bwd": median_seconds(tv_forward_backward, repeat, torch_sync)}
                if train_step:
                    tv_step = _torchvision_train_step(torch, network, images, targets, device)
                    theirs["train"] = median_seconds(tv_step, repeat, torch_sync)
            for step, seconds in timings.items():
                other = theirs.get(step)
                row = {"model": name, "batch": batch, "pass": step, "minissd_ms": 1e3 * seconds / batch,
                       "torch_ms": None if other is None else 1e3 * other / batch,
                       "ratio": None if other is None else seconds / other}
                rows.append(row)
                log(format_row(row))
        model.clear_cache()
    return rows


HEADER = f"{'model':<7} {'batch':>5}  {'pass':<8} {'minissd ms/img':>14} {'torch ms/img':>12} {'ratio':>6}"


def format_row(row) -> str:
    torch_ms = "-" if row["torch_ms"] is None else f"{row['torch_ms']:.1f}"
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
    return (f"{row['model']:<7} {row['batch']:>5}  {row['pass']:<8} {row['minissd_ms']:>14.1f} "
            f"{torch_ms:>12} {ratio:>6}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m minissd.bench",
        description="Forward and forward+backward time per image of minissd's SSD networks, "
                    "with torchvision's ssd300_vgg16 in the same run where it is installed.",
    )
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None, help="default: MINISSD_DEVICE or cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per row (median); one warm-up run first")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["ssd300", "tiny"])
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (default 2)")
    parser.add_argument("--no-torch", action="store_true", help="time minissd only")
    parser.add_argument("--train-step", action="store_true",
                        help="also time a whole training step (matching + loss + backward) on both sides")
    parser.add_argument("--frozen-step", action="store_true",
                        help="with --train-step: also a step with the backbone frozen (minissd train "
                             "--freeze-backbone), row 'frozen'")
    args = parser.parse_args(argv)
    if args.repeat < 1 or min(args.batch_sizes) < 1:
        parser.error("--repeat and --batch-sizes must be positive")
    device = backend.resolve_device(args.device)
    for line in machine_description(device):
        print(line)
    print(f"median of {args.repeat} after one warm-up; PyTorch threads: {args.threads}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    rows = run(args.models, args.batch_sizes, args.repeat, device, args.threads, not args.no_torch,
               train_step=args.train_step, frozen_step=args.frozen_step)
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    if not ratios and not args.no_torch and "ssd300" in args.models:
        print("(torch / torchvision not installed: no comparison)")


if __name__ == "__main__":
    main()
