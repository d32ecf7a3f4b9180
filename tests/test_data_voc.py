"""VOCDataset on a tiny VOCdevkit written by the tests: coordinates, classes, difficult, bad data."""

import warnings

import numpy as np
import pytest
from PIL import Image

from minissd.data import VOC_CLASSES, DataError, VOCDataset, read_sample, voc_07_12, voc_class_names
from minissd.data.voc import parse_voc_xml, read_voc_annotation


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
    with pytest.raises(DataError, match=r"image not found: .*JPEGImages/noimage\.jpg \(nor any noimage\.jpg"):
        VOCDataset(tmp_path, "2007", "train")
    # without the up-front check, the missing file is reported when the sample is read
    lazy = VOCDataset(tmp_path, "2007", "train", check_images=False)
    with pytest.raises(DataError, match=r"^image not found: .*noimage\.jpg$"):
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
    assert "image not found" in dataset.skipped[-1][1]


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
    filename, size, objects = read_voc_annotation(path)  # no class list: any name
    assert size == (40, 30) and [name for _, name, _, _, _ in objects] == ["cat", "dog"]
    assert [label for _, _, label, _, _ in objects] == [None, None]


# --------------------------------------------------------------------------
# lists, years and field types
# --------------------------------------------------------------------------

def test_empty_list_file_is_named(tmp_path):
    write_voc(tmp_path, "2007", "val", {"a": (voc_xml("a.jpg", [("cat", (1, 1, 5, 5), 0)]), (20, 20))})
    list_path = tmp_path / "VOC2007" / "ImageSets" / "Main" / "val.txt"
    list_path.write_text("\n  \n")
    with pytest.raises(DataError, match=rf"^{list_path} lists no images \(the file is empty\)"):
        VOCDataset(tmp_path, "2007", "val")


def test_a_year_given_twice_is_refused(devkit):
    with pytest.raises(ValueError, match=r"year 2007 is given twice in '2007\+2007'"):
        VOCDataset(devkit, "2007+2007", "trainval")
    with pytest.raises(ValueError, match="has an empty part"):
        VOCDataset(devkit, "2007+", "trainval")
    with pytest.raises(TypeError, match="year must be a string"):
        VOCDataset(devkit, ["2007"], "trainval")


def test_an_image_listed_twice_is_refused_or_skipped(tmp_path):
    write_voc(tmp_path, "2007", "val", {"a": (voc_xml("a.jpg", [("cat", (1, 1, 5, 5), 0)]), (20, 20)),
                                        "b": (voc_xml("b.jpg", [("dog", (1, 1, 5, 5), 0)]), (20, 20))})
    list_path = tmp_path / "VOC2007" / "ImageSets" / "Main" / "val.txt"
    list_path.write_text("a\nb\na\n")
    with pytest.raises(DataError, match=rf"^{list_path}, line 3: image id 'a' is listed twice "
                                        rf"\(first at {list_path}, line 1\)"):
        VOCDataset(tmp_path, "2007", "val")
    with pytest.warns(UserWarning, match="skipped 1 bad sample"):
        dataset = VOCDataset(tmp_path, "2007", "val", skip_bad=True)
    assert [dataset[i].image_id for i in range(len(dataset))] == ["a", "b"]
    assert dataset.skipped[0][0] == "a" and "listed twice" in dataset.skipped[0][1]


def test_byte_order_marks_do_not_break_reading(tmp_path):
    xml = voc_xml("a.jpg", [("cat", (1, 1, 5, 5), 0)])
    write_voc(tmp_path, "2007", "val", {"a": (xml, (20, 20)), "b": (xml.replace("a.jpg", "b.jpg"), (20, 20)),
                                        "c": (xml.replace("a.jpg", "c.jpg"), (20, 20))})
    base = tmp_path / "VOC2007"
    bom = b"\xef\xbb\xbf"
    (base / "Annotations" / "a.xml").write_bytes(bom + b'<?xml version="1.0" encoding="utf-8"?>\n' + xml.encode())
    (base / "Annotations" / "b.xml").write_bytes(bom + bom + b"\n" + xml.replace("a.jpg", "b.jpg").encode())
    (base / "Annotations" / "c.xml").write_bytes(xml.replace("a.jpg", "c.jpg").encode("utf-16"))  # its own BOM
    (base / "ImageSets" / "Main" / "val.txt").write_bytes(bom + b"a\r\nb\r\n" + bom + b"c\r\n")  # joined lists
    dataset = VOCDataset(tmp_path, "2007", "val")
    assert [dataset[i].image_id for i in range(3)] == ["a", "b", "c"]
    for i in range(3):
        np.testing.assert_array_equal(dataset[i].boxes, [[0, 0, 5, 5]])


