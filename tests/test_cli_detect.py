"""``minissd detect`` on real folders: sub-folders, names used twice, one stem with two extensions, EXIF
orientation, batches, images per second, COCO results JSON, bad pictures."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from minissd import models
from minissd.cli import main
from minissd.cli.detect import picture_names, relative_names

from . import real_layouts


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "tiny.npz"
    models.tiny_ssd(3, class_names=["cat", "dog"], widths=(4,) * 8, seed=3).save(path)
    return str(path)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return real_layouts.photos(tmp_path_factory.mktemp("photos"))


def test_output_names_never_collide():
    names = relative_names(["/p/2024/beach.jpg", "/p/2025/beach.jpg", "/p/2025/garden.png", "/p/2025/garden.jpg"])
    assert names == ["2024/beach.jpg", "2025/beach.jpg", "2025/garden.png", "2025/garden.jpg"]
    assert picture_names(names) == ["2024/beach_detections.png", "2025/beach_detections.png",
                                    "2025/garden_png_detections.png", "2025/garden_jpg_detections.png"]
    assert relative_names(["/a/x.png"]) == ["x.png"]


def test_a_folder_of_photos(weights, photos, tmp_path, capsys):
    out = tmp_path / "found"
    assert main(["detect", weights, photos, "--recursive", "-o", str(out), "--threshold", "0", "--batch-size",
                 "2"]) == 0
    printed = capsys.readouterr().out
    assert "images/s" in printed and "5 pictures in" in printed
    found = json.loads((out / "detections.json").read_text())
    assert sorted(found) == ["2024/beach.jpg", "2025/beach.jpg", "2025/garden.jpg", "2025/garden.png",
                             "2025/phone.jpg"]
    for name in ("2024/beach_detections.png", "2025/beach_detections.png", "2025/garden_png_detections.png",
                 "2025/garden_jpg_detections.png", "2025/phone_detections.png"):
        assert (out / name).exists(), name
    # the phone photo is stored 80 x 48 with EXIF orientation 6: it is shown (and detected) 48 x 80
    assert found["2025/phone.jpg"]["image_size"] == [48, 80]
    with Image.open(out / "2025" / "phone_detections.png") as drawn:
        assert drawn.size == (48, 80)
    boxes = np.array([d["box"] for d in found["2025/phone.jpg"]["detections"]]).reshape(-1, 4)
    assert ((boxes[:, [0, 2]] <= 48 + 1e-3) & (boxes[:, [1, 3]] <= 80 + 1e-3)).all()


def test_without_recursive_a_folder_means_its_own_pictures(weights, photos, tmp_path, capsys):
    assert main(["detect", weights, photos, "-o", str(tmp_path / "o")]) == 1
    assert "is a folder without pictures" in capsys.readouterr().err
    assert main(["detect", weights, os.path.join(photos, "2025"), "--no-pictures", "-o", str(tmp_path / "o")]) == 0
    assert sorted(json.loads((tmp_path / "o" / "detections.json").read_text())) == [
        "beach.jpg", "garden.jpg", "garden.png", "phone.jpg"]
    assert sorted(os.listdir(tmp_path / "o")) == ["detections.json"]


def test_an_output_folder_inside_the_input_folder_is_not_read_back(weights, tmp_path):
    import shutil

    folder = tmp_path / "pictures"
    shutil.copytree(os.path.join(real_layouts.photos(tmp_path / "p"), "2025"), folder)
    for _ in range(2):
        assert main(["detect", weights, str(folder), "-r", "-o", str(folder / "found")]) == 0
    found = json.loads((folder / "found" / "detections.json").read_text())
    assert sorted(found) == ["beach.jpg", "garden.jpg", "garden.png", "phone.jpg"]


def test_the_same_file_twice_is_detected_once(weights, photos, tmp_path):
    one = os.path.join(photos, "2024", "beach.jpg")
    assert main(["detect", weights, one, one, "-o", str(tmp_path / "o"), "--no-pictures"]) == 0
    assert list(json.loads((tmp_path / "o" / "detections.json").read_text())) == ["beach.jpg"]


def test_coco_results_from_a_folder_use_the_annotation_file_s_ids(tmp_path, capsys):
    annotations, images = real_layouts.coco_folder(tmp_path)
    weights = tmp_path / "coco.npz"
    models.tiny_ssd(4, class_names=["person", "dog", "chair"], widths=(4,) * 8, seed=5).save(weights)
    results = tmp_path / "results.json"
    assert main(["detect", str(weights), images, "-o", str(tmp_path / "o"), "--threshold", "0", "--no-pictures",
                 "--coco-results", str(results), "--coco-annotations", annotations]) == 0
    entries = json.loads(results.read_text())
    data = json.loads(open(annotations).read())
    assert entries and {e["image_id"] for e in entries} <= {i["id"] for i in data["images"]}
    assert {e["category_id"] for e in entries} <= {1, 18, 62}
    entry = entries[0]
    assert len(entry["bbox"]) == 4 and entry["bbox"][2] >= 0 and 0 <= entry["score"] <= 1
    # without the annotation file a numeric file name is the image id
    assert main(["detect", str(weights), images, "-o", str(tmp_path / "o2"), "--threshold", "0", "--no-pictures",
                 "--coco-results", str(tmp_path / "r2.json")]) == 0
    assert {e["image_id"] for e in json.loads((tmp_path / "r2.json").read_text())} <= {i["id"] for i in data["images"]}


def test_bad_pictures_stop_or_are_skipped(weights, tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(Image.new("RGB", (40, 30)).tobytes()[:50])
    assert main(["detect", weights, str(good), str(broken), "-o", str(tmp_path / "o")]) == 1
    assert "broken.jpg" in capsys.readouterr().err
    assert main(["detect", weights, str(good), str(broken), "-o", str(tmp_path / "o"), "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "warning: skipped" in captured.err and "broken.jpg" in captured.err and "skipped 1 unreadable" in captured.out
    assert list(json.loads((tmp_path / "o" / "detections.json").read_text())) == ["good.png"]


def test_a_decompression_bomb_is_refused_before_decoding(weights, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # 400 megapixels, a few tens of KB on disk
    assert bomb.stat().st_size < 200_000
    assert main(["detect", weights, str(bomb), "-o", str(tmp_path / "o")]) == 1
    line = capsys.readouterr().err.strip()
    assert "bomb.png is 20000 x 20000" in line and "--max-pixels" in line and len(line.splitlines()) == 1
    assert main(["detect", weights, str(bomb), "-o", str(tmp_path / "o"), "--skip-bad"]) == 0
    assert "skipped" in capsys.readouterr().err


def test_nan_weights_are_an_error_not_nan_boxes(tmp_path, capsys):
    model = models.tiny_ssd(3, class_names=["cat", "dog"], widths=(4,) * 8)
    model.params["head0.loc.weight"][...] = np.nan
    path = tmp_path / "broken.npz"
    models.save_model(model, path)
    picture = tmp_path / "p.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(picture)
    assert main(["detect", str(path), str(picture), "-o", str(tmp_path / "o")]) == 1
    line = capsys.readouterr().err
    assert "head0.loc.weight" in line and "non-finite" in line
    assert not (tmp_path / "o" / "detections.json").exists()
