"""The shared timing rules: best of N, each call after an untimed one, frameworks in the same rounds."""

import pytest

from minissd.bench import timing


def test_best_of_paired_interleaves_and_warms_up_each_call():
    calls = []
    results = timing.best_of_paired({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeat=3,
                                    synchronize={"a": lambda: calls.append("sync-a")})
    # per round: a untimed, sync, a timed, sync, then b untimed and timed (no sync for b)
    assert calls[:6] == ["a", "sync-a", "a", "sync-a", "b", "b"] and len(calls) == 3 * 6
    assert set(results) == {"a", "b"} and all(len(t.seconds) == 3 for t in results.values())
    assert results["a"].best == min(results["a"].seconds) <= results["a"].median
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        timing.best_of_paired({"a": lambda: None}, repeat=0)


def test_best_seconds_and_median_seconds():
    calls = []
    assert timing.best_seconds(lambda: calls.append(1), repeat=4) >= 0 and len(calls) == 8
    calls.clear()
    assert timing.best_seconds(lambda: calls.append(1), repeat=2, clock=timing.time.process_time) >= 0
    assert len(calls) == 4
    calls, syncs = [], []
    seconds = timing.median_seconds(lambda: calls.append(1), repeat=3, warmup=2, synchronize=lambda: syncs.append(1))
    assert len(calls) == 5 and len(syncs) == 4 and seconds >= 0


def test_machine_lines_name_the_cpu_the_blas_and_the_device():
    lines = timing.machine_description("cpu")
    assert lines[0].startswith(f"machine: {timing.cpu_model()}, ") and "logical cores" in lines[0]
    assert lines[1].startswith("numpy ") and "threads" in lines[1] and lines[2] == "device: cpu"
    assert "threads)" in timing.blas_description() or timing.blas_description() == "BLAS unknown"
