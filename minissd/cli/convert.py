"""``minissd convert``: published weights -> a minissd weights file.

Recognised from the checkpoint's keys (``minissd.interop.convert``):

    torchvision ssd300_vgg16          a whole SSD300 (COCO: 91 slots = category ids)
    torchvision vgg16 (ImageNet)      a VGG16 backbone: conv1_1 ... conv5_3, fc6/fc7 subsampled
    ssd.pytorch vgg16_reducedfc       a VGG16 backbone with fc6/fc7 already reduced

A .pth needs PyTorch (imported only here); an .npz of the same state dict needs
nothing. ``python -m minissd.interop`` is the same converter.
"""

from __future__ import annotations

from .errors import UsageError
from .options import positive_int
from .outputs import output_file


def add(commands):
    parser = commands.add_parser(
        "convert", help="convert torchvision / ssd.pytorch weights (SSD300, VGG16 backbones) to minissd",
        description="Convert a checkpoint into a minissd weights file: a whole torchvision ssd300_vgg16 "
                    "(then minissd eval/detect/train --weights read it), or a VGG16 ImageNet backbone, "
                    "torchvision's vgg16 classifier or ssd.pytorch's vgg16_reducedfc (then minissd train "
                    "--backbone reads it). The kind is recognised from the keys. A .pth/.pt needs PyTorch; "
                    "an .npz of the same state dict (numpy.savez(**state_dict)) does not.",
    )
    parser.add_argument("checkpoint", help="the state dict: .pth/.pt (needs PyTorch) or .npz")
    parser.add_argument("-o", "--output", required=True, help="the minissd .npz to write")
    parser.add_argument("--num-classes", type=positive_int, default=None,
                        help="SSD300: L including the background (default: read from the classification head)")
    parser.add_argument("--class-names", metavar="FILE", default=None,
                        help="SSD300: a text file, one class name a line (default: COCO's names for 91 slots)")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..interop.convert import convert_checkpoint
    from .datasets import read_class_names

    if args.num_classes is not None and args.num_classes < 2:
        raise UsageError(f"--num-classes counts the background too and must be >= 2; got {args.num_classes}")
    output_file(args.output, "-o/--output", (".npz",), overwrite=args.force)
    names = read_class_names(args.class_names) if args.class_names else None
    report = convert_checkpoint(args.checkpoint, args.output, num_classes=args.num_classes, class_names=names)
    print(report.summary() if hasattr(report, "summary") else str(report))
    return 0
