"""``minissd explain``: one detection taken apart, as text and as a picture.

    minissd explain model.npz photo.jpg                  # the best detection: text, and explanation.png
    minissd explain model.npz photo.jpg --index 2 -o third.png --json third.json

It prints which default box made the detection (feature map, cell, shape), the raw offsets and
decode's steps to the box in pixels, the most probable classes, and the boxes NMS removed because of
it (``minissd.explain``); the picture is ``minissd.viz.explain_figure``. Detection K is the K-th of
``minissd detect`` at the same --threshold (0 the best).
"""

from __future__ import annotations

from .context import apply_image_limit, resolve_device
from .errors import UserError
from .options import add_device, add_max_pixels, non_negative_int, positive_int, unit_interval
from .outputs import PICTURE_FORMATS, output_file


def add(commands):
    parser = commands.add_parser(
        "explain", help="explain one detection: its default box, offsets, decoding, class scores, NMS",
        description="Take one detection of a trained SSD apart: the feature map, cell and default box that "
                    "made it, the raw offsets and the decoding step by step to the box in pixels, the softmax "
                    "over all classes, and the boxes NMS removed because of it. Prints it and draws it.",
    )
    parser.add_argument("weights", help="a .npz written by training, model.save or minissd convert")
    parser.add_argument("image", help="the picture (any size and mode)")
    parser.add_argument("--index", "-k", type=non_negative_int, default=0, metavar="K",
                        help="which detection, by descending score as minissd detect lists them (default 0, "
                             "the best)")
    parser.add_argument("-o", "--output", default="explanation.png",
                        help="the picture, .png/.jpg/.pdf/.svg (default explanation.png)")
    parser.add_argument("--json", metavar="FILE", help="also write the explanation as JSON")
    parser.add_argument("--threshold", type=unit_interval, default=0.5,
                        help="detections score above this (default 0.5, as minissd detect)")
    parser.add_argument("--iou-threshold", type=unit_interval, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--top-classes", type=positive_int, default=5, metavar="N",
                        help="classes listed in the text, most probable first (default 5; the picture shows all)")
    parser.add_argument("--whole-picture", action="store_true",
                        help="draw the whole picture (default: zoomed on the detection and its boxes)")
    add_max_pixels(parser)
    add_device(parser)
    parser.set_defaults(run=run)
    return parser


def run(args) -> int:
    from ..atomic import save_figure, write_json
    from ..backend import blas_threads
    from ..detect import Detector, read_image
    from ..viz.explain import explain_figure

    device = resolve_device(args)
    apply_image_limit(args)
    output_file(args.output, "-o/--output", PICTURE_FORMATS)
    if args.json:
        output_file(args.json, "--json", (".json",))
    picture = read_image(args.image)
    detector = Detector.load(args.weights, device=device, score_threshold=args.threshold,
                             iou_threshold=args.iou_threshold)
    with blas_threads(args.threads):
        explanations = detector.explain(picture)
        if not explanations:
            best = detector.predict(picture, score_threshold=0.0).scores
            hint = f"; its best score is {float(best.max()):.4g}" if len(best) else ""
            raise UserError(f"no detection in {args.image} scores above --threshold {args.threshold:g}{hint}; "
                            "try a lower --threshold")
    count = len(explanations)
    if args.index >= count:
        raise UserError(f"--index {args.index}: {args.image} has {count} detection{'s' if count != 1 else ''} "
                        f"above --threshold {args.threshold:g}, so --index runs from 0 to {count - 1}")
    explanation = explanations[args.index]
    print(explanation.text(top_classes=args.top_classes))
    save_figure(explain_figure(explanation, picture, zoom=not args.whole_picture), args.output)
    if args.json:
        write_json(args.json, explanation.to_dict())
    print(f"wrote {args.output}" + (f" and {args.json}" if args.json else ""))
    return 0
