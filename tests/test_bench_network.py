"""The whole-network benchmark runs and reports what it says (no speed is asserted here)."""

import numpy as np
import pytest

from minissd import models
from minissd.bench import network

try:
    import torch
    import torchvision  # noqa: F401
except ImportError:  # optional: the paired rows need it
    torch = None


@pytest.fixture(autouse=True)
def keep_blas_threads():
    """The commands set the BLAS's threads for the process: give the other tests theirs back."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=None):
        yield


@pytest.fixture
def small_tiny(monkeypatch):
    monkeypatch.setitem(network.MODELS, "tiny", lambda: models.tiny_ssd(21, widths=(4,) * 8))


def test_rows_per_model_batch_and_pass(small_tiny):
    lines = []
    rows = network.run(("tiny",), batch_sizes=(1, 2), repeat=1, use_torch=False, log=lines.append)
    assert [(r["batch"], r["pass"]) for r in rows] == [(1, "forward"), (2, "forward"), (2, "fwd+bwd")]
    assert all(r["minissd_ms"] > 0 and r["torch_ms"] is None and r["ratio"] is None for r in rows)
    assert all(r["minissd_median_ms"] >= r["minissd_ms"] for r in rows)  # best <= median
    assert lines[0] == network.HEADER
    # BatchNorm in train mode cannot take one image on a 1 x 1 map: said, not crashed
    assert any("fwd+bwd  skipped" in line and "more than one value per channel" in line for line in lines)


def test_format_row():
    row = {"model": "ssd300", "batch": 4, "pass": "forward", "minissd_ms": 812.25, "minissd_median_ms": 830.0,
           "torch_ms": 650.0, "ratio": 1.25}
    assert network.format_row(row).split() == ["ssd300", "4", "forward", "812.2", "650.0", "1.25", "830.0"]


def test_main_prints_the_machine_and_the_table(small_tiny, capsys):
    network.main(["--models", "tiny", "--batch-sizes", "2", "--repeat", "1", "--no-torch", "--threads", "1"])
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "numpy " in out and network.HEADER in out
    assert "tiny" in out and "fwd+bwd" in out and "best of 1 rounds" in out
    for bad in (["--repeat", "0"], ["--threads", "0"], ["--batch-sizes", "0"]):
        with pytest.raises(SystemExit):
            network.main(bad + ["--no-torch"])


def test_train_and_frozen_rows_leave_the_model_unfrozen(small_tiny, monkeypatch):
    built = []

    def build():
        built.append(models.tiny_ssd(21, widths=(4,) * 8))
        return built[-1]

    monkeypatch.setitem(network.MODELS, "tiny", build)
    rows = network.run(("tiny",), batch_sizes=(2,), repeat=1, use_torch=False, train_step=True, frozen_step=True,
                       log=lambda line: None)
    assert [r["pass"] for r in rows] == ["forward", "fwd+bwd", "train", "frozen"]
    assert all(r["minissd_ms"] > 0 for r in rows)
    assert built[0].frozen == frozenset()
    targets = network.random_targets(2, np.random.default_rng(0))
    boxes, labels = targets[0]
    assert boxes.shape == (3, 4) and (boxes[:, 2:] > boxes[:, :2]).all() and boxes.max() <= 1
    assert labels.min() >= 1 and labels.max() <= 20


@pytest.mark.slow
@pytest.mark.skipif(torch is None, reason="torch / torchvision are not installed (optional comparison)")
def test_same_weights_give_the_same_outputs():
    net = network.torchvision_ssd300(torch, "cpu")
    model = network.same_weights_model(net, "cpu")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((1, 3, 300, 300), dtype=np.float32)
    ours = network.minissd_calls(model, images, network.random_targets(1, rng), rng)
    theirs = network.torchvision_calls(torch, net, images, ours["gradients"], network.random_targets(1, rng), "cpu")
    assert network.output_difference(torch, model, theirs, images) < 1e-4
