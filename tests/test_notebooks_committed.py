"""The committed notebooks carry their outputs (GitHub shows the lessons with their pictures), stay small,
and hold no error. They are produced by ``python notebooks/execute.py``; CI re-executes every notebook
with nbmake (fast mode) without writing back."""

import glob
import os

import nbformat
import pytest

NOTEBOOKS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "notebooks", "[0-9][0-9]_*.ipynb")))
MAX_BYTES = 1_000_000


def test_there_are_lessons():
    assert len(NOTEBOOKS) >= 7


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_a_committed_notebook_shows_its_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    counts = [cell.execution_count for cell in code]
    assert None not in counts, f"{os.path.basename(path)}: cells not executed (run python notebooks/execute.py)"
    assert counts == list(range(1, len(code) + 1)), f"{os.path.basename(path)}: not executed top to bottom in one run"
    outputs = [output for cell in code for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"], f"{os.path.basename(path)} holds an error"
    pictures = [o for o in outputs if o.output_type in ("display_data", "execute_result")
                and {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert pictures, f"{os.path.basename(path)} shows no picture"
    assert os.path.getsize(path) < MAX_BYTES, f"{os.path.basename(path)} is {os.path.getsize(path)} bytes"
