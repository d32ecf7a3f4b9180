"""``minissd train``: train an SSD on shapes, VOC or COCO; start from weights or an ImageNet backbone.

The start:
    (nothing)           random weights (Xavier), the architecture of --model (default tiny)
    --weights W         a whole model; on a dataset with other classes the conf heads are
                        re-initialised (backbone, extras, loc heads kept) and the command says so
    --backbone B        conv1_1 ... fc7 of a VGG16 backbone file (``minissd convert``), the
                        extras and heads initialised as the paper; --model ssd300 (default) or ssd512
    --freeze-backbone   the VGG16 (or the tiny SSD's body) stays as loaded

Resuming (``--resume``): the checkpoint remembers every setting of the run, so
``minissd train -o RUN --resume`` alone continues it. An option given on the
command line must agree with the checkpoint's, or the command refuses and lists
each difference; ``--extend N`` is the one allowed change: train on to
iteration N with the same learning-rate schedule.
"""

from __future__ import annotations

import os

from ..backend import blas_threads
from .context import apply_image_limit, resolve_device
from .datasets import dataset_from_args, dataset_kind, default_voc_split, is_voc_folder, voc_dataset
from .errors import UsageError, UserError
from .options import add_dataset, add_device, non_negative_float, non_negative_int, positive_float, positive_int
from .outputs import output_folder

ARCHITECTURE_LR = {("sgd", "tiny"): 0.05, ("sgd", "ssd300"): 1e-3, ("sgd", "ssd512"): 1e-3,
                   ("adam", "tiny"): 3e-3, ("adam", "ssd300"): 1e-4, ("adam", "ssd512"): 1e-4}


