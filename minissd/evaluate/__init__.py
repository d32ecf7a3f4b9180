"""Detection metrics: PASCAL VOC average precision and COCO-style AP.

    voc_ap(...)   VOC2007 11-point or VOC2010+ all-point AP per class, and mAP (``voc``)
    coco_ap(...)  AP@[.5:.95], AP50, AP75, AP by object size, AR, as pycocotools (``coco``)

Both take lists with one array per image: detections (boxes xyxy, labels,
scores) and ground truth (boxes xyxy, labels, per-object flags). Labels are
1..L-1; 0, the background, never appears. Results are dataclasses that keep
the per-class precision/recall curves for plotting
(``minissd.viz.plot_pr_curves``).
"""

from .coco import AREA_RANGES, RECALL_THRESHOLDS, COCOResult, coco_ap, coco_iou
from .coco_matching import IOU_THRESHOLDS, greedy_match, greedy_match_reference
from .voc import VOCResult, interpolated_ap, voc_ap, voc_ap_reference

__all__ = [
    "AREA_RANGES",
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "COCOResult",
    "VOCResult",
    "coco_ap",
    "coco_iou",
    "greedy_match",
    "greedy_match_reference",
    "interpolated_ap",
    "voc_ap",
    "voc_ap_reference",
]
