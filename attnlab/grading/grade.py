"""Grade submissions: one sandboxed child each, compared here, a row per submission.

Every submission gets a row, whatever it is: a notebook scores what its
functions earn; a file that is not a notebook, a notebook of an unknown set, a
child that hangs or dies gets a row with score 0 (or what could be graded) and
a message in ``error``. The batch always goes on.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.grading.codec import decode, encode
from attnlab.grading.compare import CallResult, QuestionResult, reference_outputs, score_question
from attnlab.grading.sandbox import run_submission
from attnlab.grading.spec import ExerciseSet, load_set

__all__ = ["SubmissionResult", "grade", "find_notebooks", "bundled_tests", "write_json",
           "write_csv", "table"]


def bundled_tests() -> Path:
    """The tests bundles shipped with attnlab (one folder per set)."""
    return Path(__file__).parent / "bundles"


@dataclass
class SubmissionResult:
    """One row of the score table."""

    submission: str
    set: str | None
    score: float
    max_score: float
    questions: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def find_notebooks(paths: list[str]) -> list[Path]:
    """The files to grade: notebooks in folders (sorted), files as given."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(x for x in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in x.parts)
        else:
            found.append(p)
    return found


def _read_notebook(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, f"cannot read the file: {err.strerror or err}"
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "not a Jupyter notebook: the file is not valid notebook JSON"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, "not a Jupyter notebook: it has no list of cells"
    if nb.get("nbformat") != 4:
        return None, f"unsupported notebook format {nb.get('nbformat')!r} (need nbformat 4)"
    for i, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict) or "cell_type" not in cell:
            return None, f"malformed notebook: cell {i + 1} has no cell_type"
    return nb, None


def _set_name(nb: dict[str, Any], path: Path, known: list[str]) -> str | None:
    meta = nb.get("metadata", {}).get("attnlab", {})
    if isinstance(meta, dict) and meta.get("set") in known:
        return meta["set"]
    for name in known:
        if re.search(rf"(^|[^0-9]){re.escape(name)}", path.stem):
            return name
    number = re.match(r"(\d\d)", path.stem)
    if number:
        matches = [n for n in known if n.startswith(number.group(1) + "_")]
        if len(matches) == 1:
            return matches[0]
    return None


class _Sets:
    """Exercise sets loaded lazily from a tests folder, with cached reference outputs."""

    def __init__(self, tests: Path) -> None:
        self.tests = tests
        if not tests.is_dir():
            raise FileNotFoundError(f"tests folder {tests} does not exist")
        self.names = sorted(p.name for p in tests.iterdir() if (p / "set.json").is_file())
        if not self.names:
            raise FileNotFoundError(f"no tests bundles (folders with set.json) in {tests}")
        self._sets: dict[str, ExerciseSet] = {}
        self._refs: dict[tuple[str, str], list[CallResult]] = {}
        self._lock = threading.RLock()

    def get(self, name: str) -> ExerciseSet:
        with self._lock:
            if name not in self._sets:
                self._sets[name] = load_set(self.tests / name)
            return self._sets[name]

    def references(self, s: ExerciseSet, q_name: str) -> list[CallResult]:
        key = (s.name, q_name)
        with self._lock:
            if key not in self._refs:
                self._refs[key] = reference_outputs(s.question(q_name))
            return self._refs[key]

    def required_cells(self, name: str) -> list[str]:
        meta = json.loads((self.tests / name / "set.json").read_text())
        return list(meta.get("cells", []))


def _probes(s: ExerciseSet) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    probes = []
    for q in s.questions:
        if q.variable is not None:
            probes.append({"question": q.name, "kind": "variable", "name": q.variable})
        else:
            cases = [encode((c.args, c.kwargs), arrays) for c, _ in q.cases]
            probes.append({"question": q.name, "kind": "function", "name": q.function,
                           "cases": cases})
    return probes, arrays


def _grade_one(path: Path, sets: _Sets, timeout: float, memory_mb: int) -> SubmissionResult:
    nb, error = _read_notebook(path)
    if nb is None:
        return SubmissionResult(str(path), None, 0.0, 0.0, error=error)
    name = _set_name(nb, path, sets.names)
    if name is None:
        return SubmissionResult(str(path), None, 0.0, 0.0,
                                error=f"unknown exercise set: the notebook's metadata names none "
                                      f"of {sets.names}, nor does its file name")
    s = sets.get(name)
    row = SubmissionResult(str(path), name, 0.0, s.max_score)
    ids = {c.get("id") for c in nb["cells"]}
    missing = [i for i in sets.required_cells(name) if i not in ids]
    probes, arrays = _probes(s)
    child = run_submission(nb, probes, arrays, timeout=timeout, memory_mb=memory_mb)
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the exercise's code cells were deleted "
                        f"(ids {', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); "
                        "graded what remains")
    if child.error:
        problems.append(child.error)
    with _TRUSTED:
        _score_all(s, sets, child, row)
    row.score = round(sum(q["score"] for q in row.questions), 2)
    row.error = "; ".join(problems) or None
    return row


