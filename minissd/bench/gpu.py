"""The GPU issue's table: minissd against torchvision's ssd300_vgg16 on the same device, in one run.

    python -m minissd.bench gpu --device gpu --json bench_gpu.json           # SSD300, batch 1 and 32, fp32
    python -m minissd.bench gpu --device gpu --precisions fp32 tf32         # TF32 rows from a child process
    python -m minissd.bench gpu --models tiny --batch-sizes 2 --repeat 1 --no-torch    # a CPU smoke run

Images per second (batch size / median seconds per batch) of three passes:

    network   minissd: model.forward(images) in eval mode -> loc, conf
              torchvision: head(backbone(images)) under no_grad -> bbox_regression, cls_logits
    end2end   a preprocessed (N, 3, S, S) batch in, per-image detections out (score > 0.01, top 400
              per class, NMS 0.45, best 200 per image), left on the device:
              minissd: forward + nms_batched.postprocess_batched (--postprocess loop: nms.postprocess)
              torchvision, --torch-path bypass (default): backbone, head, anchor_generator and
              postprocess_detections, i.e. SSD.forward without its transform (normalise + resize
              300 -> 300) and its box rescaling; --torch-path full: model.eval()(list of images)
    postprocess  (optional) post-processing alone, on the same random network outputs
              (loc ~ N(0, 0.25), conf ~ N(0, 1): nearly every score passes 0.01, the worst case):
              minissd postprocess_batched (or the loop) vs torchvision postprocess_detections
    train     one SGD step on 3 random boxes per image (lr 1e-5: the work of a step, values kept tame):
              minissd: zero_grad, forward, match_batch_device, multibox_loss (hard negatives),
              backward, SGD.step; torchvision, bypass: backbone, head, anchors, its matcher per
              image, compute_loss, backward, step; full: model.train()(images, targets) + backward + step

Timing (``timing.median_seconds``, the rule for a lent GPU that nothing else uses):
``--warmup`` untimed calls, then the median of ``--repeat`` (``--train-repeat``) calls, each
closed by a device synchronise (cupy stream / torch.cuda.synchronize). fp32 means full float32
arithmetic on both sides (CUPY_TF32=0; torch fp32_precision "ieee" for cuBLAS and cuDNN conv);
tf32 allows TensorFloat-32 on both. CuPy reads CUPY_TF32 once, at its first float32 matrix
product, so each further precision is timed in a child process with its own CUPY_TF32.
The card's name, the versions and the settings are printed with the table and written to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .. import backend, models
from .network import random_targets
from .timing import machine_description, median_seconds

MODELS = {"ssd300": lambda: models.ssd300(21), "ssd512": lambda: models.ssd512(21),
          "tiny": lambda: models.tiny_ssd(21)}
PASSES = ("network", "end2end", "train")  # the table
EXTRA_PASSES = ("postprocess",)
TARGETS = {"network": 0.9, "end2end": 2.0, "train": 1.0}  # minissd / torchvision images/s, fp32 (the issue)
LEARNING_RATE = 1e-5


def set_torch_precision(torch, precision: str) -> str:
    """fp32: full float32 in cuBLAS and cuDNN convolutions (PyTorch's cuDNN default is TF32); tf32: allowed."""
    mode = "tf32" if precision == "tf32" else "ieee"
    backends = torch.backends
    if hasattr(backends.cudnn, "conv") and hasattr(backends.cudnn.conv, "fp32_precision"):
        backends.cuda.matmul.fp32_precision = mode
        backends.cudnn.conv.fp32_precision = mode
        backends.cudnn.rnn.fp32_precision = mode  # never mix the new API with the legacy flags
        return f"torch fp32_precision matmul={backends.cuda.matmul.fp32_precision} conv={backends.cudnn.conv.fp32_precision}"
    backends.cuda.matmul.allow_tf32 = backends.cudnn.allow_tf32 = mode == "tf32"
    return f"torch allow_tf32={mode == 'tf32'}"


# --------------------------------------------------------------------------
# minissd's three passes
# --------------------------------------------------------------------------

def random_outputs(batch: int, num_priors: int, num_classes: int, rng):
    """Network-shaped random outputs on the host: loc (N, P, 4), conf (N, P, L) float32."""
    loc = rng.standard_normal((batch, num_priors, 4), dtype=np.float32) * np.float32(0.5)
    return loc, rng.standard_normal((batch, num_priors, num_classes), dtype=np.float32)


def minissd_calls(model, images, targets, postprocess: str = "batched", outputs=None) -> dict:
    """{pass: fn} for one model and batch.

    targets: per-image (boxes (G, 4) normalised, labels (G,)); outputs: host (loc, conf) for
    the "postprocess" pass (``random_outputs``).
    """
    from ..loss import multibox_loss
    from ..matching_batched import match_batch_device, pad_ground_truth
    from ..nms import postprocess as postprocess_loop
    from ..nms_batched import postprocess_batched
    from ..nn import SGD

    xp = backend.get_array_module(images)
    finish = postprocess_batched if postprocess == "batched" else postprocess_loop
    gt_boxes, gt_labels, valid = (xp.asarray(a) for a in pad_ground_truth(*zip(*targets)))
    optimizer = SGD(model.params, model.grads, lr=LEARNING_RATE, momentum=0.9, weight_decay=5e-4)

    def network():
        model.eval()
        return model.forward(images)

    def end2end():
        model.eval()
        loc, conf = model.forward(images)
        return finish(loc, conf, model.priors)

    fixed = None if outputs is None else tuple(xp.asarray(a) for a in outputs)

    def postprocess_only():
        return finish(*fixed, model.priors)

    def train():
        model.train()
        model.zero_grad()
        loc, conf = model.forward(images)
        loc_t, conf_t = match_batch_device(gt_boxes, gt_labels, valid, model.priors, validate=False)
        out = multibox_loss(loc, conf, loc_t, conf_t)
        model.backward(out.grad_loc, out.grad_conf)
        optimizer.step()

    calls = {"network": network, "end2end": end2end, "train": train}
    if fixed is not None:
        calls["postprocess"] = postprocess_only
    return calls


# --------------------------------------------------------------------------
# torchvision's three passes
# --------------------------------------------------------------------------

def load_torchvision(device: str, threads: int):
    """(torch, network on the device) or (None, None) where torch/torchvision (or CUDA) is missing."""
    try:
        import torch
        from torchvision.models.detection import ssd300_vgg16
    except ImportError:
        return None, None
    if device == "gpu" and not torch.cuda.is_available():
        return None, None
    torch.set_num_threads(threads)
    network = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=21)
    return torch, network.to("cuda" if device == "gpu" else "cpu")


