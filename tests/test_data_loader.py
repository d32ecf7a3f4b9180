"""DataLoader: deterministic batches whatever the timing, targets equal to `match`, errors reach the caller."""

import gc
import threading
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from minissd.data import (
    DataError,
    DataLoader,
    Sample,
    ShapesDataset,
    SSDAugmentation,
    VOCDataset,
    eval_transform,
    read_sample,
    skip_summary,
)
from minissd.matching import match
from minissd.priors import default_boxes

PRIORS = default_boxes("tiny")


def small_shapes(count=12):
    return ShapesDataset("train", num_images=count, image_size=64)


def loader(dataset=None, **options):
    settings = dict(batch_size=4, priors=PRIORS, transform=SSDAugmentation(64), seed=0)
    settings.update(options)
    return DataLoader(dataset if dataset is not None else small_shapes(), **settings)


def batches_of(iterable):
    return [batch for batch in iterable]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.loc_targets, b.loc_targets)
        np.testing.assert_array_equal(a.conf_targets, b.conf_targets)
        np.testing.assert_array_equal(a.indices, b.indices)
        assert a.image_ids == b.image_ids
        for x, y in zip(a.boxes, b.boxes):
            np.testing.assert_array_equal(x, y)


def test_batch_shapes_and_types():
    batch = next(iter(loader()))
    assert batch.images.shape == (4, 3, 64, 64) and batch.images.dtype == np.float32
    assert batch.loc_targets.shape == (4, len(PRIORS), 4) and batch.loc_targets.dtype == np.float32
    assert batch.conf_targets.shape == (4, len(PRIORS)) and batch.conf_targets.dtype == np.int64
    assert len(batch) == 4 and len(batch.boxes) == len(batch.labels) == len(batch.difficult) == 4
    for boxes, labels, difficult in zip(batch.boxes, batch.labels, batch.difficult):
        assert boxes.dtype == np.float32 and boxes.shape == (len(labels), 4)
        assert labels.dtype == np.int64 and difficult.dtype == bool and difficult.shape == labels.shape
        assert (boxes >= 0).all() and (boxes <= 1).all()
    assert batch.indices.dtype == np.int64


def test_two_runs_with_one_seed_give_identical_batches():
    assert_same_batches(batches_of(loader()), batches_of(loader()))


def test_background_thread_and_caller_thread_agree():
    # Timing cannot change a batch: the rng of each sample comes from (seed, epoch, index).
    assert_same_batches(batches_of(loader(prefetch=3)), batches_of(loader(prefetch=0)))


def test_a_different_seed_or_epoch_differs():
    base = batches_of(loader())
    other_seed = batches_of(loader(seed=1))
    assert not np.array_equal(base[0].indices, other_seed[0].indices)
    source = loader()
    epoch0, epoch1 = batches_of(source), batches_of(source)  # each iteration is the next epoch
    assert_same_batches(epoch0, base)
    assert not all(np.array_equal(a.indices, b.indices) for a, b in zip(epoch0, epoch1))
    assert_same_batches(batches_of(source.epoch(1)), epoch1)  # an epoch can be replayed alone


def test_same_order_different_seed_still_changes_augmentation():
    first = batches_of(loader(shuffle=False, seed=0, drop_last=True))
    second = batches_of(loader(shuffle=False, seed=5, drop_last=True))
    np.testing.assert_array_equal(first[0].indices, second[0].indices)
    assert not np.array_equal(first[0].images, second[0].images)


def test_targets_equal_match_called_directly():
    source = loader()
    batch = next(iter(source.epoch(2)))
    for row, index in enumerate(batch.indices):
        sample = source.dataset[index]
        _, boxes, kept = source.transform(sample.image, sample.boxes, np.arange(len(sample.boxes)),
                                          source.sample_rng(2, index))
        labels = sample.labels[kept]
        np.testing.assert_array_equal(batch.boxes[row], boxes)
        np.testing.assert_array_equal(batch.labels[row], labels)
        loc, conf = match(boxes, labels, PRIORS)
        np.testing.assert_array_equal(batch.loc_targets[row], loc)
        np.testing.assert_array_equal(batch.conf_targets[row], conf)
    assert (batch.conf_targets > 0).any()


