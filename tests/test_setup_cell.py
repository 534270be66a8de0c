"""Every notebook starts with the setup cell that makes "Open in Colab" work, and it is a
no-op wherever attnlab is installed (so nbval stays green)."""

from __future__ import annotations

import json
import sys

import pytest

from attnlab.setup_cell import CELL_ID, REPOSITORY, add_setup_cell, has_setup_cell
from conftest import ROOT, notebooks, run

PROBE = r"""
import contextlib, io, json, sys
from IPython.core.interactiveshell import InteractiveShell
from attnlab.setup_cell import SOURCE
shell = InteractiveShell.instance(colors="nocolor")
calls = []
shell.register_magic_function(lambda line: calls.append(line), "line", "pip")
if sys.argv[1] == "missing":
    sys.modules["attnlab"] = None          # as in a fresh Colab runtime
out = io.StringIO()
with contextlib.redirect_stdout(out):
    result = shell.run_cell(SOURCE, store_history=False)
print(json.dumps({"ok": result.success, "out": out.getvalue(), "pip": calls}))
"""


def probe(case: str) -> dict:
    proc = run([sys.executable, "-c", PROBE, case])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def student_notebooks():
    return sorted((ROOT / "exercises").glob("*.ipynb"))


@pytest.mark.parametrize("path", notebooks() + student_notebooks(),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_starts_with_the_setup_cell(path):
    nb = json.loads(path.read_text())
    assert has_setup_cell(nb), f"{path.name}: run python -m attnlab.setup_cell {path}"
    cell = next(c for c in nb["cells"] if c["id"] == CELL_ID)
    assert cell["outputs"] == [] and "remove-cell" in cell["metadata"]["tags"]


def test_the_setup_cell_does_nothing_where_attnlab_is_installed():
    r = probe("installed")
    assert r == {"ok": True, "out": "", "pip": []}


def test_the_setup_cell_installs_attnlab_where_it_is_missing_and_leaves_torch_alone():
    r = probe("missing")
    assert r["ok"] and len(r["pip"]) == 1
    (line,) = r["pip"]
    assert f"attnlab @ git+{REPOSITORY}" in line
    assert "torch" not in line and "--upgrade" not in line and "-U " not in line
    assert r["out"].strip() == f"installed attnlab from {REPOSITORY}"


def test_add_setup_cell_is_idempotent_and_replaces_an_old_one():
    nb = {"cells": [{"cell_type": "markdown", "id": "t", "metadata": {}, "source": "# T"},
                    {"cell_type": "code", "id": "c", "metadata": {}, "outputs": [],
                     "execution_count": None, "source": "x = 1"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    assert add_setup_cell(nb) and not add_setup_cell(nb)
    assert [c["id"] for c in nb["cells"]] == ["t", CELL_ID, "c"]
    nb["cells"][1]["source"] = ["# an old version\n"]
    assert not has_setup_cell(nb) and add_setup_cell(nb)
    assert [c["id"] for c in nb["cells"]] == ["t", CELL_ID, "c"] and has_setup_cell(nb)
