"""The ``attnlab`` command: grade submissions, build exercise sets, benchmark, print the version.

::

    attnlab grade SUBMISSION... [--json FILE] [--csv FILE] [--feedback DIR] [--timeout SECONDS]
                  [--cell-timeout SECONDS] [--call-timeout SECONDS] [--tests DIR] [--set NAME]
                  [--jobs N] [--sandbox-user USER] [--unsafe-same-user]
    attnlab gradescope SET [-o autograder.zip] [--tests DIR]
    attnlab exercises build SOURCE... [--exercises DIR] [--solutions DIR] [--bundles DIR]
    attnlab bench [--lengths 256,...,16384] [--methods ...] [--quick] [--out DIR] ...
    attnlab --version
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnlab import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attnlab", description="Attention Lab's tools.")
    p.add_argument("--version", action="version", version=f"attnlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade exercise notebooks",
                       description="Grade notebooks (or folders of them). Each runs in its own "
                                   "sandboxed process; every submission gets a row.")
    g.add_argument("submissions", nargs="+", help="notebooks or folders of notebooks")
    g.add_argument("--json", metavar="FILE", help="write the results as JSON")
    g.add_argument("--csv", metavar="FILE", help="write the results as CSV")
    g.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                   help="time limit per submission (default 120)")
    g.add_argument("--memory", type=int, default=6144, metavar="MB",
                   help="memory (address space) limit per submission (default 6144)")
    g.add_argument("--tests", metavar="DIR",
                   help="a folder of tests bundles (default: those shipped with attnlab)")
    g.add_argument("--jobs", type=int, default=2, help="submissions graded at once (default 2)")
    g.add_argument("--set", metavar="NAME", dest="set_name",
                   help="grade every notebook as this exercise set (e.g. 01_softmax), whatever "
                        "its metadata and file name say")
    g.add_argument("--feedback", metavar="DIR",
                   help="write one Markdown feedback file per submission into DIR")
    g.add_argument("--cell-timeout", type=float, metavar="SECONDS",
                   help="time limit per code cell (default: half of --timeout); a cell that "
                        "hangs is stopped and the answers before it are still graded")
    g.add_argument("--call-timeout", type=float, metavar="SECONDS",
                   help="time limit per call of a student's function (default: a quarter "
                        "of --timeout)")
    g.add_argument("--sandbox-user", metavar="USER",
                   help="as root: run every submission as USER (default: a fresh unprivileged "
                        "uid per job); for an environment only USER can read")
    g.add_argument("--unsafe-same-user", action="store_true",
                   help="where submissions cannot be isolated (no Linux namespaces), run them "
                        "as the grader's own user anyway: for trusted notebooks only")

    gs = sub.add_parser("gradescope", help="write Gradescope's autograder zip for a set",
                        description="Write the autograder zip Gradescope expects for one "
                                    "exercise set: setup.sh, run_autograder and the set's "
                                    "tests bundle. Upload it as a programming assignment's "
                                    "autograder; students upload their notebook.")
    gs.add_argument("set_name", metavar="SET", help="the exercise set, e.g. 01_softmax")
    gs.add_argument("-o", "--output", default="autograder.zip", help="the zip to write")
    gs.add_argument("--tests", metavar="DIR",
                    help="a folder of tests bundles (default: those shipped with attnlab)")

    e = sub.add_parser("exercises", help="build exercise sets from their sources")
    esub = e.add_subparsers(dest="action", required=True)
    b = esub.add_parser("build", help="write the student and solution notebooks and the "
                                      "tests bundle of each source notebook")
    b.add_argument("sources", nargs="+", help="source notebooks (exercises/source/*.ipynb)")
    b.add_argument("--exercises", default="exercises", help="folder for student notebooks")
    b.add_argument("--solutions", default="solutions", help="folder for solution notebooks")
    b.add_argument("--bundles", default=str(Path(__file__).parent / "grading" / "bundles"),
                   help="folder for tests bundles (default: inside attnlab)")

    from attnlab.bench import add_arguments

    add_arguments(sub.add_parser("bench", help="time and measure the memory of attention "
                                               "implementations (see attnlab.bench)",
                                 description="Benchmark attention implementations side by "
                                             "side; write JSON and plots."))
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (non-zero only for usage errors)."""
    args = _parser().parse_args(argv)
    if args.command == "bench":
        from attnlab.bench import run_from_args

        return run_from_args(args)
    if args.command == "grade":
        return _grade(args)
    if args.command == "gradescope":
        from attnlab.grading.gradescope import build_autograder

        try:
            out = build_autograder(args.set_name, args.output, tests=args.tests)
        except (FileNotFoundError, ValueError) as err:
            print(f"attnlab gradescope: {err}", file=sys.stderr)
            return 2
        print(f"{out}: {out.stat().st_size / 1024:.1f} KiB; upload it as the autograder of a "
              "Gradescope programming assignment")
        return 0
    from attnlab.grading.assign import SourceError, build_set

    for source in args.sources:
        try:
            meta = build_set(source, exercises=args.exercises, solutions=args.solutions,
                             bundles=args.bundles)
        except (SourceError, FileNotFoundError) as err:
            print(f"attnlab exercises build: {err}", file=sys.stderr)
            return 2
        print(f"{meta['name']}: {len(meta['questions'])} questions, {meta['points']:g} points")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from attnlab.grading.grade import UsageError, grade, table, write_csv, write_json

    for stream in (sys.stdout, sys.stderr):  # names that are not UTF-8 never crash the table
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    positive = [args.timeout, args.memory, args.jobs, args.cell_timeout or 1,
                args.call_timeout or 1]
    if min(positive) <= 0:
        print("attnlab grade: --timeout, --cell-timeout, --call-timeout, --memory and --jobs "
              "must be positive", file=sys.stderr)
        return 2
    try:
        results = grade(args.submissions, tests=args.tests, timeout=args.timeout,
                        memory_mb=args.memory, jobs=args.jobs, set_name=args.set_name,
                        cell_timeout=args.cell_timeout, call_timeout=args.call_timeout,
                        unsafe_same_user=args.unsafe_same_user, sandbox_user=args.sandbox_user,
                        feedback=args.feedback)
    except UsageError as err:
        print(f"attnlab grade: {err}", file=sys.stderr)
        return 2
    print(table(results))
    if args.json:
        write_json(results, args.json)
    if args.csv:
        write_csv(results, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
