"""Whole networks per image: forward, forward + backward and a training step, against torchvision.

    python -m minissd.bench network                                  # SSD300 and tiny, batch 1 and 4
    python -m minissd.bench network --models ssd300 --batch-sizes 1 4 --repeat 7
    python -m minissd.bench network --models tiny --batch-sizes 32 --threads 1 --train-step --no-torch
    python -m minissd.bench network --models ssd300 --batch-sizes 8 --repeat 3 --train-step --frozen-step --no-torch

What is timed, per model and batch size (``timing.best_of_paired``: best of ``--repeat`` rounds,
each framework right after an untimed call of its own, minissd and torchvision in the same
rounds):

    forward   minissd: model.forward(images) in eval mode, the network only
              torchvision: head(backbone(images)) under no_grad, the same network
    fwd+bwd   minissd: zero_grad, forward, backward(grad_loc, grad_conf) with random upstream
              gradients, down to every parameter (the image gets none)
              torchvision: the same network in train mode, autograd backward of
              sum(loc * grad_loc) + sum(conf * grad_conf)
    train     (--train-step) minissd: forward, matching of 3 random boxes per image, MultiBox
              loss, backward; torchvision: model(images, targets) in train mode (its transform,
              anchors, matching and loss) and backward of the summed losses
    frozen    (--frozen-step, minissd only) the train step with the VGG16 frozen
              (``minissd train --freeze-backbone``): the backward stops above it

Per-image times are the batch time over the batch size. torchvision's ssd300_vgg16 is built with
random weights and minissd's SSD300 is given the same weights (``interop.load_torchvision_ssd300``),
so both compute the same function; the run prints how far apart their outputs are. ``--threads``
is the thread count of both, set once: PyTorch's, and minissd's worker threads (``nn.parallel``,
the BLAS then one thread per part; ``--no-pool``: the BLAS's own threads instead, the old way).
"""

from __future__ import annotations

import argparse

import numpy as np

from .. import backend, models
from .timing import best_of_paired, load_torch, machine_description, use_threads

MODELS = {"ssd300": lambda: models.ssd300(21), "ssd512": lambda: models.ssd512(21),
          "tiny": lambda: models.tiny_ssd(21)}


def random_targets(batch: int, rng, boxes_per_image: int = 3, num_classes: int = 21):
    """Per image (G, 4) normalised xyxy boxes and (G,) labels in 1..L-1, for a timing run."""
    targets = []
    for _ in range(batch):
        corner = rng.uniform(0.0, 0.6, (boxes_per_image, 2))
        size = rng.uniform(0.1, 0.4, (boxes_per_image, 2))
        targets.append((np.concatenate([corner, corner + size], axis=1).astype(np.float32),
                        rng.integers(1, num_classes, boxes_per_image)))
    return targets


def minissd_calls(model, images, targets, rng) -> dict:
    """{pass: fn} of minissd for one model and batch (forward, fwd+bwd, train)."""
    from ..loss import multibox_loss
    from ..matching import match_batch

    xp = backend.get_array_module(images)
    loc_shape = (images.shape[0], model.priors.shape[0], 4)
    grad_loc = xp.asarray(rng.standard_normal(loc_shape, dtype=np.float32))
    grad_conf = xp.asarray(rng.standard_normal(loc_shape[:2] + (model.num_classes,), dtype=np.float32))
    boxes = [xp.asarray(b) for b, _ in targets]
    labels = [xp.asarray(label) for _, label in targets]

    def forward():
        model.eval()
        model.forward(images)

    def forward_backward():
        model.train()
        model.zero_grad()
        model.forward(images)
        model.backward(grad_loc, grad_conf)

    def train():
        model.train()
        model.zero_grad()
        loc, conf = model.forward(images)
        loc_targets, conf_targets = match_batch(boxes, labels, model.priors)
        out = multibox_loss(loc, conf, loc_targets, conf_targets)
        model.backward(out.grad_loc, out.grad_conf)

    return {"forward": forward, "fwd+bwd": forward_backward, "train": train,
            "gradients": (grad_loc, grad_conf)}


def torchvision_calls(torch, network, images, gradients, targets, device: str) -> dict:
    """{pass: fn} of torchvision's ssd300_vgg16 on the same images, upstream gradients and targets."""
    target = "cuda" if device == "gpu" else "cpu"
    inputs = torch.from_numpy(backend.to_numpy(images)).to(target)
    grad_loc, grad_conf = (torch.from_numpy(backend.to_numpy(g)).to(target) for g in gradients)
    size = images.shape[-1]
    image_list = [torch.from_numpy(backend.to_numpy(image)).to(target) for image in images]
    wanted = [{"boxes": torch.from_numpy(b * size).to(target), "labels": torch.from_numpy(label).to(target)}
              for b, label in targets]

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

    def train():
        network.train()
        network.zero_grad(set_to_none=False)
        losses = network(image_list, wanted)
        sum(losses.values()).backward()

    return {"forward": forward, "fwd+bwd": forward_backward, "train": train, "run": run}


def torchvision_ssd300(torch, device: str):
    """torchvision's ssd300_vgg16 (random weights, 21 classes) on the device, or None without CUDA."""
    from torchvision.models.detection import ssd300_vgg16

    if device == "gpu" and not torch.cuda.is_available():
        return None
    torch.manual_seed(0)
    network = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
    return network.to("cuda" if device == "gpu" else "cpu")


def same_weights_model(network, device: str):
    """minissd's SSD300 holding ``network``'s weights, so that both sides compute the same function."""
    from ..interop import load_torchvision_ssd300

    state = {name: value.detach().cpu().numpy() for name, value in network.state_dict().items()}
    return load_torchvision_ssd300(state, num_classes=21, device=device)


