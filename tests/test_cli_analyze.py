"""``minissd analyze``: the shipped demo weights on the shapes data, a VOC-classes model on a made-up VOC folder
(scripted detections whose kinds are known), and the one-line errors before any work."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from minissd import models
from minissd.boxes import iou
from minissd.cli import main
from minissd.data import ShapesDataset, VOCDataset
from minissd.data.voc import VOC_CLASSES
from minissd.detect import Detector

from . import real_layouts

DEMO_WEIGHTS = os.path.join(os.path.dirname(__file__), "..", "notebooks", "assets", "demo_tiny_ssd.npz")
PICTURES = ("error_types.png", "size.png", "aspect.png", "confusion.png")


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minissd analyze: error:"), captured.err
    return lines[0]


def test_the_demo_weights_on_the_shapes_data(tmp_path, capsys):
    out = tmp_path / "analysis"
    assert main(["analyze", DEMO_WEIGHTS, "--dataset", "shapes", "--num-images", "24", "-o", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "with corners (4 classes" in printed and "round (1 class" in printed
    numbers = json.loads((out / "analysis.json").read_text())
    assert list(numbers["groups"]) == ["with corners", "round"]
    assert numbers["groups"]["round"]["classes"] == ["circle"]
    dataset = ShapesDataset("test", num_images=24)
    objects = {name: 0 for name in dataset.class_names[1:]}
    for index in range(len(dataset)):
        for label in dataset[index].labels:
            objects[dataset.class_names[int(label)]] += 1
    assert {name: c["objects"] for name, c in numbers["classes"].items()} == objects
    for group in numbers["groups"].values():
        shares = group["at_objects"]
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares["Cor"] > 0.6  # a trained detector (VOC mAP 0.92 on this split)
        assert f"Cor {100 * shares['Cor']:.1f}%" in printed
    for name, numbers_of_class in numbers["classes"].items():
        counted = sum(numbers_of_class["counts_at_objects"].values())
        assert counted == min(numbers_of_class["objects"], numbers_of_class["detections"]), name
    confusion = np.array(numbers["confusion"]["counts"])
    assert confusion.shape == (5, 6) and np.trace(confusion) > 0.6 * confusion.sum()
    for name in PICTURES:
        with Image.open(out / name) as picture:
            assert picture.format == "PNG" and min(picture.size) > 200


@pytest.fixture
def scripted_detector(monkeypatch):
    """Replace the network's detections by a script, keeping everything around them real."""

    def install(outputs):
        queue = list(outputs)
        monkeypatch.setattr(Detector, "predict_batch",
                            lambda self, batch, score_threshold=None: [queue.pop(0) for _ in range(len(batch))])

    return install


def test_a_voc_model_on_a_made_up_voc_folder(tmp_path, scripted_detector, capsys):
    folder = real_layouts.voc_folder(tmp_path, names=("cat", "dog"), count=16, test=8)
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    weights = tmp_path / "voc.npz"
    models.tiny_ssd(21, widths=(4,) * 8).save(weights)  # the 20 VOC classes
    dataset = VOCDataset(folder, year=None, split="test", class_names=["cat", "dog"])
    voc_label = {1: VOC_CLASSES.index("cat") + 1, 2: VOC_CLASSES.index("dog") + 1}
    # every object found (score 0.9); two cats that overlap no dog also read as dogs, with a higher score
    # (0.95): a confusion with a similar class (Sim) on top of the dog's ranking
    outputs, cats, dogs = [], 0, 0
    for index in range(len(dataset)):
        sample = dataset[index]
        boxes = sample.boxes / np.array([sample.width, sample.height] * 2, dtype=np.float32)
        overlap = iou(sample.boxes, sample.boxes)  # (G, G)
        near_a_dog = (overlap[:, sample.labels == 2] >= 0.1).any(axis=1)
        is_cat = (sample.labels == 1) & ~near_a_dog
        is_cat &= np.cumsum(is_cat) <= 2 - cats  # two of them in all: the dog's top detections mix Sim and Cor
        cats += int(is_cat.sum())
        dogs += int(((sample.labels == 2) & ~sample.difficult).sum())
        labels = [voc_label[int(k)] for k in sample.labels] + [voc_label[2]] * int(is_cat.sum())
        scores = [0.9] * len(sample.labels) + [0.95] * int(is_cat.sum())
        outputs.append((np.concatenate([boxes, boxes[is_cat]]).astype(np.float32),
                        np.array(scores, np.float32), np.array(labels, np.int64)))
    assert cats == 2 and dogs > cats
    scripted_detector(outputs)
    out = tmp_path / "analysis"
    assert main(["analyze", str(weights), "--data-root", folder, "--class-names", str(tmp_path / "names.txt"),
                 "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "matched by class name: the dataset's 2 classes among the model's 20" in printed
    numbers = json.loads((out / "analysis.json").read_text())
    assert list(numbers["groups"]) == ["animals"] and numbers["groups"]["animals"]["classes"] == ["cat", "dog"]
    dog = numbers["classes"]["dog"]
    # the dog's ranking: every cat read as a dog (Sim), then its own objects (Cor; difficult ones ignored)
    assert dog["objects"] == dogs and dog["detections"] == cats + dogs
    sim = min(cats, dogs)
    assert dog["counts_at_objects"] == {"Cor": dogs - sim, "Loc": 0, "Sim": sim, "Oth": 0, "BG": 0}
    assert numbers["classes"]["cat"]["counts_at_objects"]["Cor"] == numbers["classes"]["cat"]["objects"]
    rows, columns = numbers["confusion"]["rows"], numbers["confusion"]["columns"]
    assert numbers["confusion"]["counts"][rows.index("dog")][columns.index("cat")] == sim
    for name in PICTURES:
        assert (out / name).stat().st_size > 0


def test_own_groups_from_a_file(tmp_path, capsys):
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"polygons": ["square", "triangle"], "spiky": ["star", "cross"]}))
    out = tmp_path / "analysis"
    assert main(["analyze", DEMO_WEIGHTS, "--num-images", "8", "--groups", str(groups), "-o", str(out),
                 "--no-progress"]) == 0
    numbers = json.loads((out / "analysis.json").read_text())
    assert list(numbers["groups"]) == ["polygons", "spiky", "circle"]  # an unlisted class is a group of its own
    assert numbers["groups_from"] == str(groups)


