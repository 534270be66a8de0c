"""Grade submissions: one sandboxed child each, compared here, a row per submission.

Every submission gets a row, whatever it is: a notebook scores what its
functions earn; a file that is not a notebook (or not a regular file), a
notebook of an unknown set, a child that hangs or dies gets a row with score 0
(or what could be graded) and a message in ``error``. The batch always goes on.
Problems of the grader's own set-up (no notebook found, a sandbox that cannot
run the grader's Python) are :class:`UsageError`\\ s, raised before any grading.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

import numpy as np

from attnlab.grading.codec import ResultError, decode_result, encode
from attnlab.grading.compare import (
    CallResult,
    QuestionResult,
    forbidden_feedback,
    reference_outputs,
    score_question,
)
from attnlab.grading.sandbox import (
    ChildOutput,
    Sandbox,
    SandboxError,
    plan,
    preflight,
    run_submission,
)
from attnlab.grading.spec import ExerciseSet, Question, load_set

__all__ = ["SubmissionResult", "UsageError", "grade", "find_notebooks", "bundled_tests",
           "write_json", "write_csv", "write_feedback", "table", "display_path"]

NOTEBOOK_BYTES = 64 * 2**20  # a submission larger than this is not read


class UsageError(Exception):
    """The grader cannot run as asked (nothing was graded)."""


def bundled_tests() -> Path:
    """The tests bundles shipped with attnlab (one folder per set)."""
    return Path(__file__).parent / "bundles"


def display_path(path: str | Path) -> str:
    """``path`` as text that can always be written: bytes that are not UTF-8 become ``\\xNN``.

    Example:
        >>> display_path(os.fsdecode(b"\\xff_01.ipynb"))
        '\\\\xff_01.ipynb'
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass
class SubmissionResult:
    """One row of the score table."""

    submission: str
    set: str | None
    score: float
    max_score: float
    questions: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    notebook_errors: list[str] = field(default_factory=list)  # the student's cells that raised
    # per function question: its public and hidden cases passed, and the public-only
    # feedback (what the student's check cell shows); for Gradescope's split, not written
    parts: list[dict[str, Any]] = field(default_factory=list, repr=False)


def find_notebooks(paths: list[str]) -> list[Path]:
    """The files to grade: ``*.ipynb`` in folders (sorted, links not followed), files as given.

    Raises:
        UsageError: a path does not exist, or no notebook is found.
    """
    found: list[Path] = []
    for p in map(Path, paths):
        if not os.path.lexists(p):
            raise UsageError(f"no such file or folder: {display_path(p)}")
        if p.is_dir() and not p.is_symlink():
            inside = []
            for folder, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
                inside += [Path(folder) / f for f in files if f.endswith(".ipynb")]
            if not inside:
                raise UsageError(f"no notebook (*.ipynb) in the folder {display_path(p)}")
            found += sorted(inside)
        else:
            found.append(p)
    if not found:
        raise UsageError("no notebook to grade")
    return found


def _read_notebook(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if os.path.islink(path):
            return None, "is a symbolic link: grade the file itself"
        return None, f"cannot read the file: {err.strerror or err}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file (a folder, a pipe or a device?)"
        if info.st_size > NOTEBOOK_BYTES:
            return None, f"too large to be a notebook ({info.st_size // 2**20} MB)"
        raw = os.read(fd, NOTEBOOK_BYTES + 1)
        while len(raw) <= NOTEBOOK_BYTES:
            more = os.read(fd, NOTEBOOK_BYTES + 1 - len(raw))
            if not more:
                break
            raw += more
        if len(raw) > NOTEBOOK_BYTES:
            return None, "too large to be a notebook"
    except OSError as err:
        return None, f"cannot read the file: {err.strerror or err}"
    finally:
        os.close(fd)
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
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
    meta = nb.get("metadata", {})
    meta = meta.get("attnlab", {}) if isinstance(meta, dict) else {}
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
            raise UsageError(f"tests folder {tests} does not exist")
        self.names = sorted(p.name for p in tests.iterdir() if (p / "set.json").is_file())
        if not self.names:
            raise UsageError(f"no tests bundles (folders with set.json) in {tests}")
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
                           "cases": cases, "forbidden": list(q.forbidden)})
    return probes, arrays


