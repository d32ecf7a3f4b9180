"""Default-box coverage of a dataset: do a preset's default boxes fit the objects it must learn?

SSD learns an object only through the default boxes matched to it
(``minissd.matching``). So before training, ask of every ground-truth box g:

    best IoU    b(g) = max_p IoU(g, d_p) over all P default boxes d_p of the preset
    best box    the d_p that reaches it: its feature map k (the "map it comes from")
                and its kind in the cell, in per-cell order s_k, s'_k, a=2, a=1/2, a=3, a=1/3
    positives   how many default boxes the trainer's matching gives g
                (``match_indices``: greedy bipartite step, then IoU >= T), image by image,
                so objects of one picture compete for boxes exactly as in training

Two shares sum a preset up. Objects with b(g) < T (the matching threshold, 0.5)
get exactly one positive, the one the bipartite step hands them: no default box
is close to them, and they are learned from a single, poorly fitting box. Below
0.3 even that box is far off (an anchor below 0.3 is a plain negative in Faster
R-CNN's rule), so its offsets are large and hard to regress. Both shares fall
when the scales s_k and the aspect ratios resemble the objects' sizes and shapes.

Boxes are normalised as the training transform does it (x / W, y / H) and
read without decoding a picture where the dataset allows it; difficult objects
are left out by default, as the trainer leaves them out of the targets
(``coverage_boxes.py``: ``dataset_boxes``, ``image_annotation``, re-exported
here). Augmentation is not applied: the numbers describe the annotations as
they are (SSD's zoom out makes objects smaller still).

    from minissd.coverage import coverage, compare_presets
    cov = coverage(ShapesDataset("val"), "tiny")        # or a list of (G_i, 4) boxes, one per image
    cov.share_below_threshold, cov.share_below_low, cov.positives_per_map, cov.positives_per_kind
    print(cov.table())
    print(coverage_table(compare_presets(dataset, ["tiny", my_config])))   # reads the data once
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .boxes import iou_unchecked
from .coverage_boxes import (  # noqa: F401 - re-exported: they lived here before coverage_boxes.py
    NORMALISED_TOLERANCE,
    DatasetBoxes,
    ImageAnnotation,
    as_dataset_boxes,
    dataset_boxes,
    image_annotation,
)
from .matching import BIPARTITE_CHOICES, IOU_RULE, match_indices, prepare_priors
from .priors import PriorConfig, default_boxes, get_config, prior_slices
from .validate import check_choice, check_threshold

LOW_IOU = 0.3  # the second mark: below it even an object's best default box is far off
HISTOGRAM_EDGES = np.linspace(0.0, 1.0, 21)  # best-IoU bins of 0.05, for the summary


# --------------------------------------------------------------------------
# the coverage
# --------------------------------------------------------------------------

def box_kinds(aspect_ratios) -> list[str]:
    """The names of one cell's default boxes in per-cell order: s_k, s'_k, a=2, a=1/2, ..."""
    names = ["s_k", "s'_k"]
    for ratio in aspect_ratios:
        names += [f"a={ratio:g}", f"a=1/{ratio:g}"]
    return names


def prior_kinds(preset_name_or_config) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(kind names, map of each default box (P,) int64, kind of each (P,) int64 indexing the names).

    Kinds are pooled over maps by name (every map's s_k is one kind), in order of first appearance.
    """
    config = get_config(preset_name_or_config)
    names: list[str] = []
    maps, kinds = [], []
    for k, (side, ratios) in enumerate(zip(config.feature_maps, config.aspect_ratios)):
        cell = []
        for name in box_kinds(ratios):
            if name not in names:
                names.append(name)
            cell.append(names.index(name))
        maps.append(np.full(side * side * len(cell), k, dtype=np.int64))
        kinds.append(np.tile(np.array(cell, dtype=np.int64), side * side))  # per-cell order, cell after cell
    return tuple(names), np.concatenate(maps), np.concatenate(kinds)


