"""Notebooks are committed executed and clean, and their outputs do not depend on thread count.

`pytest --nbval` (part of the main run) re-executes every notebook with the test run's threads
(2 in `make test`); this test repeats it with a single thread.
"""

from __future__ import annotations

import json

import pytest

from attnlab.setup_cell import CELL_ID
from conftest import notebooks, run, tool

NOTEBOOKS = notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_is_committed_executed_without_errors(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()
            and not (c.get("id") == CELL_ID and c["execution_count"] is None)]
    # (the Colab setup cell is a no-op here: it may be committed unexecuted)
    counts = [c["execution_count"] for c in code]
    assert all(counts), f"{path.name}: cells without outputs; run it top to bottom and commit"
    assert counts == sorted(counts) and counts[0] == 1, (
        f"{path.name}: execution counts {counts} are not in order; restart and run all")
    for c in code:
        for o in c["outputs"]:
            assert o["output_type"] != "error", f"{path.name}: a cell has an error output"
            assert o.get("name") != "stderr", f"{path.name}: a cell writes to stderr"


def test_outputs_reproduce_with_one_thread():
    if not NOTEBOOKS:
        pytest.skip("no notebooks yet")
    # one thread per notebook, two notebooks at a time (pytest-xdist; loadfile keeps the cells
    # of a notebook together, in one kernel): the 2 cores stay busy
    proc = run([tool("python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                "-n", "2", "--dist", "loadfile", "--nbval", "--nbval-current-env",
                *map(str, NOTEBOOKS)],
               env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
               timeout=2400)  # against a hang only: every notebook, on 2 busy cores
    assert proc.returncode == 0, f"nbval with 1 thread:\n{proc.stdout[-8000:]}"
