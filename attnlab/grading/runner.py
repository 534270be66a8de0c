"""The sandboxed child: run a submission's cells, call its functions, write the results as data.

Started by :mod:`attnlab.grading.sandbox` as ``python -m attnlab.grading.runner``
in a throw-away folder. It reads its request (JSON) from standard input, closes
it, and then runs the student's code. It never compares anything and never
sees the expected results: it writes what the student's functions returned
(arrays in an ``.npz``, the rest in JSON) for the grader to judge.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = ["main"]

_LOG_LIMIT = 20_000  # characters of the student's output kept for the report


class _CappedWriter(io.TextIOBase):
    """Collects what the student's code prints, up to a limit."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, s: str) -> int:
        if self.size < _LOG_LIMIT:
            self.parts.append(s[: _LOG_LIMIT - self.size])
            self.size += len(s)
        return len(s)

    def text(self) -> str:
        return "".join(self.parts)


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise OSError("network access is disabled while grading")


def _run_cells(cells: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    errors: list[str] = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip():
            continue
        result = shell.run_cell(source, store_history=False, silent=True)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            errors.append(f"cell {index + 1}: {type(error).__name__}: {error}"[:300])
    return shell.user_ns, errors


def _probe(namespace: dict[str, Any], probe: dict[str, Any], arrays: Any,
           out_arrays: dict[str, Any]) -> list[dict[str, Any]]:
    from attnlab.grading.codec import EncodeError, decode, encode

    results = []
    name = probe["name"]
    if probe["kind"] == "variable":
        if name not in namespace:
            return [{"error": f"NameError: {name!r} is not defined"}]
        if namespace[name] is Ellipsis:
            return [{"error": f"{name} is still `...`: replace it with your answer"}]
        try:
            return [{"value": encode(namespace[name], out_arrays)}]
        except EncodeError as err:
            return [{"error": f"{name}: {err}"}]
    fn = namespace.get(name)
    if not callable(fn):
        message = (f"NameError: no function {name!r} is defined" if fn is None
                   else f"TypeError: {name!r} is a {type(fn).__name__}, not a function")
        return [{"error": message} for _ in probe["cases"]]
    for encoded in probe["cases"]:
        try:
            args, kwargs = decode(encoded, arrays)
            value = fn(*args, **kwargs)
            results.append({"value": encode(value, out_arrays)})
        except EncodeError as err:
            results.append({"error": f"TypeError: {err}"})
        except BaseException as err:  # noqa: BLE001 - SystemExit too: it is the student's
            results.append({"error": f"{type(err).__name__}: {err}"[:500]})
    return results


def main() -> int:
    request = json.loads(sys.stdin.read())
    sys.stdin.close()
    sys.stdin = open(os.devnull)  # noqa: SIM115
    workdir = Path(request["workdir"])
    results_path = Path(request["results"])
    os.chdir(workdir)
    os.environ["ATTNLAB_GRADING"] = "1"  # check() cells do nothing here
    os.environ.setdefault("MPLBACKEND", "Agg")
    if not request.get("network_isolated", False):
        socket.socket = _no_network  # type: ignore[assignment,misc]  # best effort only
        socket.create_connection = _no_network  # type: ignore[assignment]

    import numpy as np

    with open(request["notebook"], encoding="utf-8") as f:
        notebook = json.load(f)
    inputs = np.load(request["inputs"], allow_pickle=False)
    probes = request["probes"]

    real_stdout, real_stderr = sys.stdout, sys.stderr
    saved_builtins = dict(builtins.__dict__)  # a notebook that breaks them hurts only itself
    log = _CappedWriter()
    sys.stdout = sys.stderr = log
    try:
        namespace, errors = _run_cells(notebook["cells"])
        builtins.__dict__.clear()
        builtins.__dict__.update(saved_builtins)
        out_arrays: dict[str, Any] = {}
        answers = {p["question"]: _probe(namespace, p, inputs, out_arrays) for p in probes}
    finally:
        builtins.__dict__.clear()
        builtins.__dict__.update(saved_builtins)
        sys.stdout, sys.stderr = real_stdout, real_stderr
    arrays_path = results_path.with_suffix(".npz")
    np.savez(arrays_path, **out_arrays)
    tmp = results_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"answers": answers, "cell_errors": errors, "log": log.text(),
                               "arrays": arrays_path.name}))
    tmp.replace(results_path)
    real_stdout.flush()
    os._exit(0)  # skip interpreter teardown: nothing of the student's runs after this


if __name__ == "__main__":
    sys.exit(main())