def test_epoch_covers_the_dataset_and_drop_last():
    dataset = small_shapes(10)
    training = loader(dataset)  # shuffle: drop_last by default
    assert len(training) == 2
    served = np.concatenate([b.indices for b in training])
    assert len(served) == 8 and len(set(served.tolist())) == 8
    evaluation = loader(dataset, shuffle=False, transform=eval_transform(64))
    batches = batches_of(evaluation)
    assert len(evaluation) == 3 and [len(b) for b in batches] == [4, 4, 2]
    assert np.concatenate([b.indices for b in batches]).tolist() == list(range(10))
    assert batches[2].image_ids == [dataset[8].image_id, dataset[9].image_id]


class FlaggedDataset:
    """Two boxes per image, the second difficult; for following fields through the crop."""

    class_names = ["background", "a", "b"]
    num_classes = 3

    def __len__(self):
        return 6

    def __getitem__(self, index):
        image = np.full((40, 40, 3), 100, dtype=np.uint8)
        return Sample(image=image, boxes=np.array([[2, 2, 12, 12], [20, 20, 38, 38]], np.float32),
                      labels=np.array([1, 2]), difficult=np.array([False, True]), image_id=f"img{index}")


def test_labels_and_difficult_follow_the_kept_boxes():
    def drop_first(image, boxes, labels, rng):  # a transform that removes box 0, as a crop may
        planes, normalised, kept = eval_transform(32)(image, boxes[1:], labels[1:])
        return planes, normalised, kept

    batch = next(iter(loader(FlaggedDataset(), transform=drop_first, shuffle=False)))
    for labels, difficult, boxes in zip(batch.labels, batch.difficult, batch.boxes):
        assert labels.tolist() == [2] and difficult.tolist() == [True]
        np.testing.assert_allclose(boxes, [[0.5, 0.5, 0.95, 0.95]])


class BrokenDataset:
    class_names = ["background", "a"]
    num_classes = 2

    def __init__(self, bad_index):
        self.inner = ShapesDataset("val", num_images=8, image_size=64)
        self.bad_index = bad_index

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, index):
        if index == self.bad_index:
            raise OSError(f"disk on fire while reading item {index}")
        return self.inner[index]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_errors_reach_the_consumer_with_their_message(prefetch):
    source = loader(BrokenDataset(bad_index=5), shuffle=False, prefetch=prefetch)
    with pytest.raises(OSError, match="disk on fire while reading item 5") as info:
        batches_of(source)
    notes = getattr(info.value, "__notes__", [])
    if hasattr(info.value, "add_note"):
        assert any("dataset item 5" in note and "epoch 0" in note for note in notes)
    assert not loader_threads()


def test_transform_errors_name_the_image():
    def broken(image, boxes, labels, rng):
        raise ValueError("bad transform")

    with pytest.raises(ValueError, match="bad transform") as info:
        next(iter(loader(transform=broken)))
    if hasattr(info.value, "add_note"):
        assert "image 'shapes-train-" in " ".join(info.value.__notes__)


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("minissd-loader") and t.is_alive()]


def wait_for_no_loader_threads(timeout=5.0):
    deadline = time.monotonic() + timeout
    while loader_threads() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    return loader_threads()


def test_abandoning_an_iteration_stops_the_thread():
    source = loader(small_shapes(40), prefetch=1)
    for batch in source:
        break  # the iterator is dropped here; the worker is blocked on a full queue
    del batch
    assert not wait_for_no_loader_threads()
    iterator = iter(source)
    next(iterator)
    iterator.close()
    assert not loader_threads()
    with source.epoch(3) as iterator:
        next(iterator)
    assert not loader_threads()