def torchvision_calls(torch, network, images, targets, path: str = "bypass", outputs=None) -> dict:
    """{pass: fn} for torchvision's SSD300 on the same images, targets (in pixels) and outputs."""
    from torchvision.models.detection.image_list import ImageList
    from torchvision.ops import box_iou

    target = next(network.parameters()).device
    x = torch.from_numpy(backend.to_numpy(images)).to(target)  # (N, 3, S, S)
    size = x.shape[-1]
    wanted = [{"boxes": torch.from_numpy(b * size).to(target), "labels": torch.from_numpy(l).to(target)}
              for b, l in targets]
    optimizer = torch.optim.SGD(network.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=5e-4)

    def heads():
        features = list(network.backbone(x).values())
        return features, network.head(features)

    def network_pass():
        network.eval()
        with torch.no_grad():
            return heads()[1]

    def end2end():
        network.eval()
        with torch.no_grad():
            if path == "full":
                return network(list(x))
            features, outputs = heads()
            image_list = ImageList(x, [(size, size)] * x.shape[0])
            anchors = network.anchor_generator(image_list, features)
            return network.postprocess_detections(outputs, anchors, image_list.image_sizes)

    def train():
        network.train()
        optimizer.zero_grad()
        if path == "full":
            losses = network(list(x), wanted)
        else:
            features, outputs = heads()
            anchors = network.anchor_generator(ImageList(x, [(size, size)] * x.shape[0]), features)
            matched = [network.proposal_matcher(box_iou(t["boxes"], a)) for t, a in zip(wanted, anchors)]
            losses = network.compute_loss(wanted, outputs, anchors, matched)
        sum(losses.values()).backward()
        optimizer.step()

    calls = {"network": network_pass, "end2end": end2end, "train": train}
    if outputs is not None:
        with torch.no_grad():  # anchors once, outside the timing: only the post-processing is timed
            image_list = ImageList(x, [(size, size)] * x.shape[0])
            anchors = network.anchor_generator(image_list, heads()[0])
        fixed = {"bbox_regression": torch.from_numpy(outputs[0]).to(target),
                 "cls_logits": torch.from_numpy(outputs[1]).to(target)}

        def postprocess_only():
            with torch.no_grad():
                return network.postprocess_detections(fixed, anchors, image_list.image_sizes)

        calls["postprocess"] = postprocess_only
    return calls


