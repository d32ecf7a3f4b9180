"""``minissd eval`` across label spaces: torchvision's 91 COCO slots on an instances JSON with non-contiguous
category ids, COCO results JSON that pycocotools reads (and scores as minissd does), a subset of classes
by name, and a model of other classes refused."""

import importlib.util
import json

import numpy as np
import pytest

from minissd import models
from minissd.cli import main
from minissd.data import COCODataset
from minissd.detect import Detector

from . import real_layouts

HAS_PYCOCOTOOLS = importlib.util.find_spec("pycocotools") is not None


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return real_layouts.coco_folder(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="module")
def torchvision_coco_weights(tmp_path_factory):
    """A random torchvision ssd300_vgg16 (91 slots) converted with ``minissd convert``."""
    folder = tmp_path_factory.mktemp("tv")
    checkpoint = real_layouts.save_state_dict(real_layouts.torchvision_ssd300_state(91), str(folder / "torchvision_ssd300_coco"))
    out = folder / "ssd300_coco.npz"
    assert main(["convert", checkpoint, "-o", str(out)]) == 0
    return str(out)


def _near_ground_truth(dataset, model_label_of, seed=0):
    """Per image, the detections a good detector would make: jittered objects (normalised xyxy), in the
    model's labels, plus one false alarm; in dataset order, as Detector.predict_batch returns them."""
    rng = np.random.default_rng(seed)
    outputs = []
    for index in range(len(dataset)):
        sample = dataset[index]
        scale = np.array([sample.width, sample.height] * 2, dtype=np.float32)
        boxes = sample.boxes / scale + rng.normal(0, 0.02, size=sample.boxes.shape).astype(np.float32)
        boxes = np.concatenate([np.clip(boxes, 0, 1), [[0.0, 0.0, 0.3, 0.3]]]).astype(np.float32)
        labels = np.array([model_label_of(int(k)) for k in sample.labels] + [model_label_of(1)], dtype=np.int64)
        scores = np.concatenate([rng.uniform(0.5, 1.0, len(sample.labels)), [0.4]]).astype(np.float32)
        outputs.append((boxes, scores, labels))
    return outputs


@pytest.fixture
def scripted_detector(monkeypatch):
    """Replace the network's detections by a script, keeping everything around them real."""

    def install(outputs):
        queue = list(outputs)

        def predict_batch(self, batch, score_threshold=None):
            taken = [queue.pop(0) for _ in range(len(batch))]
            return taken

        monkeypatch.setattr(Detector, "predict_batch", predict_batch)

    return install


def test_torchvision_91_slots_evaluate_on_an_instances_json(coco, torchvision_coco_weights, scripted_detector,
                                                            tmp_path, capsys):
    annotations, images = coco
    dataset = COCODataset(annotations, images)
    assert dataset.category_ids == [None, 1, 18, 62]
    scripted_detector(_near_ground_truth(dataset, lambda label: dataset.category_ids[label]))  # slot = category id
    results = tmp_path / "results.json"
    assert main(["eval", torchvision_coco_weights, "--dataset", "coco", "--coco-annotations", annotations,
                 "--coco-images", images, "--metric", "coco", "--coco-results", str(results),
                 "-o", str(tmp_path / "report"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "classes: the model's slots are COCO category ids" in out
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["AP50"] > 0.6 and "COCO category ids" in report["classes"]
    entries = json.loads(results.read_text())
    assert {e["category_id"] for e in entries} <= {1, 18, 62}
    if HAS_PYCOCOTOOLS:  # minissd's COCO AP equals pycocotools' on the file it wrote
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        truth = COCO(annotations)
        evaluation = COCOeval(truth, truth.loadRes(str(results)), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
        for position, key in enumerate(("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")):
            theirs = evaluation.stats[position]
            ours = report[key]
            if theirs < 0:
                assert ours is None, key
            else:
                assert ours == pytest.approx(theirs, abs=2e-3), key  # the file rounds boxes to 0.01 px


def test_score_results_file_equals_pycocotools(coco, tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from minissd.evaluate.coco_results import score_results_file

    annotations, _ = coco
    data = json.loads(open(annotations).read())
    rng = np.random.default_rng(1)
    entries = []
    for annotation in data["annotations"]:
        x, y, w, h = annotation["bbox"]
        for _ in range(2):
            jitter = rng.normal(0, 2.0, 4)
            entries.append({"image_id": annotation["image_id"], "category_id": annotation["category_id"],
                            "bbox": [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])],
                            "score": float(rng.uniform())})
    entries.append({"image_id": data["images"][1]["id"], "category_id": 62, "bbox": [1, 1, 10, 10], "score": 0.99})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries))
    ours = score_results_file(annotations, path)
    truth = COCO(annotations)
    evaluation = COCOeval(truth, truth.loadRes(str(path)), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    values = [ours.AP, ours.AP50, ours.AP75, ours.AP_small, ours.AP_medium, ours.AP_large]
    for value, theirs in zip(values, evaluation.stats[:6]):
        if theirs < 0:
            assert np.isnan(value)
        else:
            assert value == pytest.approx(theirs, abs=1e-9)


def test_a_model_of_other_classes_is_refused_naming_both(coco, tmp_path, capsys):
    annotations, images = coco
    weights = tmp_path / "shapes.npz"
    models.tiny_ssd(6, class_names=["circle", "square", "triangle", "star", "cross"], widths=(4,) * 8).save(weights)
    assert main(["eval", str(weights), "--dataset", "coco", "--coco-annotations", annotations, "--coco-images",
                 images, "--no-progress"]) == 1
    line = capsys.readouterr().err
    assert "the model's classes (circle, square" in line and "the dataset's (person, dog, chair)" in line


def test_a_voc_model_on_a_folder_with_fewer_classes_matches_by_name(tmp_path, scripted_detector, capsys):
    folder = real_layouts.voc_folder(tmp_path, names=("cat", "dog"))
    weights = tmp_path / "voc.npz"
    models.tiny_ssd(21, widths=(4,) * 8).save(weights)  # the 20 VOC classes
    from minissd.data import VOCDataset
    from minissd.data.voc import VOC_CLASSES

    dataset = VOCDataset(folder, year=None, split="test", class_names=["cat", "dog"])
    voc_label = {1: VOC_CLASSES.index("cat") + 1, 2: VOC_CLASSES.index("dog") + 1}
    scripted_detector(_near_ground_truth(dataset, lambda label: voc_label[label]))
    assert main(["eval", str(weights), "--data-root", folder, "--class-names", str(_names(tmp_path, "cat", "dog")),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "matched by class name: the dataset's 2 classes among the model's 20" in out
    mean_ap = float(out.split("mAP")[-1].split()[0])
    assert mean_ap > 0.5


def _names(folder, *names):
    path = folder / "names.txt"
    path.write_text("\n".join(names) + "\n")
    return path


def test_an_empty_dataset_is_one_line(tmp_path, capsys):
    annotations = tmp_path / "empty.json"
    annotations.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    (tmp_path / "images").mkdir()
    weights = tmp_path / "w.npz"
    models.tiny_ssd(2, class_names=["a"], widths=(4,) * 8).save(weights)
    assert main(["eval", str(weights), "--dataset", "coco", "--coco-annotations", str(annotations),
                 "--coco-images", str(tmp_path / "images")]) == 1
    assert "no images" in capsys.readouterr().err