@pytest.fixture
def never_predict(monkeypatch):
    """Fail the test if a command gets as far as predicting."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command started predicting before checking its inputs")

    monkeypatch.setattr("minissd.evaluate.run.predict_dataset", refuse)


def test_an_existing_file_as_output_is_refused_first(tmp_path, capsys, never_predict):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    assert main(["analyze", "no-such-weights.npz", "-o", str(taken)]) == 1
    assert "is an existing file, not a folder" in _one_error_line(capsys)
    assert taken.read_text() == "mine"


def test_a_folder_that_cannot_be_made_is_refused(tmp_path, capsys, never_predict):
    (tmp_path / "file").write_text("x")
    assert main(["analyze", DEMO_WEIGHTS, "-o", str(tmp_path / "file" / "sub")]) == 1
    assert "cannot create the folder" in _one_error_line(capsys)


def test_an_output_name_taken_by_a_folder_is_refused(tmp_path, capsys, never_predict):
    (tmp_path / "out" / "analysis.json").mkdir(parents=True)
    assert main(["analyze", DEMO_WEIGHTS, "-o", str(tmp_path / "out")]) == 1
    assert "analysis.json there is a folder" in _one_error_line(capsys)


@pytest.mark.parametrize("flag, value, message", [
    ("--limit", "0", "argument --limit: must be a positive integer; got '0'"),
    ("--batch-size", "-2", "argument --batch-size: must be a positive integer; got '-2'"),
    ("--num-images", "many", "argument --num-images: must be an integer; got 'many'"),
])
def test_numbers_are_range_checked_while_parsing(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as stop:
        main(["analyze", DEMO_WEIGHTS, flag, value, "-o", str(tmp_path / "out")])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_output_folder_is_required(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["analyze", DEMO_WEIGHTS])
    assert stop.value.code == 2 and "-o/--output" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON (line 1, column 2"),
    ('["square"]', 'expected an object {"group name": ["class", ...]}; got list'),
    ('{"polygons": "square"}', "group 'polygons' must be a list of class names"),
    ('{"polygons": ["square", "hexagon"]}', "groups['polygons'][1] = 'hexagon' is not a class of the data"),
    ('{"a": ["square"], "b": ["square"]}', "'square' is already in group 'a'"),
])
def test_bad_groups_files_are_one_line_before_predicting(tmp_path, capsys, never_predict, content, message):
    groups = tmp_path / "groups.json"
    groups.write_text(content)
    assert main(["analyze", DEMO_WEIGHTS, "--num-images", "4", "--groups", str(groups),
                 "-o", str(tmp_path / "out")]) == 1
    line = _one_error_line(capsys)
    assert f"--groups {groups}" in line and message in line


def test_a_missing_groups_file(tmp_path, capsys, never_predict):
    assert main(["analyze", DEMO_WEIGHTS, "--groups", str(tmp_path / "none.json"), "-o", str(tmp_path / "o")]) == 1
    assert "none.json: file not found" in _one_error_line(capsys)