def torch_description(device: str) -> str:
    """torch and torchvision versions and, on the GPU, the card torch sees (the same one, we check by name)."""
    try:
        import torch
        import torchvision
    except ImportError:
        return "torch / torchvision not installed: minissd rows only"
    line = f"torch {torch.__version__}, torchvision {torchvision.__version__}"
    if device == "gpu":
        if not torch.cuda.is_available():
            return line + ", but torch sees no CUDA device: minissd rows only"
        line += f", {torch.cuda.get_device_name()}, cudnn {torch.backends.cudnn.version()}"
        line += f", cudnn.benchmark={torch.backends.cudnn.benchmark}"
    return line


# --------------------------------------------------------------------------
# the run and the table
# --------------------------------------------------------------------------

def run(model_names=("ssd300",), batch_sizes=(1, 32), passes=PASSES, repeat: int = 30, train_repeat: int = 10,
        warmup: int = 3, device: str | None = None, use_torch: bool = True, precision: str = "fp32",
        torch_path: str = "bypass", postprocess: str = "batched", threads: int = 2, seed: int = 0,
        log=print) -> list[dict]:
    """One row per (model, batch, pass): images/s of minissd and torchvision, their ratio, the target."""
    device = backend.resolve_device(device)
    xp = backend.array_module(device)
    torch, network = load_torchvision(device, threads) if use_torch and "ssd300" in model_names else (None, None)
    if torch is not None:
        log(set_torch_precision(torch, precision))
    sync = (lambda: backend.synchronize(xp))
    torch_sync = (lambda: torch.cuda.synchronize()) if torch is not None and device == "gpu" else (lambda: None)
    rng = np.random.default_rng(seed)
    rows = []
    for name in model_names:
        model = MODELS[name]().to(device)
        for batch in batch_sizes:
            size = model.image_size
            images = xp.asarray(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
            targets = random_targets(batch, rng, num_classes=model.num_classes)
            outputs = (random_outputs(batch, model.priors.shape[0], model.num_classes, rng)
                       if "postprocess" in passes else None)
            ours = minissd_calls(model, images, targets, postprocess, outputs)
            theirs = (torchvision_calls(torch, network, images, targets, torch_path, outputs)
                      if network is not None and name == "ssd300" else {})
            for step in passes:
                times = train_repeat if step == "train" else repeat
                row = {"model": name, "batch": batch, "pass": step, "precision": precision,
                       "minissd_img_s": None, "torch_img_s": None, "ratio": None, "target": None, "note": ""}
                try:
                    row["minissd_img_s"] = batch / median_seconds(ours[step], times, sync, warmup)
                except ValueError as error:  # BatchNorm in train mode needs two values per channel
                    row["note"] = f"minissd skipped: {error}"
                if step in theirs:
                    row["torch_img_s"] = batch / median_seconds(theirs[step], times, torch_sync, warmup)
                    if row["minissd_img_s"] is not None:
                        row["ratio"] = row["minissd_img_s"] / row["torch_img_s"]
                    row["target"] = TARGETS.get(step) if precision == "fp32" else None
                rows.append(row)
                log(format_row(row))
        model.clear_cache()
    return rows


HEADER = ("| model | batch | precision | pass | minissd img/s | torchvision img/s | minissd / torchvision "
          "| target | met | note |")


def format_row(row) -> str:
    def number(value, digits=1):
        return "-" if value is None else f"{value:.{digits}f}"

    met = "-" if row["target"] is None or row["ratio"] is None else ("yes" if row["ratio"] >= row["target"] else "no")
    target = "-" if row["target"] is None else f">= {row['target']}x"
    cells = [row["model"], str(row["batch"]), row["precision"], row["pass"], number(row["minissd_img_s"]),
             number(row["torch_img_s"]), number(row["ratio"], 2), target, met, row["note"].replace("|", "/")]
    return "| " + " | ".join(cells) + " |"


def format_table(rows) -> list[str]:
    return [HEADER, "|" + "---|" * 10] + [format_row(row) for row in rows]


def _child_rows(argv, precision: str) -> list[dict]:
    """Rows of one more precision, timed in a child process with its own CUPY_TF32."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.json")
        env = dict(os.environ, CUPY_TF32="1" if precision == "tf32" else "0")
        command = [sys.executable, "-m", "minissd.bench", "gpu", *argv, "--precisions", precision, "--json", path]
        subprocess.run(command, env=env, check=True, stdout=sys.stderr)  # its progress goes to stderr
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)["rows"]


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m minissd.bench gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None, help="default: MINISSD_DEVICE or cpu")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["ssd300"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--passes", nargs="+", choices=PASSES + EXTRA_PASSES, default=list(PASSES))
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "tf32"), default=["fp32"])
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per network/end2end row (median)")
    parser.add_argument("--train-repeat", type=int, default=10, help="timed calls per train row (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (kernel compilation, pools)")
    parser.add_argument("--torch-path", choices=("bypass", "full"), default="bypass")
    parser.add_argument("--postprocess", choices=("batched", "loop"), default="batched")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (CPU runs)")
    parser.add_argument("--no-torch", action="store_true", help="time minissd only")
    parser.add_argument("--json", help="also write the rows and the machine to this JSON file")
    args = parser.parse_args(argv)
    if min(args.repeat, args.train_repeat, *args.batch_sizes) < 1 or args.warmup < 0:
        parser.error("--repeat, --train-repeat and --batch-sizes must be positive, --warmup >= 0")
    device = backend.resolve_device(args.device)
    first, *others = args.precisions
    if device == "gpu" and os.environ.get("CUPY_TF32", "0") != ("1" if first == "tf32" else "0"):
        os.environ["CUPY_TF32"] = "1" if first == "tf32" else "0"  # before CuPy's first float32 GEMM
    machine = machine_description(device) + ([torch_description(device)] if not args.no_torch else [])
    for line in machine:
        print(line)
    print(f"{time.strftime('%Y-%m-%d %H:%M')}; median of {args.repeat} (train {args.train_repeat}) after "
          f"{args.warmup} warm-up calls; torchvision path: {args.torch_path}; postprocess: {args.postprocess}; "
          f"CUPY_TF32={os.environ.get('CUPY_TF32', 'unset')}")
    if device == "cpu" and ("tf32" in args.precisions):
        print("(TF32 changes nothing on the CPU: the tf32 rows repeat the fp32 work)")
    rows = run(args.models, args.batch_sizes, args.passes, args.repeat, args.train_repeat, args.warmup, device,
               not args.no_torch, first, args.torch_path, args.postprocess, args.threads,
               log=lambda line: print(line, file=sys.stderr))
    base = _without_options(argv, ("--json", "--precisions"))
    for precision in others:
        rows += _child_rows(base + ["--device", device], precision)
    print()
    for line in format_table(rows):
        print(line)
    report = {"machine": machine, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "settings": vars(args),
              "rows": rows, "memory": _memory(device)}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(report, stream, indent=1)
    return report


def _without_options(argv, names) -> list[str]:
    """argv without the named options and the values that follow them."""
    kept, skipping = [], False
    for item in argv:
        if item.startswith("--"):
            skipping = item.split("=")[0] in names
        if not skipping:
            kept.append(item)
    return kept


def _memory(device: str) -> dict:
    """Bytes held by CuPy's memory pool (reused across calls) after the run; {} on the CPU."""
    cupy = backend.cupy_module()
    if device != "gpu" or cupy is None:
        return {}
    pool = cupy.get_default_memory_pool()
    return {"cupy_pool_used_bytes": int(pool.used_bytes()), "cupy_pool_total_bytes": int(pool.total_bytes())}