def _defining_cells(nb: dict[str, Any], name: str) -> set[int]:
    """The (1-based) code cells whose source defines ``name`` at top level."""
    pattern = re.compile(rf"^(def\s+{re.escape(name)}\s*\(|{re.escape(name)}\s*(:[^=]*)?=(?!=))",
                         re.M)
    found = set()
    for i, cell in enumerate(nb["cells"]):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "code" and pattern.search(source):
            found.add(i + 1)
    return found


def _describe_cell_error(e: dict[str, Any]) -> str:
    where = f"cell {e['cell']}" + (f", line {e['line']}" if e.get("line") else "")
    return f"{where}: {e['type']}: {e['message']}"


def _grade_one(path: Path, sets: _Sets, sandbox: Sandbox, base: Path, slot: int,
               options: dict[str, Any], set_name: str | None) -> SubmissionResult:
    shown = display_path(path)
    nb, error = _read_notebook(path)
    if nb is None:
        return SubmissionResult(shown, None, 0.0, 0.0, error=error)
    name = set_name or _set_name(nb, path, sets.names)
    if name is None:
        return SubmissionResult(
            shown, None, 0.0, 0.0,
            error=f"unknown exercise set: the notebook's metadata names none of {sets.names}, "
                  "nor does its file name; to grade it as one of them, pass --set NAME "
                  "(grade(..., set_name=NAME)), e.g. --set " + sets.names[0])
    s = sets.get(name)
    row = SubmissionResult(shown, name, 0.0, s.max_score)
    ids = {c.get("id") for c in nb["cells"]}
    missing = [i for i in sets.required_cells(name) if i not in ids]
    probes, arrays = _probes(s)
    child = run_submission(nb, probes, arrays, sandbox=sandbox, base=base, slot=slot, **options)
    problems = []
    if missing and set_name is None:
        problems.append(f"{len(missing)} of the exercise's code cells were deleted "
                        f"(ids {', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); "
                        "graded what remains")
    if child.error:
        problems.append(child.error)
    stopped = [e for e in child.cell_errors if e["type"] == "Timeout"]
    if stopped:
        problems.append("; ".join(_describe_cell_error(e) for e in stopped)
                        + ": the answers defined before it were graded")
    row.notebook_errors = [_describe_cell_error(e) for e in child.cell_errors]
    with _TRUSTED:
        _score_all(s, sets, child, row, nb)
    row.score = round(sum(q["score"] for q in row.questions), 2)
    row.error = "; ".join(problems) or None
    return row


def _score_all(s: ExerciseSet, sets: _Sets, child: ChildOutput, row: SubmissionResult,
               nb: dict[str, Any]) -> None:
    errors_by_cell = {e["cell"]: e for e in child.cell_errors}
    for index, q in enumerate(s.questions):
        answers = child.answers.get(index)
        if answers is None:
            result = QuestionResult(q.name, 0.0, q.points, "not graded: " + (
                child.error or "no answer came back"))
        else:
            try:
                got = [CallResult(value=decode_result(a["value"], child.arrays[index]))
                       if "value" in a else CallResult(error=a["error"]) for a in answers]
                refs = None if q.variable is not None else sets.references(s, q.name)
                result = score_question(q, got, references=refs)
                if q.variable is None:
                    n = len(q.public)
                    public = score_question(q, got[:n], only_public=True, references=refs)
                    row.parts.append({
                        "name": q.name, "public_cases": n, "hidden_cases": len(q.hidden),
                        "public_passed": sum(public.passed),
                        "hidden_passed": sum(result.passed[n:]),
                        "public_feedback": public.feedback})
            except ResultError as err:
                result = QuestionResult(q.name, 0.0, q.points,
                                        f"not graded: the answer is not plain data ({err})")
            except (ValueError, TypeError) as err:
                result = QuestionResult(q.name, 0.0, q.points, f"could not be graded: {err}")
        used = [u for u in child.forbidden.get(index, []) if u in q.forbidden]
        if used:
            result = QuestionResult(q.name, 0.0, q.points, forbidden_feedback(q, used))
            for part in row.parts:
                if part["name"] == q.name:
                    part.update(public_passed=0, hidden_passed=0,
                                public_feedback=result.feedback)
        feedback = result.feedback
        if result.score < result.max_score:
            feedback += _own_errors(q, nb, errors_by_cell)
        row.questions.append({"name": result.name, "score": result.score,
                              "max_score": result.max_score, "feedback": feedback})


