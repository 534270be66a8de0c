"""The ``attnlab`` command: grade submissions, build exercise sets, benchmark, print the version.

::

    attnlab grade SUBMISSION... [--json FILE] [--csv FILE] [--timeout SECONDS] [--tests DIR]
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
        from attnlab.grading.grade import grade, table, write_csv, write_json

        if args.timeout <= 0 or args.memory <= 0 or args.jobs < 1:
            print("attnlab grade: --timeout, --memory and --jobs must be positive",
                  file=sys.stderr)
            return 2
        missing = [s for s in args.submissions if not Path(s).exists()]
        if missing:
            print(f"attnlab grade: no such file or folder: {', '.join(missing)}", file=sys.stderr)
            return 2
        try:
            results = grade(args.submissions, tests=args.tests, timeout=args.timeout,
                            memory_mb=args.memory, jobs=args.jobs)
        except FileNotFoundError as err:
            print(f"attnlab grade: {err}", file=sys.stderr)
            return 2
        print(table(results))
        if args.json:
            write_json(results, args.json)
        if args.csv:
            write_csv(results, args.csv)
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


if __name__ == "__main__":
    sys.exit(main())