def add(commands):
    parser = commands.add_parser(
        "train", help="train an SSD on shapes, VOC or COCO (from scratch, from weights, from an ImageNet VGG16)",
        description="Train an SSD with SGD (momentum 0.9, weight decay 5e-4) or AdamW, warmup and multistep "
                    "decay. Checkpoints are written atomically, only when every weight is finite; --resume "
                    "continues exactly (and refuses options that differ from the checkpoint's).",
    )
    add_dataset(parser, "train (shapes), trainval (voc)", training=True)
    val = parser.add_argument_group("validation")
    val.add_argument("--val-split", default=None,
                     help="split for validation mAP (default: shapes val; voc test of VOC2007 when the run "
                          "uses 2007, else of the training years; coco none)")
    val.add_argument("--val-year", default=None, help="voc: the year(s) of the validation split (default above)")
    val.add_argument("--no-val", action="store_true", help="no validation")
    val.add_argument("--eval-every", type=non_negative_int, default=0,
                     help="validation mAP every N iterations (0: at the end only)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=("tiny", "ssd300", "ssd512"), default=None,
                       help="network (default: tiny; ssd300 with --backbone; the weights' own with --weights)")
    from ..priors import PRESETS

    model.add_argument("--preset", choices=sorted(PRESETS), help="default-box preset (default: the model's own)")
    start = model.add_mutually_exclusive_group()
    start.add_argument("--weights", metavar="FILE", help="start from this whole model (.npz) instead of random weights")
    start.add_argument("--backbone", metavar="FILE",
                       help="start conv1_1 ... fc7 from a VGG16 backbone file (made by minissd convert from "
                            "torchvision's vgg16 or ssd.pytorch's vgg16_reducedfc)")
    model.add_argument("--freeze-backbone", action="store_true",
                       help="keep the VGG16 (tiny: its body) weights fixed; train extras and heads only")
    recipe = parser.add_argument_group("recipe")
    recipe.add_argument("--iterations", type=positive_int, default=None, help="iterations (default 1000)")
    recipe.add_argument("--batch-size", type=positive_int, default=None, help="images per iteration (default 32)")
    recipe.add_argument("--optimizer", choices=("sgd", "adam"), default=None,
                        help="sgd (SSD's recipe, the default) or adam (AdamW)")
    recipe.add_argument("--lr", type=positive_float, default=None,
                        help="base learning rate (default by the architecture trained: sgd 0.05 tiny, 1e-3 "
                             "SSD300/512; adam 3e-3 tiny, 1e-4 SSD300/512)")
    recipe.add_argument("--weight-decay", type=non_negative_float, default=None,
                        help="weight decay (default: sgd 5e-4, adam 1e-4)")
    recipe.add_argument("--milestones", type=positive_int, nargs="+", default=None, metavar="N",
                        help="iterations where lr is multiplied by 0.1, increasing (default: 2/3 and 5/6 of the run)")
    recipe.add_argument("--warmup", type=non_negative_int, default=None, metavar="N",
                        help="linear warmup iterations (default min(500, 5%% of the run))")
    recipe.add_argument("--caffe-bias", action="store_true", default=None,
                        help="Caffe's biases: lr x 2, no weight decay")
    recipe.add_argument("--no-augment", action="store_true", default=None, help="no SSD augmentation (resize only)")
    recipe.add_argument("--seed", type=non_negative_int, default=None,
                        help="seed of data order, augmentation and weights (default 0)")
    run = parser.add_argument_group("run")
    run.add_argument("-o", "--output", default="minissd-run", help="output folder (default minissd-run)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in OUTPUT from its checkpoint, with its settings")
    run.add_argument("--extend", type=positive_int, default=None, metavar="N",
                     help="with --resume: train on to iteration N (the learning-rate schedule stays the "
                          "checkpoint's, so the extra iterations run at its final rate)")
    run.add_argument("--checkpoint-every", type=positive_int, default=200, metavar="N",
                     help="checkpoint interval (default 200)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device(parser)
    parser.set_defaults(run=run_train)
    return parser


# --------------------------------------------------------------------------
# the recipe
# --------------------------------------------------------------------------

def recipe_from_args(args, arch: str, base: dict | None = None) -> dict:
    """TrainConfig fields from the options; an option not given takes ``base``'s value (a resumed
    checkpoint's config), else the default, which may depend on the architecture and the run length."""
    base = base or {}
    optimizer = args.optimizer or base.get("optimizer", "sgd")
    iterations = args.iterations or base.get("iterations", 1000)
    if args.milestones is not None:
        milestones = list(args.milestones)
        if milestones != sorted(set(milestones)):
            raise UsageError(f"--milestones must be increasing; got {' '.join(map(str, milestones))}")
        beyond = [m for m in milestones if m >= iterations]
        if beyond:
            raise UsageError(f"--milestones {beyond[0]} is not before the end of the run (--iterations {iterations})")
    elif "milestones" in base:
        milestones = list(base["milestones"])
    else:
        milestones = sorted({m for m in (iterations * 2 // 3, iterations * 5 // 6) if m > 0})
    if args.warmup is not None:
        warmup = args.warmup
        if warmup >= iterations:
            raise UsageError(f"--warmup {warmup} is not shorter than the run (--iterations {iterations})")
    else:
        warmup = base.get("warmup_iterations", min(500, max(1, iterations // 20)))
    if args.caffe_bias:
        bias_lr_factor, bias_decay = 2.0, False
    else:
        bias_lr_factor, bias_decay = base.get("bias_lr_factor", 1.0), base.get("bias_decay", True)
    return {
        "iterations": iterations,
        "batch_size": args.batch_size or base.get("batch_size", 32),
        "optimizer": optimizer,
        "lr": args.lr if args.lr is not None else base.get("lr", ARCHITECTURE_LR[(optimizer, arch)]),
        "weight_decay": args.weight_decay if args.weight_decay is not None
        else base.get("weight_decay", 1e-4 if optimizer == "adam" else 5e-4),
        "milestones": tuple(milestones),
        "warmup_iterations": warmup,
        "bias_lr_factor": bias_lr_factor,
        "bias_decay": bias_decay,
        "seed": args.seed if args.seed is not None else base.get("seed", 0),
        "augment": False if args.no_augment else base.get("augment", True),
        "drop_difficult": False if args.keep_difficult else base.get("drop_difficult", True),
    }


# --------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------

def _same_classes(names_a, names_b) -> bool:
    return [str(n).lower() for n in names_a[1:]] == [str(n).lower() for n in names_b[1:]]


def _generic(names) -> bool:
    return all(str(name) == f"class{k}" for k, name in enumerate(names) if k > 0)


def model_from_args(args, dataset, seed: int, announce=print):
    """The model to train and a description of its start (for the checkpoint's run_info)."""
    from .. import models
    from ..models.transfer import load_backbone, with_new_classes

    if args.weights:
        model = models.load(args.weights, device="cpu")
        if args.model and args.model != model.info.arch:
            raise UsageError(f"--model {args.model}, but {args.weights} holds a {model.info.arch} model; "
                             "drop --model (the weights decide) or give weights of that architecture")
        if args.preset and args.preset != model.info.preset:
            raise UsageError(f"--preset {args.preset}, but {args.weights} was trained with preset "
                             f"{model.info.preset!r}; the heads belong to their default boxes")
        names = list(model.info.class_names)
        if model.num_classes != dataset.num_classes or not (
                _same_classes(names, dataset.class_names) or _generic(names)):
            model = with_new_classes(model, dataset.num_classes, list(dataset.class_names), seed=seed)
            announce(f"fine-tuning: the weights have {len(names) - 1} classes ({', '.join(names[1:6])}"
                     f"{' ...' if len(names) > 6 else ''}), the dataset {dataset.num_classes - 1}: the conf heads "
                     "start afresh; backbone, extras and loc heads keep their weights")
        return model, {"start": "weights", "weights": os.path.abspath(args.weights)}
    arch = args.model or ("ssd300" if args.backbone else "tiny")
    builder = {"tiny": models.tiny_ssd, "ssd300": models.ssd300, "ssd512": models.ssd512}[arch]
    options = {"preset": args.preset} if args.preset else {}
    try:
        model = builder(num_classes=dataset.num_classes, class_names=dataset.class_names, seed=seed, **options)
    except ValueError as error:
        raise UsageError(f"--model {arch}{' --preset ' + args.preset if args.preset else ''}: {error}") from None
    if args.backbone:
        if arch == "tiny":
            raise UsageError("--backbone is a VGG16 for ssd300 or ssd512; the tiny SSD has no VGG16 (use --model ssd300)")
        from ..models.io import load_backbone_file

        state, meta = load_backbone_file(args.backbone)
        loaded = load_backbone(model, state, source=args.backbone, mean=meta.get("mean"))
        announce(f"backbone: {len(loaded)} arrays (conv1_1 ... fc7) from {args.backbone} "
                 f"({meta.get('source', 'VGG16')}); extras and heads initialised as the paper; input mean "
                 f"{[round(float(v), 3) for v in model.info.mean]}")
        return model, {"start": "backbone", "backbone": os.path.abspath(args.backbone)}
    return model, {"start": "random"}


# --------------------------------------------------------------------------
# validation data
# --------------------------------------------------------------------------

def validation_dataset(args, train_set, announce=print):
    """The validation split the options (or the defaults) name, or None."""
    if args.no_val:
        return None
    kind = args.dataset
    if kind == "shapes":
        from .datasets import shapes_dataset

        return shapes_dataset(args, args.val_split or "val")
    if kind == "coco":
        if args.val_split or args.val_year:
            raise UsageError("--val-split/--val-year do not apply to --dataset coco (validate with minissd eval)")
        return None
    names = list(train_set.class_names[1:])
    if is_voc_folder(args.data_root):
        if args.val_year:
            raise UsageError("--val-year applies to a VOCdevkit; --data-root is one VOC-style folder")
        split = args.val_split or default_voc_split(args.data_root, "eval")
        if split == "all" or split == (args.split or default_voc_split(args.data_root, "train")):
            announce("no validation: the folder has no test list apart from the training images "
                     "(give --val-split, or evaluate later with minissd eval)")
            return None
        return voc_dataset(args, split, None, class_names=names, announce=lambda _: None)
    train_years = (args.year or "2007").split("+")
    year = args.val_year or ("2007" if "2007" in train_years else "+".join(train_years))
    return voc_dataset(args, args.val_split or "test", year, class_names=names, announce=lambda _: None)


# --------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------

def _checkpoint_settings(path: str) -> dict:
    from ..train import read_checkpoint_meta

    meta = read_checkpoint_meta(path)
    return {"meta": meta, "config": meta["extra"].get("config", {}), "run": meta["extra"].get("run", {})}


def _fill_from_checkpoint(args, saved: dict) -> None:
    """Options not given take the checkpoint's values (so ``--resume`` alone continues the run)."""
    run = saved["run"]
    for option, flag in (("model", "--model"), ("preset", "--preset")):
        given, stored = getattr(args, option, None), run.get(option)
        if given is not None and stored is not None and given != stored:
            raise UsageError(f"{flag} {given}, but the checkpoint in {args.output} is of a run with "
                             f"{option} {stored!r}; --resume continues that run")
    for option in ("dataset", "data_root", "year", "split", "coco_annotations", "coco_images", "num_images",
                   "model", "preset"):
        if getattr(args, option, None) is None and run.get(option) is not None:
            setattr(args, option, run[option])


def _run_info(args, dataset, model, start: dict) -> dict:
    return {
        "dataset": args.dataset, "data_root": os.path.abspath(args.data_root) if args.data_root else None,
        "year": args.year, "split": args.split, "coco_annotations": args.coco_annotations,
        "coco_images": args.coco_images, "num_images": args.num_images,
        "classes": list(dataset.class_names), "images": len(dataset),
        "model": model.info.arch, "preset": model.info.preset, **start,
    }


def run_train(args) -> int:
    from ..models.transfer import backbone_parameter_names
    from ..train import CHECKPOINT_NAME, ResumeMismatch, TrainConfig, TrainingDiverged, train

    if args.extend and not args.resume:
        raise UsageError("--extend continues a finished or interrupted run: it needs --resume")
    if args.freeze_backbone and not (args.weights or args.backbone or args.resume):
        raise UsageError("--freeze-backbone keeps loaded weights fixed: give --weights or --backbone")
    device = resolve_device(args)
    apply_image_limit(args)
    from ..distributed import DistributedError, world

    try:
        group = world(device)  # several processes when started by mpiexec -n K (docs/distributed.md)
    except DistributedError as error:
        raise UserError(str(error)) from None
    say = print if group.rank == 0 else (lambda *a, **k: None)
    if group.rank == 0:
        output_folder(args.output)
    group.barrier()
    checkpoint = os.path.join(args.output, CHECKPOINT_NAME)
    saved = None
    if args.resume:
        if not os.path.exists(checkpoint):
            raise UserError(f"--resume: no checkpoint in {args.output} ({checkpoint} does not exist)")
        saved = _checkpoint_settings(checkpoint)
        _fill_from_checkpoint(args, saved)
    elif os.path.exists(checkpoint):
        raise UserError(f"{checkpoint} exists: pass --resume to continue it, or choose another --output")
    kind = dataset_kind(args)
    if args.split is None and kind == "voc" and args.data_root:
        args.split = default_voc_split(args.data_root, "train")
    dataset = dataset_from_args(args, "train", announce=say)
    val_dataset = validation_dataset(args, dataset, announce=say)
    seed = args.seed if args.seed is not None else (saved["config"].get("seed", 0) if saved else 0)
    model, start = model_from_args(args, dataset, seed, announce=say)
    if saved and not (args.weights or args.backbone):  # "--resume" alone: the run started as the checkpoint says
        start = {key: value for key, value in saved["run"].items() if key in ("start", "weights", "backbone")} or start
    # resuming: what the command line says, else the checkpoint's settings (train() compares the two)
    recipe = recipe_from_args(args, model.info.arch, saved["config"] if saved else None)
    allow = ()
    if saved:
        if args.extend:
            if args.extend < saved["meta"]["extra"]["iteration"]:
                raise UsageError(f"--extend {args.extend}: the checkpoint is already at iteration "
                                 f"{saved['meta']['extra']['iteration']}")
            recipe["iterations"] = args.extend
            allow = ("iterations",)
    frozen = tuple(backbone_parameter_names(model)) if args.freeze_backbone else ()
    if saved and not args.freeze_backbone:
        frozen = tuple(saved["config"].get("frozen", ()))
    config = TrainConfig(**recipe, frozen=frozen, eval_every=args.eval_every, checkpoint_every=args.checkpoint_every)
    model.to(device)
    where = f"on the {device}" if group.size == 1 else f"on {group.size} processes ({group.name}, {device})"
    say(f"training {model} on {len(dataset)} images ({args.dataset}) {where}; output in {args.output}"
        + (f"; {len(frozen)} backbone arrays frozen" if frozen else ""))
    try:
        with blas_threads(args.threads):
            state = train(model, dataset, config, args.output, val_dataset=val_dataset, resume=bool(saved),
                          progress=not args.no_progress, run_info=_run_info(args, dataset, model, start),
                          allow_changes=allow, group=group)
    except TrainingDiverged as error:
        raise UserError(str(error)) from None
    except ResumeMismatch as error:
        raise UserError(f"{error}. Give the checkpoint's options (or none: --resume alone continues the run "
                        "as it was), or --extend N to train on to iteration N") from None
    if saved and saved["meta"]["extra"]["iteration"] == config.iterations:
        say(f"the run in {args.output} was already finished at iteration {config.iterations}: nothing to do "
            "(--extend N trains on)")
    last = state.evaluations[-1]["mAP"] if state.evaluations else None
    say(f"done: {state.iteration} iterations in {state.elapsed_s:.0f} s; "
          + (f"validation mAP {last:.4f}; " if last is not None else "no validation; ")
          + f"weights in {os.path.join(args.output, 'model.npz')}")
    return 0
