"""Generate a set's student notebook, solution notebook and tests bundle from one source.

The source is a notebook whose metadata names the set
(``"attnlab": {"set": "01_softmax", "title": ..., "practises": ...}``) and
whose cells are of three kinds:

- ordinary cells, copied to both notebooks;
- solution cells, holding ``# BEGIN SOLUTION`` ... ``# END SOLUTION``: the
  solution keeps the code between the markers, the student version gets
  ``...`` at the same indentation; a single line ``answer = 5  # SOLUTION``
  becomes ``answer = ...``;
- test cells, starting with ``# TESTS``: trusted code that declares the
  questions (:func:`attnlab.grading.spec.question`); they go into the bundle's
  ``tests.py`` and into neither notebook.

Cell ids are kept, so the grader can tell when a student deletes a cell.

(otter-grader's ``otter assign`` uses a similar source format. Its tests,
though, run in the same process as the student's code, which a submission can
tamper with; attnlab's grader keeps the comparison in a process the student's
code never touches, so it needs tests as data-producing probes, not doctests.)
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from attnlab.grading.spec import collect, load_set
from attnlab.setup_cell import CELL_ID as SETUP_CELL_ID
from attnlab.setup_cell import add_setup_cell

__all__ = ["build_set", "split_source", "SourceError"]

_BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")
_LINE = re.compile(r"^(\s*)(.*?)\s*# SOLUTION\s*$")  # `x = 5  # SOLUTION`
_TARGET = re.compile(r"^(return\b|[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*=(?!=))")
_TESTS_HEADER = '''"""Tests of the exercise set {name!r}, generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

'''


class SourceError(ValueError):
    """A malformed source notebook."""


def _source(cell: dict[str, Any]) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else str(s)


def _strip_solution(text: str, keep: bool, where: str) -> str:
    out: list[str] = []
    inside = False
    for line in text.split("\n"):
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if inside:
                raise SourceError(f"{where}: BEGIN SOLUTION inside another solution")
            inside = True
            if not keep:
                out.append(f"{begin.group(1)}...")
        elif end:
            if not inside:
                raise SourceError(f"{where}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif (single := _LINE.match(line)) and not inside:
            indent, statement = single.group(1), single.group(2)
            if keep:
                out.append(indent + statement)
            else:  # keep `return` or `name =`, blank out the rest
                target = _TARGET.match(statement)
                out.append(indent + (f"{target.group(0)} ..." if target else "..."))
        elif not inside or keep:
            out.append(line)
    if inside:
        raise SourceError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return "\n".join(out)


def split_source(source: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str, dict]:
    """The student notebook, the solution notebook, the tests code and the set's metadata."""
    meta = source.get("metadata", {}).get("attnlab")
    if not isinstance(meta, dict) or "set" not in meta:
        raise SourceError('the source notebook needs metadata "attnlab": {"set": ...}')
    student, solution = copy.deepcopy(source), copy.deepcopy(source)
    student["cells"], solution["cells"] = [], []
    tests: list[str] = []
    seen_ids: set[str] = set()
    for i, cell in enumerate(source["cells"]):
        text = _source(cell)
        where = f"cell {i + 1}"
        cid = cell.get("id")
        if not cid or cid in seen_ids:
            raise SourceError(f"{where}: every cell needs a unique id (nbformat 4.5)")
        seen_ids.add(cid)
        if cell["cell_type"] == "code" and text.lstrip().startswith("# TESTS"):
            tests.append(f"# --- {where} ({cid})\n{text}\n")
            continue
        for target, keep in ((student, False), (solution, True)):
            new = copy.deepcopy(cell)
            new["source"] = _strip_solution(text, keep, where) if cell["cell_type"] == "code" \
                else text
            if new["cell_type"] == "code":
                new["outputs"], new["execution_count"] = [], None
            target["cells"].append(new)
    tests_code = _TESTS_HEADER.format(name=meta["set"]) + "\n".join(tests)
    return student, solution, tests_code, meta


def build_set(source_path: str | Path, *, exercises: str | Path, solutions: str | Path,
              bundles: str | Path) -> dict[str, Any]:
    """Write ``exercises/NAME.ipynb``, ``solutions/NAME.ipynb`` and ``bundles/NAME/``.

    The solution notebook is written without outputs; execute it afterwards
    (``make exercises`` does). Returns the set's metadata as written to
    ``set.json``.
    """
    source_path = Path(source_path)
    try:
        source = json.loads(source_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SourceError(f"{source_path} is not valid notebook JSON: {err}") from None
    student, solution, tests_code, meta = split_source(source)
    for nb in (student, solution):
        add_setup_cell(nb)  # Colab: installs attnlab where it is missing
    name = meta["set"]
    if source_path.stem != name:
        raise SourceError(f"{source_path}: the file name must be the set's name {name!r}")
    bundle = Path(bundles) / name
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "tests.py").write_text(tests_code, encoding="utf-8")
    code_cells = [c["id"] for c in student["cells"]
                  if c["cell_type"] == "code" and c["id"] != SETUP_CELL_ID]
    set_meta = {"name": name, "title": meta.get("title", name),
                "practises": meta.get("practises", ""), "questions": [], "cells": code_cells}
    questions = collect(tests_code, str(bundle / "tests.py"))
    set_meta["questions"] = [q.name for q in questions]
    set_meta["points"] = sum(q.points for q in questions)
    if not set_meta["questions"]:
        raise SourceError(f"{source_path}: no # TESTS cell declares a question")
    (bundle / "set.json").write_text(json.dumps(set_meta, indent=1) + "\n")
    load_set(bundle)  # round trip: the bundle loads
    for folder, nb in ((exercises, student), (solutions, solution)):
        Path(folder).mkdir(parents=True, exist_ok=True)
        Path(folder, f"{name}.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False)
                                                 + "\n", encoding="utf-8")
    return set_meta
