"""The sandboxed child: run a submission's cells, call its functions, write the results as data.

Started by :mod:`attnlab.grading.sandbox` as ``python -m attnlab.grading.runner
REQUEST`` in the submission's private work folder (its ``/tmp`` when the jail
of :mod:`attnlab.grading.jail` is used). It reads the request (JSON), then runs
the student's code. It never compares anything and never sees the expected
results: it writes what the student's functions returned, as data, into files
whose names the grader chose:

- ``cells-TOKEN.json`` once the cells have run: their errors and the printed log;
- ``answers-TOKEN-I.json`` (+ ``arrays-TOKEN-I.npz``) for the I-th question, as
  soon as it is answered, so that a later hang costs only what it stopped.

Each cell runs under a time limit (``cell_timeout``) and each call of a student's
function under another (``call_timeout``): a cell that loops forever is stopped
and reported, and the answers defined before it are still graded.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["main", "forbidden_calls"]

_LOG_LIMIT = 20_000  # characters of the student's output kept for the report
_TEXT_LIMIT = 500  # characters of one error message


class _Stopped(BaseException):
    """Raised by the alarm when a cell or a call runs past its time limit."""


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


class _GuardedSocket(socket.socket):
    """A socket that cannot reach the network (a guard where no namespace cuts it off).

    It stays a class, so that modules which subclass ``socket.socket`` (``ssl``, imported
    by torch) still import; only internet sockets are refused when used.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _no_network()
        return None

    def connect(self, address: Any) -> None:
        self._refuse()
        super().connect(address)

    def connect_ex(self, address: Any) -> int:
        self._refuse()
        return super().connect_ex(address)

    def sendto(self, *args: Any) -> int:
        self._refuse()
        return super().sendto(*args)

    def bind(self, address: Any) -> None:
        self._refuse()
        super().bind(address)


