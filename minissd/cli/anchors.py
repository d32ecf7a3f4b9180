"""``minissd anchors``: how well a preset's default boxes cover a dataset's objects, before any training.

    minissd anchors                                          # shapes (train split), the tiny preset
    minissd anchors --preset tiny --compare ssd300-voc --limit 500 -o coverage.png --json coverage.json
    minissd anchors --dataset voc --data-root VOCdevkit --preset ssd300-voc

For every ground-truth box: its best IoU with any default box and the map that box is on;
the share of objects below the matching threshold (only the bipartite step matches them) and
below 0.3; the positives the trainer's matching gives, per object, per map and per box kind
(``minissd.coverage``). The picture holds the histograms (``minissd.viz.coverage_figure``, or
``compare_coverage_figure`` with --compare). VOC and COCO are read from their annotations and
the pictures' headers only.

Without --preset: the preset a model for that data trains with by default, tiny for shapes,
ssd300-voc for voc and ssd300-coco for coco.
"""

from __future__ import annotations

from .context import apply_image_limit
from .datasets import dataset_from_args, dataset_kind
from .errors import UsageError
from .options import add_dataset, positive_int, unit_interval
from .outputs import PICTURE_FORMATS, output_file

DEFAULT_PRESETS = {"shapes": "tiny", "voc": "ssd300-voc", "coco": "ssd300-coco"}
DEFAULT_OUTPUT = "coverage.png"


def add(commands):
    from ..priors import PRESETS

    parser = commands.add_parser(
        "anchors",
        help="default-box coverage of a dataset: best IoU per object, positives per map and box kind",
        description=(
            "For every ground-truth box of a dataset, the best IoU with any default box of a preset and the "
            "feature map it comes from; the share of objects below the matching threshold (matched only by "
            "the bipartite step) and below 0.3; the positives matching gives per object, per map and per "
            "box kind. Prints a table, draws the histograms, optionally writes JSON; --compare puts a "
            "second preset beside the first. Boxes are normalised as the training transform does "
            "(x / width, y / height); difficult VOC objects are left out as in training. "
            "Presets: " + "; ".join(f"{name} ({config.num_priors} boxes)" for name, config in PRESETS.items())
        ),
    )
    add_dataset(parser, "train (shapes), trainval (voc)", training=True)
    choice = sorted(PRESETS)
    parser.add_argument("--preset", "-p", choices=choice, default=None,
                        help="the default boxes to test (default: tiny for shapes, ssd300-voc for voc, "
                             "ssd300-coco for coco)")
    parser.add_argument("--compare", choices=choice, default=None, metavar="PRESET",
                        help="a second preset, shown beside the first (the data is read once)")
    parser.add_argument("--iou-threshold", type=unit_interval, default=0.5,
                        help="the matching threshold T: a default box with IoU >= T is a positive (default 0.5)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N", help="only the first N images")
    parser.add_argument("-o", "--output", default=None,
                        help=f"the picture, .png/.jpg/.pdf/.svg (default {DEFAULT_OUTPUT})")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the numbers as JSON")
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    kind = dataset_kind(args)
    preset = args.preset or DEFAULT_PRESETS[kind]
    if args.compare == preset:
        raise UsageError(f"--compare {args.compare} is the preset being tested already; compare with another one")
    output = args.output or DEFAULT_OUTPUT
    output_file(output, "-o/--output", PICTURE_FORMATS)  # checked before the data is read
    if args.json:
        output_file(args.json, "--json", (".json",))
    apply_image_limit(args)

    from ..atomic import save_figure, write_json
    from ..coverage import compare_presets, coverage_table

    dataset = dataset_from_args(args, "train")
    presets = [preset] + ([args.compare] if args.compare else [])
    results = compare_presets(dataset, presets, args.iou_threshold, args.limit,
                              drop_difficult=not args.keep_difficult)
    print(coverage_table(results))
    save_figure(_figure(results), output, dpi=100, bbox_inches="tight")
    print(f"wrote {output}")
    if args.json:
        write_json(args.json, {"dataset": repr(dataset), "presets": [result.summary() for result in results]})
        print(f"wrote {args.json}")
    return 0


def _figure(results):
    from ..viz import compare_coverage_figure, coverage_figure

    return compare_coverage_figure(*results) if len(results) == 2 else coverage_figure(results[0])
