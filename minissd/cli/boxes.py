"""``minissd boxes``: draw the default boxes of chosen feature-map sizes or of a preset, or the paper's Figure 1.

    minissd boxes --feature-maps 8 4                 # the default boxes of one cell per map
    minissd boxes --figure1                          # Figure 1: the cat and the dog matched on 8 x 8 and 4 x 4
    minissd boxes --figure1 --image photo.jpg --box cat:30,170,80,240 --box dog:82,140,292,233
"""

from __future__ import annotations

import argparse
import math

from .errors import UsageError, UserError
from .options import int_in_range, scale_value, unit_interval
from .outputs import PICTURE_FORMATS, output_file

map_side = int_in_range(1, 300, "a feature-map side")
FIGURE1_MAX_MAPS = 6  # one panel each; SSD300 has six
BOX_FORM = "NAME:X1,Y1,X2,Y2 in pixels, e.g. cat:30,170,80,240"
CARTOON_SIZE = 300  # the cartoon --figure1 paints when --box comes without --image


def labelled_box(text: str) -> tuple[str, tuple[float, float, float, float]]:
    """'NAME:X1,Y1,X2,Y2' (pixels, x1 < x2, y1 < y2, all >= 0) -> (name, box); argparse names the flag."""
    name, colon, numbers = text.rpartition(":")
    name = name.strip()
    if not colon or not name:
        raise argparse.ArgumentTypeError(f"must be {BOX_FORM}; got {text!r}")
    parts = numbers.split(",")
    try:
        x1, y1, x2, y2 = (float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {BOX_FORM} (four numbers after the name); got {text!r}") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise argparse.ArgumentTypeError(f"needs finite pixel coordinates; got {text!r}")
    if min(x1, y1) < 0:
        raise argparse.ArgumentTypeError(f"pixel coordinates are >= 0; got {text!r}")
    if not (x2 > x1 and y2 > y1):
        raise argparse.ArgumentTypeError(f"needs x1 < x2 and y1 < y2 (a box with an area); got {text!r}")
    return name, (x1, y1, x2, y2)


def add(commands):
    from ..priors import PRESETS

    parser = commands.add_parser(
        "boxes",
        help="draw the default boxes of a preset or of chosen feature-map sizes, or the paper's Figure 1",
        description=(
            "Draw SSD's default boxes. Either give feature-map sizes (the paper's scale formula "
            "is used, e.g. 8 4) or a preset; optionally over an image. --figure1 draws the paper's "
            "Figure 1 instead: an image with its ground truth, and per map the default boxes of the cells "
            "holding each object, matched ones in the object's colour (the built-in cat and dog, or "
            "--image with --box). "
            "Presets: " + "; ".join(f"{name} ({config.num_priors} boxes)" for name, config in PRESETS.items())
            + ". --list prints them as tables."
        ),
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--feature-maps", "-f", type=map_side, nargs="+", metavar="SIZE",
                       help="feature-map sides from 1 to 300, e.g. 8 4 (default: 8 4)")
    group.add_argument("--preset", "-p", choices=sorted(PRESETS), help="a default-box preset")
    parser.add_argument("--image", "-i", help="draw over this image (resized to the input size; "
                                              "with --figure1 drawn as it is, its objects given by --box)")
    parser.add_argument("--cells", "-c", nargs="+", metavar="ROW,COL",
                        help="cells whose boxes to draw (default: the centre cell of each map)")
    parser.add_argument("--s-min", type=scale_value, default=0.2, help="s_min of the scale formula (default 0.2)")
    parser.add_argument("--s-max", type=scale_value, default=0.5,
                        help="s_max of the scale formula (default 0.5, which suits two maps; "
                             "the paper uses 0.9 over six)")
    figure1 = parser.add_argument_group("the paper's Figure 1")
    figure1.add_argument("--figure1", action="store_true",
                         help="draw Figure 1 of the paper: the image and its ground truth, then each map's "
                              "default boxes matched to it (minissd.matching.match_indices); without --box, "
                              "the built-in cat and dog")
    figure1.add_argument("--box", type=labelled_box, action="append", metavar="NAME:X1,Y1,X2,Y2",
                         help="an object for --figure1, in pixels of --image (repeat for each object); "
                              f"without --image, on a {CARTOON_SIZE} x {CARTOON_SIZE} cartoon that paints "
                              "cat, dog or ball")
    figure1.add_argument("--iou-threshold", type=unit_interval, default=None,
                         help="--figure1: the IoU at which a default box becomes a positive (default 0.5)")
    parser.add_argument("--list", action="store_true", help="print the presets as tables and exit")
    parser.add_argument("-o", "--output", default=None,
                        help="output picture, .png/.jpg/.pdf/.svg (default default_boxes.png, "
                             "figure1.png with --figure1)")
    parser.set_defaults(run=run)
    return parser


def parse_cells(values, sides) -> list | None:
    """'ROW,COL' strings -> [(row, col)], each inside at least one of the maps' ``sides``."""
    if not values:
        return None
    cells = []
    largest = max(sides)
    for value in values:
        try:
            row, column = (int(v) for v in value.split(","))
        except ValueError:
            raise UsageError(f"--cells takes ROW,COL pairs such as 3,4; got {value!r}") from None
        if row < 0 or column < 0 or (row >= largest or column >= largest):
            raise UsageError(f"--cells {value}: no feature map has this cell (rows and columns run from 0 "
                             f"to {largest - 1} on the largest map, {largest} x {largest})")
        cells.append((row, column))
    return cells


def check_figure1_options(args) -> None:
    """Options that contradict --figure1 (or need it): usage errors (exit 2) before any work."""
    if not args.figure1:
        for flag, value in (("--box", args.box), ("--iou-threshold", args.iou_threshold)):
            if value is not None:
                raise UsageError(f"{flag} belongs to --figure1; add --figure1 to draw the paper's Figure 1")
        return
    if args.preset:
        raise UsageError("--figure1 uses the paper's formula on --feature-maps; --preset does not apply")
    if args.cells:
        raise UsageError("--figure1 draws the cells that hold each object; --cells does not apply")
    if args.image and not args.box:
        raise UsageError("--figure1 --image needs the objects in the picture: give --box NAME:X1,Y1,X2,Y2 "
                         "(pixels) for each")
    if args.feature_maps and len(args.feature_maps) > FIGURE1_MAX_MAPS:
        raise UsageError(f"--figure1 draws one panel per map: give at most {FIGURE1_MAX_MAPS} --feature-maps; "
                         f"got {len(args.feature_maps)}")
    if args.box and not args.image:
        from ..viz import TOY_KINDS

        for name, box in args.box:
            if name not in TOY_KINDS:
                raise UsageError(f"--box {name}:...: without --image the cartoon paints only "
                                 f"{', '.join(TOY_KINDS)}; give --image for other objects")


def figure1_inputs(args):
    """(image, gt_boxes normalised (G, 4), labels (G,), class_names) for --figure1, or Nones for the built-in."""
    import numpy as np

    if not args.box:
        return None, None, None, None
    names = list(dict.fromkeys(name for name, _ in args.box))  # classes in order of first mention
    labels = np.array([1 + names.index(name) for name, _ in args.box], dtype=np.int64)
    pixels = np.array([box for _, box in args.box], dtype=np.float64)  # (G, 4)
    if args.image:
        from ..detect import read_image

        image = read_image(args.image)  # names the file when it is missing or unreadable
        height, width = image.shape[:2]
    else:
        width = height = CARTOON_SIZE
        image = None
    for (name, box), (x1, y1, x2, y2) in zip(args.box, pixels):
        for axis, value, limit in (("x2", x2, width), ("y2", y2, height)):
            if value > limit:
                where = args.image or "the cartoon"
                raise UsageError(f"--box {name}:{','.join(f'{v:g}' for v in box)}: {axis} = {value:g} is outside "
                                 f"{where} ({width} x {height} pixels)")
    gt_boxes = (pixels / np.array([width, height, width, height])).astype(np.float32)  # (G, 4) normalised
    if image is None:
        from ..viz import toy_scene

        image = toy_scene(gt_boxes, [name for name, _ in args.box], size=CARTOON_SIZE)
    return image, gt_boxes, labels, ["background", *names]


def run(args) -> int:
    from .. import priors

    if args.list:
        for name in priors.PRESETS:
            print(priors.describe(name), end="\n\n")
        return 0
    if args.s_min > args.s_max:
        raise UsageError(f"--s-min {args.s_min:g} is larger than --s-max {args.s_max:g}")
    check_figure1_options(args)
    output = args.output or ("figure1.png" if args.figure1 else "default_boxes.png")
    output_file(output, "-o/--output", PICTURE_FORMATS)
    config = priors.get_config(args.preset) if args.preset else None
    sides = config.feature_maps if config else tuple(args.feature_maps or (8, 4))
    if args.figure1:
        from ..viz import figure1

        image, gt_boxes, labels, class_names = figure1_inputs(args)
        try:
            figure = figure1(image, gt_boxes, labels, class_names, feature_maps=sides, s_min=args.s_min,
                             s_max=args.s_max,
                             iou_threshold=0.5 if args.iou_threshold is None else args.iou_threshold)
        except (IndexError, ValueError) as error:
            raise UserError(str(error)) from None
        return _save(figure, output)
    cells = parse_cells(args.cells, sides)
    image = read_square_image(args.image, config.image_size if config else 300) if args.image else None

    from ..viz import default_boxes_figure

    try:
        figure = default_boxes_figure(feature_maps=sides, preset=args.preset, image=image, cells=cells,
                                      s_min=args.s_min, s_max=args.s_max)
    except (IndexError, ValueError) as error:
        raise UserError(str(error)) from None
    return _save(figure, output)


def _save(figure, output: str) -> int:
    from ..atomic import save_figure

    save_figure(figure, output, dpi=110, bbox_inches="tight")
    print(f"wrote {output}")
    return 0


def read_square_image(path: str, size: int):
    """The picture at ``path`` as (size, size, 3) uint8, for drawing under boxes."""
    import numpy as np
    from PIL import Image

    from ..detect import read_image

    picture = read_image(path)  # RGB from any mode; names the file when it is missing or unreadable
    return np.asarray(Image.fromarray(picture).resize((size, size), Image.BILINEAR))
