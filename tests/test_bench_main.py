"""python -m minissd.bench: one entry point, one subcommand per subject; the small ones run here quickly."""

import subprocess
import sys

import pytest

from minissd.bench import SUBCOMMANDS, ops
from minissd.bench.__main__ import main, usage


@pytest.fixture(autouse=True)
def keep_blas_threads():
    """The commands set the BLAS's threads for the process: give the other tests theirs back."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=None):
        yield


def test_usage_lists_every_subcommand(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert out == usage() + "\n"
    for name in SUBCOMMANDS:
        assert f"  {name} " in out
    with pytest.raises(SystemExit) as error:
        main(["fly"])
    assert error.value.code == 2 and "unknown subcommand 'fly'" in capsys.readouterr().err


def test_options_alone_run_the_network_benchmark(monkeypatch):
    seen = []
    monkeypatch.setattr("minissd.bench.network.main", lambda argv: seen.append(argv))
    main(["--models", "tiny"])
    main([])
    main(["network", "--repeat", "2"])
    assert seen == [["--models", "tiny"], [], ["--repeat", "2"]]


def test_the_module_runs_as_a_command():
    done = subprocess.run([sys.executable, "-m", "minissd.bench", "--help"], capture_output=True, text=True, check=True)
    assert "subcommands:" in done.stdout


def test_ops_rows_have_the_reference_beside_the_fast_path(capsys, monkeypatch):
    monkeypatch.setitem(ops.CONV_LAYERS, "tiny", {"conv": (8, 8, 16, 3, 1, 1, 1), "conv (s2)": (4, 8, 16, 3, 2, 1, 1)})
    monkeypatch.setitem(ops.POOL_LAYERS, "tiny", {"pool": (4, 16, 2, 2, 0, False)})
    rows = ops.main(["--set", "tiny", "--batch", "2", "--repeat", "1", "--no-torch", "--backward", "--threads", "1"])
    assert [r["name"] for r in rows] == ["conv", "conv (s2)", "pool"]
    assert rows[0]["im2col_ms"] > 0 and rows[2]["im2col_ms"] is None and all(r["torch_ms"] is None for r in rows)
    out = capsys.readouterr().out
    assert out.startswith("machine: ") and "tiny layers, batch 2, forward + backward" in out


def test_data_and_evaluate_benchmarks_run(capsys):
    main(["data", "--images", "32", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "ShapesDataset 128 x 128, 32 images" in out and "matching" in out
    main(["evaluate", "--images", "5", "--detections", "10"])
    out = capsys.readouterr().out
    assert "5 images, 50 detections" in out and "voc_ap" in out and "coco_ap" in out
