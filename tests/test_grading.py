"""The exercise sets and the grader: generation without drift, full marks for solutions, zero for
blank notebooks, the named misconceptions, and hostile submissions that change nothing."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from attnlab.grading.assign import build_set, split_source
from attnlab.grading.compare import reference_outputs, score_question
from attnlab.grading.grade import bundled_tests, grade, write_csv, write_json
from attnlab.grading.spec import load_set
from conftest import ROOT, run, tool

SOURCES = sorted((ROOT / "exercises" / "source").glob("*.ipynb"))
SETS = [p.stem for p in SOURCES]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_of(nb: dict) -> list[tuple[str, str, str]]:
    return [(c["id"], c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def with_cells(nb: dict, *sources: str) -> dict:
    """A copy of ``nb`` with code cells appended."""
    nb = copy.deepcopy(nb)
    for i, src in enumerate(sources):
        nb["cells"].append({"cell_type": "code", "id": f"added-{i}", "metadata": {},
                            "execution_count": None, "outputs": [], "source": src})
    return nb


def write(tmp_path: Path, name: str, nb: dict | str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(nb, dict):
        path.write_text(json.dumps(nb))
    elif isinstance(nb, bytes):
        path.write_bytes(nb)
    else:
        path.write_text(nb)
    return path


# ------------------------------------------------------------------------ generation


@pytest.mark.parametrize("source", SOURCES, ids=SETS)
def test_committed_notebooks_and_bundles_match_their_source(source, tmp_path):
    build_set(source, exercises=tmp_path / "ex", solutions=tmp_path / "sol",
              bundles=tmp_path / "bundles")
    name = source.stem
    for generated, committed in ((tmp_path / "ex" / f"{name}.ipynb",
                                  ROOT / "exercises" / f"{name}.ipynb"),
                                 (tmp_path / "sol" / f"{name}.ipynb",
                                  ROOT / "solutions" / f"{name}.ipynb")):
        assert code_of(load(generated)) == code_of(load(committed)), (
            f"{committed.relative_to(ROOT)} has drifted from {source.relative_to(ROOT)}: "
            "run `make exercises`")
    for f in ("set.json", "tests.py"):
        assert (tmp_path / "bundles" / name / f).read_text() == \
            (bundled_tests() / name / f).read_text(), f"bundle {name}/{f} drifted: make exercises"


@pytest.mark.parametrize("source", SOURCES, ids=SETS)
def test_student_notebooks_hide_solutions_and_tests(source):
    source_nb = load(source)
    student = load(ROOT / "exercises" / f"{source.stem}.ipynb")
    text = "\n".join(src for _, _, src in code_of(student))
    assert "# TESTS" not in text and "BEGIN SOLUTION" not in text and "# SOLUTION" not in text
    assert "misconception(" not in text and "..." in text
    assert all(not c.get("outputs") for c in student["cells"] if c["cell_type"] == "code")
    assert student["metadata"]["attnlab"]["set"] == source.stem
    assert len(student["cells"]) < len(source_nb["cells"])


def test_source_errors_are_clear(tmp_path):
    nb = load(SOURCES[0])
    broken = copy.deepcopy(nb)
    cell = next(c for c in broken["cells"] if "# BEGIN SOLUTION" in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace("# END SOLUTION", "")
    with pytest.raises(ValueError, match="BEGIN SOLUTION without END SOLUTION"):
        split_source(broken)
    del broken["metadata"]["attnlab"]
    with pytest.raises(ValueError, match='metadata "attnlab"'):
        split_source(broken)


# ------------------------------------------------------------------------ the scores


@pytest.fixture(scope="module")
def solution_and_blank_results():
    files = [str(ROOT / "solutions" / f"{s}.ipynb") for s in SETS] + \
            [str(ROOT / "exercises" / f"{s}.ipynb") for s in SETS]
    return {Path(r.submission).parent.name + "/" + Path(r.submission).stem: r
            for r in grade(files, jobs=2)}


@pytest.mark.parametrize("name", SETS)
def test_solutions_score_full_marks(solution_and_blank_results, name):
    r = solution_and_blank_results[f"solutions/{name}"]
    assert r.error is None and r.set == name
    assert r.score == r.max_score > 0, [q for q in r.questions if q["score"] < q["max_score"]]


@pytest.mark.parametrize("name", SETS)
def test_untouched_student_notebooks_score_zero_without_crashing(solution_and_blank_results,
                                                                 name):
    r = solution_and_blank_results[f"exercises/{name}"]
    assert r.set == name and r.score == 0 and r.error is None
    assert len(r.questions) == len(load_set(bundled_tests() / name).questions)
    assert all(q["feedback"] != "correct" for q in r.questions)


def misconception_rounds(name: str) -> list[tuple[str, dict[str, tuple[str, float]]]]:
    """Cells that plant the k-th misconception of every question, with the expected outcome.

    Planting one mistake per question in a single notebook keeps the number of graded
    notebooks small; questions are independent, so each loses exactly its own points.
    """
    s = load_set(bundled_tests() / name)
    rounds = []
    depth = max(len(q.misconceptions) for q in s.questions)
    for k in range(depth):
        cells, expected = [], {}
        for q in s.questions:
            if k >= len(q.misconceptions):
                continue
            m = q.misconceptions[k]
            if m.code is not None:
                cells.append(m.code)
                from attnlab.grading.compare import CallResult

                wrong = reference_outputs(q, m.code)
                score = score_question(q, [CallResult(value=w.value, error=w.error)
                                           for w in wrong]).score
            else:
                cells.append(f"{q.variable} = {m.value!r}")
                score = 0.0
            assert score < q.points, f"{name}/{q.name}: '{m.message}' loses no points"
            expected[q.name] = (m.message, score)
        rounds.append(("\n\n".join(cells), expected))
    return rounds


@pytest.mark.parametrize("name", SETS)
def test_each_misconception_loses_its_points_and_is_named(name, tmp_path):
    solution = load(ROOT / "solutions" / f"{name}.ipynb")
    rounds = misconception_rounds(name)
    paths = [write(tmp_path, f"{name}_wrong{k}.ipynb", with_cells(solution, cells))
             for k, (cells, _) in enumerate(rounds)]
    results = grade([str(p) for p in paths], jobs=2)
    for (_, expected), r in zip(rounds, results):
        assert r.error is None, r.error
        by_name = {q["name"]: q for q in r.questions}
        for qname, q in by_name.items():
            if qname in expected:
                message, score = expected[qname]
                assert q["score"] == score, (qname, q)
                assert q["feedback"].startswith(message), (qname, q["feedback"])
            else:
                assert q["score"] == q["max_score"], (qname, q)


def coded_misconceptions(name: str):
    """(question, misconception, its outputs on every case) for each coded misconception."""
    from attnlab.grading.compare import CallResult

    s = load_set(bundled_tests() / name)
    for q in s.questions:
        for m in q.misconceptions:
            if m.code is not None:
                wrong = reference_outputs(q, m.code)
                yield q, m, [CallResult(value=w.value, error=w.error) for w in wrong]


@pytest.mark.parametrize("name", SETS)
def test_every_misconception_is_caught_by_the_public_checks_and_capped(name):
    """What a student's check("qN") shows must already catch each coded misconception and
    name it; the grade of a submission that matches one is at most its cap (half the
    question's points unless the source says otherwise, with a reason)."""
    import torch

    torch.set_num_threads(1)
    missed, overpaid = [], []
    for q, m, got in coded_misconceptions(name):
        public = score_question(q, got[: len(q.public)], only_public=True)
        if public.feedback == "correct" or not public.feedback.startswith(m.message):
            missed.append(f"{q.name}: {m.message[:60]!r} -> {public.feedback[:60]!r}")
        full = score_question(q, got)
        if full.score > round(q.points * m.cap, 2):
            overpaid.append(f"{q.name}: {m.message[:60]!r} earns {full.score}/{q.points}")
    assert not missed, "public checks miss misconceptions:\n" + "\n".join(missed)
    assert not overpaid, "misconceptions paid over their cap:\n" + "\n".join(overpaid)


def test_a_misconception_caps_proportional_credit():
    from attnlab.grading.compare import CallResult
    from attnlab.grading.spec import case, misconception, question

    ref = "def f(x):\n    return abs(x)\n"
    wrong = "def f(x):\n    return x\n"  # right on 3 of 4 cases
    cases = [case(1.0), case(2.0), case(3.0), case(-1.0)]
    plain = question("q", 4, function="f", reference=ref, public=cases)
    named = question("q", 4, function="f", reference=ref, public=cases,
                     misconceptions=[misconception("you forgot the sign", code=wrong)])
    got = [CallResult(value=v) for v in (1.0, 2.0, 3.0, -1.0)]
    assert score_question(plain, got).score == 3.0  # proportional credit, no misconception
    r = score_question(named, got)
    assert r.score == 2.0 and r.feedback.startswith("you forgot the sign")
    lenient = question("q", 4, function="f", reference=ref, public=cases, misconceptions=[
        misconception("a slip", code=wrong, cap=0.75, reason="the sign is a detail here")])
    assert score_question(lenient, got).score == 3.0
    with pytest.raises(ValueError, match="reason"):
        misconception("no reason", code=wrong, cap=0.75)
    with pytest.raises(ValueError, match="between 0 and 1"):
        misconception("too much", code=wrong, cap=1.5, reason="x")


def test_forbidden_calls_cost_the_question_and_are_named(tmp_path, capsys):
    """Set 1 q1 asks for a softmax written by hand: calling torch's (under any alias, as a
    method, or through a helper of the student's) costs the question, in the check cell and
    in the grade; other questions may use it."""
    solution = load(ROOT / "solutions" / "01_softmax.ipynb")
    calls = {
        "module": "import torch\ndef stable_softmax(x, dim=-1):\n"
                  "    return torch.softmax(x, dim)\n",
        "alias": "import torch.nn.functional as nnf\ndef stable_softmax(x, dim=-1):\n"
                 "    return nnf.softmax(x, dim=dim)\n",
        "method": "def stable_softmax(x, dim=-1):\n    return x.softmax(dim)\n",
        "helper": "from torch import softmax as sm\ndef _mine(x, d):\n    return sm(x, d)\n"
                  "def stable_softmax(x, dim=-1):\n    return _mine(x, dim)\n",
    }
    paths = [write(tmp_path, f"01_softmax_{k}.ipynb", with_cells(solution, code))
             for k, code in calls.items()]
    paths.append(write(tmp_path, "01_softmax_honest.ipynb", solution))
    *cheats, honest = grade([str(p) for p in paths], jobs=2)
    assert honest.score == honest.max_score
    for kind, r in zip(calls, cheats):
        q1 = r.questions[0]
        assert q1["score"] == 0 and "asks you not to use" in q1["feedback"], (kind, q1)
        assert "softmax" in q1["feedback"]
        assert r.score == r.max_score - 2, (kind, r.questions)  # q4 uses torch.softmax: fine
    import importlib.util

    module = tmp_path / "student_notebook.py"  # its source is readable, as a notebook cell's is
    module.write_text(calls["alias"] + "from attnlab.grading import checker\n"
                      "check = checker('01_softmax')\ncheck('q1')\n")
    spec = importlib.util.spec_from_file_location("student_notebook", module)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    out = capsys.readouterr().out
    assert "q1: not yet" in out and "torch.nn.functional.softmax" in out


def test_edited_misconception_fails_loudly_when_the_reference_changed():
    from attnlab.grading.spec import edited

    assert edited("a = 1\nb = 2\n", ("a = 1", "a = 3"), ("b", "c")) == "a = 3\nc = 2\n"
    with pytest.raises(ValueError, match="'x = 1' is not in the code"):
        edited("a = 1\n", ("x = 1", "x = 2"))


def test_trusted_code_runs_for_one_submission_at_a_time(tmp_path, monkeypatch):
    """Models are built after torch.manual_seed: two grading threads seeding the one
    global generator at once would build other weights than the child did (and a
    misconception would then no longer be recognised)."""
    import threading
    import time

    import attnlab.grading.grade as grading

    lock, active, peak = threading.Lock(), [0], [0]
    real = grading.score_question

    def watched(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(grading, "score_question", watched)
    solution = load(ROOT / "solutions" / "01_softmax.ipynb")
    paths = [write(tmp_path, f"copy{k}.ipynb", solution) for k in range(4)]
    results = grade([str(p) for p in paths], jobs=4)
    assert [r.score for r in results] == [r.max_score for r in results]
    assert peak[0] == 1


# ------------------------------------------------------------------- hostile submissions


SOFTMAX_WRONG = "def stable_softmax(x, dim=-1):\n    return x * 0\n"

TAMPERING = {
    "redefines_check": "check = lambda name: print('all correct!')\n" + SOFTMAX_WRONG,
    "patches_comparisons": (
        "import numpy, torch, math\n"
        "numpy.allclose = lambda *a, **k: True\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
        "torch.allclose = lambda *a, **k: True\n"
        "math.isclose = lambda *a, **k: True\n"
        "import attnlab.grading.compare as c\n"
        "c.differs = lambda *a, **k: None\n" + SOFTMAX_WRONG),
    "patches_builtins": ("import builtins\nbuiltins.isinstance = lambda *a: True\n"
                         + SOFTMAX_WRONG),
    "exits_politely": SOFTMAX_WRONG + "import sys\nsys.exit(0)\n",
    "raises_keyboardinterrupt": SOFTMAX_WRONG + "raise KeyboardInterrupt\n",
}


def test_tampering_changes_no_score_and_spares_the_batch(tmp_path):
    solution = load(ROOT / "solutions" / "01_softmax.ipynb")
    paths = [write(tmp_path, f"01_softmax_{name}.ipynb", with_cells(solution, code))
             for name, code in TAMPERING.items()]
    paths.append(write(tmp_path, "01_softmax_honest.ipynb", solution))
    results = grade([str(p) for p in paths], jobs=2)
    *hostile, honest = results
    assert honest.score == honest.max_score and honest.error is None
    for name, r in zip(TAMPERING, hostile):
        q1 = r.questions[0]
        assert q1["score"] == 0.0, (name, q1)
        assert r.score == r.max_score - 2, (name, r.score, r.questions)


def test_hard_exits_hangs_garbage_and_deleted_cells_get_rows(tmp_path):
    solution = load(ROOT / "solutions" / "01_softmax.ipynb")
    deleted = copy.deepcopy(solution)
    deleted["cells"] = [c for c in deleted["cells"]
                        if "def masked_softmax" not in "".join(c["source"])]
    files = [
        write(tmp_path, "01_softmax_os_exit.ipynb",
              with_cells(solution, "import os\nos._exit(0)")),
        write(tmp_path, "01_softmax_loop.ipynb", with_cells(solution, "while True:\n    pass")),
        write(tmp_path, "01_softmax_garbage.ipynb", os.urandom(2000)),
        write(tmp_path, "01_softmax_text.ipynb", "my answers are in my head"),
        write(tmp_path, "01_softmax_deleted.ipynb", deleted),
        write(tmp_path, "notes.ipynb", {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                        "cells": []}),
        write(tmp_path, "01_softmax_honest.ipynb", solution),
    ]
    results = grade([str(f) for f in files], timeout=25, jobs=2)
    assert [Path(r.submission).name for r in results] == [f.name for f in files]
    os_exit, loop, garbage, text, gone, unknown, honest = results
    assert os_exit.score == 0 and "ended the grading process" in os_exit.error
    # the hanging cell is stopped (after half the time limit): the answers before it count
    assert loop.score == loop.max_score and "Timeout" in loop.error and "cell" in loop.error
    assert garbage.score == 0 and "not a Jupyter notebook" in garbage.error
    assert text.score == 0 and "not a Jupyter notebook" in text.error
    assert "deleted" in gone.error and gone.score == gone.max_score - 2
    assert unknown.set is None and "unknown exercise set" in unknown.error
    assert honest.score == honest.max_score and honest.error is None


def test_submissions_cannot_read_or_write_the_graders_files(tmp_path):
    tests_dir = tmp_path / "course-tests"
    shutil.copytree(bundled_tests(), tests_dir)
    os.chmod(tests_dir, 0o700)
    tests_py = tests_dir / "01_softmax" / "tests.py"
    before = hashlib.sha256(tests_py.read_bytes()).hexdigest()
    solution = load(ROOT / "solutions" / "01_softmax.ipynb")
    attack = with_cells(solution, f"""
try:
    open({str(tests_py)!r}).read()
    q3_largest_position = 5
except OSError:
    q3_largest_position = 3   # could not read the hidden tests
for target in ({str(tests_py)!r}, {str(ROOT / 'attnlab' / 'grading' / 'compare.py')!r}):
    try:
        with open(target, 'a') as f:
            f.write('\\n# tampered\\n')
    except OSError:
        pass
""")
    results = grade([str(write(tmp_path, "01_softmax_attack.ipynb", attack)),
                     str(write(tmp_path, "01_softmax_after.ipynb", solution))],
                    tests=tests_dir, jobs=1)
    assert results[0].questions[2]["score"] == 0  # the read failed
    assert hashlib.sha256(tests_py.read_bytes()).hexdigest() == before
    assert "# tampered" not in (ROOT / "attnlab" / "grading" / "compare.py").read_text()
    assert results[1].score == results[1].max_score


def test_submissions_have_no_network(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        solution = load(ROOT / "solutions" / "01_softmax.ipynb")
        probe = with_cells(solution, f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    q3_largest_position = 5
except OSError:
    q3_largest_position = 3   # no network
""")
        (r,) = grade([str(write(tmp_path, "01_softmax_net.ipynb", probe))])
        assert r.questions[2]["score"] == 0
    finally:
        server.close()


# ------------------------------------------------------------------- the command line


def test_cli_writes_json_csv_and_a_table(tmp_path):
    sol = ROOT / "solutions" / "01_softmax.ipynb"
    blank = ROOT / "exercises" / "01_softmax.ipynb"
    junk = write(tmp_path, "junk.ipynb", b"\x00\x01")
    proc = run([tool("attnlab"), "grade", str(sol), str(blank), str(junk), "--json",
                str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")], timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "10 / 10" in proc.stdout and "not a Jupyter notebook" in proc.stdout
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [set(r) for r in rows] == [{"submission", "set", "score", "max_score", "questions",
                                       "error", "notebook_errors"}] * 3
    assert rows[0]["submission"] == str(sol) and rows[0]["score"] == 10
    assert set(rows[0]["questions"][0]) == {"name", "score", "max_score", "feedback"}
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == "submission,set,q1,q2,q3,q4,q5,q6,score,max_score,error,feedback"
    with open(tmp_path / "r.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 4


def test_cli_usage_errors_exit_nonzero(tmp_path):
    assert run([tool("attnlab"), "grade", str(tmp_path / "missing.ipynb")]).returncode == 2
    assert run([tool("attnlab"), "grade"]).returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run([tool("attnlab"), "grade", str(ROOT / "solutions"), "--tests", str(empty)])
    assert proc.returncode == 2 and "no tests bundles" in proc.stderr


def test_json_and_csv_writers_handle_error_rows(tmp_path):
    results = grade([str(write(tmp_path, "x.ipynb", "{}"))])
    write_json(results, tmp_path / "r.json")
    write_csv(results, tmp_path / "r.csv")
    assert json.loads((tmp_path / "r.json").read_text())[0]["error"]
    assert "not a Jupyter notebook" in (tmp_path / "r.csv").read_text()
