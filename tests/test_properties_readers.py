"""Property tests: the VOC and COCO readers given malformed values in every field.

Each generated file either reads correctly (boxes finite and inside the picture,
labels in 1..L-1) or raises ``DataError`` with a message naming the file;
never another exception (TypeError, KeyError, AttributeError,
IsADirectoryError, OverflowError...).
"""

import json
import os
import tempfile
import warnings
from xml.sax.saxutils import escape

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from minissd.data import COCODataset, DataError, VOCDataset, read_sample
from minissd.data.voc import read_voc_annotation

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOM = b"\xef\xbb\xbf"
PICTURE = (40, 30)  # width, height of the one real picture the files may point at


def check_sample(sample, num_classes):
    height, width = sample.image.shape[:2]
    assert sample.image.dtype == np.uint8 and sample.image.shape[2] == 3
    for boxes, labels in ((sample.boxes, sample.labels), (sample.crowd_boxes, sample.crowd_labels)):
        assert boxes.dtype == np.float32 and boxes.shape == (len(labels), 4)
        assert np.isfinite(boxes).all()
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 3] <= height).all() and (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert ((labels >= 1) & (labels < num_classes)).all()
    assert sample.difficult.shape == sample.labels.shape


def assert_names_a_file(error, *paths):
    message = str(error)
    assert message and any(str(path) in message for path in paths), message


def read_everything(dataset):
    """Every item, through read_sample as the loader reads them; DataError only where the dataset raises."""
    for index in range(len(dataset)):
        sample = read_sample(dataset, index, skipped={})
        if sample is not None:
            check_sample(sample, dataset.num_classes)


# --------------------------------------------------------------------------
# VOC XML
# --------------------------------------------------------------------------

xml_values = st.one_of(
    st.sampled_from(["", " ", "0", "1", "2", "-1", "nan", "inf", "-inf", "1e400", "3.5", "12", "39", "41",
                     "cat", "dog", "<x>1</x>", "1_0", "0x10", "\u00e9"]),
    st.integers(-10 ** 30, 10 ** 30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=6).map(escape),
)


def maybe(tag, values=xml_values):
    """An element that may be absent, empty, or hold any value (or a nested element)."""
    return st.one_of(st.just(""), st.just(f"<{tag}/>"), values.map(lambda v: f"<{tag}>{v}</{tag}>"))


def element(tag, valid):
    """Mostly a correct element (7 in 8), sometimes a malformed one."""
    correct = valid.map(lambda v: f"<{tag}>{v}</{tag}>")
    return st.integers(0, 7).flatmap(lambda roll: correct if roll else maybe(tag))


@st.composite
def voc_documents(draw):
    objects = []
    for _ in range(draw(st.integers(0, 3))):
        corners = [draw(element(tag, st.integers(low, high)))
                   for tag, low, high in (("xmin", 1, 15), ("ymin", 1, 10), ("xmax", 20, 41), ("ymax", 15, 31))]
        name = draw(element("name", st.sampled_from(["cat", " dog "])))
        bndbox = draw(st.sampled_from(["", "<bndbox/>"] + ["<bndbox>" + "".join(corners) + "</bndbox>"] * 6))
        difficult = draw(element("difficult", st.sampled_from(["0", "1"])))
        objects.append(f"<object>{name}{difficult}{bndbox}</object>")
    size = ("<size>" + draw(element("width", st.sampled_from([40, 0]))) + draw(element("height", st.just(30)))
            + draw(element("depth", st.just(3))) + "</size>")
    body = ("<annotation>" + draw(st.sampled_from(["", "<filename>a.jpg</filename>", "<filename>a</filename>",
                                                   "<filename>../../x.jpg</filename>", "<filename/>"]))
            + draw(st.sampled_from(["", size, size])) + "".join(objects) + "</annotation>")
    if draw(st.booleans()):
        body = '<?xml version="1.0" encoding="utf-8"?>\n' + body
    data = body.encode("utf-8")
    data = draw(st.sampled_from([b"", BOM, BOM + BOM, b"\n"])) + data
    if draw(st.integers(0, 19)) == 0:
        data = data[: draw(st.integers(0, len(data)))]  # cut anywhere
    return data


def write_voc_folder(folder, xml_bytes, list_prefix=b""):
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    with open(os.path.join(folder, "Annotations", "a.xml"), "wb") as handle:
        handle.write(xml_bytes)
    Image.new("RGB", PICTURE, (70, 90, 110)).save(os.path.join(folder, "JPEGImages", "a.jpg"))
    with open(os.path.join(folder, "ImageSets", "Main", "train.txt"), "wb") as handle:
        handle.write(list_prefix + b"a\n")


@SETTINGS
@given(document=voc_documents(), list_prefix=st.sampled_from([b"", BOM, b"\n\n"]),
       check_images=st.booleans(), skip_bad=st.booleans(), keep_difficult=st.booleans())
def test_voc_reads_or_raises_data_error(document, list_prefix, check_images, skip_bad, keep_difficult):
    with tempfile.TemporaryDirectory() as folder:
        write_voc_folder(folder, document, list_prefix)
        xml_path = os.path.join(folder, "Annotations", "a.xml")
        try:
            filename, size, objects = read_voc_annotation(xml_path, {"cat": 1, "dog": 2})
        except DataError as error:
            assert_names_a_file(error, xml_path)
        else:
            assert filename is None or isinstance(filename, str)
            assert size is None or (size[0] > 0 and size[1] > 0)
            for box, name, label, difficult, index in objects:
                assert np.isfinite(box).all() and label in (1, 2) and isinstance(difficult, bool)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skip_bad's report
            try:
                dataset = VOCDataset(folder, year=None, split="train", class_names=["cat", "dog"],
                                     check_images=check_images, skip_bad=skip_bad, keep_difficult=keep_difficult)
                read_everything(dataset)
            except DataError as error:
                assert_names_a_file(error, folder)


# --------------------------------------------------------------------------
# COCO JSON
# --------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.just(10 ** 400),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=3), children,
                                                                                 max_size=3)),
    max_leaves=6,
)


