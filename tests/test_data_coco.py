"""COCODataset on a tiny COCO JSON written by the tests: label mapping, xywh, crowd, bad data."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from minissd.data import COCODataset, DataError


def coco_json(images=None, annotations=None, categories=None):
    return {
        "images": images if images is not None else [
            {"id": 10, "file_name": "a.jpg", "width": 40, "height": 30},
            {"id": 11, "file_name": "b.png", "width": 20, "height": 20},
            {"id": 12, "file_name": "c.jpg", "width": 16, "height": 16},
        ],
        "annotations": annotations if annotations is not None else [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [2, 3, 10, 5], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 40, 30], "iscrowd": 1},
            {"id": 3, "image_id": 10, "category_id": 1, "bbox": [5.5, 6, 4.5, 4], "iscrowd": 0},
            {"id": 4, "image_id": 11, "category_id": 3, "bbox": [1, 1, 18, 18]},
        ],
        "categories": categories if categories is not None else [
            {"id": 7, "name": "kite"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"},
        ],
    }


def write_coco(tmp_path, data, modes=None, text=None):
    modes = modes or {}
    image_dir = tmp_path / "images"
    image_dir.mkdir(exist_ok=True)
    for image in data.get("images", []):
        if isinstance(image, dict) and "file_name" in image and image.get("write", True):
            mode = modes.get(image["file_name"], "RGB")
            Image.new(mode, (image.get("width", 8), image.get("height", 8))).save(image_dir / image["file_name"])
    path = tmp_path / "instances.json"
    path.write_text(text if text is not None else json.dumps(
        {**data, "images": [{k: v for k, v in i.items() if k != "write"} if isinstance(i, dict) else i
                            for i in data.get("images", [])]}))
    return str(path), str(image_dir)


def test_labels_follow_ascending_category_ids(tmp_path):
    dataset = COCODataset(*write_coco(tmp_path, coco_json()))
    assert dataset.class_names == ["background", "person", "car", "kite"]  # ids 1, 3, 7
    assert dataset.category_ids == [None, 1, 3, 7] and dataset.num_classes == 4
    sample = dataset[0]
    assert sample.image_id == "10" and sample.image.shape == (30, 40, 3)
    np.testing.assert_allclose(sample.boxes, [[2, 3, 12, 8], [5.5, 6, 10, 10]])  # xywh -> xyxy, no shift
    assert sample.boxes.dtype == np.float32
    assert sample.labels.tolist() == [3, 1]  # kite (id 7), person (id 1)
    assert sample.difficult.tolist() == [False, False]


def test_crowd_regions_are_kept_apart(tmp_path):
    sample = COCODataset(*write_coco(tmp_path, coco_json()))[0]
    np.testing.assert_array_equal(sample.crowd_boxes, [[0, 0, 40, 30]])
    assert sample.crowd_labels.tolist() == [2]


def test_images_without_annotations_and_other_modes(tmp_path):
    dataset = COCODataset(*write_coco(tmp_path, coco_json(), modes={"b.png": "RGBA", "c.jpg": "L"}))
    assert len(dataset) == 3
    empty = dataset[2]
    assert empty.boxes.shape == (0, 4) and empty.labels.shape == (0,) and empty.crowd_boxes.shape == (0, 4)
    assert empty.image.shape == (16, 16, 3)
    assert dataset[1].image.shape == (20, 20, 3) and dataset[1].labels.tolist() == [2]


def test_box_within_one_pixel_is_clipped(tmp_path):
    data = coco_json(annotations=[{"id": 1, "image_id": 12, "category_id": 1, "bbox": [-0.8, 0, 17, 16]}])
    np.testing.assert_allclose(COCODataset(*write_coco(tmp_path, data))[2].boxes, [[0, 0, 16, 16]])


def annotation(**fields):
    base = {"id": 99, "image_id": 10, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    "bad, message",
    [
        (annotation(category_id=5), r"annotations\[0\] \(id 99, image a\.jpg\): unknown category_id 5"),
        (annotation(bbox=[1, 1, 50, 5]), r"annotations\[0\] \(id 99, image a\.jpg\): box .* outside the 40 x 30"),
        (annotation(bbox=[1, 1, 0, 5]), r"image a\.jpg\): box .* zero size"),
        (annotation(bbox=[1, 1, -3, 5]), r"image a\.jpg\): box .* inverted"),
        (annotation(bbox=[1, 1, 5]), r"'bbox' is \[1, 1, 5\] \(a list\), expected four numbers"),
        (annotation(bbox="1234"), r"annotations\[0\] \(id 99, image a\.jpg\): 'bbox' is \"1234\" \(a string\), "
                                  r"expected four numbers \[x, y, width, height\]"),
        (annotation(bbox=[1, "2", 3, 4]), r"'bbox' is \[1, \"2\", 3, 4\] \(a list\), expected four numbers"),
        (annotation(bbox=[1, True, 3, 4]), r"'bbox' is \[1, true, 3, 4\] \(a list\)"),
        (annotation(bbox={"x": 1}), r"'bbox' is \{\"x\": 1\} \(an object\)"),
        (annotation(bbox=[1, 1, 10 ** 400, 4]), r"'bbox' is 1000.*\(a number\), not a finite number"),
        (annotation(bbox=[1e308, 1, 1e308, 4]), r"box .* not a finite number"),
        (annotation(category_id="1"), r"annotations\[0\] \(id 99, image a\.jpg\): 'category_id' is \"1\" "
                                      r"\(a string\), expected an integer id"),
        (annotation(category_id=[1]), r"'category_id' is \[1\] \(a list\)"),
        (annotation(iscrowd=2), r"'iscrowd' is 2 \(a number\), expected 0 or 1"),
        (annotation(iscrowd="0"), r"'iscrowd' is \"0\" \(a string\), expected 0 or 1"),
        (annotation(area="big"), r"'area' is \"big\" \(a string\), expected a number"),
        (annotation(area=-4), r"'area' is -4, negative"),
        (annotation(area=float("nan")), r"'area' is nan \(a number\), not a finite number"),
        (annotation(image_id=[10]), r"annotations\[0\]: 'image_id' is \[10\] \(a list\), expected an integer id"),
        (annotation(image_id=10.0), r"annotations\[0\]: 'image_id' is 10.0 \(a number\), expected an integer id"),
        (annotation(bbox=None), r"annotations\[0\] .*missing field 'bbox'"),
        (annotation(category_id=None), r"missing field 'category_id'"),
        (annotation(image_id=None), r"annotations\[0\]: missing field 'image_id'"),
        (annotation(image_id=77), r"annotations\[0\]: image_id 77 is not in 'images'"),
    ],
)
def test_bad_annotations_name_the_file_and_annotation(tmp_path, bad, message):
    path, image_dir = write_coco(tmp_path, coco_json(annotations=[bad]))
    with pytest.raises(DataError, match=message) as info:
        COCODataset(path, image_dir)
    assert "instances.json" in str(info.value)
    with pytest.raises(DataError, match=message):
        COCODataset(path, image_dir, check_images=False)


@pytest.mark.parametrize(
    "data, message",
    [
        (coco_json(images=[{"id": 10, "width": 4, "height": 4}]), r"images\[0\]: missing field 'file_name'"),
        (coco_json(categories=[{"id": 1}]), r"categories\[0\]: missing field 'name'"),
        (coco_json(categories=[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]),
         r"categories\[1\]: category ids are not unique: id 1 is also categories\[0\]'s"),
        (coco_json(categories=[{"id": "7", "name": "kite"}]), r"categories\[0\]: 'id' is \"7\" \(a string\), "
                                                              "expected an integer"),
        (coco_json(categories=[{"id": None, "name": "kite"}]), r"categories\[0\]: 'id' is null, expected an integer"),
        (coco_json(categories=[{"id": 7, "name": 7}]), r"categories\[0\]: 'name' is 7 \(a number\)"),
        (coco_json(categories=["kite"]), r"categories\[0\] is \"kite\" \(a string\), expected an object"),
        (coco_json(categories=[]), r"instances\.json has no categories"),
        (coco_json(images=[]), r"instances\.json has no images \('images' is an empty list\)"),
        (coco_json(images=[{"id": 10, "file_name": None}]), r"images\[0\]: 'file_name' is null, expected a file name"),
        (coco_json(images=[{"id": [10], "file_name": "a.jpg"}]), r"images\[0\]: 'id' is \[10\] \(a list\)"),
        (coco_json(images=[[10, "a.jpg"]]), r"images\[0\] is \[10, \"a\.jpg\"\] \(a list\), expected an object"),
        ({"images": {"id": 10}, "categories": []}, r"field 'images' is \{\"id\": 10\} \(an object\), expected a list"),
        ({"images": [{}], "annotations": "none", "categories": [{"id": 1, "name": "a"}]},
         r"field 'annotations' is \"none\" \(a string\), expected a list"),
        ({"images": [], "annotations": []}, "missing field 'categories'"),
        ({"annotations": [], "categories": []}, "missing field 'images'"),
        ([], "expected a JSON object"),
    ],
)
def test_bad_files_are_named(tmp_path, data, message):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=message):
        COCODataset(str(path), str(tmp_path))


def test_malformed_json_and_missing_file(tmp_path):
    path, image_dir = write_coco(tmp_path, {}, text='{"images": [')
    with pytest.raises(DataError, match=r"instances\.json: malformed JSON"):
        COCODataset(path, image_dir)
    with pytest.raises(FileNotFoundError, match="nothere.json") as info:
        COCODataset(str(tmp_path / "nothere.json"), image_dir)
    assert isinstance(info.value, DataError)
    with pytest.raises(DataError, match=rf"^{tmp_path} is a folder, not a COCO annotation file"):
        COCODataset(str(tmp_path), image_dir)


@pytest.mark.parametrize("key", ["width", "height"])
@pytest.mark.parametrize("value, message", [("40", r"\"40\" \(a string\), expected an integer"),
                                            (None, "null, expected an integer"),
                                            (40.0, r"40\.0 \(a number\), expected an integer"),
                                            (-3, r"-3, outside 1\.\.1000000"), (0, "0, outside")])
def test_image_sizes_are_typed(tmp_path, key, value, message):
    image = {"id": 10, "file_name": "a.jpg", "width": 40, "height": 30}
    path, image_dir = write_coco(tmp_path, coco_json(images=[image], annotations=[]))
    data = json.loads(open(path).read())
    data["images"][0][key] = value
    open(path, "w").write(json.dumps(data))
    for check_images in (True, False):  # checked wherever given, needed only without the image check
        with pytest.raises(DataError, match=rf"images\[0\]: '{key}' is {message}"):
            COCODataset(path, image_dir, check_images=check_images)


def test_sizes_are_needed_only_without_the_image_check(tmp_path):
    path, image_dir = write_coco(tmp_path, coco_json(images=[{"id": 10, "file_name": "a.jpg", "width": 40,
                                                              "height": 30}], annotations=[]))
    data = json.loads(open(path).read())
    del data["images"][0]["height"]
    open(path, "w").write(json.dumps(data))
    assert len(COCODataset(path, image_dir)) == 1
    with pytest.raises(DataError, match=r"images\[0\]: missing field 'height'"):
        COCODataset(path, image_dir, check_images=False)


def test_two_images_with_one_id_are_refused_naming_both(tmp_path):
    images = [{"id": 10, "file_name": "a.jpg", "width": 40, "height": 30},
              {"id": 11, "file_name": "b.png", "width": 20, "height": 20},
              {"id": 10, "file_name": "c.jpg", "width": 16, "height": 16}]
    path, image_dir = write_coco(tmp_path, coco_json(images=images))
    with pytest.raises(DataError, match=r"images\[2\]: id 10 is also the id of images\[0\]"):
        COCODataset(path, image_dir)
    with pytest.warns(UserWarning, match="skipped 2 bad sample"):
        dataset = COCODataset(path, image_dir, skip_bad=True)
    assert dataset.coco_image_ids == [11]  # both 10s are gone, and their boxes with them
    assert [image_id for image_id, _ in dataset.skipped] == ["10", "10"]


def test_a_byte_order_mark_is_accepted(tmp_path):
    path, image_dir = write_coco(tmp_path, coco_json())
    text = open(path, encoding="utf-8").read()
    open(path, "wb").write(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert len(COCODataset(path, image_dir)) == 3


def test_original_ids_and_areas_are_kept(tmp_path):
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [2, 3, 10, 5], "area": 41.5},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 40, 30], "iscrowd": 1, "area": 900},
        {"id": 3, "image_id": 10, "category_id": 1, "bbox": [5, 6, 4, 4], "iscrowd": False},
        {"id": 4, "image_id": "b", "category_id": 3, "bbox": [1, 1, 18, 18], "iscrowd": True},
    ]
    images = [{"id": 10, "file_name": "a.jpg", "width": 40, "height": 30},
              {"id": "b", "file_name": "b.png", "width": 20, "height": 20}]
    dataset = COCODataset(*write_coco(tmp_path, coco_json(images=images, annotations=annotations)))
    assert dataset.coco_image_ids == [10, "b"] and dataset.category_ids == [None, 1, 3, 7]
    first = dataset[0]
    assert first.image_id == "10"
    np.testing.assert_array_equal(first.areas, np.array([41.5, np.nan], np.float32))  # NaN: no area in the file
    assert first.areas.dtype == np.float32 and first.crowd_areas.tolist() == [900.0]
    second = dataset[1]
    assert second.labels.shape == (0,) and second.areas.shape == (0,) and second.crowd_labels.tolist() == [2]
    assert np.isnan(second.crowd_areas).all() and second.crowd_areas.shape == (1,)


def test_missing_image_found_up_front_or_on_read(tmp_path):
    data = coco_json(images=[{"id": 10, "file_name": "a.jpg", "width": 40, "height": 30, "write": False}],
                     annotations=[])
    path, image_dir = write_coco(tmp_path, data)
    with pytest.raises(DataError, match=r"^image not found: .*images/a\.jpg$"):
        COCODataset(path, image_dir)
    lazy = COCODataset(path, image_dir, check_images=False)
    with pytest.raises(DataError, match=r"^image not found: .*images/a\.jpg$"):
        lazy[0]


def test_skip_bad_skips_images_with_one_warning(tmp_path):
    data = coco_json(annotations=[
        annotation(image_id=10, category_id=5),
        annotation(image_id=11, bbox=[0, 0, 3, 3]),
        annotation(image_id=12, bbox=[0, 0, 30, 3]),
    ])
    path, image_dir = write_coco(tmp_path, data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = COCODataset(path, image_dir, skip_bad=True)
    assert len(caught) == 1 and "skipped 2 bad sample(s)" in str(caught[0].message)
    assert len(dataset) == 1 and dataset[0].image_id == "11"
    assert [image_id for image_id, _ in dataset.skipped] == ["10", "12"]
    assert "unknown category_id 5" in dataset.skipped[0][1]


def test_annotation_is_the_items_training_boxes_and_size(tmp_path):
    dataset = COCODataset(*write_coco(tmp_path, coco_json()))
    for index in range(len(dataset)):
        boxes, difficult, width, height, image_id = dataset.annotation(index)
        sample = dataset[index]
        assert boxes.dtype == np.float32 and boxes.shape == sample.boxes.shape
        np.testing.assert_array_equal(boxes, sample.boxes)  # crowd regions left out, as in sample.boxes
        assert difficult.dtype == bool and difficult.shape == (len(sample.labels),) and not difficult.any()
        assert (width, height) == (sample.width, sample.height) and type(width) is int
        assert image_id == sample.image_id and type(image_id) is str
    boxes, _, width, height, image_id = dataset.annotation(0)
    np.testing.assert_allclose(boxes, [[2, 3, 12, 8], [5.5, 6, 10, 10]])  # xywh -> xyxy, the crowd box not there
    assert (width, height, image_id) == (40, 30, "10")
    assert dataset.annotation(2)[0].shape == (0, 4)


def test_annotation_reads_only_the_header_and_checks_the_true_size(tmp_path):
    images = [{"id": 10, "file_name": "a.jpg", "width": 64, "height": 48},
              {"id": 11, "file_name": "b.png", "width": 40, "height": 30}]
    annotations = [annotation(image_id=10, bbox=[1, 1, 5, 5]), annotation(id=7, image_id=11, bbox=[1, 1, 30, 5])]
    path, image_dir = write_coco(tmp_path, coco_json(images=images, annotations=annotations))
    cut = tmp_path / "images" / "a.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(cut)
    cut.write_bytes(cut.read_bytes()[:-1500])  # the header is intact, the body is not
    Image.new("RGB", (20, 20)).save(tmp_path / "images" / "b.png")  # smaller than the JSON says
    lazy = COCODataset(path, image_dir, check_images=False)  # believes the JSON's 40 x 30
    boxes, _, width, height, _ = lazy.annotation(0)  # would fail if the body were decoded
    np.testing.assert_array_equal(boxes, [[1, 1, 6, 6]])
    assert (width, height) == (64, 48)
    with pytest.raises(DataError, match=r"a\.jpg: image file cannot be decoded"):
        lazy[0]
    with pytest.raises(DataError, match=r"instances\.json, annotations\[1\] \(image .*b\.png\): box .* outside "
                                        r"the 20 x 20 image"):
        lazy.annotation(1)