class _Alarm:
    """``with _Alarm(seconds):`` raises :class:`_Stopped` inside the block after ``seconds``."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    def _ring(self, signum: int, frame: Any) -> None:
        raise _Stopped()

    def __enter__(self) -> _Alarm:
        if self.seconds:
            signal.signal(signal.SIGALRM, self._ring)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _cell_line(error: BaseException) -> int | None:
    if isinstance(error, SyntaxError):
        return error.lineno
    line = None
    for frame, lineno in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_filename.startswith(("<ipython-input", "<cell")):
            line = lineno
    return line


def _run_cells(cells: list[dict[str, Any]], cell_timeout: float | None
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="nocolor")
    errors: list[dict[str, Any]] = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if not source.strip():
            continue
        try:
            with _Alarm(cell_timeout):
                result = shell.run_cell(source, store_history=False, silent=True)
        except _Stopped:
            errors.append({"cell": index + 1, "type": "Timeout", "line": None,
                           "message": f"stopped after {cell_timeout:g} s (an endless loop?)"})
            continue
        error = result.error_before_exec or result.error_in_exec
        if isinstance(error, _Stopped):
            errors.append({"cell": index + 1, "type": "Timeout", "line": None,
                           "message": f"stopped after {cell_timeout:g} s (an endless loop?)"})
        elif error is not None:
            errors.append({"cell": index + 1, "type": type(error).__name__,
                           "line": _cell_line(error), "message": str(error)[:_TEXT_LIMIT]})
    return shell.user_ns, errors


def _probe(namespace: dict[str, Any], probe: dict[str, Any], arrays: Any,
           out_arrays: dict[str, Any], call_timeout: float | None) -> list[dict[str, Any]]:
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
            with _Alarm(call_timeout):
                value = fn(*args, **kwargs)
                results.append({"value": encode(value, out_arrays)})
        except _Stopped:
            results.append({"error": f"Timeout: the call took longer than {call_timeout:g} s"})
        except EncodeError as err:
            results.append({"error": f"TypeError: {err}"})
        except BaseException as err:  # noqa: BLE001 - SystemExit too: it is the student's
            results.append({"error": f"{type(err).__name__}: {err}"[:_TEXT_LIMIT]})
    return results


def _resolve(dotted: str) -> Any:
    import importlib

    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _chain(node: Any) -> list[str] | None:
    import ast

    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(names)]
    return [""] + list(reversed(names)) if names else None  # a call on an expression


def forbidden_calls(fn: Any, forbidden: list[str], depth: int = 3) -> list[str]:
    """The ``forbidden`` dotted names that ``fn``'s code calls (its own helpers too).

    Reads the function's source (the AST, not a run): each call's target is resolved
    in the function's globals and compared with the forbidden objects; a method
    called on a local value (``x.softmax(...)``) counts when ``torch.Tensor.<name>``
    is forbidden.
    """
    import ast
    import builtins as _builtins
    import inspect
    import textwrap

    targets: dict[str, Any] = {}
    for name in forbidden:
        try:
            targets[name] = _resolve(name)
        except (ImportError, AttributeError):
            targets[name] = None
    found: list[str] = []
    seen: set[int] = set()

    def visit(f: Any, level: int) -> None:
        code = getattr(f, "__code__", None)
        if code is None or id(code) in seen or level > depth:
            return
        seen.add(id(code))
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(f)))
        except (OSError, TypeError, SyntaxError):
            return
        scope = {**vars(_builtins), **getattr(f, "__globals__", {})}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            chain = _chain(node.func)
            if chain is None:
                continue
            obj: Any = scope.get(chain[0], None) if chain[0] else None
            resolved = chain[0] in scope
            for attr in chain[1:]:
                if not resolved:
                    break
                try:
                    obj = getattr(obj, attr)
                except Exception:  # noqa: BLE001 - the student's objects
                    resolved = False
            for name, target in targets.items():
                if name in found:
                    continue
                if resolved and target is not None and obj is target:
                    found.append(name)
                elif (not resolved and len(chain) > 1 and name.startswith("torch.Tensor.")
                      and chain[-1] == name.rsplit(".", 1)[1]):
                    found.append(name)
            if resolved and inspect.isfunction(obj) and getattr(obj, "__module__", "") in (
                    "__main__", None) and level < depth:
                visit(obj, level + 1)

    visit(fn, 0)
    return found


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def main() -> int:
    with open(sys.argv[1] if len(sys.argv) > 1 else "request.json", encoding="utf-8") as f:
        request = json.load(f)
    sys.stdin.close()
    sys.stdin = open(os.devnull)  # noqa: SIM115
    token = request["token"]
    os.environ["ATTNLAB_GRADING"] = "1"  # check() cells do nothing here
    os.environ.setdefault("MPLBACKEND", "Agg")
    if not request.get("network_isolated", False):
        socket.socket = _GuardedSocket  # type: ignore[misc]  # best effort only
        socket.create_connection = _no_network  # type: ignore[assignment]

    import numpy as np

    with open(request["notebook"], encoding="utf-8") as f:
        notebook = json.load(f)
    inputs = np.load(request["inputs"], allow_pickle=False)
    here = Path.cwd()

    real_stdout, real_stderr = sys.stdout, sys.stderr
    saved_builtins = dict(builtins.__dict__)  # a notebook that breaks them hurts only itself
    log = _CappedWriter()
    sys.stdout = sys.stderr = log
    try:
        namespace, errors = _run_cells(notebook["cells"], request.get("cell_timeout"))
        builtins.__dict__.clear()
        builtins.__dict__.update(saved_builtins)
        sys.stdout, sys.stderr = real_stdout, real_stderr
        _write_json(here / f"cells-{token}.json", {"cell_errors": errors, "log": log.text()})
        sys.stdout = sys.stderr = log
        for i, probe in enumerate(request["probes"]):
            out_arrays: dict[str, Any] = {}
            answers = _probe(namespace, probe, inputs, out_arrays, request.get("call_timeout"))
            builtins.__dict__.clear()
            builtins.__dict__.update(saved_builtins)
            record: dict[str, Any] = {"answers": answers}
            if probe.get("forbidden") and callable(namespace.get(probe["name"])):
                try:
                    record["forbidden"] = forbidden_calls(namespace[probe["name"]],
                                                          probe["forbidden"])
                except Exception:  # noqa: BLE001 - an unreadable function is not a verdict
                    record["forbidden"] = []
            np.savez(here / f"arrays-{token}-{i}.part.npz", **out_arrays)
            os.replace(here / f"arrays-{token}-{i}.part.npz", here / f"arrays-{token}-{i}.npz")
            _write_json(here / f"answers-{token}-{i}.json", record)
    finally:
        builtins.__dict__.clear()
        builtins.__dict__.update(saved_builtins)
        sys.stdout, sys.stderr = real_stdout, real_stderr
    real_stdout.flush()
    os._exit(0)  # skip interpreter teardown: nothing of the student's runs after this


if __name__ == "__main__":
    sys.exit(main())