def _score_all(s: ExerciseSet, sets: _Sets, child: Any, row: SubmissionResult) -> None:
    for q in s.questions:
        answers = child.answers.get(q.name)
        if answers is None:
            result = QuestionResult(q.name, 0.0, q.points, "not graded: " + (child.error or
                                    "no answer came back"))
        else:
            got = [CallResult(value=decode(a["value"], child.arrays)) if "value" in a
                   else CallResult(error=str(a.get("error"))) for a in answers]
            refs = None if q.variable is not None else sets.references(s, q.name)
            try:
                result = score_question(q, got, references=refs)
            except (ValueError, TypeError) as err:
                result = QuestionResult(q.name, 0.0, q.points, f"could not be graded: {err}")
        row.questions.append({"name": result.name, "score": result.score,
                              "max_score": result.max_score, "feedback": result.feedback})


# Trusted code (references, misconceptions, the models they are called on) runs in
# this process, one submission at a time: a model is built after torch.manual_seed,
# and two threads seeding and drawing from the one global generator at once would
# build other weights than the child did.
_TRUSTED = threading.RLock()


@contextmanager
def _threads_like_the_child() -> Iterator[None]:
    """Compute references and misconceptions with the child's one intra-op thread.

    A float32 sum may round differently with 1 and 2 threads; where an ``argmax``
    hinges on it (greedy decoding of an untrained model), the student's wrong code
    in the child and the same misconception computed here must still agree.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def grade(paths: list[str], *, tests: str | Path | None = None, timeout: float = 120.0,
          memory_mb: int = 6144, jobs: int = 1, progress: bool | None = None
          ) -> list[SubmissionResult]:
    """Grade notebooks (or folders of them); one result per file, in order.

    Args:
        paths: notebooks or folders.
        tests: a folder of tests bundles (default: the bundles shipped with attnlab).
        timeout: seconds each submission may run.
        memory_mb: address-space limit of each child.
        jobs: how many children run at once.
        progress: show a progress bar (default: when stderr is a terminal).
    """
    sets = _Sets(Path(tests) if tests is not None else bundled_tests())
    files = find_notebooks(paths)
    bar = None
    if (progress if progress is not None else sys.stderr.isatty()) and len(files) > 1:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), unit="submission")

    def work(path: Path) -> SubmissionResult:
        try:
            return _grade_one(path, sets, timeout, memory_mb)
        except Exception as err:  # noqa: BLE001 - every submission gets a row
            return SubmissionResult(str(path), None, 0.0, 0.0,
                                    error=f"internal grading error: {type(err).__name__}: {err}")
        finally:
            if bar is not None:
                bar.update(1)

    with _threads_like_the_child(), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(work, files))
    if bar is not None:
        bar.close()
    return results


def write_json(results: list[SubmissionResult], path: str | Path) -> None:
    """A list with one object per submission."""
    Path(path).write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


def write_csv(results: list[SubmissionResult], path: str | Path) -> None:
    """One row per submission: a column per question, then score, max_score, error."""
    questions: list[str] = []
    for r in results:
        for q in r.questions:
            column = f"{r.set}:{q['name']}" if len({x.set for x in results if x.set}) > 1 \
                else q["name"]
            if column not in questions:
                questions.append(column)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "set", *questions, "score", "max_score", "error"])
        for r in results:
            several = len({x.set for x in results if x.set}) > 1
            scores = {(f"{r.set}:{q['name']}" if several else q["name"]): q["score"]
                      for q in r.questions}
            writer.writerow([r.submission, r.set or "", *[scores.get(c, "") for c in questions],
                             r.score, r.max_score, r.error or ""])


def table(results: list[SubmissionResult]) -> str:
    """A readable score table."""
    width = max([len("submission")] + [len(r.submission) for r in results])
    lines = [f"{'submission':{width}}  {'set':22}  {'score':>13}  error",
             "-" * (width + 45)]
    for r in results:
        score = f"{r.score:g} / {r.max_score:g}"
        lines.append(f"{r.submission:{width}}  {(r.set or '-'):22}  {score:>13}  "
                     f"{(r.error or '')[:100]}")
    return "\n".join(lines)
