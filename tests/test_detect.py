"""The detection API: any picture in, pixel boxes out; drawing; JSON; dataset evaluation."""

import json

import numpy as np
import pytest
from PIL import Image

from minissd import models
from minissd.data import ShapesDataset
from minissd.detect import Detections, Detector, read_image, save_json
from minissd.evaluate.run import evaluate_model, predict_dataset


@pytest.fixture(scope="module")
def detector():
    model = models.tiny_ssd(6, class_names=["circle", "square", "triangle", "star", "cross"], widths=(4,) * 8)
    return Detector(model, batch_size=2)


def test_read_image_converts_every_mode(tmp_path):
    rgb = np.zeros((5, 7, 3), np.uint8)
    assert read_image(rgb).shape == (5, 7, 3)
    assert read_image(np.zeros((5, 7), np.uint8)).shape == (5, 7, 3)
    assert read_image(np.zeros((5, 7, 4), np.uint8)).shape == (5, 7, 3)
    assert read_image(np.full((5, 7, 3), 0.5, np.float32)).max() == 127
    for mode in ("L", "RGBA", "P", "CMYK", "1"):
        path = tmp_path / f"picture_{mode}.{'jpg' if mode == 'CMYK' else 'png'}"
        Image.new(mode, (9, 4)).save(path)
        picture = read_image(path)
        assert picture.shape == (4, 9, 3) and picture.dtype == np.uint8, mode


def test_read_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="image not found"):
        read_image(tmp_path / "missing.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken\.png: image file cannot be read"):
        read_image(broken)
    with pytest.raises(ValueError, match=r"an image array must be"):
        read_image(np.zeros((3, 4, 5)))


def test_boxes_come_back_in_the_pixels_of_the_input(detector, monkeypatch):
    planted = [(np.array([[0.1, 0.2, 0.5, 0.6]], np.float32), np.array([0.9], np.float32), np.array([3]))]
    monkeypatch.setattr(detector, "predict_batch", lambda batch, threshold=None: planted * len(batch))
    found = detector.predict(np.zeros((50, 200, 3), np.uint8))
    np.testing.assert_allclose(found.boxes, [[20, 10, 100, 30]])
    assert found.names == ["triangle"] and found.image_size == (200, 50)
    assert found.to_dict()["detections"][0] == {"box": [20.0, 10.0, 100.0, 30.0], "score": 0.9, "label": 3,
                                                "name": "triangle"}


def test_predict_on_real_forward_any_size(detector, tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (64, 40), 128).save(path)
    results = detector.predict_many([path, np.zeros((300, 100, 3), np.uint8), Image.new("RGB", (17, 33))],
                                    score_threshold=0.0)
    assert [r.image_size for r in results] == [(64, 40), (100, 300), (17, 33)]
    for result in results:
        assert result.boxes.shape[1] == 4 and len(result) <= 200
        width, height = result.image_size
        assert (result.boxes[:, [0, 2]] <= width + 1e-3).all() and (result.boxes[:, [1, 3]] <= height + 1e-3).all()
        assert np.all(np.diff(result.scores) <= 0)


def test_draw_and_json(detector, tmp_path):
    image = np.full((40, 60, 3), 200, np.uint8)
    found = Detections(np.array([[5, 5, 30, 35]], np.float32), np.array([0.8], np.float32), np.array([1]),
                       ["circle"], (60, 40))
    picture = detector.draw(image, found, score_threshold=0.5)
    assert picture.size == (60, 40)
    assert np.asarray(picture)[20, 5].tolist() != [200, 200, 200]  # the box edge was drawn
    assert np.asarray(detector.draw(image, found, score_threshold=0.9))[20, 5].tolist() == [200, 200, 200]
    save_json(tmp_path / "d.json", {"a.png": found})
    assert json.loads((tmp_path / "d.json").read_text())["a.png"]["detections"][0]["name"] == "circle"


def test_detector_load_round_trip(detector, tmp_path):
    detector.model.save(tmp_path / "m.npz")
    loaded = Detector.load(tmp_path / "m.npz", device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    a, b = detector.predict(image, 0.0), loaded.predict(image, 0.0)
    np.testing.assert_allclose(a.boxes, b.boxes)
    assert loaded.class_names == detector.class_names


def test_dataset_evaluation_scores_perfect_predictions(detector, monkeypatch):
    dataset = ShapesDataset("test", num_images=5)
    truth = [dataset[i] for i in range(5)]
    answers = iter(
        (s.boxes / np.array([s.width, s.height] * 2, np.float32), np.ones(len(s.boxes), np.float32), s.labels)
        for s in truth
    )
    monkeypatch.setattr(detector, "predict_batch", lambda batch, threshold=None: [next(answers) for _ in batch])
    predictions = predict_dataset(detector, dataset, batch_size=2)
    assert len(predictions.boxes) == 5
    np.testing.assert_allclose(predictions.boxes[0], truth[0].boxes, atol=1e-3)
    answers = iter(
        (s.boxes / np.array([s.width, s.height] * 2, np.float32), np.ones(len(s.boxes), np.float32), s.labels)
        for s in truth
    )
    result, _ = evaluate_model(detector, dataset, batch_size=3)
    assert result.mAP == pytest.approx(1.0)
