"""Bad data through the command: every case is one line naming the file and the field, exit 1, no traceback;
--skip-bad skips what belongs to one sample and says how many."""

import errno
import json
import os

import pytest
from PIL import Image

from minissd import models
from minissd.cli import main

from . import real_layouts


def one_line(capsys, command):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"minissd {command}: error: ") and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "coco.npz"
    models.tiny_ssd(4, class_names=["person", "dog", "chair"], widths=(4,) * 8).save(path)
    return str(path)


def _coco_with(tmp_path, change):
    annotations, images = real_layouts.coco_folder(tmp_path)
    data = json.loads(open(annotations).read())
    change(data)
    with open(annotations, "w") as stream:
        json.dump(data, stream)
    return annotations, images


COCO_CASES = {
    "bbox a string": (lambda d: d["annotations"][0].update(bbox="1234"), "'bbox' is \"1234\""),
    "category id a string": (lambda d: d["annotations"][0].update(category_id="18"), "category_id"),
    "category id null": (lambda d: d["annotations"][0].update(category_id=None), "category_id"),
    "image_id a list": (lambda d: d["annotations"][0].update(image_id=[1, 2]), "image_id"),
    "file_name null": (lambda d: d["images"][0].update(file_name=None), "file_name"),
    "two images with one id": (lambda d: d["images"][1].update(id=d["images"][0]["id"]), "images[1]"),
    "no images": (lambda d: d.update(images=[], annotations=[]), "no images"),
}


@pytest.mark.parametrize("case", sorted(COCO_CASES))
def test_bad_coco_files(case, weights, tmp_path, capsys):
    change, message = COCO_CASES[case]
    annotations, images = _coco_with(tmp_path, change)
    assert main(["eval", weights, "--dataset", "coco", "--coco-annotations", annotations, "--coco-images", images,
                 "--no-progress"]) == 1
    line = one_line(capsys, "eval")
    assert message in line and "instances_val2017.json" in line


def test_the_annotation_path_is_a_folder(weights, tmp_path, capsys):
    _, images = real_layouts.coco_folder(tmp_path)
    assert main(["eval", weights, "--dataset", "coco", "--coco-annotations", images, "--coco-images", images]) == 1
    assert "is a folder, not a COCO annotation file" in one_line(capsys, "eval")


def test_voc_faults(tmp_path, capsys):
    devkit = real_layouts.voc_devkit(tmp_path)
    voc_weights = tmp_path / "voc.npz"
    models.tiny_ssd(21, widths=(4,) * 8).save(voc_weights)
    assert main(["train", "--data-root", devkit, "--year", "2007+2007", "-o", str(tmp_path / "r")]) == 1
    assert "year 2007 is given twice" in one_line(capsys, "train")
    empty = os.path.join(devkit, "VOC2007", "ImageSets", "Main", "empty.txt")
    open(empty, "w").close()
    assert main(["eval", str(voc_weights), "--data-root", devkit, "--split", "empty"]) == 1
    assert "empty.txt" in one_line(capsys, "eval")
    # an undecodable picture: an error naming it, or with --skip-bad one warning and a count
    picture = os.path.join(devkit, "VOC2007", "JPEGImages", "000009.jpg")
    data = open(picture, "rb").read()
    with open(picture, "wb") as stream:
        stream.write(data[: len(data) // 3])
    assert main(["eval", str(voc_weights), "--data-root", devkit, "--no-progress"]) == 1
    assert "000009.jpg" in one_line(capsys, "eval")
    assert main(["eval", str(voc_weights), "--data-root", devkit, "--no-progress", "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "000009.jpg" in captured.err and "warning" in captured.err and "Traceback" not in captured.err
    assert "skipped 1 picture(s)" in captured.out


def test_a_huge_picture_in_a_dataset_and_under_boxes(tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)
    assert main(["boxes", "--image", str(bomb), "-o", str(tmp_path / "b.png")]) == 1
    line = one_line(capsys, "boxes")
    assert "20000 x 20000" in line and "megapixels" in line and "--max-pixels" in line
    folder = real_layouts.voc_folder(tmp_path, count=4, test=1)
    target = os.path.join(folder, "JPEGImages", "img_000.jpg")
    os.remove(target)
    os.rename(bomb, target.replace(".jpg", ".png"))  # the annotation names img_000.jpg: matched by stem
    assert main(["train", "--data-root", folder, "-o", str(tmp_path / "r"), "--iterations", "1",
                 "--batch-size", "2", "--no-progress", "--no-val"]) == 1
    assert "megapixels" in one_line(capsys, "train")
    assert main(["train", "--data-root", folder, "-o", str(tmp_path / "r2"), "--iterations", "1",
                 "--batch-size", "2", "--no-progress", "--no-val", "--skip-bad"]) == 0
    assert "skipped" in capsys.readouterr().err


def test_a_write_failure_in_the_middle_of_detect_is_one_line(tmp_path, capsys, monkeypatch, weights):
    picture = tmp_path / "p.png"
    Image.new("RGB", (40, 30)).save(picture)

    def refuse(self, path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(Image.Image, "save", refuse)
    assert main(["detect", weights, str(picture), "-o", str(tmp_path / "out")]) == 1
    line = one_line(capsys, "detect")
    assert "cannot write" in line and "p_detections.png" in line and "Permission denied" in line
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".minissd-")]
