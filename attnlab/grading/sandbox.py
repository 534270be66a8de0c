"""Run one submission in a sandboxed child process, and read back what it returned as data.

Three modes, chosen once per grading run by :func:`plan`:

``root``
    The grader runs as root. Each child starts in new PID, mount and network
    namespaces (``unshare``) under :mod:`attnlab.grading.jail`, which makes every
    mount read-only except the child's own work folder (bound onto its private
    ``/tmp``), hides the other submissions, the work folders and a course's own
    tests, sets resource limits and becomes the job's own unprivileged uid (one
    uid per concurrent job; or ``--sandbox-user``'s).
``user-namespace``
    The grader runs as an ordinary user. The same, inside a new user namespace
    in which the child is mapped to the grader's own uid and then drops every
    capability: the read-only mounts, not the uid, keep it from writing the
    grader's files; the PID namespace keeps it from signalling the grader.
``root-uid``
    The grader runs as root where namespaces are not allowed (a Docker container
    with the default seccomp profile, such as Gradescope's): each child becomes
    its job's own unprivileged uid in its own session, with the same resource
    limits; when it ends, every process of that uid is killed. File permissions,
    not a read-only view, protect the grader's files; the network is cut only by a
    guard on Python's sockets.
``unsafe``
    No namespaces (not Linux, or they are disabled), and only with
    ``unsafe_same_user=True``: the child runs as the grader's user in its own
    session with resource limits. It could then write what that user can write,
    signal the grader, and leave processes behind. For trusted work only.

In every mode the child's stdout and stderr are drained into capped buffers,
every wait has a deadline, the child's results are files whose names the parent
chose, opened without following links, checked to be regular files and read
with a byte cap, ``.npz`` members checked for their declared size and dtype
before loading, never unpickled; and the work folder is removed.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import pwd
import resource
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.grading.results import LIMITS, ChildOutput, read_results

__all__ = ["ChildOutput", "Sandbox", "SandboxError", "plan", "run_submission", "preflight"]

JAIL = Path(__file__).with_name("jail.py")
SETUP_FAILED = 70  # the jail's exit status when the sandbox could not be set up
UID_BASE = 2_900_000  # the uids of the jobs (not in /etc/passwd; nothing else uses them)


class SandboxError(Exception):
    """The sandbox cannot be used as asked (a usage problem, not a student's)."""


@dataclass(frozen=True)
class Sandbox:
    """How children are isolated in this grading run (see the module's docstring)."""

    mode: str  # "root", "user-namespace", "root-uid" or "unsafe"
    uid: int | None = None  # --sandbox-user: one uid for every job (root mode)
    uid_base: int = UID_BASE  # else job k runs as uid_base + k (root mode)
    hide: tuple[str, ...] = ()  # paths a child must not see

    def uid_for(self, slot: int) -> int | None:
        if self.mode not in ("root", "root-uid"):
            return None
        return self.uid if self.uid is not None else self.uid_base + slot

    @property
    def guarantees(self) -> str:
        return {
            "root": "each submission in its own PID, mount and network namespaces, as its own "
                    "unprivileged user, with a read-only view of the system",
            "user-namespace": "each submission in its own user, PID, mount and network "
                              "namespaces, without capabilities, with a read-only view of the "
                              "system",
            "root-uid": "each submission as its own unprivileged user in its own session "
                        "(no namespaces here), its processes killed when it ends",
            "unsafe": "NO isolation from the grader's user: submissions run as that user in "
                      "their own session with resource limits only",
        }[self.mode]


# ---------------------------------------------------------------------------- the plan


def _namespace_prefix(user: bool) -> list[str]:
    prefix = ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--mount",
              "--propagation", "private"]
    return prefix + (["--user", "--map-root-user"] if user else [])


def _namespaces_work(user: bool) -> bool:
    # ATTNLAB_SANDBOX_NO_NAMESPACES=1 grades as where they are not allowed (to check that path)
    if os.environ.get("ATTNLAB_SANDBOX_NO_NAMESPACES") == "1":
        return False
    return _namespaces_available(user)