def _own_errors(q: Question, nb: dict[str, Any], errors: dict[int, dict[str, Any]]) -> str:
    """The errors of the cells that define the question's function or value."""
    name = q.function or q.variable or ""
    mine = [errors[c] for c in sorted(_defining_cells(nb, name)) if c in errors]
    if not mine:
        return ""
    return (f" (the cell that defines {name} raised an error: "
            + "; ".join(_describe_cell_error(e) for e in mine) + ")")


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
          memory_mb: int = 6144, jobs: int = 1, progress: bool | None = None,
          set_name: str | None = None, cell_timeout: float | None = None,
          call_timeout: float | None = None, unsafe_same_user: bool = False,
          sandbox_user: str | None = None, feedback: str | Path | None = None
          ) -> list[SubmissionResult]:
    """Grade notebooks (or folders of them); one result per file, in order.

    Args:
        paths: notebooks or folders.
        tests: a folder of tests bundles (default: the bundles shipped with attnlab).
        timeout: wall-clock seconds each submission may run in all.
        memory_mb: address-space limit of each child.
        jobs: how many children run at once.
        progress: show a progress bar (default: when stderr is a terminal).
        set_name: grade every notebook as this set (whatever its metadata and name say).
        cell_timeout: seconds one code cell may run (default ``timeout / 2``): a cell that
            hangs is stopped, and the answers defined before it are graded.
        call_timeout: seconds one call of a student's function may run
            (default ``timeout / 4``).
        unsafe_same_user: where no isolation is possible (no Linux namespaces), grade
            anyway, with submissions running as the grader's user (trusted work only).
        sandbox_user: as root, run every submission as this user instead of a fresh
            uid per job (for an environment only that user can read).
        feedback: a folder for one Markdown feedback file per submission.

    Raises:
        UsageError: nothing to grade, an unknown ``set_name``, no tests bundles, or a
            sandbox that cannot run here (said before anything is graded).
    """
    sets = _Sets(Path(tests) if tests is not None else bundled_tests())
    if set_name is not None and set_name not in sets.names:
        raise UsageError(f"--set {set_name}: no such exercise set; the sets are "
                         f"{', '.join(sets.names)}")
    files = find_notebooks(paths)
    hide = _hidden(paths, tests)
    try:
        sandbox = plan(unsafe_same_user=unsafe_same_user, sandbox_user=sandbox_user, hide=hide)
    except SandboxError as err:
        raise UsageError(str(err)) from None
    options = {"timeout": timeout, "cell_timeout": cell_timeout, "call_timeout": call_timeout,
               "memory_mb": memory_mb}
    jobs = max(1, min(jobs, len(files)))
    base = Path(tempfile.mkdtemp(prefix="attnlab-grade-"))
    if sandbox.mode == "root-uid":
        base.chmod(0o711)  # the jobs' uids reach their own (mode 700) folders, list nothing
    try:
        try:
            preflight(sandbox, base)
        except SandboxError as err:
            raise UsageError(str(err)) from None
        bar = None
        if (progress if progress is not None else sys.stderr.isatty()) and len(files) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(files), unit="submission")
        slots: Queue[int] = Queue()
        for k in range(jobs):
            slots.put(k)

        def work(path: Path) -> SubmissionResult:
            slot = slots.get()
            try:
                return _grade_one(path, sets, sandbox, base, slot, options, set_name)
            except Exception as err:  # noqa: BLE001 - every submission gets a row
                return SubmissionResult(display_path(path), None, 0.0, 0.0,
                                        error=f"internal grading error: {type(err).__name__}: "
                                              f"{err}")
            finally:
                slots.put(slot)
                if bar is not None:
                    bar.update(1)

        with _threads_like_the_child(), ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(work, files))
        if bar is not None:
            bar.close()
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    if feedback is not None:
        write_feedback(results, feedback)
    return results


