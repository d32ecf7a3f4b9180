"""The before / after benchmark: trees timed in alternation, each in its own process (no speed asserted)."""

import io
import os

import pytest

from minissd import models
from minissd.bench import network, trees

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def keep_blas_threads():
    """serve() sets the BLAS's threads for the process: give the other tests theirs back."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=None):
        yield


def test_serve_answers_one_timing_per_request(monkeypatch):
    monkeypatch.setitem(network.MODELS, "tiny", lambda: models.tiny_ssd(21, widths=(4,) * 8))
    requests = io.StringIO("train\nforward\nnot-a-pass\nfwd+bwd\n")
    answers = io.StringIO()
    trees.serve("tiny", 2, 1, True, requests, answers)
    lines = answers.getvalue().splitlines()
    assert lines[0] == trees.READY and len(lines) == 5
    assert all(float(value) > 0 for value in (lines[1], lines[2], lines[4]))
    assert lines[3] == "error: unknown pass 'not-a-pass'"


def test_two_trees_in_alternation_give_every_row(tmp_path):
    lines = []
    result = trees.compare([ROOT, ROOT], model="tiny", batch=2, step="forward", pairs=2, threads=1,
                           log=lines.append)
    assert [len(values) for values in result["seconds"]] == [2, 2]
    first, second = result["rows"]
    assert first["best_ms"] <= first["median_ms"] and second["best_ms"] <= second["median_ms"]
    assert second["ratio_of_bests"] > 0 and second["median_pair_ratio"] > 0
    assert lines[-1].startswith(f"{ROOT} / {ROOT}: ratio of the bests")


def test_a_folder_without_the_bench_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        trees.main([str(tmp_path), ROOT, "--pairs", "1"])
    assert stop.value.code == 1
    error = capsys.readouterr().err
    assert f"python -m minissd.bench trees: error: {tmp_path}: no minissd/bench/trees.py there" in error
    with pytest.raises(SystemExit) as usage:
        trees.main([ROOT])
    assert usage.value.code == 2
