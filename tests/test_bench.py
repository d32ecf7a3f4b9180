"""The benchmark script runs and reports what it says (no speed is asserted here)."""

import numpy as np
import pytest

from minissd import bench, models


@pytest.fixture
def small_tiny(monkeypatch):
    monkeypatch.setitem(bench.MODELS, "tiny", lambda: models.tiny_ssd(21, widths=(4,) * 8))


def test_rows_per_model_batch_and_pass(small_tiny):
    lines = []
    rows = bench.run(("tiny",), batch_sizes=(1, 2), repeat=1, use_torch=False, log=lines.append)
    assert [(r["batch"], r["pass"]) for r in rows] == [(1, "forward"), (2, "forward"), (2, "fwd+bwd")]
    assert all(r["minissd_ms"] > 0 and r["torch_ms"] is None and r["ratio"] is None for r in rows)
    assert lines[0] == bench.HEADER
    # BatchNorm in train mode cannot take one image on a 1 x 1 map: said, not crashed
    assert any("fwd+bwd  skipped" in line and "more than one value per channel" in line for line in lines)


def test_median_seconds_warms_up_first():
    calls = []
    seconds = bench.median_seconds(lambda: calls.append(1), repeat=3)
    assert len(calls) == 4 and seconds >= 0


def test_format_row_and_machine_lines():
    row = {"model": "ssd300", "batch": 4, "pass": "forward", "minissd_ms": 812.25, "torch_ms": 650.0, "ratio": 1.25}
    assert bench.format_row(row).split() == ["ssd300", "4", "forward", "812.2", "650.0", "1.25"]
    lines = bench.machine_description("cpu")
    assert lines[0].startswith("machine: ") and f"numpy {np.__version__}" in lines[1] and lines[2] == "device: cpu"


def test_main_prints_the_table(small_tiny, capsys):
    bench.main(["--models", "tiny", "--batch-sizes", "2", "--repeat", "1", "--no-torch"])
    out = capsys.readouterr().out
    assert "machine: " in out and bench.HEADER in out
    assert "tiny" in out and "fwd+bwd" in out
    with pytest.raises(SystemExit):
        bench.main(["--repeat", "0"])


def test_train_step_row(small_tiny):
    rows = bench.run(("tiny",), batch_sizes=(2,), repeat=1, use_torch=False, train_step=True, log=lambda line: None)
    assert [r["pass"] for r in rows] == ["forward", "fwd+bwd", "train"]
    targets = bench.random_targets(2, np.random.default_rng(0))
    boxes, labels = targets[0]
    assert boxes.shape == (3, 4) and (boxes[:, 2:] > boxes[:, :2]).all() and boxes.max() <= 1
    assert labels.min() >= 1 and labels.max() <= 20


def test_frozen_step_row_leaves_the_model_unfrozen(small_tiny):
    rows = bench.run(("tiny",), batch_sizes=(2,), repeat=1, use_torch=False, train_step=True, frozen_step=True,
                     log=lambda line: None)
    assert [r["pass"] for r in rows] == ["forward", "fwd+bwd", "train", "frozen"]
    assert all(r["minissd_ms"] > 0 for r in rows)