def _hidden(paths: list[str], tests: str | Path | None) -> tuple[str, ...]:
    """What a child must not see: the submissions, a course's own tests, the work folders.

    A folder that holds the grader's own Python (say, ``.`` graded from the repository)
    is not hidden whole: its notebooks are, one by one.
    """
    import attnlab

    needed = [Path(sys.prefix).resolve(), Path(attnlab.__file__).resolve().parent,
              Path(sys.executable).resolve()]

    def holds_python(folder: Path) -> bool:
        return any(n == folder or folder in n.parents for n in needed)

    hide: list[Path] = [Path(tempfile.gettempdir()).resolve()]
    if tests is not None:
        hide.append(Path(tests).resolve())
    for p in map(Path, paths):
        p = p.absolute()
        if p.is_dir() and not p.is_symlink():
            if holds_python(p.resolve()):
                hide += [f.absolute() for f in find_notebooks([str(p)])]
            else:
                hide.append(p.resolve())
        elif p.is_file() and not p.is_symlink():
            hide.append(p.resolve())
    return tuple(str(h) for h in hide if not holds_python(h) or h.is_file())


def write_json(results: list[SubmissionResult], path: str | Path) -> None:
    """A list with one object per submission (names that are not UTF-8 escaped as ``\\xNN``)."""
    rows = [{k: v for k, v in asdict(r).items() if k != "parts"} for r in results]
    Path(path).write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n",
                          encoding="utf-8", errors="backslashreplace")


def _feedback_text(r: SubmissionResult) -> str:
    """Each question's score and feedback on a line of its own."""
    return "\n".join(f"{q['name']} ({q['score']:g}/{q['max_score']:g}): {q['feedback']}"
                     for q in r.questions)


def write_csv(results: list[SubmissionResult], path: str | Path) -> None:
    """One row per submission: a column per question, then score, max_score, error, feedback."""
    several = len({x.set for x in results if x.set}) > 1
    questions: list[str] = []
    for r in results:
        for q in r.questions:
            column = f"{r.set}:{q['name']}" if several else q["name"]
            if column not in questions:
                questions.append(column)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "set", *questions, "score", "max_score", "error",
                         "feedback"])
        for r in results:
            scores = {(f"{r.set}:{q['name']}" if several else q["name"]): q["score"]
                      for q in r.questions}
            writer.writerow([r.submission, r.set or "", *[scores.get(c, "") for c in questions],
                             r.score, r.max_score, r.error or "", _feedback_text(r)])


def _feedback_name(submission: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", submission.strip("/")).strip("._") or "submission"
    stem = stem.removesuffix(".ipynb")[-150:]
    name, k = f"{stem}.md", 2
    while name in taken:
        name, k = f"{stem}-{k}.md", k + 1
    taken.add(name)
    return name


def feedback_markdown(r: SubmissionResult) -> str:
    """A student's feedback as Markdown: score, each question, the notebook's own errors."""
    lines = [f"# Feedback: {r.submission}", ""]
    if r.set:
        lines += [f"Exercise set **{r.set}**: **{r.score:g} / {r.max_score:g}** points.", ""]
    else:
        lines += ["This file could not be graded.", ""]
    if r.error:
        lines += ["**Problems while grading:** " + r.error, ""]
    if r.notebook_errors:
        lines += ["**Errors in your notebook** (when it ran from top to bottom):", ""]
        lines += [f"- {e}" for e in r.notebook_errors] + [""]
    if r.questions:
        lines += ["| question | score | feedback |", "|---|---|---|"]
        for q in r.questions:
            text = str(q["feedback"]).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {q['name']} | {q['score']:g} / {q['max_score']:g} | {text} |")
        lines.append("")
    return "\n".join(lines)


def write_feedback(results: list[SubmissionResult], folder: str | Path) -> list[Path]:
    """One Markdown file per submission in ``folder`` (created); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    written = []
    for r in results:
        path = folder / _feedback_name(r.submission, taken)
        path.write_text(feedback_markdown(r), encoding="utf-8", errors="backslashreplace")
        written.append(path)
    return written


def table(results: list[SubmissionResult]) -> str:
    """A readable score table (errors in full)."""
    width = max([len("submission")] + [len(r.submission) for r in results])
    lines = [f"{'submission':{width}}  {'set':22}  {'score':>13}  error",
             "-" * (width + 45)]
    for r in results:
        score = f"{r.score:g} / {r.max_score:g}"
        lines.append(f"{r.submission:{width}}  {(r.set or '-'):22}  {score:>13}  "
                     f"{r.error or ''}")
    return "\n".join(lines)
