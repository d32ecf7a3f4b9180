"""Option types and option groups shared by the commands.

Every number is range-checked while the command line is parsed, so a bad value
stops the command before any work with argparse's one-line usage error naming
the flag and the value (exit 2):

    minissd detect: error: argument --iou-threshold: must be a number in [0, 1]; got 'nan'
"""

from __future__ import annotations

import argparse
import math


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line (and a pointer to --help) instead of the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------
# value types
# --------------------------------------------------------------------------

def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def int_in_range(low: int, high: int, what: str = "an integer"):
    """A type for argparse: an integer in [low, high]."""

    def parse(text: str) -> int:
        value = _integer(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what} from {low} to {high}; got {text!r}")
        return value

    return parse


def non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0; got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1] (scores, IoU thresholds); nan and inf refused."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1]; got {text!r}")
    return value


def scale_value(text: str) -> float:
    """A default-box scale s_k, relative to the image: in (0, 2]."""
    value = _number(text)
    if not 0 < value <= 2:
        raise argparse.ArgumentTypeError(f"must be a scale in (0, 2] (a fraction of the image side); got {text!r}")
    return value


# --------------------------------------------------------------------------
# option groups
# --------------------------------------------------------------------------

def add_common(parser) -> None:
    """--debug on every command (it may also come before the command: ``minissd --debug train``)."""
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error (also: MINISSD_DEBUG=1)")


def add_device(parser) -> None:
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None,
                        help="where the model runs (default: $MINISSD_DEVICE or cpu)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="BLAS threads on the CPU (default: the library's own choice)")


def add_max_pixels(parser) -> None:
    parser.add_argument("--max-pixels", type=non_negative_int, default=None, metavar="N",
                        help="refuse pictures larger than N pixels, a guard against decompression bombs "
                             "(default: minissd's limit, or $MINISSD_MAX_IMAGE_PIXELS; 0: no limit)")


def add_dataset(parser, default_split: str, training: bool = False) -> None:
    group = parser.add_argument_group("dataset")
    group.add_argument("--dataset", choices=("shapes", "voc", "coco"), default=None,
                       help="shapes (built in, no download), voc (a VOCdevkit or any VOC-style folder) "
                            "or coco (an instances JSON and its images) (default: shapes)")
    group.add_argument("--split", default=None,
                       help=f"shapes: train/val/test; voc: an ImageSets/Main list such as trainval or test, "
                            f"or 'all' (every annotation of a folder without lists) (default: {default_split})")
    group.add_argument("--data-root", help="voc: the VOCdevkit folder (holding VOC2007/, VOC2012/), "
                                           "or one VOC-style folder (Annotations/, JPEGImages/) of any name")
    group.add_argument("--year", default=None,
                       help="voc: 2007, 2012 or 2007+2012 in a VOCdevkit (default 2007); "
                            "not used for a VOC-style folder")
    group.add_argument("--class-names", metavar="FILE",
                       help="voc: a text file with the class names, one a line (default: the 20 VOC "
                            "classes in a VOCdevkit, else the names found in the annotations)")
    group.add_argument("--coco-annotations", metavar="FILE", help="coco: the instances_*.json file")
    group.add_argument("--coco-images", metavar="DIR", help="coco: the folder of the images it names")
    group.add_argument("--num-images", type=positive_int, metavar="N",
                       help="shapes: images in the split (default: the split's size)")
    group.add_argument("--skip-bad", action="store_true",
                       help="skip unreadable or invalid samples with a warning each (and a count) "
                            "instead of stopping")
    add_max_pixels(group)
    if training:
        group.add_argument("--keep-difficult", action="store_true",
                           help="voc: train on objects flagged difficult too (default: left out of the "
                                "training targets, as SSD's reference code does; evaluation always "
                                "ignores them)")
