"""The per-layer profiler: every layer is timed and the model is left unwrapped."""

import pytest
from threadpoolctl import threadpool_limits

from minissd import models
from minissd.bench.layers import main, profile_step


@pytest.fixture(autouse=True)
def keep_blas_threads():
    """The command sets the BLAS's threads for the process: give the other tests theirs back."""
    with threadpool_limits(limits=None):
        yield


def test_every_layer_is_timed_and_restored():
    model = models.tiny_ssd(3, widths=(2,) * 8)
    forward_before = model.heads[0].forward
    table, per_image = profile_step(model, batch_size=2, repeats=1)
    layer_names = [name for stage in model.stages for name in stage.layers] + [f"head{k}" for k in range(5)]
    assert {f"{n}.forward" for n in layer_names} | {f"{n}.backward" for n in layer_names} == set(table)
    assert per_image > 0 and all(seconds >= 0 for seconds in table.values())
    assert model.heads[0].forward == forward_before
    forward_only, _ = profile_step(model, batch_size=2, repeats=1, backward=False)
    assert {f"{n}.forward" for n in layer_names} == set(forward_only) and not model.training


def test_command_prints_the_machine_and_a_table(capsys):
    main(["--model", "tiny", "--batch-size", "2", "--top", "3", "--repeat", "1", "--threads", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("machine: ") and "minissd: BLAS 1 threads" in lines[3]
    assert "ms per image" in lines[4] and len(lines) == 8 and lines[-1].endswith("%")