FIELD_CASES = {
    "size_text": (voc_xml("size_text.jpg", [("cat", (1, 1, 5, 5), 0)], size=("wide", 30)),
                  r"size_text\.xml: <size><width> is 'wide', not a whole number of pixels"),
    "size_negative": (voc_xml("size_negative.jpg", [("cat", (1, 1, 5, 5), 0)], size=(40, -30)),
                      r"<size><height> is '-30', not a whole number of pixels in 0\.\.1000000"),
    "size_fraction": (voc_xml("size_fraction.jpg", [("cat", (1, 1, 5, 5), 0)], size=(40.5, 30)),
                      r"<size><width> is '40\.5'"),
    "size_huge": (voc_xml("size_huge.jpg", [("cat", (1, 1, 5, 5), 0)], size=("1e400", 30)),
                  r"<size><width> is '1e400'"),
    "difficult_two": (voc_xml("difficult_two.jpg", [("cat", (1, 1, 5, 5), 2)]),
                      r"object 0 'cat': <difficult> is '2', not 0 or 1"),
    "difficult_word": (voc_xml("difficult_word.jpg", [("cat", (1, 1, 5, 5), "yes")]),
                       r"object 0 'cat': <difficult> is 'yes', not 0 or 1"),
    "coordinate_nan": (voc_xml("coordinate_nan.jpg", [("cat", (1, "nan", 5, 5), 0)]),
                       r"object 0 'cat': <ymin> is 'nan', not a finite number"),
    "coordinate_inf": (voc_xml("coordinate_inf.jpg", [("cat", (1, 1, "1e400", 5), 0)]),
                       r"object 0 'cat': <xmax> is '1e400', not a finite number"),
}


@pytest.mark.parametrize("case", sorted(FIELD_CASES))
def test_every_field_is_checked(tmp_path, case):
    xml, message = FIELD_CASES[case]
    write_voc(tmp_path, "2007", "val", {case: (xml, (40, 30))})
    for check_images in (True, False):
        with pytest.raises(DataError, match=message):
            VOCDataset(tmp_path, "2007", "val", check_images=check_images)


def test_a_dropped_difficult_object_is_still_checked(tmp_path):
    write_voc(tmp_path, "2007", "val", {"a": (voc_xml("a.jpg", [("cat", (1, 1, "x", 5), 1)]), (40, 30))})
    with pytest.raises(DataError, match="<xmax> is 'x', not a number"):
        VOCDataset(tmp_path, "2007", "val", keep_difficult=False)


def test_without_image_check_boxes_meet_the_xml_size(tmp_path):
    write_voc(tmp_path, "2007", "val", {"a": (voc_xml("a.jpg", [("cat", (1, 1, 45, 5), 0)], size=(40, 30)),
                                              (60, 30))})
    with pytest.raises(DataError, match=r"a\.xml, object 0 'cat' \(size from <size>\): box .* outside the 40 x 30"):
        VOCDataset(tmp_path, "2007", "val", check_images=False)
    # no size in the XML (or 0, which some tools write): checked when the picture is read
    write_voc(tmp_path, "2007", "train", {"b": (voc_xml("b.jpg", [("cat", (1, 1, 45, 5), 0)], size=(0, 0)),
                                                (40, 30))})
    lazy = VOCDataset(tmp_path, "2007", "train", check_images=False)
    with pytest.raises(DataError, match=r"b\.xml, object 0 'cat': box .* outside the 40 x 30 image"):
        lazy[0]


def test_folders_where_files_belong(tmp_path):
    write_voc(tmp_path, "2007", "val", {"a": (voc_xml("a.jpg", [("cat", (1, 1, 5, 5), 0)]), (20, 20))})
    (tmp_path / "VOC2007" / "Annotations" / "a.xml").unlink()
    (tmp_path / "VOC2007" / "Annotations" / "a.xml").mkdir()
    with pytest.raises(DataError, match=r"a\.xml is a folder, not an annotation file"):
        VOCDataset(tmp_path, "2007", "val")
    write_voc(tmp_path, "2007", "train", {"b": (voc_xml("b.jpg", [("cat", (1, 1, 5, 5), 0)]), None)})
    (tmp_path / "VOC2007" / "JPEGImages" / "b.jpg").mkdir()
    with pytest.raises(DataError, match=r"b\.jpg is a folder, not an image file"):
        VOCDataset(tmp_path, "2007", "train")