def test_finished_epoch_leaves_no_thread():
    batches_of(loader())
    assert not wait_for_no_loader_threads()


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(priors=np.zeros((5, 3))), r"priors must have shape \(P, 4\)"),
        (dict(prefetch=-1), "prefetch must be >= 0"),
    ],
)
def test_bad_arguments(options, message):
    with pytest.raises(ValueError, match=message):
        loader(**options)


# --------------------------------------------------------------------------
# difficult objects and samples that fail to read
# --------------------------------------------------------------------------

def test_drop_difficult_removes_them_from_the_targets_only():
    dataset = FlaggedDataset()  # box 0 normal (label 1), box 1 difficult (label 2)
    kept = next(iter(loader(dataset, transform=eval_transform(32), shuffle=False)))
    dropped = next(iter(loader(dataset, transform=eval_transform(32), shuffle=False, drop_difficult=True)))
    assert kept.labels[0].tolist() == [1, 2] and kept.difficult[0].tolist() == [False, True]
    assert dropped.labels[0].tolist() == [1] and dropped.difficult[0].tolist() == [False]
    np.testing.assert_allclose(dropped.boxes[0], [[2 / 40, 2 / 40, 12 / 40, 12 / 40]], rtol=1e-6)
    loc, conf = match(dropped.boxes[0], np.array([1]), PRIORS)
    np.testing.assert_array_equal(dropped.conf_targets[0], conf)
    np.testing.assert_array_equal(dropped.loc_targets[0], loc)
    assert (kept.conf_targets[0] == 2).any() and not (dropped.conf_targets[0] == 2).any()
    assert dataset[0].difficult.tolist() == [False, True]  # the dataset still has it, for the evaluation


def voc_with_bad_items(tmp_path, skip_bad):
    """8 pictures; item 2's JPEG body is cut, item 5's box lies outside its real picture (the XML gives no size)."""
    from tests.test_data_voc import voc_xml, write_voc

    images = {f"img{k}": (voc_xml(f"img{k}.jpg", [("cat", (3, 4, 20 + k, 30), 0)], size=(0, 0)), (48, 40))
              for k in range(8)}
    images["img5"] = (voc_xml("img5.jpg", [("cat", (3, 4, 90, 30), 0)], size=(0, 0)), (48, 40))
    write_voc(tmp_path, "2007", "train", images)
    cut = tmp_path / "VOC2007" / "JPEGImages" / "img2.jpg"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:-1000])
    return VOCDataset(tmp_path, "2007", "train", skip_bad=skip_bad, check_images=False)


def expected_stand_ins(order, batch, bad):
    """The rule written out as a plain loop: next readable item after the bad one in the order, not in the batch."""
    taken, used = set(batch), []
    for index in batch:
        if index in bad:
            start = order.index(index)
            index = next(c for c in order[start + 1:] + order[:start] if c not in bad and c not in taken)
            taken.add(index)
        used.append(index)
    return used


