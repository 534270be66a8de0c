"""Shared fixtures: where the repository is, and how to run its tools."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# Triton decorates its kernels when attnlab.triton_attention is first imported, whichever test
# imports it first: without CUDA they must be the interpreter's (TRITON_INTERPRET=1), set here,
# before any test module is collected.
if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A command installed beside the running Python (the project's venv)."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run `make test`, which installs requirements.txt")
    return found


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 900,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command, returning its completed process with output captured."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def notebooks() -> list[Path]:
    """Every notebook that nbval re-runs: the chapters and the solutions."""
    return sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("solutions/*.ipynb")])


@pytest.fixture
def one_thread():
    """Torch on one thread for a test, restored after: small models only wait for a second
    thread (the cores may be busy), and one thread makes their results exact."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def html(tmp_path_factory) -> Path:
    """The book built from a clean folder, warnings as errors (shared by the book tests).

    `make test` runs two pytest-xdist workers, and the book tests and the browser tests may
    land on different ones: the first worker to ask builds the book in the run's shared temporary
    folder, under a lock, and the other waits for it and reads the same build (or its failure).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out, record = shared / "book", shared / "book-build.json"
    with open(shared / "book.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            out.mkdir(exist_ok=True)
            proc = run([tool("jupyter-book"), "build", str(ROOT), "--path-output", str(out),
                        "-W", "-n", "--keep-going"])
            record.write_text(json.dumps({"returncode": proc.returncode,
                                          "log": proc.stdout[-6000:] + proc.stderr[-6000:]}))
        built = json.loads(record.read_text())
    assert built["returncode"] == 0, f"book build failed:\n{built['log']}"
    return out / "_build" / "html"
