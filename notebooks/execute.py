"""Execute lesson notebooks in place, keeping their outputs, so GitHub shows every picture.

    python notebooks/execute.py                        # every notebook in this folder
    python notebooks/execute.py notebooks/04_nms.ipynb # some of them

Each notebook runs top to bottom in a fresh kernel, from its own folder, with
``MINISSD_FAST`` unset (the committed outputs are those of the full lesson;
CI runs the fast mode with nbmake and does not write back). What would make
the files change from run to run is left out: no execution timestamps, and
pictures at a modest dpi (each notebook stays well under 1 MB,
``tests/test_notebooks_committed.py`` checks). A cell that fails stops the
run with its error and leaves the notebook file untouched.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 1800  # one cell; notebook 06 trains for minutes in the full mode


def execute(path: str, timeout: int = TIMEOUT_S) -> float:
    """Run ``path`` and write it back with its outputs; returns the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    environment = dict(os.environ)
    os.environ.pop("MINISSD_FAST", None)  # the kernel inherits this process's environment
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(environment)
    seconds = time.perf_counter() - start
    for cell in notebook.cells:  # nothing that changes between identical runs
        cell.metadata.pop("execution", None)
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, path)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python notebooks/execute.py", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to execute (default: all in notebooks/)")
    parser.add_argument("--timeout", type=int, default=TIMEOUT_S, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.ipynb")))
    for path in paths:
        seconds = execute(path, args.timeout)
        size = os.path.getsize(path) / 1e6
        print(f"{os.path.basename(path)}: executed in {seconds:.0f} s, {size:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
