"""Which model class is which dataset class: identity, COCO category-id slots, by name, refused."""

import numpy as np
import pytest

from minissd.evaluate.labels import label_map

COCO_LIKE = ["background", "person", "dog", "chair"]
COCO_IDS = [None, 1, 18, 62]


def torchvision_names():
    names = ["background"] + ["N/A"] * 90
    names[1], names[18], names[62], names[3] = "person", "dog", "chair", "car"
    return names


def test_the_same_classes_are_the_identity():
    mapping = label_map(["background", "circle", "square"], ["background", "Circle", "square"])
    assert mapping.identity and "are the dataset's" in mapping.how


def test_a_91_slot_model_reads_category_ids_as_slots():
    mapping = label_map(torchvision_names(), COCO_LIKE, COCO_IDS)
    assert mapping.model_to_dataset[1] == 1 and mapping.model_to_dataset[18] == 2
    assert mapping.model_to_dataset[62] == 3 and mapping.model_to_dataset[3] == 0  # car: not in the dataset
    assert "COCO category ids" in mapping.how
    boxes = np.arange(16, dtype=np.float32).reshape(4, 4)
    kept_boxes, labels, scores = mapping.apply(boxes, np.array([18, 3, 62, 1]), np.array([0.9, 0.8, 0.7, 0.6]))
    np.testing.assert_array_equal(labels, [2, 3, 1])  # the car detection is dropped
    np.testing.assert_array_equal(kept_boxes, boxes[[0, 2, 3]])
    np.testing.assert_allclose(scores, [0.9, 0.7, 0.6])


def test_an_unnamed_91_slot_model_is_assumed_to_be_torchvision_s():
    mapping = label_map(["background"] + [f"class{k}" for k in range(1, 91)], COCO_LIKE, COCO_IDS)
    assert mapping.model_to_dataset[62] == 3 and "assumed" in mapping.how


def test_a_subset_of_classes_matches_by_name():
    voc = ["background", "aeroplane", "bicycle", "bird", "cat", "dog"]
    mapping = label_map(voc, ["background", "dog", "cat"])
    assert mapping.model_to_dataset.tolist() == [0, 0, 0, 0, 2, 1]
    assert "matched by class name" in mapping.how


def test_other_classes_are_refused_naming_both():
    with pytest.raises(ValueError, match=r"the model's classes \(circle, square\) are not the dataset's "
                                         r"\(person, dog\).*'person'"):
        label_map(["background", "circle", "square"], ["background", "person", "dog"], [None, 1, 18])


def test_unnamed_classes_of_the_same_count_keep_their_order():
    mapping = label_map(["background", "class1", "class2"], ["background", "cat", "dog"])
    assert mapping.identity and "no names" in mapping.how