@dataclass(frozen=True, eq=False)
class Coverage:
    """How a preset's default boxes cover G objects (from ``coverage``); arrays are NumPy.

    boxes (G, 4) float32 normalised xyxy; image_index (G,) int64 (position among the images read);
    best_iou (G,) float32; best_prior (G,) int64 row of ``default_boxes(config)``; best_map (G,)
    int64 feature map of that box; best_kind (G,) int64 index into ``kinds``; best_iou_per_map
    (G, M) float32, the best IoU on each map; positives (G,) int64, the default boxes matching
    gives each object; positives_by_map_and_kind (M, K) int64, all positives by map and kind.
    """

    config: PriorConfig
    iou_threshold: float
    boxes: np.ndarray
    image_index: np.ndarray
    best_iou: np.ndarray
    best_prior: np.ndarray
    best_map: np.ndarray
    best_kind: np.ndarray
    best_iou_per_map: np.ndarray
    positives: np.ndarray
    positives_by_map_and_kind: np.ndarray
    kinds: tuple
    num_images: int
    skipped: tuple = ()
    difficult_left_out: int = 0
    source: str = field(default="")

    @property
    def num_objects(self) -> int:
        return int(self.best_iou.shape[0])

    def share_below(self, iou_value: float) -> float:
        """The fraction of objects whose best IoU is below ``iou_value`` (strictly: T itself matches)."""
        return float(np.mean(self.best_iou < np.float32(iou_value)))

    @property
    def share_below_threshold(self) -> float:
        """Objects that only the bipartite step matches (best IoU < T), as a fraction."""
        return self.share_below(self.iou_threshold)

    @property
    def share_below_low(self) -> float:
        """Objects whose best default box has IoU < 0.3 (``LOW_IOU``), as a fraction."""
        return self.share_below(LOW_IOU)

    @property
    def mean_best_iou(self) -> float:
        return float(np.mean(self.best_iou, dtype=np.float64))

    @property
    def positives_per_object(self) -> float:
        return float(self.positives.mean())

    @property
    def unmatched(self) -> int:
        """Objects with no positive at all (zero size, or every overlapping box taken by others)."""
        return int((self.positives == 0).sum())

    @property
    def positives_per_map(self) -> np.ndarray:
        """(M,) int64 positives on each feature map, summed over the objects."""
        return self.positives_by_map_and_kind.sum(axis=1)

    @property
    def positives_per_kind(self) -> dict:
        """{kind name: positives} over all maps, e.g. {"s_k": 812, "s'_k": 640, "a=2": 301, ...}."""
        return {name: int(n) for name, n in zip(self.kinds, self.positives_by_map_and_kind.sum(axis=0))}

    @property
    def objects_per_best_map(self) -> np.ndarray:
        """(M,) int64 objects whose best default box lies on each map."""
        return np.bincount(self.best_map, minlength=len(self.config.feature_maps)).astype(np.int64)

    @property
    def object_sizes(self) -> np.ndarray:
        """(G,) float32 sqrt(w h) of each object, comparable with the scales s_k."""
        w = self.boxes[:, 2] - self.boxes[:, 0]
        h = self.boxes[:, 3] - self.boxes[:, 1]
        return np.sqrt(w * h).astype(np.float32)

    def summary(self) -> dict:
        """The numbers as plain JSON values (no per-object arrays)."""
        config = self.config
        counts, _ = np.histogram(self.best_iou, bins=HISTOGRAM_EDGES)
        maps = []
        for k, side in enumerate(config.feature_maps):
            maps.append({"side": int(side), "s_k": float(config.min_sizes[k]),
                         "s'_k": math.sqrt(config.min_sizes[k] * config.max_sizes[k]),
                         "positives": int(self.positives_per_map[k]),
                         "objects_best_here": int(self.objects_per_best_map[k])})
        return {
            "preset": config.name, "num_priors": int(config.num_priors), "iou_threshold": self.iou_threshold,
            "images": self.num_images, "objects": self.num_objects, "skipped_images": len(self.skipped),
            "difficult_left_out": self.difficult_left_out,
            "share_below_threshold": self.share_below_threshold, "share_below_0.3": self.share_below_low,
            "mean_best_iou": self.mean_best_iou, "positives": int(self.positives.sum()),
            "positives_per_object": self.positives_per_object, "objects_without_positive": self.unmatched,
            "best_iou_histogram": {"edges": HISTOGRAM_EDGES.tolist(), "counts": counts.tolist()},
            "maps": maps, "kinds": self.positives_per_kind,
        }

    def table(self) -> str:
        return coverage_table([self])