def output_difference(torch, model, calls, images) -> float:
    """max |minissd - torchvision| over loc and conf, relative to the largest output magnitude."""
    model.eval()
    loc, conf = model.forward(images)
    with torch.no_grad():
        theirs = [t.cpu().numpy() for t in calls["run"]()]
    ours = [backend.to_numpy(loc), backend.to_numpy(conf)]
    scale = max(float(np.abs(t).max()) for t in theirs) or 1.0
    return max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs)) / scale


def run(model_names=("ssd300", "tiny"), batch_sizes=(1, 4), repeat: int = 7, device: str = "cpu",
        threads: int = 2, use_torch: bool = True, seed: int = 0, train_step: bool = False,
        frozen_step: bool = False, log=print) -> list[dict]:
    """Time every (model, batch size, pass); one dict per row (ms per image, best of ``repeat``)."""
    device = backend.resolve_device(device)
    xp = backend.array_module(device)
    sync = (lambda: backend.synchronize(xp))
    torch, torchvision = load_torch(threads) if use_torch and "ssd300" in model_names else (None, None)
    network = torchvision_ssd300(torch, device) if torch is not None else None
    torch_sync = (lambda: torch.cuda.synchronize()) if network is not None and device == "gpu" else (lambda: None)
    if network is not None:
        log(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {threads} threads")
    rng = np.random.default_rng(seed)
    rows = []
    log(HEADER)
    for name in model_names:
        paired = name == "ssd300" and network is not None
        model = same_weights_model(network, device) if paired else MODELS[name]().to(device)
        for batch in batch_sizes:
            size = model.image_size
            images = xp.asarray(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
            targets = random_targets(batch, rng, num_classes=model.num_classes)
            ours = minissd_calls(model, images, targets, rng)
            theirs = (torchvision_calls(torch, network, images, ours["gradients"], targets, device)
                      if paired else {})
            if paired and batch == batch_sizes[0]:
                log(f"same weights: outputs differ by {output_difference(torch, model, theirs, images):.1e} "
                    "of their largest magnitude")
            passes = ["forward", "fwd+bwd"] + (["train"] if train_step else [])
            if frozen_step and train_step:
                passes.append("frozen")
            for step in passes:
                calls = {}
                if step == "frozen":  # --freeze-backbone: the backward stops above the frozen body
                    from ..models.transfer import backbone_parameter_names

                    model.freeze(backbone_parameter_names(model))
                    calls["minissd"] = ours["train"]
                else:
                    calls["minissd"] = ours[step]
                    if step in theirs:
                        calls["torch"] = theirs[step]
                try:
                    times = best_of_paired(calls, repeat, {"minissd": sync, "torch": torch_sync})
                except ValueError as error:  # BatchNorm in train mode needs two values per channel
                    log(f"{name:<7} {batch:>5}  {step:<8} skipped: {error}")
                    continue
                finally:
                    model.freeze()
                row = make_row(name, batch, step, times)
                rows.append(row)
                log(format_row(row))
        model.clear_cache()
    return rows


def make_row(model: str, batch: int, step: str, times: dict) -> dict:
    ours, theirs = times["minissd"], times.get("torch")
    return {"model": model, "batch": batch, "pass": step,
            "minissd_ms": 1e3 * ours.best / batch, "minissd_median_ms": 1e3 * ours.median / batch,
            "torch_ms": None if theirs is None else 1e3 * theirs.best / batch,
            "ratio": None if theirs is None else ours.best / theirs.best}


HEADER = (f"{'model':<7} {'batch':>5}  {'pass':<8} {'minissd ms/img':>14} {'torch ms/img':>12} {'ratio':>6}"
          f" {'(minissd median)':>17}")


def format_row(row) -> str:
    torch_ms = "-" if row["torch_ms"] is None else f"{row['torch_ms']:.1f}"
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
    return (f"{row['model']:<7} {row['batch']:>5}  {row['pass']:<8} {row['minissd_ms']:>14.1f} "
            f"{torch_ms:>12} {ratio:>6} {row['minissd_median_ms']:>17.1f}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m minissd.bench network", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None, help="default: MINISSD_DEVICE or cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per row (best of them; default 7)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["ssd300", "tiny"])
    parser.add_argument("--threads", type=int, default=2,
                        help="threads of both frameworks: PyTorch's and NumPy's BLAS (default 2)")
    parser.add_argument("--no-pool", action="store_true",
                        help="give minissd's threads to the BLAS only, no worker threads of its own")
    parser.add_argument("--no-torch", action="store_true", help="time minissd only")
    parser.add_argument("--train-step", action="store_true",
                        help="also time a whole training step (matching + loss + backward) on both sides")
    parser.add_argument("--frozen-step", action="store_true",
                        help="with --train-step: also a step with the backbone frozen (minissd train "
                             "--freeze-backbone), row 'frozen'")
    return parser


def main(argv=None) -> list[dict]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeat < 1 or min(args.batch_sizes) < 1 or args.threads < 1:
        parser.error("--repeat, --batch-sizes and --threads must be positive")
    how = use_threads(args.threads, pool=not args.no_pool)
    device = backend.resolve_device(args.device)
    for line in machine_description(device):
        print(line)
    print(f"best of {args.repeat} rounds, each call after an untimed one of the same framework; {how}")
    rows = run(args.models, args.batch_sizes, args.repeat, device, args.threads, not args.no_torch,
               train_step=args.train_step, frozen_step=args.frozen_step)
    if not args.no_torch and "ssd300" in args.models and not any(r["ratio"] is not None for r in rows):
        print("(torch / torchvision not installed: no comparison)")
    return rows