def test_an_image_that_does_not_decode_is_found_on_read(tmp_path):
    write_voc(tmp_path, "2007", "val", {"cut": (voc_xml("cut.jpg", [("cat", (1, 1, 5, 5), 0)]), None),
                                        "good": (voc_xml("good.jpg", [("cat", (1, 1, 5, 5), 0)]), (64, 48))})
    path = tmp_path / "VOC2007" / "JPEGImages" / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-1500])  # the header is intact, the body is not
    strict = VOCDataset(tmp_path, "2007", "val")  # indexing reads headers only
    with pytest.raises(DataError, match=r"cut\.jpg: image file cannot be decoded"):
        strict[0]
    with pytest.raises(DataError, match=r"cut\.jpg: image file cannot be decoded"):
        read_sample(strict, 0)  # not skip_bad: raised
    lenient = VOCDataset(tmp_path, "2007", "val", skip_bad=True)
    skipped = {}
    with pytest.warns(UserWarning, match=r"skipped dataset item 0, it cannot be read: .*cut\.jpg"):
        assert read_sample(lenient, 0, skipped) is None
    assert list(skipped) == [0] and "cannot be decoded" in skipped[0]
    assert read_sample(lenient, 1, skipped).image_id == "good"


# --------------------------------------------------------------------------
# VOC-style folders of any name, classes from the annotations
# --------------------------------------------------------------------------