@st.composite
def valid_coco(draw):
    """A correct COCO document about the real picture a.png (40 x 30), sometimes naming other files."""
    image_ids = draw(st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True))
    names = st.sampled_from(["a.png"] * 6 + ["b.png", "missing.png"])
    images = [{"id": i, "file_name": draw(names), "width": 40, "height": 30} for i in image_ids]
    categories = [{"id": 1, "name": "cat"}, {"id": 5, "name": "dog"}]
    annotations = []
    for number in range(draw(st.integers(0, 4))):
        x, y = draw(st.floats(0, 30)), draw(st.floats(0, 20))
        annotation = {"id": number, "image_id": draw(st.sampled_from(image_ids)),
                      "category_id": draw(st.sampled_from([1, 5])),
                      "bbox": [x, y, draw(st.floats(1, 40 - x)), draw(st.floats(1, 30 - y))]}
        for key, value in (("iscrowd", st.sampled_from([0, 1, True, False])), ("area", st.floats(0, 1e4))):
            if draw(st.booleans()):
                annotation[key] = draw(value)
        annotations.append(annotation)
    return {"images": images, "annotations": annotations, "categories": categories}


@st.composite
def mutated(draw, document):
    """``document`` with one value somewhere in it replaced by any JSON value, or deleted."""
    path, node = [], document
    while isinstance(node, (dict, list)) and node and (not path or draw(st.integers(0, 4))):
        key = draw(st.sampled_from(list(node) if isinstance(node, dict) else list(range(len(node)))))
        path.append(key)
        node = node[key]
    if not path:
        return draw(json_values)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return document


@st.composite
def coco_documents(draw):
    data = draw(valid_coco())
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
        data = draw(mutated(data))
    text = json.dumps(data, allow_nan=True).encode("utf-8")
    return draw(st.sampled_from([b"", BOM])) + text


@pytest.fixture(scope="module")
def coco_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coco_images")
    Image.new("RGB", PICTURE, (10, 200, 30)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG not really")  # unreadable
    return str(folder)


@SETTINGS
@given(document=coco_documents(), check_images=st.booleans(), skip_bad=st.booleans())
def test_coco_reads_or_raises_data_error(coco_images, document, check_images, skip_bad):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "instances.json")
        with open(path, "wb") as handle:
            handle.write(document)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                dataset = COCODataset(path, coco_images, skip_bad=skip_bad, check_images=check_images)
                assert len(dataset.coco_image_ids) == len(dataset) > 0
                assert dataset.category_ids[0] is None and len(dataset.category_ids) == dataset.num_classes
                read_everything(dataset)
            except DataError as error:
                assert_names_a_file(error, path, coco_images)
