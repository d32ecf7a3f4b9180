"""The ``minissd`` command (also ``python -m minissd``).

Each sub-command is a small function; heavy imports happen inside it so
``minissd --help`` is instant. Errors a user can fix (bad arguments, missing
files, no GPU) print one line to stderr and exit with status 2 (usage) or 1.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


# --------------------------------------------------------------------------
# minissd boxes
# --------------------------------------------------------------------------

def _add_boxes(commands):
    parser = commands.add_parser(
        "boxes",
        help="draw the default boxes of a preset or of chosen feature-map sizes",
        description=(
            "Draw SSD's default boxes. Either give feature-map sizes (the paper's scale formula "
            "is used, e.g. 8 4 for Figure 1 of the paper) or a preset; optionally over an image."
        ),
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--feature-maps", "-f", type=_positive_int, nargs="+", metavar="SIZE",
                       help="feature-map sides, e.g. 8 4 (default: 8 4)")
    from .priors import PRESETS

    group.add_argument("--preset", "-p", choices=sorted(PRESETS), help="a default-box preset")
    parser.add_argument("--image", "-i", help="draw over this image (resized to the input size)")
    parser.add_argument("--cells", "-c", nargs="+", metavar="ROW,COL",
                        help="cells whose boxes to draw (default: the centre cell of each map)")
    parser.add_argument("--s-min", type=float, default=0.2, help="s_min of the scale formula (default 0.2)")
    parser.add_argument("--s-max", type=float, default=0.5,
                        help="s_max of the scale formula (default 0.5, which suits two maps; "
                             "the paper uses 0.9 over six)")
    parser.add_argument("--list", action="store_true", help="print the presets as tables and exit")
    parser.add_argument("-o", "--output", default="default_boxes.png", help="output picture (default default_boxes.png)")
    parser.set_defaults(run=_run_boxes)


def _parse_cells(values):
    if not values:
        return None
    cells = []
    for value in values:
        try:
            row, column = (int(v) for v in value.split(","))
        except ValueError:
            raise UserError(f"--cells takes ROW,COL pairs such as 3,4; got {value!r}") from None
        cells.append((row, column))
    return cells


def _run_boxes(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from . import priors
    from .viz import default_boxes_figure

    if args.list:
        for name in priors.PRESETS:
            print(priors.describe(name), end="\n\n")
        return 0
    image = None
    size = priors.get_config(args.preset).image_size if args.preset else 300
    if args.image:
        image = _read_image(args.image, size)
    cells = _parse_cells(args.cells)
    try:
        figure = default_boxes_figure(
            feature_maps=tuple(args.feature_maps or (8, 4)), preset=args.preset,
            image=image, cells=cells, s_min=args.s_min, s_max=args.s_max,
        )
    except (IndexError, ValueError) as error:
        raise UserError(str(error)) from None
    _save_figure(figure, args.output)
    print(f"wrote {args.output}")
    return 0


def _read_image(path: str, size: int):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return np.asarray(picture.convert("RGB").resize((size, size), Image.BILINEAR))
    except FileNotFoundError:
        raise UserError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(f"cannot read image {path}: {error}") from None


def _save_figure(figure, path: str) -> None:
    import os

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"output folder does not exist: {directory}")
    figure.savefig(path, dpi=110, bbox_inches="tight")


# --------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------

COMMAND_BUILDERS = [_add_boxes]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minissd",
        description="minissd: SSD (Single Shot MultiBox Detector) from scratch in NumPy / CuPy.",
    )
    parser.add_argument("--version", action="version", version=f"minissd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for builder in COMMAND_BUILDERS:
        builder(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except UserError as error:
        print(f"minissd {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"minissd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