def write_folder(folder, images, suffix=".jpg", listed=None):
    """A VOC-style folder without the VOC<year> level: images {id: (xml, size)}."""
    for sub in ("Annotations", "JPEGImages"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for image_id, (xml, size) in images.items():
        (folder / "Annotations" / f"{image_id}.xml").write_text(xml)
        Image.new("RGB", size, (40, 80, 120)).save(folder / "JPEGImages" / f"{image_id}{suffix}")
    if listed is not None:
        (folder / "ImageSets" / "Main").mkdir(parents=True)
        for split, ids in listed.items():
            (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return folder


def test_a_voc_style_folder_of_any_name(tmp_path):
    folder = write_folder(tmp_path / "my labelled pictures", {
        "zebra_01": (voc_xml("zebra_01.png", [("zebra", (1, 1, 10, 10), 0)]), (20, 20)),
        "apple_02": (voc_xml("apple_02", [("apple", (2, 2, 8, 9), 1), ("zebra", (5, 5, 15, 15), 0)]), (16, 16)),
    }, suffix=".png", listed={"train": ["zebra_01"]})
    (folder / "Annotations" / "._apple_02.xml").write_bytes(b"\x00\x05\x16\x07")  # macOS litter: ignored
    names = voc_class_names(folder)
    assert names == ["apple", "zebra"]
    everything = VOCDataset(folder, year=None, split="all", class_names=names)
    assert [everything[i].image_id for i in range(len(everything))] == ["apple_02", "zebra_01"]  # sorted
    sample = everything[0]
    assert sample.path.endswith("JPEGImages/apple_02.png")  # <filename> without suffix: found as .png
    assert sample.labels.tolist() == [1, 2] and sample.difficult.tolist() == [True, False]
    np.testing.assert_array_equal(sample.boxes, [[1, 1, 8, 9], [4, 4, 15, 15]])
    assert everything[1].path.endswith("zebra_01.png")
    listed = VOCDataset(folder, year="", split="train", class_names=names)
    assert len(listed) == 1 and listed[0].image_id == "zebra_01"
    assert voc_class_names(folder, split="train") == ["zebra"]
    with pytest.raises(DataError, match=r"unknown class name"):
        VOCDataset(folder, year=None, split="all")  # the VOC classes by default


def test_image_files_are_found_as_people_name_them(tmp_path):
    folder = write_folder(tmp_path / "data", {
        "a": (voc_xml("A.JPG", [("cat", (1, 1, 5, 5), 0)]), (20, 20)),
        "b": (voc_xml("C:\\Users\\me\\shots\\b.jpg", [("cat", (1, 1, 5, 5), 0)]), (20, 20)),
    })
    (folder / "JPEGImages" / "a.jpg").rename(folder / "JPEGImages" / "a.JPG")  # <filename>'s case differs
    dataset = VOCDataset(folder, None, "all")
    assert dataset[0].path.endswith("JPEGImages/a.JPG")
    assert dataset[1].path.endswith("JPEGImages/b.jpg")  # a full Windows path: its last part


def test_layout_mistakes_get_a_hint(devkit, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a VOC-style folder: .* it holds VOC2007, VOC2012: "
                                                r"give the year, e.g. year='2007'"):
        VOCDataset(devkit, year=None, split="all")
    folder = write_folder(tmp_path / "plain", {"a": (voc_xml("a.jpg", [("cat", (1, 1, 5, 5), 0)]), (20, 20))})
    with pytest.raises(FileNotFoundError, match=r"VOC2007 not found: .*the folder itself holds Annotations/: "
                                                r"read it as a VOC-style folder with year=None"):
        VOCDataset(folder, year="2007", split="all")
    with pytest.raises(FileNotFoundError, match=r"ImageSets/Main/trainval\.txt not found"):
        VOCDataset(folder, year=None, split="trainval")
    with pytest.raises(FileNotFoundError, match="VOC root folder .*nowhere not found"):
        VOCDataset(tmp_path / "nowhere", "2007")
    empty = tmp_path / "empty"
    (empty / "Annotations").mkdir(parents=True)
    (empty / "JPEGImages").mkdir()
    with pytest.raises(DataError, match=r"Annotations holds no \.xml annotation files"):
        VOCDataset(empty, None, "all")


def test_everything_skipped_is_an_error(tmp_path):
    write_voc(tmp_path, "2007", "val", {"a": ("<annotation>", (20, 20))})
    with pytest.warns(UserWarning), pytest.raises(DataError, match=r"no usable images, all 1 were skipped"):
        VOCDataset(tmp_path, "2007", "val", skip_bad=True)


def test_class_names_are_checked(devkit):
    with pytest.raises(ValueError, match=r"class_names\[1\] = 'dog' is given twice"):
        VOCDataset(devkit, "2007", "trainval", class_names=["dog", "dog"])
    with pytest.raises(TypeError, match="not the string"):
        VOCDataset(devkit, "2007", "trainval", class_names="dog")


# --------------------------------------------------------------------------
# annotation(index): an item's objects and size, no pixel decoded
# --------------------------------------------------------------------------

def test_annotation_is_the_items_boxes_and_size(devkit):
    dataset = VOCDataset(devkit, "2007+2012", "trainval")
    for index in range(len(dataset)):
        boxes, difficult, width, height, image_id = dataset.annotation(index)
        sample = dataset[index]
        assert boxes.dtype == np.float32 and boxes.shape == (len(sample.labels), 4)
        np.testing.assert_array_equal(boxes, sample.boxes)
        assert difficult.dtype == bool and difficult.tolist() == sample.difficult.tolist()
        assert (width, height) == (sample.width, sample.height) and type(width) is int and type(height) is int
        assert image_id == sample.image_id and type(image_id) is str
    boxes, difficult, width, height, image_id = dataset.annotation(0)
    np.testing.assert_array_equal(boxes, [[0, 0, 10, 20], [4, 5, 40, 30]])  # 1-based (1, 1, 10, 20) -> 0-based
    assert difficult.tolist() == [False, True] and (width, height, image_id) == (40, 30, "000001")
    assert dataset.annotation(-1)[4] == "2008_000003"
    difficult[:] = False  # a copy: the dataset's flags stay
    assert dataset.annotation(0)[1].tolist() == [False, True]


def test_annotation_reads_only_the_picture_header(tmp_path):
    write_voc(tmp_path, "2007", "val", {"cut": (voc_xml("cut.jpg", [("cat", (1, 1, 5, 5), 0)]), None)})
    path = tmp_path / "VOC2007" / "JPEGImages" / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:-1500])  # the header is intact, the body is not
    dataset = VOCDataset(tmp_path, "2007", "val")
    boxes, _, width, height, _ = dataset.annotation(0)  # would fail if the body were decoded
    np.testing.assert_array_equal(boxes, [[0, 0, 5, 5]])
    assert (width, height) == (64, 48)
    with pytest.raises(DataError, match=r"cut\.jpg: image file cannot be decoded"):
        dataset[0]


def test_annotation_checks_boxes_against_the_true_size(tmp_path):
    # the XML says 60 x 30, the picture is 40 x 30: indexing without image checks believes the XML
    write_voc(tmp_path, "2007", "val", {"a": (voc_xml("a.jpg", [("cat", (1, 1, 45, 5), 0)], size=(60, 30)),
                                              (40, 30)),
                                        "b": (voc_xml("b.jpg", [("cat", (2, 1, 41, 5), 0)]), (40, 30))})
    lazy = VOCDataset(tmp_path, "2007", "val", check_images=False)
    with pytest.raises(DataError, match=r"a\.xml, object 0 'cat': box .* outside the 40 x 30 image"):
        lazy.annotation(0)
    np.testing.assert_array_equal(lazy.annotation(1)[0], [[1, 0, 40, 5]])  # one pixel out: clipped, as lazy[1]
    np.testing.assert_array_equal(lazy[1].boxes, [[1, 0, 40, 5]])
    (tmp_path / "VOC2007" / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(DataError, match=r"image not found: .*b\.jpg"):
        lazy.annotation(1)
