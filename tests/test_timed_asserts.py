"""No notebook asserts a time: speed lives in benchmarks that write results.

A time depends on the machine and on what else runs on it, so an assert on one fails at
random under load (and passes on a machine that proves nothing). A chapter prints its timings
and asserts what does not vary; `attnlab bench --suite claims` measures the timing statements.
This test reads every code cell of the chapters, exercises and solutions, finds the names bound
to a measured time (the result of `best_time`, `time_calls`, `time.perf_counter`, ...), follows
them through arithmetic and containers, and fails if an `assert` reads one.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from conftest import ROOT

# attnlab.perf's timers, by name or attribute; the clocks of the `time` module
TIMERS = {"best_time", "time_calls", "perf_counter", "process_time", "perf_counter_ns",
          "process_time_ns"}
TIME_MODULE = {"time", "time_ns", "monotonic", "monotonic_ns", *TIMERS}
NOTEBOOKS = sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("exercises/source/*.ipynb"),
                    *ROOT.glob("solutions/*.ipynb")])


def _code(nb: Path) -> str:
    cells = json.loads(nb.read_text())["cells"]
    lines = []
    for c in cells:
        if c["cell_type"] != "code":
            continue
        for line in "".join(c["source"]).splitlines():
            # IPython's magics and shell escapes are not Python
            lines.append("" if line.lstrip().startswith(("%", "!")) else line)
        lines.append("")
    return "\n".join(lines)


def _calls_clock(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name) and f.id in TIMERS:
                return True
            if isinstance(f, ast.Attribute) and (
                    f.attr in TIMERS or (isinstance(f.value, ast.Name) and f.value.id == "time"
                                         and f.attr in TIME_MODULE)):
                return True
    return False


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _bound(target: ast.AST) -> set[str]:
    """The names an assignment binds or changes: `t`, `a, b`, the `d` of `d[k]` or `d.x`
    (not the `k`)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*(_bound(t) for t in target.elts)) if target.elts else set()
    while isinstance(target, (ast.Subscript, ast.Attribute, ast.Starred)):
        target = target.value
    return {target.id} if isinstance(target, ast.Name) else set()


def timed_asserts(source: str) -> list[str]:
    """The asserts of `source` that read a measured time, as source lines."""
    tree = ast.parse(source)
    timed: set[str] = set()
    changed = True
    while changed:  # follow times through assignments until nothing new is found
        changed = False
        for node in ast.walk(tree):
            value, targets = None, []
            if isinstance(node, ast.Assign):
                value, targets = node.value, node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                value, targets = node.value, [node.target]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("append", "extend") and node.args:
                value, targets = node.args[0], [node.func.value]
            if value is None:
                continue
            if _calls_clock(value) or _names(value) & timed:
                new = set().union(*(_bound(t) for t in targets)) - timed
                if new:
                    timed |= new
                    changed = True
    return [ast.get_source_segment(source, n) or "?" for n in ast.walk(tree)
            if isinstance(n, ast.Assert) and _read(n.test) & timed]


def _read(test: ast.AST) -> set[str]:
    """The names whose values an assert compares: `"a" in times` asks which keys were
    measured, not how long anything took, so the container of `in` does not count."""
    skip = set()
    for n in ast.walk(test):
        if isinstance(n, ast.Compare) and all(isinstance(op, (ast.In, ast.NotIn))
                                              for op in n.ops):
            skip |= {id(c) for c in n.comparators if isinstance(c, ast.Name)}
    return {n.id for n in ast.walk(test) if isinstance(n, ast.Name) and id(n) not in skip}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_notebook_asserts_a_time(nb):
    assert timed_asserts(_code(nb)) == []


def test_the_reader_finds_a_timed_assert_however_it_is_written():
    found = timed_asserts("""
t = best_time(f, x)
times = {c: best_time(lambda: g(c)) for c in (1, 2)}
began = time.perf_counter(); y = f(x); took = time.perf_counter() - began
k = k.repeat(1, 2); wall = time.time() - start
slopes = []
slopes.append(np.polyfit(xs, np.log(times[1]), 1)[0])
ratio = t / 2
flops = count(f)
assert ratio < 3
assert times[1] < times[2]
assert took > 0.1
assert slopes[0] < 2
assert flops > 10
assert k.sum() > 0
assert wall < 5
assert 1 in times
""")
    assert found == ["assert ratio < 3", "assert times[1] < times[2]", "assert took > 0.1",
                     "assert slopes[0] < 2", "assert wall < 5"]
