"""Every command of docs/own_data.md runs, on made-up data laid out as the real thing, and prints what the
page shows.

The commands are read from the page's ``console`` blocks (lines starting with ``$ minissd``), so the page
cannot drift from the program. Long runs are shortened the same way every time: ``train`` gets
``--iterations 2 --batch-size 2`` (the batch size added where the page leaves the default 32), ``--milestones 1``, ``--warmup 0``; ``--device gpu`` runs on the CPU; a
``.pth`` becomes an ``.npz`` where PyTorch is not installed. Each output line the page shows must appear in
the real output, except the lines that depend on timing or on the length of the run (progress bars,
durations, mAP and AP values, detection counts).
"""

import os
import re
import shlex

import pytest

from minissd.cli import main

from . import real_layouts

PAGE = os.path.join(os.path.dirname(__file__), "..", "docs", "own_data.md")
VOLATILE = re.compile(r"(train: |done: |validation mAP|images/s|\d+ detections|^\S+\s+(\d\.\d{4}|-)\s*$|^\.\.\.$|"
                      r"^mAP |^AP)")


def page_commands():
    """[(argv, [shown output lines])] of the page, in order."""
    text = open(PAGE, encoding="utf-8").read()
    commands = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ minissd "):
                commands.append((shlex.split(line[len("$ minissd "):]), []))
            elif commands and line.strip():
                commands[-1][1].append(line)
    return commands


def shortened(argv):
    """The page's command with the long run made short and the GPU replaced by the CPU."""
    out, skip = [], 0
    for position, token in enumerate(argv):
        if skip:
            skip -= 1
            continue
        if token == "--milestones":
            out += ["--milestones", "1"]
            while position + 1 + skip < len(argv) and argv[position + 1 + skip].isdigit():
                skip += 1
            continue
        if argv[0] == "train" and token in ("--iterations", "--batch-size", "--warmup"):
            out += [token, {"--iterations": "2", "--batch-size": "2", "--warmup": "0"}[token]]
            skip = 1
            continue
        if token == "gpu" and out and out[-1] == "--device":
            token = "cpu"
        if token.endswith(".pth") and not real_layouts.HAS_TORCH:
            token = token[:-4] + ".npz"
        out.append(token)
    if argv[0] == "train" and "--batch-size" not in argv:
        out += ["--batch-size", "2"]
    if argv[0] in ("train", "eval"):
        out.append("--no-progress")
    return out


@pytest.fixture(scope="module")
def workplace(tmp_path_factory):
    """The files the page names, in a fresh folder that is the current directory of the commands."""
    root = tmp_path_factory.mktemp("own_data_page")
    real_layouts.voc_folder(root, name="my_labels", names=("cat", "dog"), count=24, test=6)
    real_layouts.photos(root)
    real_layouts.coco_folder(root)
    real_layouts.voc_devkit(root)
    real_layouts.save_state_dict(real_layouts.torchvision_ssd300_state(91), str(root / "ssd300_vgg16_coco-b556d3b4"))
    real_layouts.save_state_dict(real_layouts.torchvision_vgg16_state(), str(root / "vgg16-397923af"))
    return root


def test_the_page_has_its_three_paths():
    names = [argv[0] for argv, _ in page_commands()]
    assert names.count("train") == 3 and names.count("convert") == 2 and "detect" in names and names.count("eval") >= 3


def test_every_command_of_the_page_runs_and_prints_what_it_shows(workplace, capsys, monkeypatch):
    monkeypatch.chdir(workplace)
    for argv, shown in page_commands():
        command = shortened(argv)
        code = main(command)
        captured = capsys.readouterr()
        assert code == 0, f"minissd {' '.join(command)}\n{captured.err}"
        printed = captured.out + captured.err
        for line in shown:
            if not real_layouts.HAS_TORCH:
                line = line.replace(".pth", ".npz")
            if not VOLATILE.search(line):
                assert line in printed, f"{' '.join(argv)}: the page shows\n{line}\nbut the command printed\n{printed}"
    assert os.path.exists("runs/mine/model.npz") and os.path.exists("found/detections.json")
    assert os.path.exists("results.json") and os.path.exists("runs/ssd300-voc0712/model.npz")