def coverage(data, preset, iou_threshold: float = 0.5, limit: int | None = None, *,
             bipartite: str = "greedy", drop_difficult: bool = True) -> Coverage:
    """The coverage of ``data``'s objects by ``preset``'s default boxes.

    data:    a dataset (VOC, COCO, shapes, ConcatDataset, any dataset of ``Sample``s), a list of
             (G_i, 4) normalised xyxy arrays (one per image), one (G, 4) array (one image), or
             ``DatasetBoxes`` (read once, reused for several presets).
    preset:  a preset name or a ``PriorConfig``.
    iou_threshold: T of the matching's threshold step, in [0, 1] (the trainer's 0.5).
    limit:   only the first ``limit`` images.
    bipartite, drop_difficult: as the trainer (``match_indices``; ``DataLoader(drop_difficult=)``).
    Raises ValueError when the images hold no object.
    """
    config = get_config(preset)
    iou_threshold = check_threshold(iou_threshold, "iou_threshold", "coverage", rule=IOU_RULE)
    check_choice(bipartite, "bipartite", "coverage", BIPARTITE_CHOICES)
    images = as_dataset_boxes(data, limit, drop_difficult, "coverage")
    priors = default_boxes(config)  # (P, 4) cxcywh, exactly the trainer's
    prepared = prepare_priors(priors, "coverage", validate=False)  # corners and areas, once
    kinds, prior_map, prior_kind = prior_kinds(config)
    slices = prior_slices(config)
    per_image = {name: [] for name in ("best_iou", "best_prior", "per_map", "positives", "image")}
    table = np.zeros((len(slices), len(kinds)), dtype=np.int64)  # (M, K)
    for number, boxes in enumerate(images.boxes):
        if boxes.shape[0] == 0:
            continue
        overlaps = iou_unchecked(boxes, prepared.xyxy, prepared.area)  # (G, P)
        per_image["best_iou"].append(overlaps.max(axis=1))
        per_image["best_prior"].append(overlaps.argmax(axis=1))
        per_image["per_map"].append(np.stack([overlaps[:, rows].max(axis=1) for rows in slices], axis=1))  # (G, M)
        matched = match_indices(boxes, prepared, iou_threshold, bipartite, validate=False)  # (P,)
        positive = matched >= 0
        per_image["positives"].append(np.bincount(matched[positive], minlength=boxes.shape[0]))
        np.add.at(table, (prior_map[positive], prior_kind[positive]), 1)
        per_image["image"].append(np.full(boxes.shape[0], number, dtype=np.int64))
    if not per_image["best_iou"]:
        left = f" ({images.difficult_left_out} difficult ones left out)" if images.difficult_left_out else ""
        raise ValueError(f"coverage: the {len(images.boxes)} image(s) of {images.source or 'data'} hold no "
                         f"objects{left}; nothing to cover")
    best_prior = np.concatenate(per_image["best_prior"]).astype(np.int64)
    return Coverage(
        config=config, iou_threshold=float(iou_threshold),
        boxes=np.concatenate([b for b in images.boxes if b.shape[0]]).astype(np.float32),
        image_index=np.concatenate(per_image["image"]),
        best_iou=np.concatenate(per_image["best_iou"]).astype(np.float32),
        best_prior=best_prior, best_map=prior_map[best_prior], best_kind=prior_kind[best_prior],
        best_iou_per_map=np.concatenate(per_image["per_map"]).astype(np.float32),
        positives=np.concatenate(per_image["positives"]).astype(np.int64),
        positives_by_map_and_kind=table, kinds=kinds, num_images=len(images.boxes), skipped=images.skipped,
        difficult_left_out=images.difficult_left_out, source=images.source,
    )