@functools.lru_cache(maxsize=2)
def _namespaces_available(user: bool) -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    try:
        proc = subprocess.run([*_namespace_prefix(user), "true"], capture_output=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _uid_of(user: str) -> int:
    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise SandboxError(f"--sandbox-user: there is no user {user!r}") from None


def plan(*, unsafe_same_user: bool = False, sandbox_user: str | None = None,
         hide: tuple[str, ...] = ()) -> Sandbox:
    """Choose the sandbox for this machine and user (see the module's docstring).

    Raises:
        SandboxError: no isolation is possible here and ``unsafe_same_user`` is not set,
            or ``sandbox_user`` is given but the grader is not root.
    """
    root = os.geteuid() == 0
    if sandbox_user is not None and not root:
        raise SandboxError("--sandbox-user needs the grader to run as root (only root can "
                           "run a submission as another user)")
    if root and _namespaces_work(user=False):
        uid = _uid_of(sandbox_user) if sandbox_user is not None else None
        if uid == 0:
            raise SandboxError("--sandbox-user must not be root")
        # one range of uids per grading process: two graders at once never share a uid
        base = UID_BASE + (os.getpid() % 4096) * 256
        return Sandbox("root", uid=uid, uid_base=base, hide=hide)
    if not root and _namespaces_work(user=True):
        return Sandbox("user-namespace", hide=hide)
    if root and sys.platform == "linux":
        uid = _uid_of(sandbox_user) if sandbox_user is not None else None
        base = UID_BASE + (os.getpid() % 4096) * 256
        return Sandbox("root-uid", uid=uid, uid_base=base, hide=hide)
    if unsafe_same_user:
        return Sandbox("unsafe", hide=hide)
    raise SandboxError(
        "cannot isolate submissions here: Linux namespaces (unshare --pid --mount --net"
        f"{'' if root else ' --user'}) are not available, so a submission could write "
        "your files, signal the grader and leave processes running. Grade in a Linux "
        "container or VM where they are (as root, or with unprivileged user namespaces "
        "enabled), or pass --unsafe-same-user to grade trusted notebooks without isolation.")


# ---------------------------------------------------------------------------- the child


def _child_env(workdir: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir,
            "TMPDIR": workdir, "MPLBACKEND": "Agg", "MPLCONFIGDIR": workdir,
            "IPYTHONDIR": os.path.join(workdir, ".ipython"), "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATTNLAB_GRADING": "1",
            "USER": "attnlab-sandbox", "LOGNAME": "attnlab-sandbox", "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def _die_with_parent() -> None:  # runs in the child before exec
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _session_limits(cpu_seconds: int, memory_bytes: int, uid: int | None) -> None:
    """In the child before exec, without namespaces: limits, then (as root) the job's uid."""
    _die_with_parent()
    for name, value in _rlimits(cpu_seconds, memory_bytes, processes=uid is not None).items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)


def _rlimits(cpu_seconds: int, memory_bytes: int, processes: bool = True) -> dict[str, int]:
    limits = {"RLIMIT_CPU": cpu_seconds, "RLIMIT_AS": memory_bytes,
              "RLIMIT_FSIZE": LIMITS.file_mb * 2**20, "RLIMIT_CORE": 0,
              "RLIMIT_NOFILE": LIMITS.open_files}
    if processes:
        limits["RLIMIT_NPROC"] = LIMITS.processes
    return limits


def _command(sandbox: Sandbox, workdir: Path, slot: int, cpu_seconds: int,
             memory_mb: int) -> list[str]:
    runner = [sys.executable, "-m", "attnlab.grading.runner", "request.json"]
    if sandbox.mode in ("unsafe", "root-uid"):
        return runner
    config = {"workdir": str(workdir), "uid": sandbox.uid_for(slot),
              "hide": list(sandbox.hide), "covers": _covers(sandbox.uid_for(slot)),
              "scratch_mb": LIMITS.scratch_mb,
              "limits": _rlimits(cpu_seconds, memory_mb * 2**20), "command": runner}
    (workdir / "jail.json").write_text(json.dumps(config))
    return [*_namespace_prefix(sandbox.mode == "user-namespace"), "--", sys.executable, "-I",
            "-S", str(JAIL), str(workdir / "jail.json")]


def _needed() -> list[str]:
    """The folders the grader's Python reads: its prefixes, attnlab, ``sys.path``."""
    import attnlab

    needed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix,
                                            os.path.dirname(sys.executable),
                                            os.path.dirname(os.path.dirname(attnlab.__file__)))}
    folders = [p for p in sys.path if p and os.path.isdir(p)]
    needed |= {os.path.realpath(p) for p in folders}
    for folder in folders:  # packages linked into a folder on the path live where they point
        try:
            needed |= {os.path.realpath(e.path) for e in os.scandir(folder) if e.is_symlink()}
        except OSError:
            pass
    return sorted(needed)


def _can_enter(path: str, uid: int | None) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return True  # nothing to cover: it is not there
    return uid is None or info.st_uid == uid or bool(info.st_mode & stat.S_IXOTH)


@functools.lru_cache(maxsize=8)
def _covers(uid: int | None) -> dict[str, list[str]]:
    """Folders to cover in the child, each with the needed paths to bind back into it.

    ``/tmp`` is always the child's own; a folder that ``uid`` cannot enter (``/root``
    holding a pyenv Python, a ``mktemp -d`` folder of mode 700) is covered with an
    empty tmpfs into which only the grader's Python is bound, read-only.
    """
    covers: dict[str, list[str]] = {}
    for path in _needed():
        parts = Path(path).parts
        cover = None
        for k in range(2, len(parts) + 1):
            folder = os.path.join(*parts[:k])
            if folder == "/tmp" or not _can_enter(folder, uid):
                cover = folder
                break
        if cover is None or cover == path:
            continue
        covers.setdefault(cover, []).append(path)
    # a needed path inside another one comes with it
    return {c: [p for p in ps if not any(q != p and p.startswith(q + "/") for q in ps)]
            for c, ps in covers.items()}


