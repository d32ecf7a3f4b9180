"""``minissd boxes``: draw the default boxes of chosen feature-map sizes or of a preset."""

from __future__ import annotations

from .errors import UsageError, UserError
from .options import int_in_range, scale_value

map_side = int_in_range(1, 300, "a feature-map side")
from .outputs import PICTURE_FORMATS, output_file


def add(commands):
    from ..priors import PRESETS

    parser = commands.add_parser(
        "boxes",
        help="draw the default boxes of a preset or of chosen feature-map sizes",
        description=(
            "Draw SSD's default boxes. Either give feature-map sizes (the paper's scale formula "
            "is used, e.g. 8 4 for Figure 1 of the paper) or a preset; optionally over an image. "
            "Presets: " + "; ".join(f"{name} ({config.num_priors} boxes)" for name, config in PRESETS.items())
            + ". --list prints them as tables."
        ),
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--feature-maps", "-f", type=map_side, nargs="+", metavar="SIZE",
                       help="feature-map sides from 1 to 300, e.g. 8 4 (default: 8 4)")
    group.add_argument("--preset", "-p", choices=sorted(PRESETS), help="a default-box preset")
    parser.add_argument("--image", "-i", help="draw over this image (resized to the input size)")
    parser.add_argument("--cells", "-c", nargs="+", metavar="ROW,COL",
                        help="cells whose boxes to draw (default: the centre cell of each map)")
    parser.add_argument("--s-min", type=scale_value, default=0.2, help="s_min of the scale formula (default 0.2)")
    parser.add_argument("--s-max", type=scale_value, default=0.5,
                        help="s_max of the scale formula (default 0.5, which suits two maps; "
                             "the paper uses 0.9 over six)")
    parser.add_argument("--list", action="store_true", help="print the presets as tables and exit")
    parser.add_argument("-o", "--output", default="default_boxes.png",
                        help="output picture, .png/.jpg/.pdf/.svg (default default_boxes.png)")
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


def run(args) -> int:
    from .. import priors

    if args.list:
        for name in priors.PRESETS:
            print(priors.describe(name), end="\n\n")
        return 0
    if args.s_min > args.s_max:
        raise UsageError(f"--s-min {args.s_min:g} is larger than --s-max {args.s_max:g}")
    output_file(args.output, "-o/--output", PICTURE_FORMATS)
    config = priors.get_config(args.preset) if args.preset else None
    sides = config.feature_maps if config else tuple(args.feature_maps or (8, 4))
    cells = parse_cells(args.cells, sides)
    image = read_square_image(args.image, config.image_size if config else 300) if args.image else None

    from ..atomic import save_figure
    from ..viz import default_boxes_figure

    try:
        figure = default_boxes_figure(feature_maps=sides, preset=args.preset, image=image, cells=cells,
                                      s_min=args.s_min, s_max=args.s_max)
    except (IndexError, ValueError) as error:
        raise UserError(str(error)) from None
    save_figure(figure, args.output, dpi=110, bbox_inches="tight")
    print(f"wrote {args.output}")
    return 0


def read_square_image(path: str, size: int):
    """The picture at ``path`` as (size, size, 3) uint8, for drawing under boxes."""
    import numpy as np
    from PIL import Image

    from ..detect import read_image

    picture = read_image(path)  # RGB from any mode; names the file when it is missing or unreadable
    return np.asarray(Image.fromarray(picture).resize((size, size), Image.BILINEAR))
