"""Run one submission in a sandboxed child process.

The child (:mod:`attnlab.grading.runner`) gets

- its own process session, so a timeout kills it and everything it started;
- resource limits: CPU time, address space, file size, open files, no core dumps;
- a wall-clock time limit;
- a throw-away working folder as its home, current and temporary directory;
- no network: a new, empty network namespace (``unshare --net``) where Linux
  allows it, else a guard on Python's sockets (best effort);
- when the grader runs as root: the identity of the unprivileged user
  ``nobody`` (``setpriv``), so it cannot write to the grader's files or read
  tests bundles that only their owner may read.

It receives the inputs of the tests, never their expected outputs, and
returns plain data.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ChildOutput", "run_submission", "isolation"]

NOBODY = 65534


@dataclass
class ChildOutput:
    """What came back from the child."""

    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    cell_errors: list[str] = field(default_factory=list)
    log: str = ""
    error: str | None = None  # why nothing (or not everything) came back


@functools.lru_cache(maxsize=1)
def isolation() -> tuple[list[str], bool]:
    """The command prefix that isolates the child, and whether the network is cut off."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return [], False
    prefixes = [["unshare", "--net"], ["unshare", "--net", "--map-root-user"]]
    for prefix in prefixes:
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            if os.geteuid() == 0 and prefix == prefixes[0] and shutil.which("setpriv"):
                return [*prefix, "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                        "--clear-groups", "--"], True
            return [*prefix, "--"], True
    return [], False


def _limits(cpu_seconds: int, memory_bytes: int) -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 2**20, 256 * 2**20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))


def run_submission(notebook: dict[str, Any], probes: list[dict[str, Any]],
                   arrays: dict[str, np.ndarray], *, timeout: float = 120.0,
                   memory_mb: int = 6144) -> ChildOutput:
    """Run ``notebook`` in a sandboxed child and call the probed functions.

    Args:
        notebook: the submission, already parsed (a dict in nbformat 4).
        probes: what to call or read, with encoded arguments.
        arrays: the arrays the encoded arguments refer to.
        timeout: wall-clock seconds for the whole child.
        memory_mb: the address-space limit.
    """
    prefix, isolated = isolation()
    workdir = Path(tempfile.mkdtemp(prefix="attnlab-grade-"))
    try:
        token = secrets.token_hex(8)
        (workdir / "submission.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
        np.savez(workdir / f"inputs-{token}.npz", **arrays)
        results = workdir / f"results-{token}.json"
        request = {"workdir": str(workdir), "notebook": str(workdir / "submission.ipynb"),
                   "inputs": str(workdir / f"inputs-{token}.npz"), "results": str(results),
                   "probes": probes, "network_isolated": isolated}
        if "setpriv" in prefix:
            os.chown(workdir, NOBODY, NOBODY)
            for p in workdir.iterdir():
                os.chown(p, NOBODY, NOBODY)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
               "TMPDIR": str(workdir), "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(workdir),
               "IPYTHONDIR": str(workdir / ".ipython"), "PYTHONDONTWRITEBYTECODE": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATTNLAB_GRADING": "1",
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        cmd = [*prefix, sys.executable, "-m", "attnlab.grading.runner"]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=workdir, env=env, start_new_session=True, text=True,
            preexec_fn=functools.partial(_limits, int(timeout) + 1, memory_mb * 2**20),
        )
        try:
            _, stderr = proc.communicate(json.dumps(request), timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return ChildOutput(error=f"timed out after {timeout:g} s: is there an endless loop?")
        if not results.exists():
            return ChildOutput(error=_why(proc.returncode, stderr, memory_mb))
        data = json.loads(results.read_text())
        with np.load(workdir / data["arrays"], allow_pickle=False) as npz:
            out_arrays = {k: npz[k] for k in npz.files}
        return ChildOutput(answers=data["answers"], arrays=out_arrays,
                           cell_errors=data["cell_errors"], log=data["log"])
    except (json.JSONDecodeError, KeyError, ValueError, OSError) as err:
        return ChildOutput(error=f"the grading process returned unreadable results ({err})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _why(returncode: int, stderr: str, memory_mb: int) -> str:
    tail = (stderr or "").strip().splitlines()[-1:] or [""]
    if returncode == -signal.SIGXCPU or returncode == -signal.SIGKILL:
        return "stopped at the CPU time limit: is there an endless loop?"
    if "MemoryError" in (stderr or "") or "std::bad_alloc" in (stderr or ""):
        return f"ran out of memory (limit {memory_mb} MB)"
    return ("the notebook ended the grading process before its functions could be tested "
            f"(exit status {returncode}; does it call os._exit or kill itself?) {tail[0]}").strip()