def compare_presets(data, presets, iou_threshold: float = 0.5, limit: int | None = None, *,
                    bipartite: str = "greedy", drop_difficult: bool = True) -> list[Coverage]:
    """``coverage`` of the same objects under each of ``presets``; a dataset is read once."""
    if isinstance(presets, (str, PriorConfig)) or not hasattr(presets, "__iter__"):
        raise TypeError(f"compare_presets: presets = {presets!r} must be a list of preset names or PriorConfigs")
    images = as_dataset_boxes(data, limit, drop_difficult, "compare_presets")
    return [coverage(images, preset, iou_threshold, bipartite=bipartite) for preset in presets]


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------

def coverage_table(coverages) -> str:
    """A text table with one column per ``Coverage`` (the same objects under several presets, say)."""
    coverages = list(coverages)
    if not coverages:
        raise ValueError("coverage_table: give at least one Coverage")
    first = coverages[0]
    width = max(22, *(len(c.config.name) + 2 for c in coverages))

    def row(label, cells):
        return f"{label:<30}" + "".join(f"{cell:>{width}}" for cell in cells)

    heading = (f"default-box coverage of {first.source or 'the data'}: {first.num_objects} objects in "
               f"{first.num_images} images, IoU threshold {first.iou_threshold:g}")
    lines = [heading]
    if first.skipped or first.difficult_left_out:
        lines.append(f"(left out: {len(first.skipped)} unreadable picture(s), "
                     f"{first.difficult_left_out} difficult object(s))")
    lines.append(row("preset", [c.config.name for c in coverages]))
    lines.append(row("default boxes", [str(c.config.num_priors) for c in coverages]))
    lines.append(row(f"best IoU < {first.iou_threshold:g} (bipartite only)",
                     [f"{100 * c.share_below_threshold:.1f} %" for c in coverages]))
    lines.append(row(f"best IoU < {LOW_IOU:g}", [f"{100 * c.share_below_low:.1f} %" for c in coverages]))
    lines.append(row("mean best IoU", [f"{c.mean_best_iou:.3f}" for c in coverages]))
    lines.append(row("positives per object", [f"{c.positives_per_object:.2f}" for c in coverages]))
    lines.append(row("objects without a positive", [str(c.unmatched) for c in coverages]))
    maps = max(len(c.config.feature_maps) for c in coverages)

    def map_cells(k, value):
        return [f"{c.config.feature_maps[k]}x{c.config.feature_maps[k]}  {value(c, k)}"
                if k < len(c.config.feature_maps) else "-" for c in coverages]

    lines.append("positives per object, by map")
    for k in range(maps):
        lines.append(row(f"  map {k}", map_cells(k, lambda c, k: f"{c.positives_per_map[k] / c.num_objects:.2f}")))
    lines.append("objects whose best default box is on the map")
    for k in range(maps):
        lines.append(row(f"  map {k}", map_cells(k, lambda c, k: f"{int(c.objects_per_best_map[k])}")))
    lines.append("positives per object, by box kind")
    names = list(dict.fromkeys(name for c in coverages for name in c.kinds))
    for name in names:
        cells = [f"{c.positives_per_kind[name] / c.num_objects:.2f}" if name in c.kinds else "-" for c in coverages]
        lines.append(row(f"  {name}", cells))
    return "\n".join(lines)
