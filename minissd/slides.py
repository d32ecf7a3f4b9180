"""Numbers of the SSD paper and of the source slides, as data (no computation lives here).

Two kinds of facts, both read by ``notebooks/00_what_is_detection.ipynb`` and
``tests/test_slides_errata.py``:

PUBLISHED  the paper's results (Liu et al., "SSD: Single Shot MultiBox
           Detector", ECCV 2016), which the slides reproduce unchanged:
           ``VOC2007_TEST`` (Table 1: mAP and the 20 per-class APs on PASCAL
           VOC 2007 test) and ``SPEED`` (Table 7: mAP, frames per second on a
           Titan X, number of boxes and input size).
PRINTED    a few values exactly as the slides print them, slips included
           (``PRINTED_*``), so that every slip is found by comparing them with
           what ``minissd.priors`` computes, never by a hand-written "answer".

All APs and mAPs are percentages rounded to one decimal, as published.
"""

from __future__ import annotations

from typing import NamedTuple

# Table 1's column order; the same as minissd.models.vgg.VOC_CLASSES.
VOC_CLASS_COLUMNS = ("aero", "bike", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
                     "table", "dog", "horse", "mbike", "person", "plant", "sheep", "sofa", "train", "tv")


class Result(NamedTuple):
    """One row of Table 1: ``method`` trained on ``data``, tested on VOC 2007 test."""

    method: str  # "Fast R-CNN", "Faster R-CNN", "SSD300", "SSD512"
    data: str  # training data: "07", "07+12" or "07+12+COCO"
    mAP: float  # mean average precision, %
    ap: tuple  # 20 per-class APs, %, in VOC_CLASS_COLUMNS order


class Speed(NamedTuple):
    """One row of Table 7 (VOC 2007 test, models trained on 07+12, Titan X)."""

    method: str
    mAP: float  # %
    fps: float  # frames per second
    batch: int  # images per forward when timed
    boxes: int  # boxes scored per image (Faster R-CNN's is approximate: "~6000")
    input_size: tuple  # (width, height) px (Faster R-CNN's is approximate: "~1000 x 600")
    approximate: bool = False  # True where the paper writes "~"


def _ap(text: str) -> tuple:
    values = tuple(float(v) for v in text.split())
    if len(values) != len(VOC_CLASS_COLUMNS):  # a transcription guard, checked at import
        raise ValueError(f"minissd.slides: a Table 1 row has {len(values)} APs, not 20: {text!r}")
    return values


VOC2007_TEST = (
    Result("Fast R-CNN", "07", 66.9, _ap(
        "74.5 78.3 69.2 53.2 36.6 77.3 78.2 82.0 40.7 72.7 67.9 79.6 79.2 73.0 69.0 30.1 65.4 70.2 75.8 65.8")),
    Result("Fast R-CNN", "07+12", 70.0, _ap(
        "77.0 78.1 69.3 59.4 38.3 81.6 78.6 86.7 42.8 78.8 68.9 84.7 82.0 76.6 69.9 31.8 70.1 74.8 80.4 70.4")),
    Result("Faster R-CNN", "07", 69.9, _ap(
        "70.0 80.6 70.1 57.3 49.9 78.2 80.4 82.0 52.2 75.3 67.2 80.3 79.8 75.0 76.3 39.1 68.3 67.3 81.1 67.6")),
    Result("Faster R-CNN", "07+12", 73.2, _ap(
        "76.5 79.0 70.9 65.5 52.1 83.1 84.7 86.4 52.0 81.9 65.7 84.8 84.6 77.5 76.7 38.8 73.6 73.9 83.0 72.6")),
    Result("Faster R-CNN", "07+12+COCO", 78.8, _ap(
        "84.3 82.0 77.7 68.9 65.7 88.1 88.4 88.9 63.6 86.3 70.8 85.9 87.6 80.1 82.3 53.6 80.4 75.8 86.6 78.9")),
    Result("SSD300", "07", 68.0, _ap(
        "73.4 77.5 64.1 59.0 38.9 75.2 80.8 78.5 46.0 67.8 69.2 76.6 82.1 77.0 72.5 41.2 64.2 69.1 78.0 68.5")),
    Result("SSD300", "07+12", 74.3, _ap(
        "75.5 80.2 72.3 66.3 47.6 83.0 84.2 86.1 54.7 78.3 73.9 84.5 85.3 82.6 76.2 48.6 73.9 76.0 83.4 74.0")),
    Result("SSD300", "07+12+COCO", 79.6, _ap(
        "80.9 86.3 79.0 76.2 57.6 87.3 88.2 88.6 60.5 85.4 76.7 87.5 89.2 84.5 81.4 55.0 81.9 81.5 85.9 78.9")),
    Result("SSD512", "07", 71.6, _ap(
        "75.1 81.4 69.8 60.8 46.3 82.6 84.7 84.1 48.5 75.0 67.4 82.3 83.9 79.4 76.6 44.9 69.9 69.1 78.1 71.8")),
    Result("SSD512", "07+12", 76.8, _ap(
        "82.4 84.7 78.4 73.8 53.2 86.2 87.5 86.0 57.8 83.1 70.2 84.9 85.2 83.9 79.7 50.3 77.9 73.9 82.5 75.3")),
    Result("SSD512", "07+12+COCO", 81.6, _ap(
        "86.6 88.3 82.4 76.0 66.3 88.6 88.9 89.1 65.1 88.4 73.6 86.5 88.9 85.3 84.6 59.1 85.0 80.4 87.4 81.2")),
)

