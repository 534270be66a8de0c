"""Grade on Gradescope: the autograder zip, and the step that runs inside its container.

``attnlab gradescope SET -o autograder.zip`` writes the zip Gradescope expects:
``setup.sh`` (installs this version of attnlab and the pinned CPU build of torch),
``run_autograder`` and the set's tests bundle (``tests/SET/``; a course's own with
``--tests DIR``). For each submission Gradescope runs ``run_autograder``, which
calls :func:`run`: it grades ``/autograder/submission/*.ipynb`` with the same
sandbox as ``attnlab grade`` and writes ``/autograder/results/results.json`` in
Gradescope's format: one test per question for its public cases (``visible``)
and one for its hidden cases (``after_due_date``), each with its score and the
feedback, the named misconception and the student's own errors in ``output``.

The whole tree is found under ``$ATTNLAB_AUTOGRADER_ROOT`` (default ``/autograder``),
which is how the test suite runs the zip in a throw-away folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import stat
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from attnlab import __version__

__all__ = ["build_autograder", "results_json", "run", "main"]

TORCH_PIN = "2.13.0"  # the build the book was executed with (requirements.txt)
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def _setup_sh() -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image.
set -euo pipefail
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-pip python3-venv >/dev/null
python3 -m venv /opt/attnlab
/opt/attnlab/bin/pip install --quiet --upgrade pip
/opt/attnlab/bin/pip install --quiet "torch=={TORCH_PIN}" --index-url {TORCH_INDEX}
/opt/attnlab/bin/pip install --quiet "attnlab=={__version__}"
chmod -R go+rX /opt/attnlab   # the sandboxed children run as other users
"""


def _run_autograder(set_name: str) -> str:
    return f"""#!/usr/bin/env bash
# Gradescope runs this for each submission; it writes results/results.json.
set -uo pipefail
root="${{ATTNLAB_AUTOGRADER_ROOT:-/autograder}}"
python="${{ATTNLAB_PYTHON:-/opt/attnlab/bin/python}}"
exec "$python" -m attnlab.grading.gradescope run --set {shlex.quote(set_name)} --root "$root"
"""


def build_autograder(set_name: str, out: str | Path, tests: str | Path | None = None) -> Path:
    """Write Gradescope's autograder zip for one exercise set.

    Args:
        set_name: the set, e.g. ``"01_softmax"``.
        out: the zip to write.
        tests: a folder of tests bundles (default: the bundles shipped with attnlab).

    Raises:
        FileNotFoundError: the set has no bundle in ``tests``.
    """
    from attnlab.grading.grade import bundled_tests
    from attnlab.grading.spec import load_set

    bundle = Path(tests if tests is not None else bundled_tests()) / set_name
    if not (bundle / "set.json").is_file():
        raise FileNotFoundError(f"no tests bundle for the set {set_name!r} in {bundle.parent}")
    load_set(bundle)  # a broken bundle fails here, not on Gradescope
    out = Path(out)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (("setup.sh", _setup_sh()), ("run_autograder",
                                                      _run_autograder(set_name))):
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
        for f in ("set.json", "tests.py"):
            z.write(bundle / f, f"tests/{set_name}/{f}")
    return out


def _split(q: dict[str, Any], part: dict[str, Any] | None) -> list[tuple[str, float, float,
                                                                          str]]:
    """(visibility, score, max_score, output) of a question's public and hidden tests."""
    points, score = float(q["max_score"]), float(q["score"])
    if part is None or part["hidden_cases"] == 0:
        return [("visible", score, points, q["feedback"])]
    n = part["public_cases"] + part["hidden_cases"]
    pub_max = round(points * part["public_cases"] / n, 2)
    raw_pub = points * part["public_passed"] / n
    raw_hid = points * part["hidden_passed"] / n
    scale = score / (raw_pub + raw_hid) if raw_pub + raw_hid > 0 else 0.0
    pub = round(min(pub_max, raw_pub * scale), 2)
    return [("visible", pub, pub_max, part["public_feedback"]),
            ("after_due_date", round(score - pub, 2), round(points - pub_max, 2),
             q["feedback"])]


def results_json(row: Any, elapsed: float | None = None) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one graded submission (a ``SubmissionResult``)."""
    tests = []
    parts = {p["name"]: p for p in getattr(row, "parts", [])}
    for q in row.questions:
        for visibility, score, max_score, output in _split(q, parts.get(q["name"])):
            kind = "public tests" if visibility == "visible" else "hidden tests"
            tests.append({"name": f"{q['name']} ({kind})", "score": score,
                          "max_score": max_score, "output": output, "visibility": visibility,
                          "status": "passed" if score >= max_score else "failed"})
    lines = []
    if row.error:
        lines.append(f"Problems while grading: {row.error}")
    if row.notebook_errors:
        lines.append("Errors in your notebook: " + "; ".join(row.notebook_errors))
    result: dict[str, Any] = {"score": float(row.score), "tests": tests,
                              "output": "\n".join(lines) or "Graded.",
                              "visibility": "visible", "stdout_visibility": "hidden"}
    if elapsed is not None:
        result["execution_time"] = round(elapsed, 2)
    return result


def run(set_name: str, root: str | Path = "/autograder", timeout: float = 600.0) -> dict[str, Any]:
    """Grade the submission under ``root`` and write ``root/results/results.json``."""
    from attnlab.grading.grade import SubmissionResult, UsageError, grade

    root = Path(root)
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    tests = root / "source" / "tests"
    if os.geteuid() == 0:
        os.chmod(tests, 0o700)  # the hidden tests stay the grader's
    notebooks = sorted(p for p in (root / "submission").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    start = time.monotonic()
    if not notebooks:
        row = SubmissionResult("(no notebook)", set_name, 0.0, 0.0,
                               error="the submission has no notebook (.ipynb): upload your "
                                     "exercise notebook")
    else:
        try:
            row = grade([str(notebooks[0])], tests=tests, set_name=set_name, timeout=timeout,
                        jobs=1, progress=False)[0]
        except UsageError as err:
            row = SubmissionResult(str(notebooks[0]), set_name, 0.0, 0.0,
                                   error=f"the autograder could not run: {err}")
        if len(notebooks) > 1:
            extra = f"{len(notebooks) - 1} more notebook(s) were not graded: upload one"
            row.error = f"{row.error}; {extra}" if row.error else extra
    data = results_json(row, time.monotonic() - start)
    results.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return data


def main(argv: list[str] | None = None) -> int:
    """``python -m attnlab.grading.gradescope run --set SET [--root DIR]`` (inside Gradescope)."""
    p = argparse.ArgumentParser(prog="python -m attnlab.grading.gradescope")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="grade /autograder/submission, write results.json")
    r.add_argument("--set", required=True, dest="set_name")
    r.add_argument("--root", default=os.environ.get("ATTNLAB_AUTOGRADER_ROOT", "/autograder"))
    r.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args(argv)
    data = run(args.set_name, args.root, args.timeout)
    print(f"score {data['score']:g}: " + ", ".join(f"{t['name']} {t['score']:g}/"
                                                    f"{t['max_score']:g}" for t in data["tests"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
