"""VOCDataset on a tiny VOCdevkit written by the tests: coordinates, classes, difficult, bad data."""

import warnings

import numpy as np
import pytest
from PIL import Image

from minissd.data import VOC_CLASSES, DataError, VOCDataset, voc_07_12
from minissd.data.voc import parse_voc_xml


def voc_xml(filename, objects, size=(40, 30)):
    """objects: (name, (xmin, ymin, xmax, ymax), difficult) or raw XML strings."""
    parts = [f"<annotation><folder>VOC</folder><filename>{filename}</filename>",
             f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"]
    for obj in objects:
        if isinstance(obj, str):
            parts.append(obj)
            continue
        name, (x1, y1, x2, y2), difficult = obj
        parts.append(f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>"
                     f"<difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                     f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
    parts.append("</annotation>")
    return "".join(parts)


def write_voc(root, year, split, images, mode="RGB"):
    """images: {image_id: (xml text or None, (width, height) or None for no image file)}."""
    base = root / f"VOC{year}"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for image_id, (xml, size) in images.items():
        if xml is not None:
            (base / "Annotations" / f"{image_id}.xml").write_text(xml)
        if size is not None:
            Image.new(mode, size, (90, 60, 30) if mode == "RGB" else 128).save(base / "JPEGImages" / f"{image_id}.jpg")
    (base / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in images))
    return root


@pytest.fixture
def devkit(tmp_path):
    images = {
        "000001": (voc_xml("000001.jpg", [("dog", (1, 1, 10, 20), 0), ("person", (5, 6, 40, 30), 1)]), (40, 30)),
        "000002": (voc_xml("000002.jpg", [("aeroplane", (3, 4, 13, 14), 0)], size=(32, 24)), (32, 24)),
    }
    write_voc(tmp_path, "2007", "trainval", images)
    write_voc(tmp_path, "2012", "trainval",
              {"2008_000003": (voc_xml("2008_000003.jpg", [("tvmonitor", (2, 2, 8, 8), 0)]), (16, 16))})
    return tmp_path


def test_reads_boxes_labels_and_difficult(devkit):
    dataset = VOCDataset(devkit, "2007", "trainval")
    assert len(dataset) == 2 and dataset.num_classes == 21
    assert dataset.class_names[0] == "background" and dataset.class_names[1:] == list(VOC_CLASSES)
    sample = dataset[0]
    assert sample.image.shape == (30, 40, 3) and sample.image.dtype == np.uint8
    assert sample.image_id == "000001" and sample.path.endswith("VOC2007/JPEGImages/000001.jpg")
    # 1-based inclusive (1, 1, 10, 20) -> continuous 0-based (0, 0, 10, 20)
    np.testing.assert_array_equal(sample.boxes, [[0, 0, 10, 20], [4, 5, 40, 30]])
    assert sample.boxes.dtype == np.float32
    assert sample.labels.tolist() == [VOC_CLASSES.index("dog") + 1, VOC_CLASSES.index("person") + 1]
    assert sample.labels.dtype == np.int64
    assert sample.difficult.tolist() == [False, True]
    assert dataset[1].labels.tolist() == [1]  # aeroplane is the first class


def test_keep_difficult_false_drops_difficult_objects(devkit):
    sample = VOCDataset(devkit, "2007", "trainval", keep_difficult=False)[0]
    assert sample.labels.tolist() == [VOC_CLASSES.index("dog") + 1]
    assert sample.difficult.tolist() == [False]


def test_07_plus_12_concatenates_years(devkit):
    joined = VOCDataset(devkit, "2007+2012", "trainval")
    assert [joined[i].image_id for i in range(len(joined))] == ["000001", "000002", "2008_000003"]
    assert joined[2].labels.tolist() == [20]
    concat = voc_07_12(devkit, "trainval")
    assert len(concat) == 3 and concat[2].image_id == "2008_000003"
    np.testing.assert_array_equal(concat[2].boxes, joined[2].boxes)


def test_missing_split_list_says_where_it_looked(devkit):
    with pytest.raises(FileNotFoundError, match=r"VOC2007/ImageSets/Main/test\.txt"):
        VOCDataset(devkit, "2007", "test")


def test_missing_difficult_tag_means_not_difficult(tmp_path):
    raw = "<object><name>cat</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
    write_voc(tmp_path, "2007", "val", {"a": (voc_xml("a.jpg", [raw]), (20, 20))})
    sample = VOCDataset(tmp_path, "2007", "val")[0]
    assert sample.difficult.tolist() == [False] and sample.labels.tolist() == [8]


def test_box_one_pixel_outside_is_clipped(tmp_path):
    # xmax = 41 on a 40-wide image: 1 px out, within tolerance -> clipped to 40
    write_voc(tmp_path, "2007", "val", {"a": (voc_xml("a.jpg", [("cat", (1, 1, 41, 30), 0)]), (40, 30))})
    np.testing.assert_array_equal(VOCDataset(tmp_path, "2007", "val")[0].boxes, [[0, 0, 40, 30]])


BAD_CASES = {
    "malformed": ("<annotation><object>", "malformed XML"),
    "unknown_class": (voc_xml("unknown_class.jpg", [("dragon", (1, 1, 5, 5), 0)]), r"object 0 'dragon': unknown class"),
    "outside": (voc_xml("outside.jpg", [("cat", (1, 1, 5, 5), 0), ("dog", (1, 1, 45, 5), 0)]),
                r"object 1 'dog': box .* outside the 40 x 30 image"),
    "inverted": (voc_xml("inverted.jpg", [("cat", (10, 1, 5, 5), 0)]), r"object 0 'cat': box .* inverted"),
    "zero_size": (voc_xml("zero_size.jpg", [("cat", (5, 5, 4, 9), 0)]), r"object 0 'cat': box .* zero size"),
    "no_name": (voc_xml("no_name.jpg", ["<object><bndbox><xmin>1</xmin></bndbox></object>"]),
                r"object 0: missing field <name>"),
    "no_bndbox": (voc_xml("no_bndbox.jpg", ["<object><name>cat</name></object>"]),
                  r"object 0 'cat': missing field <bndbox>"),
    "no_ymax": (voc_xml("no_ymax.jpg", ["<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                                         "<xmax>4</xmax></bndbox></object>"]), r"object 0 'cat': missing field <ymax>"),
    "not_a_number": (voc_xml("not_a_number.jpg", [("cat", (1, 1, "four", 5), 0)]),
                     r"object 0 'cat': <xmax> is 'four', not a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_annotations_name_the_file_and_object(tmp_path, case):
    xml, message = BAD_CASES[case]
    write_voc(tmp_path, "2007", "val", {case: (xml, (40, 30))})
    with pytest.raises(DataError, match=rf"{case}\.xml.*{message}" if "malformed" not in message else message) as info:
        VOCDataset(tmp_path, "2007", "val")
    assert f"{case}.xml" in str(info.value)


def test_missing_annotation_and_image_files(tmp_path):
    write_voc(tmp_path, "2007", "val", {"noxml": (None, (10, 10))})
    with pytest.raises(DataError, match=r"noxml\.xml: annotation file is missing"):
        VOCDataset(tmp_path, "2007", "val")
    write_voc(tmp_path, "2007", "train", {"noimage": (voc_xml("noimage.jpg", [("cat", (1, 1, 5, 5), 0)]), None)})
    with pytest.raises(DataError, match=r"noimage\.jpg: image file is missing"):
        VOCDataset(tmp_path, "2007", "train")
    # without the up-front check, the missing file is reported when the sample is read
    lazy = VOCDataset(tmp_path, "2007", "train", check_images=False)
    with pytest.raises(DataError, match=r"noimage\.jpg: image file is missing"):
        lazy[0]


def test_unreadable_image(tmp_path):
    write_voc(tmp_path, "2007", "val", {"bad": (voc_xml("bad.jpg", [("cat", (1, 1, 5, 5), 0)]), None)})
    (tmp_path / "VOC2007" / "JPEGImages" / "bad.jpg").write_bytes(b"\x00garbage")
    with pytest.raises(DataError, match=r"bad\.jpg: image file cannot be read"):
        VOCDataset(tmp_path, "2007", "val")


def test_skip_bad_skips_with_one_warning(tmp_path):
    images = {"good": (voc_xml("good.jpg", [("cat", (1, 1, 5, 5), 0)]), (40, 30))}
    for case in ("malformed", "unknown_class", "outside", "inverted"):
        images[case] = (BAD_CASES[case][0], (40, 30))
    images["noimage"] = (voc_xml("noimage.jpg", [("cat", (1, 1, 5, 5), 0)]), None)
    write_voc(tmp_path, "2007", "val", images)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = VOCDataset(tmp_path, "2007", "val", skip_bad=True)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 5 bad sample(s)" in message and "malformed.xml" in message and "and 2 more" in message
    assert len(dataset) == 1 and dataset[0].image_id == "good"
    assert [image_id for image_id, _ in dataset.skipped] == ["malformed", "unknown_class", "outside", "inverted",
                                                              "noimage"]
    assert "image file is missing" in dataset.skipped[-1][1]


def test_grayscale_jpeg_is_read_as_rgb(tmp_path):
    write_voc(tmp_path, "2007", "val", {"g": (voc_xml("g.jpg", [("cat", (1, 1, 5, 5), 0)]), (12, 8))}, mode="L")
    sample = VOCDataset(tmp_path, "2007", "val")[0]
    assert sample.image.shape == (8, 12, 3)
    np.testing.assert_array_equal(sample.image[..., 0], sample.image[..., 2])


def test_parse_voc_xml_returns_file_indices(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text(voc_xml("x.jpg", [("cat", (1, 1, 5, 5), 1), ("dog", (2, 2, 6, 6), 0)]))
    filename, objects = parse_voc_xml(str(path), keep_difficult=False)
    assert filename == "x.jpg"
    assert objects == [([1.0, 1.0, 6.0, 6.0], 12, False, 1)]