SPEED = (
    Speed("Faster R-CNN (VGG16)", 73.2, 7, 1, 6000, (1000, 600), approximate=True),
    Speed("Fast YOLO", 52.7, 155, 1, 98, (448, 448)),
    Speed("YOLO (VGG16)", 66.4, 21, 1, 98, (448, 448)),
    Speed("SSD300", 74.3, 46, 1, 8732, (300, 300)),
    Speed("SSD512", 76.8, 19, 1, 24564, (512, 512)),
    Speed("SSD300", 74.3, 59, 8, 8732, (300, 300)),
    Speed("SSD512", 76.8, 22, 8, 24564, (512, 512)),
)

# YOLO's boxes: an S x S grid with B boxes per cell (Redmon et al. 2016): 7 * 7 * 2 = 98.
YOLO_GRID, YOLO_BOXES_PER_CELL = 7, 2

# --- As the slides print them (slips included) ------------------------------------------

PRINTED_SCALES = (0.2, 0.34, 0.48, 0.62, 0.76, 0.9)  # s_1..s_6 for m = 6
PRINTED_MAP_WITH_S_MAX = 2  # "the 2nd feature map uses boxes of 0.9" (1-based k)
# The k = 3 box table, in the slide's order: a_r = 1, 2, 3, 1/2, 1/3, then the extra square s'_3.
PRINTED_K3_RATIOS = (1, 2, 3, 1 / 2, 1 / 3, "extra")
PRINTED_K3_SHAPES = ((0.48, 0.48), (0.68, 0.34), (0.83, 0.28), (0.34, 0.68), (0.28, 0.84), (0.55, 0.55))
PRINTED_K_OF_5X5 = 3  # the centre slide's "K = 3" above its 5 x 5 example
PRINTED_5X5_COUNT = 25  # "total indexes: 25"
PRINTED_5X5_CENTRES = (
    (0.1, 0.1), (0.1, 0.5), (0.1, 0.7), (0.1, 0.9),
    (0.3, 0.1), (0.3, 0.3), (0.3, 0.5), (0.3, 0.7), (0.3, 0.9),
    (0.5, 0.1), (0.5, 0.3), (0.5, 0.5), (0.5, 0.7), (0.5, 0.9),
    (0.7, 0.1), (0.7, 0.3), (0.7, 0.5), (0.7, 0.7), (0.7, 0.9),
    (0.9, 0.1), (0.9, 0.3), (0.9, 0.5), (0.9, 0.7), (0.9, 0.9),
)
PRINTED_NEG_POS_RATIO = 3  # hard negative mining: "negatives : positives becomes 3 : 1"


def result(method: str, data: str) -> Result:
    """The Table 1 row of ``method`` trained on ``data``; a ValueError names the rows there are."""
    for row in VOC2007_TEST:
        if row.method == method and row.data == data:
            return row
    rows = ", ".join(f"{r.method} {r.data}" for r in VOC2007_TEST)
    raise ValueError(f"result: no Table 1 row for method={method!r}, data={data!r}; the rows are: {rows}")
