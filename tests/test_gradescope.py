"""Grading on Gradescope: the autograder zip, run in a throw-away root laid out like
Gradescope's (/autograder/source, /submission, /results), and its results.json checked
against the format of Gradescope's documentation (tests/data/gradescope-results.schema.json)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest

from attnlab.grading.grade import bundled_tests
from attnlab.grading.spec import load_set
from conftest import ROOT, run, tool

SCHEMA = json.loads((ROOT / "tests" / "data" / "gradescope-results.schema.json").read_text())
SET = "01_softmax"


@pytest.fixture(scope="module")
def autograder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zip") / "autograder.zip"
    proc = run([tool("attnlab"), "gradescope", SET, "-o", str(out)])
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_zip_has_what_gradescope_expects_and_is_small(autograder):
    z = zipfile.ZipFile(autograder)
    names = set(z.namelist())
    assert {"setup.sh", "run_autograder", f"tests/{SET}/set.json",
            f"tests/{SET}/tests.py"} <= names
    assert autograder.stat().st_size < 1024 * 1024, "it installs torch, it does not carry it"
    for script in ("setup.sh", "run_autograder"):
        mode = z.getinfo(script).external_attr >> 16
        assert mode & stat.S_IXUSR, f"{script} is not executable"
        text = z.read(script).decode()
        assert text.startswith("#!/usr/bin/env bash")
        check = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
    setup = z.read("setup.sh").decode()
    assert "torch==" in setup and "download.pytorch.org/whl/cpu" in setup
    import attnlab

    assert f"attnlab=={attnlab.__version__}" in setup


def test_a_missing_set_is_a_usage_error(tmp_path):
    proc = run([tool("attnlab"), "gradescope", "99_nothing", "-o", str(tmp_path / "a.zip")])
    assert proc.returncode == 2 and "no tests bundle" in proc.stderr


def gradescope_root(autograder: Path, base: Path, notebook: dict | None) -> Path:
    root = base / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    zipfile.ZipFile(autograder).extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    if notebook is not None:
        (root / "submission" / "my_work.ipynb").write_text(json.dumps(notebook))
    return root


def run_autograder(root: Path) -> dict:
    env = {**os.environ, "ATTNLAB_AUTOGRADER_ROOT": str(root), "ATTNLAB_PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    return data


def notebook_with(cells: str | None) -> dict:
    nb = json.loads((ROOT / "solutions" / f"{SET}.ipynb").read_text())
    if cells is not None:
        nb["cells"].append({"cell_type": "code", "id": "mine", "metadata": {}, "outputs": [],
                            "execution_count": None, "source": cells})
    return nb


def test_run_autograder_grades_a_solution_a_blank_and_a_misconception(autograder, tmp_path):
    s = load_set(bundled_tests() / SET)
    message = s.questions[0].misconceptions[0].message  # no max subtracted
    wrong = s.questions[0].misconceptions[0].code
    blank = json.loads((ROOT / "exercises" / f"{SET}.ipynb").read_text())
    outcomes = {}
    for name, nb in {"solution": notebook_with(None), "blank": blank,
                     "misconception": notebook_with(wrong)}.items():
        outcomes[name] = run_autograder(gradescope_root(autograder, tmp_path / name, nb))

    sol = outcomes["solution"]
    assert sol["score"] == s.max_score
    assert abs(sum(t["score"] for t in sol["tests"]) - sol["score"]) < 0.02
    assert abs(sum(t["max_score"] for t in sol["tests"]) - s.max_score) < 0.02
    assert all(t["status"] == "passed" for t in sol["tests"])
    visibilities = {t["name"]: t["visibility"] for t in sol["tests"]}
    assert visibilities["q1 (public tests)"] == "visible"
    assert visibilities["q1 (hidden tests)"] == "after_due_date"

    assert outcomes["blank"]["score"] == 0
    assert all(t["score"] == 0 for t in outcomes["blank"]["tests"])

    mis = outcomes["misconception"]
    q1 = [t for t in mis["tests"] if t["name"].startswith("q1 ")]
    assert sum(t["score"] for t in q1) <= s.questions[0].points / 2  # the cap
    assert any(message in t["output"] for t in q1), q1
    assert mis["score"] < s.max_score


def test_a_submission_without_a_notebook_gets_a_result(autograder, tmp_path):
    data = run_autograder(gradescope_root(autograder, tmp_path, None))
    assert data["score"] == 0 and "no notebook" in data["output"]


def test_the_schema_rejects_what_gradescope_would(tmp_path):
    bad = {"score": 1, "tests": [{"name": "q1", "visibility": "sometimes"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tests": [{"name": "q1", "max_score": 1}]}, SCHEMA)
    assert shutil.which("bash")
