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

Boxes are normalised as the training transform does it: resizing a W x H
picture to the square input and dividing by the input side is x / W, y / H.
Objects flagged difficult are left out by default, as the trainer leaves them
out of the targets. Augmentation is not applied: the numbers describe the
annotations as they are (SSD's zoom out makes objects smaller still).

Reading. ``dataset_boxes`` takes VOC and COCO boxes from the dataset's index
and each picture's size from its file header, without decoding a pixel
(``image_annotation``); ``ShapesDataset`` draws its pictures (its boxes come
from drawing); any other dataset of ``Sample``s is read item by item.

    from minissd.coverage import coverage, compare_presets
    cov = coverage(ShapesDataset("val"), "tiny")        # or a list of (G_i, 4) boxes, one per image
    cov.share_below_threshold, cov.share_below_low, cov.positives_per_map, cov.positives_per_kind
    print(cov.table())
    print(coverage_table(compare_presets(dataset, ["tiny", my_config])))   # reads the data once
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .backend import to_numpy
from .boxes import check_boxes, cxcywh_to_xyxy, iou
from .matching import BIPARTITE_CHOICES, IOU_RULE, match_indices
from .priors import PriorConfig, default_boxes, get_config, prior_slices
from .validate import as_float_array, check_choice, check_count, check_threshold, format_row

LOW_IOU = 0.3  # the second mark: below it even an object's best default box is far off
HISTOGRAM_EDGES = np.linspace(0.0, 1.0, 21)  # best-IoU bins of 0.05, for the summary
NORMALISED_TOLERANCE = 1e-4  # boxes may leave [0, 1] by float rounding only


# --------------------------------------------------------------------------
# the boxes of a dataset, normalised, without decoding pictures
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageAnnotation:
    """One picture's training objects. boxes (G, 4) float32 pixel xyxy; difficult (G,) bool."""

    boxes: np.ndarray
    difficult: np.ndarray
    width: int
    height: int
    image_id: str


def image_annotation(dataset, index: int) -> ImageAnnotation:
    """Item ``index``'s boxes and picture size, decoding no picture where the dataset allows it.

    VOCDataset / COCODataset: the boxes of the dataset's index, the size from
    the picture's header, boxes checked against it as reading the item does
    (``check_pixel_box``: clipped within a pixel, ``DataError`` beyond).
    COCO's crowd regions are not training targets and are left out.
    ConcatDataset: its part's. Anything else (ShapesDataset, your own):
    ``dataset[index]``, a ``Sample``.
    """
    from .data import COCODataset, ConcatDataset, VOCDataset
    from .data.sample import as_box_array, check_pixel_box, image_size

    index = int(index)
    if isinstance(dataset, ConcatDataset):
        start = 0
        for part in dataset.datasets:
            if index < start + len(part):
                return image_annotation(part, index - start)
            start += len(part)
        raise IndexError(f"index {index} out of range for ConcatDataset of length {len(dataset)}")
    if isinstance(dataset, VOCDataset):
        # the record VOCDataset keeps per image (minissd/data/voc.py, _read_record)
        image_id, xml_path, image_path, boxes, labels, difficult, object_indices = dataset._records[index]
        width, height = image_size(image_path)
        names = dataset.class_names
        where = [f"{xml_path}, object {k} '{names[label]}'" for label, k in zip(labels, object_indices)]
    elif isinstance(dataset, COCODataset):
        # the record COCODataset keeps per image (minissd/data/coco.py, _read_record); crowd regions left out
        image_id, _, image_path, (boxes, labels, _, positions), _ = dataset._records[index]
        width, height = image_size(image_path)
        difficult = np.zeros(len(labels), dtype=bool)
        where = [f"{dataset.annotation_file}, annotations[{k}] (image {image_path})" for k in positions]
    else:
        sample = dataset[index]
        return ImageAnnotation(np.asarray(sample.boxes, dtype=np.float32).reshape(-1, 4),  # (G, 4)
                               np.asarray(sample.difficult, dtype=bool).reshape(-1), sample.width, sample.height,
                               str(sample.image_id))
    boxes = as_box_array([check_pixel_box(box, width, height, place) for box, place in zip(boxes, where)])
    return ImageAnnotation(boxes, np.asarray(difficult, dtype=bool).copy(), int(width), int(height), str(image_id))


@dataclass(frozen=True)
class DatasetBoxes:
    """Normalised training boxes, one (G_i, 4) float32 xyxy array per image, and what was left out.

    skipped: (item index, reason) of pictures a ``skip_bad`` dataset could not read.
    difficult_left_out: objects flagged difficult that were dropped.
    source: what the boxes came from, for tables and titles.
    """

    boxes: list
    skipped: tuple = ()
    difficult_left_out: int = 0
    source: str = ""


def dataset_boxes(dataset, limit: int | None = None, drop_difficult: bool = True) -> DatasetBoxes:
    """The first ``limit`` images (all when None) of ``dataset`` as normalised boxes: x / W, y / H.

    A picture that cannot be read is a ``DataError`` naming the file, or, for a
    dataset built with ``skip_bad=True``, skipped with one warning at the end.
    """
    from .data import DataError

    limit = None if limit is None else check_count(limit, "limit", "dataset_boxes")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    boxes, skipped, dropped = [], [], 0
    for index in range(count):
        try:
            annotation = image_annotation(dataset, index)
        except DataError as error:
            if not getattr(dataset, "skip_bad", False):
                raise
            skipped.append((index, str(error)))
            continue
        pixels, difficult = annotation.boxes, annotation.difficult
        if drop_difficult and difficult.any():
            dropped += int(difficult.sum())
            pixels = pixels[~difficult]
        scale = np.array([annotation.width, annotation.height] * 2, dtype=np.float32)
        normalised = (pixels / scale).astype(np.float32)  # (G, 4) in [0, 1]
        boxes.append(check_boxes(normalised, f"item {index} ({annotation.image_id}) boxes", function="dataset_boxes"))
    if skipped:
        warnings.warn(f"dataset_boxes: skipped {len(skipped)} picture(s) that could not be read "
                      f"(the first, item {skipped[0][0]}: {skipped[0][1]})", UserWarning, stacklevel=2)
    return DatasetBoxes(boxes, tuple(skipped), dropped, repr(dataset))


def _given_boxes(data, function: str) -> DatasetBoxes:
    """A (G, 4) array (one image) or a list of them (one per image), checked, as ``DatasetBoxes``."""
    one_image = isinstance(data, np.ndarray) or hasattr(data, "__cuda_array_interface__")
    images = [data] if one_image else list(data)
    checked = []
    for i, boxes in enumerate(images):
        name = "boxes" if one_image else f"boxes[{i}]"
        boxes = np.asarray(to_numpy(as_float_array(boxes, name, function)), dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{function}: {name} has shape {boxes.shape}; give one (G, 4) xyxy array per image")
        check_boxes(boxes, name, function=function)
        outside = np.flatnonzero(((boxes < -NORMALISED_TOLERANCE) | (boxes > 1 + NORMALISED_TOLERANCE)).any(axis=1))
        if outside.size:
            g = int(outside[0])
            raise ValueError(f"{function}: {name}[{g}] = {format_row(boxes[g])} lies outside [0, 1]; give boxes "
                             "normalised by the picture's size (x / width, y / height)")
        checked.append(boxes)
    return DatasetBoxes(checked, source="the boxes given")


def _as_dataset_boxes(data, limit, drop_difficult, function: str) -> DatasetBoxes:
    if isinstance(data, DatasetBoxes):
        limited = data.boxes if limit is None else data.boxes[:check_count(limit, "limit", function)]
        return DatasetBoxes(list(limited), data.skipped, data.difficult_left_out, data.source)
    if isinstance(data, (np.ndarray, list, tuple)) or hasattr(data, "__cuda_array_interface__"):
        given = _given_boxes(data, function)
        return given if limit is None else DatasetBoxes(given.boxes[:check_count(limit, "limit", function)],
                                                        source=given.source)
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        return dataset_boxes(data, limit, drop_difficult)
    raise TypeError(f"{function}: data is a {type(data).__name__}; give a dataset, a list of (G, 4) normalised "
                    "boxes per image, or DatasetBoxes")


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
    images = _as_dataset_boxes(data, limit, drop_difficult, "coverage")
    priors = default_boxes(config)  # (P, 4) cxcywh, exactly the trainer's
    corners = cxcywh_to_xyxy(priors, validate=False)  # (P, 4)
    kinds, prior_map, prior_kind = prior_kinds(config)
    slices = prior_slices(config)
    per_image = {name: [] for name in ("best_iou", "best_prior", "per_map", "positives", "image")}
    table = np.zeros((len(slices), len(kinds)), dtype=np.int64)  # (M, K)
    for number, boxes in enumerate(images.boxes):
        if boxes.shape[0] == 0:
            continue
        overlaps = iou(boxes, corners, validate=False)  # (G, P)
        per_image["best_iou"].append(overlaps.max(axis=1))
        per_image["best_prior"].append(overlaps.argmax(axis=1))
        per_image["per_map"].append(np.stack([overlaps[:, rows].max(axis=1) for rows in slices], axis=1))  # (G, M)
        matched = match_indices(boxes, priors, iou_threshold, bipartite, validate=False)  # (P,)
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
    images = _as_dataset_boxes(data, limit, drop_difficult, "compare_presets")
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
