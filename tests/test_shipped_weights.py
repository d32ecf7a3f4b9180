"""The trained weights shipped for the lessons (notebooks/assets) score what their record says."""

import json
import os

import pytest

from minissd import models
from minissd.backend import blas_threads
from minissd.data import ShapesDataset
from minissd.evaluate.run import evaluate_model, score

ASSETS = os.path.join(os.path.dirname(__file__), "..", "notebooks", "assets")


@pytest.mark.slow
def test_the_demo_weights_score_their_recorded_test_map():
    record = json.load(open(os.path.join(ASSETS, "demo_tiny_ssd.json")))
    model = models.load(os.path.join(ASSETS, record["file"]), device="cpu")
    assert model.info.arch == "tiny" and model.info.class_names[1:] == ["circle", "square", "triangle", "star", "cross"]
    assert os.path.getsize(os.path.join(ASSETS, record["file"])) < 3_000_000
    with blas_threads(1):
        result, predictions = evaluate_model(model, ShapesDataset("test", num_images=500), metric="voc")
    # the same number to rounding: float summation order may differ between machines, not the detections
    assert result.mAP == pytest.approx(record["test_voc_mAP_all_point"], abs=2e-3)
    assert score(predictions, "voc", use_07_metric=True).mAP == pytest.approx(record["test_voc_mAP_11_point"], abs=2e-3)
    assert result.mAP >= 0.9
