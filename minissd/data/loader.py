"""The batch loader: samples -> transform -> matched training targets, prepared in the background.

For every image of a batch the loader reads the sample, applies the
transform, and matches its ground truth to the default boxes with
``minissd.matching.match``; then it stacks the batch.

Determinism, independent of timing: sample i of epoch e is transformed with
a generator seeded by (seed, e, i), and the order of epoch e is a permutation
drawn from (seed, e). So a batch never depends on which thread made it, or
when: two loaders with one seed yield identical batches, and epoch 7 can be
replayed alone.

Background work: a thread prepares the next batches while the model works
on the current one (``batch_iterator.py``, ``BatchIterator``, re-exported
here); an exception there is raised in the consumer with a note saying which
sample failed.

Bad samples. A dataset built with ``skip_bad=True`` may still fail to read
an item (a picture whose body does not decode, a box outside the picture's
real size): ``read_sample`` then returns None instead of raising, and the
loader puts the next good item of the epoch's order in its place (one not
already in the batch), so batches stay full and still depend only on
(seed, epoch, index). Each such item is warned about once and listed in
``loader.skipped``; an epoch that found new ones ends with a count. Without
``skip_bad`` the ``DataError`` is raised, its message naming the file.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..matching import match, prepare_priors
from .batch_iterator import BatchIterator
from .sample import DataError, Sample


def read_sample(dataset, index: int, skipped: dict | None = None) -> Sample | None:
    """``dataset[index]``, or None when the dataset skips bad samples and this one fails to read.

    dataset: any dataset; one built with ``skip_bad=True`` (``dataset.skip_bad``)
             has a ``DataError`` from reading (an undecodable picture, a box
             outside its real size) turned into None; any other dataset, or any
             other exception, raises.
    skipped: a dict index -> reason that records the skipped items: an index
             already in it returns None without reading again, and a new one
             is warned about (one line naming the file) and added. None: warn
             every time.

    The evaluation uses it too: a None item is left out of the scores.
    """
    index = int(index)
    if skipped is not None and index in skipped:
        return None
    try:
        return dataset[index]
    except DataError as error:
        if not getattr(dataset, "skip_bad", False):
            raise
        reason = str(error)
    if skipped is not None:
        skipped[index] = reason
    warnings.warn(f"skipped dataset item {index}, it cannot be read: {reason}", UserWarning, stacklevel=2)
    return None


def skip_summary(skipped: dict, shown: int = 3) -> str | None:
    """One line counting the items ``read_sample`` skipped (None when there are none)."""
    if not skipped:
        return None
    first = ", ".join(str(index) for index in sorted(skipped)[:shown])
    more = ", ..." if len(skipped) > shown else ""
    return f"skipped {len(skipped)} dataset item(s) that could not be read (items {first}{more})"


@dataclass
class Batch:
    """One training batch.

    images:       (N, 3, S, S) float32, mean subtracted (the transform's output).
    loc_targets:  (N, P, 4) float32 encoded offsets (zeros for background).
    conf_targets: (N, P) int64 class targets (0 = background).
    boxes:        N arrays (G_i, 4) float32, normalised xyxy ground truth after the transform.
    labels:       N arrays (G_i,) int64.
    difficult:    N arrays (G_i,) bool.
    image_ids:    N str.
    indices:      (N,) int64 dataset indices (a stand-in's where an item failed to read).
    """

    images: np.ndarray
    loc_targets: np.ndarray
    conf_targets: np.ndarray
    boxes: list
    labels: list
    difficult: list
    image_ids: list
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.image_ids)


class DataLoader:
    """Batches of transformed images with SSD targets matched on the fly.

    dataset:       any object with ``__len__`` and ``__getitem__`` -> ``Sample``.
    batch_size:    N.
    priors:        (P, 4) cxcywh default boxes (``minissd.priors.default_boxes``).
    transform:     callable (image, boxes, labels, rng) -> (image (3, S, S),
                   boxes (K, 4) normalised, labels (K,)): ``SSDAugmentation``
                   or ``eval_transform``. It may drop boxes (the crop does);
                   the loader passes box indices as ``labels`` so that labels
                   and difficult flags follow the boxes that stay.
    shuffle:       a new order every epoch (from (seed, epoch)).
    seed:          fixes the order and every augmentation.
    drop_last:     drop a last, incomplete batch (default: True when shuffling,
                   so every training step sees N images; False otherwise, so
                   evaluation sees every image).
    prefetch:      batches prepared ahead in a background thread; 0 prepares
                   each batch in the caller's thread (simplest to debug).
    iou_threshold, variances, bipartite: passed to ``minissd.matching.match``.
    shard:         (rank, count): serve only the rank-th of ``count`` equal contiguous
                   parts of every batch (data-parallel training; ``batch_size`` stays
                   the global batch size, which ``count`` must divide). Every shard of
                   one batch together is the one-process batch, augmented the same.
    drop_difficult: leave objects flagged difficult out of the training
                   targets (before the transform and the matching), as SSD's
                   VOC training does; the dataset keeps them flagged, so the
                   evaluation still ignores them instead of counting misses.

    ``loader.skipped``: dataset index -> reason, the items of a ``skip_bad``
    dataset that failed to read and were replaced (see the module docstring);
    ``loader.skip_summary()`` counts them in one line.

    ``for batch in loader`` runs one epoch (the next one each time);
    ``loader.epoch(e)`` iterates a given epoch; ``len(loader)`` is the number
    of batches per epoch.
    """

    def __init__(self, dataset, batch_size: int, priors, transform, shuffle: bool = True, seed: int = 0,
                 drop_last: bool | None = None, prefetch: int = 2, iou_threshold: float = 0.5,
                 variances=(0.1, 0.2), bipartite: str = "greedy", drop_difficult: bool = False,
                 shard: tuple = (0, 1)):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        priors = np.asarray(priors)
        if priors.ndim != 2 or priors.shape[1] != 4:
            raise ValueError(f"priors must have shape (P, 4) cxcywh; got {priors.shape}")
        if int(prefetch) < 0:
            raise ValueError(f"prefetch must be >= 0; got {prefetch!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.priors = priors.astype(np.float32, copy=False)
        # checked and converted to corners once: every item is matched against the same default boxes
        self.prepared_priors = prepare_priors(self.priors, "DataLoader")
        self.transform = transform
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = shuffle if drop_last is None else bool(drop_last)
        self.prefetch = int(prefetch)
        self.match_options = dict(iou_threshold=iou_threshold, variances=variances, bipartite=bipartite)
        self.drop_difficult = bool(drop_difficult)
        rank, count = (int(v) for v in shard)
        if not (count >= 1 and 0 <= rank < count and self.batch_size % count == 0):
            raise ValueError(f"shard must be (rank, count) with 0 <= rank < count and count dividing the batch "
                             f"size {self.batch_size}; got {tuple(shard)}")
        self.shard = (rank, count)
        self.skipped: dict[int, str] = {}
        self.next_epoch = 0

    def skip_summary(self) -> str | None:
        """One line counting the items skipped so far, or None."""
        return skip_summary(self.skipped)

    def __len__(self) -> int:
        count = len(self.dataset) / self.batch_size
        return int(count) if self.drop_last else math.ceil(count)

    def order(self, epoch: int) -> np.ndarray:
        """(len(dataset),) the dataset indices of an epoch, in the order they are served."""
        if not self.shuffle:
            return np.arange(len(self.dataset))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))

    def batch_indices(self, epoch: int) -> list[np.ndarray]:
        """The dataset indices of each batch of an epoch (this shard's part of each global batch)."""
        order = self.order(epoch)
        batches = [order[start:start + self.batch_size] for start in range(0, len(self) * self.batch_size,
                                                                             self.batch_size)]
        rank, count = self.shard
        if count == 1:
            return batches
        part = self.batch_size // count  # data-parallel: rank r takes the r-th contiguous part
        return [batch[rank * part:(rank + 1) * part] for batch in batches]

    def sample_rng(self, epoch: int, index: int, stands_in_for: int | None = None) -> np.random.Generator:
        """The generator that transforms dataset item ``index`` in ``epoch`` (when it
        ``stands_in_for`` an unreadable item, a stream of its own, so its two
        appearances in the epoch are augmented differently)."""
        key = [self.seed, epoch, int(index)] if stands_in_for is None else [self.seed, epoch, int(index),
                                                                            int(stands_in_for)]
        return np.random.default_rng(key)

    def _read(self, epoch: int, index: int) -> Sample | None:
        try:
            return read_sample(self.dataset, index, self.skipped)
        except Exception as error:
            _note(error, epoch, index, None)
            raise

    def load_one(self, epoch: int, index: int, sample: Sample | None = None, rng=None):
        """Item ``index`` transformed and matched: (image, loc (P, 4), conf (P,), boxes, labels, difficult, id).

        ``sample``: the item already read (else it is read here); ``rng``: the
        transform's generator (else ``sample_rng(epoch, index)``).
        """
        image_id = None
        try:
            if sample is None:
                sample = self.dataset[int(index)]
            image_id = sample.image_id
            boxes = np.asarray(sample.boxes, dtype=np.float32).reshape(-1, 4)  # (G, 4)
            labels = np.asarray(sample.labels, dtype=np.int64)  # (G,)
            difficult = np.asarray(sample.difficult, dtype=bool)  # (G,)
            if self.drop_difficult and difficult.any():
                keep = ~difficult  # not targets; the dataset still has them for the evaluation
                boxes, labels, difficult = boxes[keep], labels[keep], difficult[keep]
            positions = np.arange(len(boxes))  # (G,) passed as labels: they follow the kept boxes
            rng = self.sample_rng(epoch, index) if rng is None else rng
            image, boxes, kept = self.transform(sample.image, boxes, positions, rng)
            kept = np.asarray(kept, dtype=np.int64)
            labels = labels[kept]  # (K,)
            difficult = difficult[kept]  # (K,)
            boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)  # (K, 4)
            loc, conf = match(boxes, labels, self.prepared_priors, **self.match_options)
        except Exception as error:
            _note(error, epoch, index, image_id)
            raise
        return image, loc, conf, boxes, labels, difficult, image_id

    def _stand_in(self, epoch: int, bad_index: int, taken: set) -> tuple[int, Sample]:
        """The next readable item after ``bad_index`` in the epoch's order, not in ``taken``
        (when every readable item is taken, one of those): deterministic, whatever was read before."""
        order = self.order(epoch)
        positions = np.flatnonzero(order == bad_index)
        start = int(positions[0]) if len(positions) else 0
        after = [int(order[(start + step) % len(order)]) for step in range(1, len(order))]
        for allow_taken in (False, True):
            for candidate in after:
                if candidate in self.skipped or (candidate in taken and not allow_taken):
                    continue
                sample = self._read(epoch, candidate)
                if sample is not None:
                    return candidate, sample
        raise DataError(f"DataLoader: no item of the dataset can be read ({self.skip_summary()})")

    def make_batch(self, epoch: int, indices) -> Batch:
        """Prepare one batch from dataset ``indices`` (the same work the background thread does).

        An item that fails to read (a ``skip_bad`` dataset) is replaced by the
        next good one of the epoch's order; ``Batch.indices`` lists what was used.
        """
        indices = [int(index) for index in indices]
        taken = set(indices)
        used, items = [], []
        for index in indices:
            sample = self._read(epoch, index)
            rng = None
            if sample is None:
                stand_in, sample = self._stand_in(epoch, index, taken)
                taken.add(stand_in)
                rng = self.sample_rng(epoch, stand_in, stands_in_for=index)
                index = stand_in
            used.append(index)
            items.append(self.load_one(epoch, index, sample, rng))
        return Batch(
            images=np.stack([item[0] for item in items]).astype(np.float32, copy=False),  # (N, 3, S, S)
            loc_targets=np.stack([item[1] for item in items]),  # (N, P, 4)
            conf_targets=np.stack([item[2] for item in items]),  # (N, P)
            boxes=[item[3] for item in items],
            labels=[item[4] for item in items],
            difficult=[item[5] for item in items],
            image_ids=[item[6] for item in items],
            indices=np.asarray(used, dtype=np.int64),
        )

    def epoch(self, epoch: int, start: int = 0):
        """An iterator over the batches of ``epoch`` from batch ``start`` on (a ``BatchIterator``;
        close it to stop early). ``start`` lets a resumed training run continue mid-epoch."""
        return BatchIterator(self, int(epoch), int(start))

    def __iter__(self):
        epoch, self.next_epoch = self.next_epoch, self.next_epoch + 1
        return self.epoch(epoch)


def _note(error: BaseException, epoch: int, index: int, image_id) -> None:
    if hasattr(error, "add_note"):  # Python 3.11+
        image = "" if image_id is None else f" (image {image_id!r})"
        error.add_note(f"minissd DataLoader: while preparing dataset item {index}{image} of epoch {epoch}")