def test_unreadable_items_of_a_skip_bad_dataset_are_replaced(tmp_path):
    dataset = voc_with_bad_items(tmp_path, skip_bad=True)
    source = loader(dataset, batch_size=4, transform=eval_transform(64), seed=3, prefetch=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        epoch0 = batches_of(source)
    messages = [str(w.message) for w in caught]
    per_item = [m for m in messages if m.startswith("skipped dataset item")]
    assert len(per_item) == 2 and len(messages) == 3  # one line per bad item, one count at the end
    assert any("item 2," in m and "img2.jpg: image file cannot be decoded" in m for m in per_item)
    assert any("item 5," in m and "img5.xml, object 0 'cat': box" in m and "outside the 48 x 40" in m
               for m in per_item)
    assert "epoch 0: 2 item(s) could not be read and were replaced" in messages[2]
    assert sorted(source.skipped) == [2, 5] and "skipped 2 dataset item(s)" in source.skip_summary()
    order = source.order(0).tolist()
    for batch, indices in zip(epoch0, source.batch_indices(0)):
        assert len(batch) == 4
        assert batch.indices.tolist() == expected_stand_ins(order, indices.tolist(), {2, 5})
        assert batch.image_ids == [f"img{k}" for k in batch.indices]
    served = np.concatenate([b.indices for b in epoch0]).tolist()
    assert 2 not in served and 5 not in served
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        epoch1 = batches_of(source)  # known bad items: no new warning, no re-reading
    assert not caught
    # Deterministic from (seed, epoch, index): a fresh loader, a background thread, epoch 1 replayed alone.
    fresh = loader(voc_with_bad_items(tmp_path, skip_bad=True), batch_size=4, transform=eval_transform(64),
                   seed=3, prefetch=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_batches(batches_of(fresh.epoch(1)), epoch1)
        assert_same_batches(batches_of(fresh.epoch(0)), epoch0)


def test_a_stand_in_is_augmented_afresh():
    source = loader()
    first = source.sample_rng(0, 3).random(4)
    np.testing.assert_array_equal(first, source.sample_rng(0, 3).random(4))
    assert not np.array_equal(first, source.sample_rng(0, 3, stands_in_for=2).random(4))


@pytest.mark.parametrize("prefetch", [0, 2])
def test_without_skip_bad_the_data_error_names_the_file(tmp_path, prefetch):
    source = loader(voc_with_bad_items(tmp_path, skip_bad=False), batch_size=4, transform=eval_transform(64),
                    shuffle=False, prefetch=prefetch)
    with pytest.raises(DataError, match=r"img2\.jpg: image file cannot be decoded") as info:
        batches_of(source)
    assert "\n" not in str(info.value) and not source.skipped
    assert not wait_for_no_loader_threads()


class CountingDataset:
    """Items 1 and 3 fail with a DataError; counts the reads."""

    class_names = ["background", "a"]
    num_classes = 2

    def __init__(self, skip_bad, bad=(1, 3), size=4):
        self.skip_bad, self.bad, self.size, self.reads = skip_bad, set(bad), size, 0

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        self.reads += 1
        if index in self.bad:
            raise DataError(f"picture{index}.jpg: image file cannot be decoded (broken)")
        return Sample(image=np.zeros((20, 20, 3), np.uint8), boxes=np.array([[2, 2, 12, 12]], np.float32),
                      labels=np.array([1]), difficult=np.array([False]), image_id=f"picture{index}")


def test_read_sample_returns_none_for_a_skip_bad_dataset_only():
    lenient, skipped = CountingDataset(skip_bad=True), {}
    assert read_sample(lenient, 0, skipped).image_id == "picture0"
    with pytest.warns(UserWarning, match=r"^skipped dataset item 1, it cannot be read: picture1\.jpg: image file"):
        assert read_sample(lenient, 1, skipped) is None
    reads = lenient.reads
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_sample(lenient, 1, skipped) is None  # known: neither read again nor warned again
    assert lenient.reads == reads and skipped == {1: "picture1.jpg: image file cannot be decoded (broken)"}
    assert skip_summary(skipped) == "skipped 1 dataset item(s) that could not be read (items 1)"
    assert skip_summary({}) is None
    with pytest.raises(DataError, match=r"picture1\.jpg"):
        read_sample(CountingDataset(skip_bad=False), 1)
    with pytest.raises(IndexError):  # not a data error: raised whatever skip_bad says
        read_sample(ShapesDataset("val", num_images=2), 5)


def test_a_dataset_with_nothing_readable_stops_with_a_clear_error():
    source = loader(CountingDataset(skip_bad=True, bad=(0, 1, 2, 3)), batch_size=2, transform=eval_transform(32),
                    prefetch=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"DataLoader: no item of the dataset can be read \(skipped 4"):
            batches_of(source)


def test_small_dataset_repeats_an_item_rather_than_leave_a_gap():
    source = loader(CountingDataset(skip_bad=True, bad=(1,), size=3), batch_size=3, transform=eval_transform(32),
                    shuffle=False, prefetch=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = next(iter(source))
    assert batch.indices.tolist() == [0, 2, 2]  # every other item is in the batch already: 2 comes again
