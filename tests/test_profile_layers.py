"""The per-layer profiler: every layer is timed and the model is left unwrapped."""

from minissd import models
from minissd.profile_layers import main, profile_step


def test_every_layer_is_timed_and_restored():
    model = models.tiny_ssd(3, widths=(2,) * 8)
    forward_before = model.heads[0].forward
    table, per_image = profile_step(model, batch_size=2, repeats=1)
    layer_names = [name for stage in model.stages for name in stage.layers] + [f"head{k}" for k in range(5)]
    assert {f"{n}.forward" for n in layer_names} | {f"{n}.backward" for n in layer_names} == set(table)
    assert per_image > 0 and all(seconds >= 0 for seconds in table.values())
    assert model.heads[0].forward == forward_before


def test_command_prints_a_table(capsys):
    main(["--model", "tiny", "--batch-size", "2", "--top", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert "ms per image" in lines[0] and len(lines) == 4