class _Drain:
    """Read a child's stdout and stderr as they come, keeping at most ``cap`` bytes of each."""

    def __init__(self, proc: subprocess.Popen[bytes], cap: int) -> None:
        self.cap = cap
        self.data = {"stdout": bytearray(), "stderr": bytearray()}
        self.sel = selectors.DefaultSelector()
        for name in self.data:
            stream = getattr(proc, name)
            os.set_blocking(stream.fileno(), False)
            self.sel.register(stream, selectors.EVENT_READ, name)

    def pump(self, until: float) -> None:
        """Read until both streams close or ``until`` (a monotonic time) passes."""
        while self.sel.get_map() and time.monotonic() < until:
            for key, _ in self.sel.select(timeout=max(0.0, min(0.2, until - time.monotonic()))):
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    self.sel.unregister(key.fileobj)
                    continue
                buf = self.data[key.data]
                if len(buf) < self.cap:
                    buf += chunk[: self.cap - len(buf)]

    def close(self) -> None:
        for key in list(self.sel.get_map().values()):
            self.sel.unregister(key.fileobj)
        self.sel.close()

    def text(self, name: str) -> str:
        return self.data[name].decode("utf-8", "replace")


def _kill(proc: subprocess.Popen[bytes], sandbox: Sandbox) -> None:
    # in the namespaces, killing `unshare` kills process 1 of the PID namespace (--kill-child),
    # and with it every process of the submission; without them, the whole session
    try:
        if sandbox.mode in ("unsafe", "root-uid"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass


def _leftovers(uid: int) -> list[int]:
    """Processes that still run as ``uid`` (there should be none once a child is done)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _remove(path: Path) -> None:
    def unlock(func: Any, p: str, exc: Any) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
        except OSError:
            pass
        try:
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=unlock)


def run_submission(notebook: dict[str, Any], probes: list[dict[str, Any]],
                   arrays: dict[str, np.ndarray], *, sandbox: Sandbox, base: Path,
                   slot: int = 0, timeout: float = 120.0, cell_timeout: float | None = None,
                   call_timeout: float | None = None, memory_mb: int = 6144) -> ChildOutput:
    """Run ``notebook`` in a sandboxed child, call the probed functions, read their results.

    Args:
        notebook: the submission, already parsed (a dict in nbformat 4).
        probes: what to call or read, with encoded arguments.
        arrays: the arrays the encoded arguments refer to.
        sandbox: the plan of this grading run (:func:`plan`).
        base: the grader's private folder for work folders (mode 700).
        slot: which concurrent job this is (its uid in root mode).
        timeout: wall-clock seconds for the whole child.
        cell_timeout: seconds each code cell may run (default ``timeout / 2``).
        call_timeout: seconds each call of a student's function may run
            (default ``timeout / 4``).
        memory_mb: the address-space limit.
    """
    token = secrets.token_hex(8)
    workdir = Path(tempfile.mkdtemp(prefix=f"job{slot}-", dir=base))
    uid = sandbox.uid_for(slot)
    try:
        (workdir / "submission.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
        np.savez(workdir / "inputs.npz", **arrays)
        request = {"token": token, "notebook": "submission.ipynb", "inputs": "inputs.npz",
                   "probes": probes,
                   "network_isolated": sandbox.mode in ("root", "user-namespace"),
                   "cell_timeout": cell_timeout if cell_timeout is not None else timeout / 2,
                   "call_timeout": call_timeout if call_timeout is not None else timeout / 4}
        (workdir / "request.json").write_text(json.dumps(request))
        for p in workdir.iterdir():
            p.chmod(0o644)
        if uid is not None:
            os.chown(workdir, uid, uid)
        cpu = int(timeout) + 1
        cmd = _command(sandbox, workdir, slot, cpu, memory_mb)
        jailed = sandbox.mode in ("root", "user-namespace")
        env = _child_env("/tmp" if jailed else str(workdir))
        try:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=workdir, env=env, start_new_session=True,
                preexec_fn=(_die_with_parent if jailed else
                            functools.partial(_session_limits, cpu, memory_mb * 2**20, uid)))
        except OSError as err:
            return ChildOutput(error=f"the grading process could not start ({err})",
                               internal=True)
        drain = _Drain(proc, LIMITS.output_bytes)
        deadline = time.monotonic() + timeout
        timed_out = False
        try:
            while proc.poll() is None:
                if time.monotonic() >= deadline:
                    timed_out = True
                    _kill(proc, sandbox)
                    break
                drain.pump(until=min(deadline, time.monotonic() + 0.5))
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(proc, sandbox)
                proc.wait(timeout=10)
            drain.pump(until=time.monotonic() + 1.0)  # what is left, but never wait on a pipe
        finally:
            drain.close()
            proc.stdout.close()  # type: ignore[union-attr]
            proc.stderr.close()  # type: ignore[union-attr]
        if uid is not None and sandbox.uid is None:
            for pid in _leftovers(uid):  # belt and braces: the namespace already ended them
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        out = read_results(workdir, token, len(probes))
        if proc.returncode == SETUP_FAILED and not out.cells_ran:
            out.error = ("the sandbox could not be set up (a problem of the grading machine, "
                         f"not of the notebook): {drain.text('stderr').strip()[-500:]}")
            out.internal = True
        elif timed_out:
            where = ("while its cells ran" if not out.cells_ran else
                     f"after {len(out.answers)} of {len(probes)} questions were answered")
            out.error = f"timed out after {timeout:g} s {where}: is there an endless loop?"
        elif (not out.cells_ran or len(out.answers) < len(probes)) and out.error is None:
            out.error = _why(proc.returncode, drain.text("stderr"), memory_mb)
        return out
    finally:
        _remove(workdir)


def _why(returncode: int, stderr: str, memory_mb: int) -> str:
    tail = (stderr or "").strip().splitlines()[-1:] or [""]
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU,
                      128 + signal.SIGKILL):
        return "stopped at the CPU time limit: is there an endless loop?"
    if "MemoryError" in (stderr or "") or "std::bad_alloc" in (stderr or ""):
        return f"ran out of memory (limit {memory_mb} MB)"
    return ("the notebook ended the grading process before its functions could be tested "
            f"(exit status {returncode}; does it call os._exit or kill itself?) "
            f"{tail[0][:300]}").strip()


# ---------------------------------------------------------------------------- before grading


def preflight(sandbox: Sandbox, base: Path, timeout: float = 60.0) -> None:
    """Check once, before grading, that the sandbox can run the grader's Python.

    Raises:
        SandboxError: it cannot (e.g. the sandbox user cannot read the environment),
            with the path at fault and what to do.
    """
    probe = {"cells": [{"cell_type": "code", "id": "preflight", "metadata": {},
                        "source": "import numpy, torch, attnlab", "outputs": [],
                        "execution_count": None}], "nbformat": 4, "nbformat_minor": 5,
             "metadata": {}}
    out = run_submission(probe, [], {}, sandbox=sandbox, base=base, slot=0, timeout=timeout)
    if out.cells_ran and not out.cell_errors:
        return
    uid = sandbox.uid_for(0)
    unreadable = _unreadable_path(uid if uid is not None else os.geteuid())
    if unreadable is not None:
        path, mode, owner = unreadable
        who = f"the sandbox user (uid {uid})" if uid is not None else \
            f"the grader's own user (uid {os.geteuid()}), as which submissions run,"
        raise SandboxError(
            f"{who} cannot read {path} (mode {mode:o}, owner {owner}), "
            "which the grader's Python needs, so every submission would fail. Make it "
            f"readable by other users (chmod o+rx {path}), install the environment in a "
            "folder others can read, or run submissions as a user who can read it "
            "(--sandbox-user NAME).")
    detail = "; ".join(f"{e['type']}: {e['message']}" for e in out.cell_errors) or out.error
    if "No module named" in (detail or ""):
        raise SandboxError(f"the grader's Python cannot import what grading needs ({detail}); "
                           "install attnlab with its dependencies (pip install attnlab)")
    raise SandboxError(f"the sandbox cannot run the grader's Python ({detail}); "
                       f"sandbox: {sandbox.guarantees}")


def _unreadable_path(uid: int) -> tuple[str, int, str] | None:
    """The first folder or file the grader's Python needs that ``uid`` cannot read."""
    import attnlab

    needed = [Path(sys.executable), Path(sys.executable).resolve(), Path(sys.prefix),
              Path(attnlab.__file__).parent]
    needed += [Path(p) for p in sys.path if p and Path(p).exists()]
    for target in needed:
        parts = [target, *target.parents][::-1]
        for p in parts:
            try:
                info = p.stat()
            except OSError:
                continue
            if info.st_uid == uid:
                continue
            need = (stat.S_IXOTH | stat.S_IROTH) if p.is_dir() else stat.S_IROTH
            if info.st_mode & need != need:
                try:
                    owner = pwd.getpwuid(info.st_uid).pw_name
                except KeyError:
                    owner = str(info.st_uid)
                return str(p), stat.S_IMODE(info.st_mode), owner
    return None
