"""The GPU benchmark runs on the CPU too, and reports what it says (no speed is asserted)."""

import json

import numpy as np
import pytest

from minissd import models
from minissd.bench import gpu as bench_gpu


@pytest.fixture
def small_tiny(monkeypatch):
    monkeypatch.setitem(bench_gpu.MODELS, "tiny", lambda: models.tiny_ssd(21, widths=(4,) * 8))


def test_main_prints_the_table_and_writes_json(small_tiny, tmp_path, capsys):
    path = tmp_path / "rows.json"
    report = bench_gpu.main(["--models", "tiny", "--batch-sizes", "1", "2", "--repeat", "1", "--train-repeat", "1",
                             "--warmup", "0", "--no-torch", "--json", str(path)])
    out = capsys.readouterr().out
    assert "device: cpu" in out and bench_gpu.HEADER in out
    table = [line for line in out.splitlines() if line.startswith("| tiny |")]
    assert [line.split(" | ")[1:4] for line in table] == [
        [b, "fp32", p] for b in ("1", "2") for p in ("network", "end2end", "train")]
    # BatchNorm in train mode cannot take one image on a 1 x 1 map: said in the row, not crashed
    assert "minissd skipped: batchnorm2d_forward" in table[2] and table[2].split(" | ")[4] == "-"
    saved = json.loads(path.read_text())
    assert saved["rows"] == report["rows"] and saved["machine"][-1] == "device: cpu"
    assert saved["settings"]["batch_sizes"] == [1, 2] and saved["memory"] == {}
    timed = [row for row in saved["rows"] if row["minissd_img_s"] is not None]
    assert len(timed) == 5 and all(row["minissd_img_s"] > 0 and row["torch_img_s"] is None for row in timed)


def test_postprocess_pass_on_request(small_tiny):
    rows = bench_gpu.run(("tiny",), batch_sizes=(2,), passes=("postprocess",), repeat=1, warmup=0,
                         use_torch=False, postprocess="loop", log=lambda line: None)
    assert [(r["pass"], r["target"]) for r in rows] == [("postprocess", None)] and rows[0]["minissd_img_s"] > 0


def test_bad_arguments_are_refused():
    for argv in (["--repeat", "0"], ["--batch-sizes", "0"], ["--warmup", "-1"], ["--passes", "fly"]):
        with pytest.raises(SystemExit):
            bench_gpu.main(argv + ["--no-torch"])


def test_rows_and_targets_format():
    row = {"model": "ssd300", "batch": 32, "pass": "end2end", "precision": "fp32", "minissd_img_s": 300.0,
           "torch_img_s": 116.0, "ratio": 300 / 116, "target": 2.0, "note": ""}
    assert bench_gpu.format_row(row).split(" | ")[4:9] == ["300.0", "116.0", "2.59", ">= 2.0x", "yes"]
    slow = dict(row, ratio=0.5, target=0.9)
    assert bench_gpu.format_row(slow).split(" | ")[8] == "no"
    assert bench_gpu.format_table([row])[1] == "|" + "---|" * 10


def test_median_seconds_warms_up_and_synchronises():
    calls, syncs = [], []
    seconds = bench_gpu.median_seconds(lambda: calls.append(1), repeat=3, warmup=2, synchronize=lambda: syncs.append(1))
    assert len(calls) == 5 and len(syncs) == 4 and seconds >= 0


def test_child_process_times_the_next_precision(tmp_path):
    """--precisions fp32 tf32: the tf32 rows come from a child with CUPY_TF32=1 (a no-op on the CPU)."""
    assert bench_gpu._without_options(["--models", "tiny", "--json", "x", "--precisions", "fp32", "tf32",
                                       "--no-torch"], ("--json", "--precisions")) == ["--models", "tiny", "--no-torch"]
    report = bench_gpu.main(["--models", "tiny", "--batch-sizes", "2", "--passes", "network", "--repeat", "1",
                             "--warmup", "0", "--no-torch", "--precisions", "fp32", "tf32"])
    assert [row["precision"] for row in report["rows"]] == ["fp32", "tf32"]


def test_minissd_passes_return_what_they_time(small_tiny):
    model = bench_gpu.MODELS["tiny"]()
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, 128, 128), dtype=np.float32)
    outputs = bench_gpu.random_outputs(2, 1364, 21, rng)
    calls = bench_gpu.minissd_calls(model, images, bench_gpu.random_targets(2, rng), outputs=outputs)
    assert len(calls["postprocess"]()) == 2
    loc, conf = calls["network"]()
    assert loc.shape == (2, 1364, 4) and conf.shape == (2, 1364, 21)
    detections = calls["end2end"]()
    assert len(detections) == 2 and all(boxes.shape[1:] == (4,) for boxes, _, _ in detections)
    before = {name: p.copy() for name, p in model.params.items()}
    calls["train"]()
    assert any(not np.array_equal(before[name], p) for name, p in model.params.items())  # SGD stepped


@pytest.mark.slow
def test_torchvision_bypass_computes_what_its_forward_does():
    """The bypass path (no transform) gives the detections of model.eval()(images) with an identity transform."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD

    class Backbone(torch.nn.Module):  # two small feature maps: 8 x 8 and 4 x 4
        def __init__(self):
            super().__init__()
            self.first = torch.nn.Conv2d(3, 8, 3, stride=8, padding=1)
            self.second = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1)

        def forward(self, x):
            a = torch.relu(self.first(x))
            return {"0": a, "1": torch.relu(self.second(a))}

    torch.manual_seed(0)
    network = SSD(Backbone(), DefaultBoxGenerator([[2], [2]]), (64, 64), num_classes=4,
                  image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0])  # identity normalisation
    rng = np.random.default_rng(0)
    images = rng.standard_normal((2, 3, 64, 64), dtype=np.float32)
    targets = bench_gpu.random_targets(2, rng, num_classes=4)
    outputs = bench_gpu.random_outputs(2, 8 * 8 * 4 + 4 * 4 * 4, 4, rng)
    bypass = bench_gpu.torchvision_calls(torch, network, images, targets, "bypass", outputs)
    full = bench_gpu.torchvision_calls(torch, network, images, targets, "full")
    for ours, theirs in zip(bypass["end2end"](), full["end2end"]()):
        assert len(ours["scores"]) > 0
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(ours[key], theirs[key])
    outputs = bypass["network"]()
    assert outputs["bbox_regression"].shape[:2] == outputs["cls_logits"].shape[:2]
    bypass["train"]()
    full["train"]()
    detections = bypass["postprocess"]()
    assert len(detections) == 2 and detections[0]["boxes"].shape[1] == 4
