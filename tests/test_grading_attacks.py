"""Hostile submissions against the grader's trust boundary, and what an instructor sees.

Each attack is a notebook built from exercise set 1 (the solution or the blank
student notebook, with code cells added) and graded in the same batch as an
honest copy of the solution, which must keep its 10 points. The grader runs in
a subprocess that this file watches for time and memory: an attack that hangs
it, blows up its memory or kills it fails the test instead of the test run.
What the sandboxed child saw comes back through a student function that
raises: the grader quotes the error in that question's feedback.

Long-lived processes that an attack starts carry a unique token on their
command line, so the tests can check that none survives its row, and clean up
after a grader that leaves them behind.
"""

from __future__ import annotations

import copy
import csv
import ctypes
import html
import importlib.util
import io
import json
import os
import pickle
import re
import secrets
import shutil
import signal
import string
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the attacks use fork, FIFOs and /proc (Linux)")

SOLUTION = ROOT / "solutions" / "01_softmax.ipynb"
BLANK = ROOT / "exercises" / "01_softmax.ipynb"
SET = "01_softmax"
FULL = 10.0  # the points of set 1
NOBODY = 65534
# How much the grader's peak memory may grow while it grades the attacks, over its peak after
# grading an honest notebook alone (about 300 MB, most of it torch). Each attack, if it got
# through, would add at least 100 MB: the output flood is 100 MB a stream, the zip bomb 2 GB.
ATTACK_GROWTH_MB = 60


# ---------------------------------------------------------------- notebooks


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def code(template: str, **values: Any) -> str:
    """Python source with ``$name`` replaced by ``repr(value)``."""
    return string.Template(template).substitute({k: repr(v) for k, v in values.items()})


def notebook(base: Path, *cells: str, first: str | None = None,
             replace: dict[str, str] | None = None) -> dict[str, Any]:
    """``base`` with code cells appended (and one put first, and some cells' code replaced)."""
    nb = copy.deepcopy(load(base))
    missing = set(replace or {}) - {c.get("id") for c in nb["cells"]}
    assert not missing, f"{base.name} has no cells with ids {sorted(missing)}"
    for cell in nb["cells"]:
        if cell.get("id") in (replace or {}):
            cell["source"] = replace[cell["id"]]  # type: ignore[index]
    new = [{"cell_type": "code", "id": f"added-{i}", "metadata": {}, "execution_count": None,
            "outputs": [], "source": src} for i, src in enumerate(cells)]
    nb["cells"] += new
    if first is not None:
        nb["cells"].insert(0, {"cell_type": "code", "id": "added-first", "metadata": {},
                               "execution_count": None, "outputs": [], "source": first})
    return nb


def save(folder: Path, name: str, nb: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


# Forks ``code`` into a fresh Python in a new session, twice, so that init adopts it;
# the token rides on its command line. With ``ready``, waits (10 s at most) until the
# new process has created that file: the attack is in place before the notebook goes on.
DETACH = '''
import os, sys, time

def _detach(code, *args, keep_stdio=False, ready=None):
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                if not keep_stdio:
                    null = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                os.execv(sys.executable, [sys.executable, "-c", code, *args])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    end = time.time() + 10
    while ready and not os.path.exists(ready) and time.time() < end:
        time.sleep(0.01)
'''

# Replaces every regular file that appears in its working folder (the child's), for 20 s,
# reacting through inotify: argv = token, ready file, mode (fifo | link | fake | bomb), target.
WATCHER = r'''
import ctypes, os, select, stat, sys, time
ready, mode, target = sys.argv[2:5]
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK)
if fd >= 0:
    libc.inotify_add_watch(fd, b".", 0x8 | 0x80 | 0x100)
open(ready, "w").close()
bomb = os.stat(target).st_ino if mode == "bomb" else None

def swap(name):
    if name.endswith(".ipynb") or name.startswith(".attack"):
        return
    try:
        st = os.lstat(name)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode) or st.st_ino == bomb:
        return
    tmp = ".attack-" + name
    try:
        if mode == "fifo":
            os.unlink(name)
            os.mkfifo(name)
        elif mode == "bomb":
            if name.endswith(".npz"):
                os.link(target, tmp)
                os.replace(tmp, name)
        else:
            to = target
            if mode == "fake":
                to = os.path.join(target, "fake.npz" if name.endswith(".npz") else "fake.json")
            os.symlink(to, tmp)
            os.replace(tmp, name)
    except OSError:
        pass

end = time.time() + 20
while time.time() < end:
    if fd >= 0:
        select.select([fd], [], [], 0.005)
        try:
            os.read(fd, 65536)
        except OSError:
            pass
    else:
        time.sleep(0.002)
    try:
        names = os.listdir(".")
    except OSError:
        break
    for name in names:
        swap(name)
'''

# A ~2 MB .npz whose one member inflates to ~2 GB of zeros (an .npy of 1900 MiB), written by
# hand: one deflate block of 1 MiB of zeros, flushed so that it can be repeated.
ZIP_BOMB = '''
import io, struct, zlib
import numpy as np

def _zip_bomb(path, mib=1900):
    n = mib << 20
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "|u1", "fortran_order": False, "shape": (n,)})
    head = head.getvalue()
    zeros = bytes(1 << 20)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zeros) + co.flush(zlib.Z_FULL_FLUSH)
    last = co.flush()
    crc = zlib.crc32(head)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    size, packed = len(head) + n, len(first) + mib * len(block) + len(last)
    name = b"a0.npy"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, packed, size,
                        len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc,
                          packed, size, len(name), 0, 0, 0, 0, 0, 0) + name
    with open(path, "wb") as f:
        f.write(local)
        f.write(first)
        for _ in range(mib):
            f.write(block)
        f.write(last)
        f.write(central)
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central),
                            len(local) + packed, 0))
'''


def watcher_cell(token: str, mode: str, target: str) -> str:
    start = "_zip_bomb('.attack-bomb')\n" if mode == "bomb" else ""
    target = ".attack-bomb" if mode == "bomb" else target
    return (DETACH + (ZIP_BOMB if mode == "bomb" else "") + start
            + code("_detach($watcher, $token, '.attack-ready-w', $mode, $target,"
                   " ready='.attack-ready-w')\n", watcher=WATCHER, token=token, mode=mode,
                   target=target))


def raising(function: str, message: str) -> str:
    """A student function that reports ``message`` (an f-string body) by raising."""
    return f"def {function}(*args, **kwargs):\n    raise RuntimeError(f{message!r})\n"


# ---------------------------------------------------------------- processes


def processes_with(token: str) -> list[int]:
    """The processes whose command line contains ``token``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _kill_tree(pid: int) -> None:
    """Kill ``pid`` and the processes it started that are still its descendants."""
    tree, todo, found = _children(), [pid], []
    while todo:
        p = todo.pop()
        found.append(p)
        todo += tree.get(p, [])
    for p in reversed(found):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def _peak_rss_mb(pid: int) -> float:
    """The peak RSS of ``pid``'s own program: 0 until it has exec'd (before, it is a copy of
    this test process, whose pages it shares)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f, open("/proc/self/cmdline", "rb") as me:
            if f.read() == me.read():
                return 0.0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@pytest.fixture
def token():
    """A unique token for an attack's processes; whatever carries it is killed afterwards."""
    value = "attnlab-attack-" + secrets.token_hex(6)
    yield value
    for pid in processes_with(value):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@dataclass
class Finished:
    """A supervised command: its exit status, output, time and peak memory."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    wall: float
    peak_rss_mb: float
    stopped: str | None  # why the supervisor killed it, if it did

    def describe(self) -> str:
        tail = self.stderr.decode("utf-8", "replace").strip()[-1500:]
        return (f"{self.stopped or f'exit status {self.returncode}'} after {self.wall:.1f} s, "
                f"peak {self.peak_rss_mb:.0f} MB; stderr: {tail}")


def supervise(cmd: list[str | bytes], *, cwd: Path = ROOT, env: dict[str, str] | None = None,
              limit_s: float = 150.0, rss_limit_mb: float = 1500.0,
              user: int | None = None, unset: tuple[str, ...] = ()) -> Finished:
    """Run ``cmd``, killing it (and its descendants) past ``limit_s`` or ``rss_limit_mb``."""
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        peak, stopped = 0.0, None
        while proc.poll() is None:
            peak = max(peak, _peak_rss_mb(proc.pid))
            if peak > rss_limit_mb:
                stopped = f"killed when its memory reached {peak:.0f} MB"
            elif time.monotonic() - start > limit_s:
                stopped = f"killed after running past {limit_s:g} s"
            if stopped:
                _kill_tree(proc.pid)
                break
            time.sleep(0.05)
        proc.wait()
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        return Finished(proc.returncode, out.read(), err.read(), wall, peak, stopped)


# ---------------------------------------------------------------- grading in a subprocess

# Calls grade() once per run; writes the rows, the time, the processes that carry the
# token when grade() returned, and the process's own peak memory.
_GRADER = r'''
import dataclasses, json, os, resource, sys, time
with open(sys.argv[1]) as f:
    spec = json.load(f)
from attnlab.grading.grade import grade

def carrying(token):
    pids = []
    for entry in os.listdir("/proc"):
        if token and entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids

def peak_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would count the test
    # process that forked this one
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

runs = []
for run in spec["runs"]:
    start = time.monotonic()
    try:
        rows, error = [dataclasses.asdict(r) for r in grade(run["paths"], **run["kwargs"])], None
    except Exception as err:
        rows, error = None, f"{type(err).__name__}: {err}"
    runs.append({"rows": rows, "error": error, "wall": time.monotonic() - start,
                 "left": carrying(spec["token"]), "peak_mb": peak_mb()})
with open(spec["out"], "w") as f:
    json.dump({"runs": runs, "peak_rss_mb": peak_mb()}, f)
'''


@dataclass
class Run:
    """One grade() call: its rows, or the exception it raised."""

    rows: list[SimpleNamespace] | None
    error: str | None
    wall: float
    left: list[int]  # processes carrying the token when grade() returned
    peak_mb: float = 0.0  # the grader's peak RSS (VmHWM) once this call returned

    def results(self, n: int) -> list[SimpleNamespace]:
        assert self.error is None, f"grade() raised {self.error}"
        assert self.rows is not None and len(self.rows) == n, (
            f"expected {n} rows, got {None if self.rows is None else len(self.rows)}")
        return self.rows


def grade_in_subprocess(runs: list[tuple[list[Path], dict[str, Any]]], tmp: Path, *,
                        token: str = "", limit_s: float = 150.0,
                        rss_limit_mb: float = 1500.0) -> tuple[list[Run], float]:
    """Grade each run in one watched subprocess; returns the runs and the grader's peak MB."""
    tmp.mkdir(parents=True, exist_ok=True)
    spec, out = tmp / "grade-spec.json", tmp / "grade-out.json"
    spec.write_text(json.dumps({"out": str(out), "token": token, "runs": [
        {"paths": [str(p) for p in paths], "kwargs": kwargs} for paths, kwargs in runs]}))
    done = supervise([sys.executable, "-c", _GRADER, str(spec)], limit_s=limit_s,
                     rss_limit_mb=rss_limit_mb)
    if done.returncode != 0 or not out.exists():
        pytest.fail(f"the grader did not finish: {done.describe()}")
    data = json.loads(out.read_text())
    result = []
    for r in data["runs"]:
        rows = None if r["rows"] is None else [SimpleNamespace(**row) for row in r["rows"]]
        result.append(Run(rows, r["error"], r["wall"], r["left"], r["peak_mb"]))
    return result, data["peak_rss_mb"]


def question(row: SimpleNamespace, name: str) -> dict[str, Any]:
    for q in row.questions:
        if q["name"] == name:
            return q
    raise AssertionError(f"{row.submission} has no question {name}: {row.questions}")


def assert_full_marks(row: SimpleNamespace) -> None:
    assert (row.score, row.max_score, row.error) == (FULL, FULL, None), (
        f"the honest solution {Path(row.submission).name} lost marks: score {row.score}, "
        f"error {row.error!r}, questions {row.questions}")


def grade_cli(args: list[str | bytes], *, env: dict[str, str] | None = None,
              limit_s: float = 150.0, user: int | None = None, cwd: Path = ROOT,
              python: str = sys.executable, unset: tuple[str, ...] = ()) -> Finished:
    return supervise([python, "-m", "attnlab", "grade", *args], env=env, limit_s=limit_s,
                     user=user, cwd=cwd, unset=unset)


# ---------------------------------------------------------------- 1. code in the parent


class _Canary:
    """A pickle that writes a file when it is loaded."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({self.path!r}, 'w').write('unpickled in the grader')",))


def model_attack(folder: Path) -> tuple[dict[str, Any], list[Path]]:
    """A notebook whose functions return Models that would run code in the grader."""
    canaries = [folder / f"canary-{i}" for i in range(3)]
    payload = folder / "payload.pt"
    payload.write_bytes(pickle.dumps(_Canary(canaries[1])))

    def planted(canary: Path) -> str:  # also makes every later answer "correct"
        return ("import attnlab.grading.compare as c\n"
                "c.differs = lambda *args, **kwargs: None\n"
                f"open({str(canary)!r}, 'w').write('ran in the grader')\n"
                "def f(*args, **kwargs):\n    return None\n")

    cell = code('''
from attnlab.grading.spec import Model

def stable_softmax(x, dim=-1):
    return Model("attnlab.grading.spec.define", {"code": $define, "name": "f"})

def masked_softmax(scores, mask):
    return Model("torch.serialization.load", {"f": $payload, "weights_only": False})

def softmax_with_temperature(x, tau):
    return (x, {"model": Model("attnlab.grading.spec.define", {"code": $nested, "name": "f"})})
''', define=planted(canaries[0]), payload=str(payload), nested=planted(canaries[2]))
    return notebook(SOLUTION, cell), canaries


def check_model_attack(run: Run, canaries: list[Path]) -> None:
    attack, blank, honest = run.results(3)
    for path in canaries:
        assert not path.exists(), f"a Model ran the submission's code in the grader ({path.name})"
    for name in ("q1", "q2", "q4"):
        q = question(attack, name)
        assert q["score"] == 0 and q["feedback"] and q["feedback"] != "correct", q
    assert blank.score == 0, f"the blank notebook after the attack scored {blank.score}"
    assert_full_marks(honest)


@pytest.mark.slow
def test_a_returned_model_runs_no_code_in_the_grader(tmp_path):
    subs = tmp_path / "subs"
    attack, canaries = model_attack(tmp_path)
    paths = [save(subs, "01_softmax_attack.ipynb", attack), BLANK,
             save(subs, "01_softmax_honest.ipynb", load(SOLUTION))]
    runs, _ = grade_in_subprocess([(paths, {"jobs": 1}), (paths, {"jobs": 2})], tmp_path)
    for run in runs:
        check_model_attack(run, canaries)


# ---------------------------------------------------------------- 2 and 4. results swapped


def fake_results(folder: Path) -> None:
    """A results file that looks valid (answers for set 1, one of them right) and its arrays."""
    import numpy as np

    from attnlab.grading.grade import bundled_tests
    from attnlab.grading.spec import load_set

    s = load_set(bundled_tests() / SET)
    answers = {q.name: ([{"value": q.expected}] if q.variable else
                        [{"error": "RuntimeError: x"} for _ in q.cases]) for q in s.questions}
    np.savez(folder / "fake.npz")
    (folder / "fake.json").write_text(json.dumps({
        "answers": answers, "cell_errors": [], "log": "",
        "arrays": str(folder / "fake.npz")}))


class Opens:
    """Records who opens the files of a folder (inotify): did anything follow a link there?"""

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, bytes(folder), 0x20) < 0:  # IN_OPEN
            pytest.fail(f"inotify is not available: errno {ctypes.get_errno()}")

    def names(self) -> list[str]:
        """The files opened since the last call."""
        found = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                _, _, _, n = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16:offset + 16 + n].rstrip(b"\0").decode()
                found += [name] if name else []
                offset += 16 + n


@pytest.fixture(scope="module")
def swapped_results(tmp_path_factory):
    """One batch: results swapped for a FIFO, /dev/zero links, links to a fake, a zip bomb,
    and 100 MB on each of fd 1 and 2; then the honest solution."""
    tmp = tmp_path_factory.mktemp("swapped")
    fake = tmp / "fake"
    fake.mkdir()
    fake_results(fake)
    token = "attnlab-attack-" + secrets.token_hex(6)
    flood = '''
data = b"x" * (100 << 20)
for fd in (1, 2):
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass
'''
    attacks = {
        "fifo": notebook(BLANK, watcher_cell(token, "fifo", "")),
        "zero": notebook(BLANK, watcher_cell(token, "link", "/dev/zero")),
        "fake": notebook(BLANK, watcher_cell(token, "fake", str(fake))),
        "bomb": notebook(BLANK, watcher_cell(token, "bomb", "")),
        "flood": notebook(BLANK, "import os\n" + flood),
    }
    paths = [save(tmp / "subs", f"01_softmax_{name}.ipynb", nb) for name, nb in attacks.items()]
    paths.append(save(tmp / "subs", "01_softmax_honest.ipynb", load(SOLUTION)))
    opens = Opens(fake)
    try:
        # first the honest notebook alone: the grader's peak after it is the baseline
        honest = save(tmp / "alone", "01_softmax_honest.ipynb", load(SOLUTION))
        kwargs = {"timeout": 60, "jobs": 2}
        runs, _ = grade_in_subprocess([([honest], kwargs), (paths, kwargs)], tmp,
                                      limit_s=180, rss_limit_mb=1500)
        assert_full_marks(runs[0].results(1)[0])
        rows = dict(zip([*attacks, "honest"], runs[1].results(len(paths))))
        yield rows, runs[1], (runs[0].peak_mb, runs[1].peak_mb), opens.names()
    finally:
        os.close(opens.fd)
        for pid in processes_with(token):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_results_swapped_for_fifos_or_links_are_never_followed(swapped_results):
    rows, run, _, opened = swapped_results
    assert run.wall < 90, f"the batch took {run.wall:.0f} s with timeout=60"
    assert not opened, f"the grader followed links to {opened}"
    for name in ("fifo", "zero", "fake"):
        assert rows[name].error, f"results swapped ({name}) were accepted: {rows[name]}"
        assert rows[name].score == 0, f"results swapped ({name}) scored: {rows[name]}"
    assert_full_marks(rows["honest"])


def test_the_graders_memory_stays_bounded(swapped_results):
    rows, _, (baseline, peak), _ = swapped_results
    print(f"grader's peak RSS: {baseline:.0f} MB after an honest notebook, "
          f"{peak:.0f} MB after the attacks")
    assert peak - baseline < ATTACK_GROWTH_MB, (
        f"the grader's own peak RSS grew from {baseline:.0f} MB to {peak:.0f} MB while it "
        f"graded the attacks (zip bomb, 2 x 100 MB of output, /dev/zero links)")
    assert all(rows[name].submission.endswith(f"01_softmax_{name}.ipynb") for name in rows)
    assert_full_marks(rows["honest"])


# ---------------------------------------------------------------- 3, 7, 8. processes


def hold_cell(token: str) -> str:
    """A grandchild in its own session that keeps the child's stdout and stderr open;
    q1 then reports whether it was running."""
    return code('''
import os, sys, time
if os.fork() == 0:
    try:
        os.setsid()
        os.execv(sys.executable, [sys.executable, "-c", $sleeper, $token])
    finally:
        os._exit(0)
end = time.time() + 10
while not os.path.exists(".attack-ready-h") and time.time() < end:
    time.sleep(0.01)
''', sleeper="open('.attack-ready-h', 'w').close()\nimport time\ntime.sleep(3600)",
                token=token) + raising("stable_softmax",
                                       "holding={os.path.exists('.attack-ready-h')}")


def test_a_grandchild_holding_stdout_does_not_stall_the_batch(tmp_path, token):
    hold = hold_cell(token)
    subs = tmp_path / "subs"
    paths = [save(subs, "01_softmax_hold.ipynb", notebook(SOLUTION, hold)),
             save(subs, "01_softmax_honest.ipynb", load(SOLUTION))]
    runs, _ = grade_in_subprocess([(paths, {"timeout": 60, "jobs": 1})], tmp_path, token=token)
    attack, honest = runs[0].results(2)
    assert "holding=True" in question(attack, "q1")["feedback"], attack
    assert attack.score == FULL - 2, f"the grader waited for the grandchild's stdout: {attack}"
    assert runs[0].wall < 60, f"the batch took {runs[0].wall:.0f} s with timeout=60"
    assert not runs[0].left, f"the grandchild outlived its row: pids {runs[0].left}"
    assert_full_marks(honest)


def test_a_fork_bomb_is_bounded(tmp_path):
    bomb = '''
import os, time
forks = 0
for _ in range(250):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        try:
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            time.sleep(30)
        finally:
            os._exit(0)
    forks += 1
''' + raising("stable_softmax", "forks={forks}")
    subs = tmp_path / "subs"
    paths = [save(subs, "01_softmax_bomb.ipynb", notebook(SOLUTION, bomb)),
             save(subs, "01_softmax_honest.ipynb", load(SOLUTION))]
    runs, _ = grade_in_subprocess([(paths, {"timeout": 60, "jobs": 1})], tmp_path)
    attack, honest = runs[0].results(2)
    found = re.search(r"forks=(\d+)", question(attack, "q1")["feedback"])
    assert found, f"the fork count did not come back: {attack}"
    assert int(found.group(1)) < 200, f"{found.group(1)} of 250 forks succeeded"
    assert_full_marks(honest)


KILLER = '''
import os, time
end = time.time() + 5
while time.time() < end:
    for target in (-1, os.getppid()):  # everyone it may signal, then its parent
        try:
            if target != 0:  # 0 (a parent outside its PID namespace) is its own group
                os.kill(target, 9)
        except OSError:
            pass
    time.sleep(0.05)
try:
    os.killpg(0, 9)
except OSError:
    pass
'''


def test_a_submission_cannot_kill_the_grader_or_its_classmates(tmp_path):
    subs = tmp_path / "subs"
    paths = [save(subs, "01_softmax_killer.ipynb", notebook(SOLUTION, first=KILLER)),
             save(subs, "01_softmax_beside.ipynb", load(SOLUTION)),
             save(subs, "01_softmax_after.ipynb", load(SOLUTION))]
    runs, _ = grade_in_subprocess([(paths, {"timeout": 60, "jobs": 2})], tmp_path)
    killer, beside, after = runs[0].results(3)
    assert killer.submission.endswith("killer.ipynb")
    assert_full_marks(beside)
    assert_full_marks(after)


# ---------------------------------------------------------------- 5, 6. classmates


def daemon_cell(token: str, subs: Path, outputs: list[Path]) -> str:
    """A daemon that, for 30 s, overwrites notebooks and the outputs; q1 says if it ran."""
    daemon = r'''
import os, stat, sys, time
ready, subs, outputs = sys.argv[2], sys.argv[3], sys.argv[4:]
open(ready, "w").close()
roots = [subs, "/tmp", os.path.dirname(os.getcwd())]
junk = (b'{"nbformat": 4, "nbformat_minor": 5, "cells": [], '
        b'"metadata": {"attnlab": {"set": "01_softmax"}}}')

def overwrite(path):
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK | os.O_NOFOLLOW)
            os.write(fd, junk)
            os.close(fd)
    except OSError:
        pass

end = time.time() + 30
while time.time() < end:
    for root in roots:
        for folder, dirs, files in os.walk(root):
            if folder.count(os.sep) - root.count(os.sep) >= 4:
                dirs[:] = []
            for name in files:
                if name.endswith(".ipynb"):
                    overwrite(os.path.join(folder, name))
    for path in outputs:
        try:
            with open(path, "w") as f:
                f.write("overwritten by a submission")
        except OSError:
            pass
    time.sleep(0.1)
'''
    return DETACH + code("_detach($daemon, $token, '.attack-ready-d', $subs, *$outputs,"
                         " ready='.attack-ready-d')\n"
                         "_detach('import time; time.sleep(600)', $token)\n",
                         daemon=daemon, token=token, subs=str(subs),
                         outputs=[str(p) for p in outputs]) + raising(
        "stable_softmax", "daemon ready={os.path.exists('.attack-ready-d')}")


def check_outputs_intact(out_json: Path, out_csv: Path, n: int) -> tuple[bytes, bytes]:
    before = out_json.read_bytes(), out_csv.read_bytes()
    time.sleep(3)
    after = out_json.read_bytes(), out_csv.read_bytes()
    assert after == before, "the JSON or CSV output changed after the grader exited"
    rows = json.loads(after[0])
    assert len(rows) == n, rows
    assert len(list(csv.reader(io.StringIO(after[1].decode("utf-8"))))) == n + 1
    return before


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_daemon_cannot_reach_classmates_or_the_outputs(tmp_path, token, jobs):
    subs, out = tmp_path / "subs", tmp_path / "out"
    out.mkdir()
    out_json, out_csv = out / "scores.json", out / "scores.csv"
    paths = [save(subs, "01_softmax_daemon.ipynb",
                  notebook(SOLUTION, daemon_cell(token, subs, [out_json, out_csv]))),
             save(subs, "01_softmax_honest_a.ipynb", load(SOLUTION)),
             save(subs, "01_softmax_honest_b.ipynb", load(SOLUTION))]
    honest_bytes = [p.read_bytes() for p in paths[1:]]
    done = grade_cli([*map(str, paths), "--json", str(out_json), "--csv", str(out_csv),
                      "--jobs", str(jobs), "--timeout", "60"])
    left = processes_with(token)
    assert done.returncode == 0, done.describe()
    assert not left, f"the submission's daemon outlived the grader: pids {left}"
    check_outputs_intact(out_json, out_csv, 3)
    rows = json.loads(out_json.read_text())
    assert "daemon ready=True" in question(SimpleNamespace(**rows[0]), "q1")["feedback"]
    for row in rows[1:]:
        assert_full_marks(SimpleNamespace(**row))
    assert [p.read_bytes() for p in paths[1:]] == honest_bytes, "a submission was overwritten"


@pytest.mark.slow
def test_one_child_cannot_read_another(tmp_path):
    marker = "Zq9x-classmate-" + secrets.token_hex(8)
    subs = tmp_path / "subs"
    search = code(r'''
import os, stat, time
marker = "".join($pieces).encode()
parent = os.path.dirname(os.getcwd())
roots = ["/tmp", "/var/tmp", "/dev/shm", $subs] + ([parent] if parent != "/" else [])
found, searched = [], 0
end = time.time() + 10
while not found and time.time() < end:
    for root in roots:
        for folder, dirs, files in os.walk(root):
            if folder.count(os.sep) - root.count(os.sep) >= 5 or time.time() > end:
                dirs[:] = []
            for name in files:
                path = os.path.join(folder, name)
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode) or st.st_size > 5 << 20:
                        continue
                    with open(path, "rb") as f:
                        searched += 1
                        if marker in f.read():
                            found.append(path + " " + marker.decode())
                except OSError:
                    pass
    time.sleep(0.2)
''', pieces=[marker[:8], marker[8:]], subs=str(subs)) + raising(
        "stable_softmax", "searched={searched} found={found}")
    classmate = f"# {marker}\nimport time\ntime.sleep(8)\n"
    paths = [save(subs, "01_softmax_search.ipynb", notebook(SOLUTION, search)),
             save(subs, "01_softmax_classmate.ipynb", notebook(SOLUTION, classmate))]
    runs, _ = grade_in_subprocess([(paths, {"timeout": 60, "jobs": 2})], tmp_path)
    searcher, classmate_row = runs[0].results(2)
    feedback = question(searcher, "q1")["feedback"]
    assert "searched=" in feedback, f"the search did not report back: {searcher}"
    assert marker not in feedback, f"a child read its classmate's files: {feedback}"
    assert_full_marks(classmate_row)


# ---------------------------------------------------------------- 9. names and paths


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_odd_names_fifos_and_device_links_get_rows(tmp_path, encoding):
    subs = tmp_path / "subs"
    subs.mkdir()
    odd = bytes(subs) + b"/\xff\xfe_01_softmax.ipynb"
    fd = os.open(odd, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, SOLUTION.read_bytes())
    os.close(fd)
    names = ["_01_softmax.ipynb"]
    if encoding == "utf-8":  # the FIFO and the link once
        os.mkfifo(subs / "x_01_softmax.ipynb")
        os.symlink("/dev/zero", subs / "y_01_softmax.ipynb")
        shutil.copy(SOLUTION, subs / "z_01_softmax.ipynb")
        names += ["x_01_softmax.ipynb", "y_01_softmax.ipynb", "z_01_softmax.ipynb"]
        env = {"PYTHONIOENCODING": "utf-8"}
    else:
        env = {"LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "ascii", "PYTHONUTF8": "0",
               "PYTHONCOERCECLOCALE": "0"}
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    done = supervise([sys.executable, "-m", "attnlab", "grade", str(subs), "--json",
                      str(out_json), "--csv", str(out_csv)], env=env, limit_s=90,
                     rss_limit_mb=1000)
    assert done.returncode == 0 and done.wall < 60, done.describe()
    assert done.peak_rss_mb < 400, f"the grader's peak RSS was {done.peak_rss_mb:.0f} MB"
    rows = json.loads(out_json.read_text(encoding="utf-8"))
    assert len(rows) == len(names), rows
    lines = list(csv.reader(io.StringIO(out_csv.read_bytes().decode("utf-8", "replace"))))
    assert len(lines) == len(names) + 1, lines
    for name in names:
        assert name.encode() in done.stdout, f"the table has no row for {name}"
    by_name = {}
    for row in rows:
        key = next((n for n in names[1:] if row["submission"].endswith(n)), names[0])
        by_name[key] = row
    assert sorted(by_name) == sorted(names), [r["submission"] for r in rows]
    assert by_name["_01_softmax.ipynb"]["score"] == FULL, by_name["_01_softmax.ipynb"]
    if encoding == "utf-8":
        for name in ("x_01_softmax.ipynb", "y_01_softmax.ipynb"):
            assert by_name[name]["error"] and by_name[name]["score"] == 0, by_name[name]
        assert_full_marks(SimpleNamespace(**by_name["z_01_softmax.ipynb"]))


# ---------------------------------------------------------------- 10. unprivileged grader


def _python_for(user: int) -> tuple[str, dict[str, str]] | None:
    """An interpreter of this Python version that ``user`` can run with this environment's
    packages: this one, or the system's own (a pyenv Python under a mode-700 /root is not)."""
    import sysconfig

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    packages = os.pathsep.join([sysconfig.get_paths()["purelib"], str(ROOT)])
    candidates = [(sys.executable, {})]
    for folder in ("/usr/bin", "/usr/local/bin"):
        candidates.append((f"{folder}/python{version}", {"PYTHONPATH": packages}))
    for python, env in candidates:
        if not os.path.exists(python):
            continue
        probe = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}",
                                "--clear-groups", python, "-c",
                                "import os, sys, torch, IPython, attnlab.grading.grade\n"
                                f"assert sys.version_info[:2] == {sys.version_info[:2]}\n"
                                "for p in (os.path.realpath(sys.executable), sys.prefix):\n"
                                "    os.stat(p)"],
                               capture_output=True, text=True, cwd="/", timeout=120,
                               env={**os.environ, **env})
        if probe.returncode == 0:
            return python, env
    return None


@pytest.fixture
def shared_folder():
    """A folder outside pytest's private ones, owned by the unprivileged user, and the
    interpreter (with its environment variables) that user runs the grader with."""
    if os.geteuid() != 0:
        pytest.skip("running the grader as another user needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    found = _python_for(NOBODY)
    if found is None:
        pytest.skip(f"no Python {sys.version_info.major}.{sys.version_info.minor} that uid "
                    f"{NOBODY} can run with this environment's packages (is the repository "
                    "or the environment in a folder other users cannot read?)")
    folder = Path(tempfile.mkdtemp(prefix="attnlab-attacks-"))
    os.chown(folder, NOBODY, NOBODY)
    try:
        yield folder, *found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _give(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        os.lchown(p, NOBODY, NOBODY)


def attack_batch(folder: Path, token: str, *, python: str, env: dict[str, str],
                 user: int | None) -> None:
    """Attacks 1, 3, 5 and 8 in one batch, with two honest solutions, as ``user``."""
    subs, out = folder / "subs", folder / "out"
    out.mkdir()
    out_json, out_csv = out / "scores.json", out / "scores.csv"
    model, canaries = model_attack(out)
    hold = hold_cell(token)
    paths = [save(subs, "a_01_softmax_model.ipynb", model),
             save(subs, "b_01_softmax_blank.ipynb", load(BLANK)),
             save(subs, "c_01_softmax_hold.ipynb", notebook(SOLUTION, hold)),
             save(subs, "d_01_softmax_daemon.ipynb",
                  notebook(SOLUTION, daemon_cell(token, subs, [out_json, out_csv]))),
             save(subs, "e_01_softmax_killer.ipynb", notebook(SOLUTION, first=KILLER)),
             save(subs, "f_01_softmax_honest.ipynb", load(SOLUTION)),
             save(subs, "g_01_softmax_honest.ipynb", load(SOLUTION))]
    if user is not None:
        _give(folder)
    honest_bytes = [p.read_bytes() for p in paths[-2:]]
    done = grade_cli([*map(str, paths), "--json", str(out_json), "--csv", str(out_csv),
                      "--jobs", "2", "--timeout", "120"], user=user, cwd=folder,
                     limit_s=240, python=python,
                     env={**env, "MPLCONFIGDIR": str(folder / "mpl")})
    left = processes_with(token)
    assert done.returncode == 0, f"the grader failed: {done.describe()}"
    assert done.wall < 120, f"the batch took {done.wall:.0f} s with --timeout 120"
    assert not left, f"the submissions' processes outlived the grader: pids {left}"
    check_outputs_intact(out_json, out_csv, len(paths))
    rows = [SimpleNamespace(**r) for r in json.loads(out_json.read_text())]
    assert "holding=True" in question(rows[2], "q1")["feedback"], rows[2]
    assert rows[2].score == FULL - 2, f"the grader waited for the grandchild's stdout: {rows[2]}"
    assert "daemon ready=True" in question(rows[3], "q1")["feedback"], rows[3]
    check_model_attack(Run(rows[:2] + rows[-1:], None, 0.0, []), canaries)
    for row in rows[-2:]:
        assert_full_marks(row)
    assert [p.read_bytes() for p in paths[-2:]] == honest_bytes, "a submission was overwritten"


@pytest.mark.slow
def test_attacks_fail_against_an_unprivileged_grader(shared_folder, token):
    """The grader as an ordinary user: the children in user namespaces."""
    folder, python, env = shared_folder
    attack_batch(folder, token, python=python, env=env, user=NOBODY)


@pytest.mark.slow
def test_attacks_fail_against_a_root_grader_without_namespaces(shared_folder, token):
    """The grader as root where namespaces are not allowed (a Docker container, Gradescope):
    each child as its own uid, its processes killed by uid."""
    folder, python, env = shared_folder
    os.chown(folder, 0, 0)
    attack_batch(folder, token, python=python, user=None,
                 env={**env, "ATTNLAB_SANDBOX_NO_NAMESPACES": "1"})


# ---------------------------------------------------------------- 11-13. instructors


HANGING_CELL = "while True:\n    pass\n"


@pytest.fixture(scope="module")
def instructor_runs(tmp_path_factory):
    """Hanging cells and functions, a notebook without set metadata, a syntax error."""
    tmp = tmp_path_factory.mktemp("instructor")
    subs = tmp / "subs"
    hang_cell = notebook(SOLUTION, HANGING_CELL)
    hang_fn = notebook(SOLUTION, "import time\n" + "def softmax_with_temperature(x, tau):\n"
                                 "    while True:\n        time.sleep(0.01)\n")
    solution = load(SOLUTION)
    pasted = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
              "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "outputs": [],
                         "execution_count": None, "source": c["source"]}
                        for i, c in enumerate(solution["cells"]) if c["cell_type"] == "code"]}
    syntax = notebook(SOLUTION, replace={"ex01-03": (
        "def stable_softmax(x, dim=-1):\n"
        "    m = x.amax(dim=dim, keepdim=True)\n"
        "    e = torch.exp(x - m))\n"
        "    return e / e.sum(dim=dim, keepdim=True)\n")})
    homework = save(subs, "homework.ipynb", pasted)
    runs, _ = grade_in_subprocess([
        ([save(subs, "01_softmax_hang_cell.ipynb", hang_cell),
          save(subs, "01_softmax_hang_fn.ipynb", hang_fn)],
         {"timeout": 90, "cell_timeout": 5, "call_timeout": 3}),
        ([homework], {}),
        ([homework], {"set_name": SET}),
        ([save(subs, "01_softmax_syntax.ipynb", syntax)], {}),
    ], tmp, limit_s=240)
    return {"hang_cell": hang_cell, "runs": runs}


def test_a_hanging_cell_or_function_costs_only_itself(instructor_runs):
    cell, function = instructor_runs["runs"][0].results(2)
    assert cell.score == FULL, f"a hanging last cell cost marks: {cell}"
    cells = instructor_runs["hang_cell"]["cells"]
    index = len(cells)  # the hanging cell is the last one
    code_index = sum(c["cell_type"] == "code" for c in cells)
    assert cell.error and (f"cell {index}" in cell.error or f"cell {code_index}" in cell.error
                           or "added-0" in cell.error), (
        f"the error does not name the hanging cell (cell {index}, code cell {code_index}, "
        f"id added-0): {cell.error!r}")
    q4 = question(function, "q4")
    assert q4["score"] == 0 and function.score == FULL - q4["max_score"], function


def test_a_notebook_without_set_metadata(instructor_runs):
    (unknown,) = instructor_runs["runs"][1].results(1)
    assert unknown.error and "--set" in unknown.error, unknown.error
    (named,) = instructor_runs["runs"][2].results(1)
    assert_full_marks(named)


def test_a_syntax_error_names_the_error_and_its_line(instructor_runs):
    (row,) = instructor_runs["runs"][3].results(1)
    feedback = question(row, "q1")["feedback"]
    assert "SyntaxError" in feedback and ("line 3" in feedback
                                          or "e = torch.exp(x - m))" in feedback), feedback
    assert row.score == FULL - question(row, "q1")["max_score"], row


# ---------------------------------------------------------------- 14-16. the command line


def no_max_misconception() -> tuple[str, str]:
    """Set 1's q1 misconception "the maximum is not subtracted": its message and its code."""
    from attnlab.grading.grade import bundled_tests
    from attnlab.grading.spec import load_set

    for m in load_set(bundled_tests() / SET).question("q1").misconceptions:
        if m.code is not None and "amax(" not in m.code and ".max(" not in m.code:
            return m.message, m.code
    raise AssertionError("set 1's q1 no longer has a misconception without the maximum")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_feedback_files_csv_column_and_an_uncut_table(tmp_path):
    subs, report = tmp_path / "subs", tmp_path / "feedback"
    message, no_max = no_max_misconception()
    named = message.split(":")[0]  # its first clause: free of Markdown's special characters
    own_error = 'raise ValueError("my own mistake: 4242")\n'
    wrong = save(subs, "01_softmax_wrong.ipynb",
                 notebook(SOLUTION, own_error, replace={"ex01-03": no_max}))
    unknown = load(SOLUTION)
    unknown["metadata"] = {}
    nameless = save(subs, "homework.ipynb", unknown)
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    done = grade_cli([str(wrong), str(nameless), "--json", str(out_json), "--csv", str(out_csv),
                      "--feedback", str(report)])
    assert done.returncode == 0, done.describe()
    files = sorted(p for p in report.rglob("*") if p.is_file())
    assert len(files) == 2 and all(p.suffix in {".md", ".markdown", ".html", ".htm"}
                                   for p in files), files
    texts = [html.unescape(p.read_text(encoding="utf-8")) for p in files]
    mine = [t for t in texts if named in t]
    assert len(mine) == 1, f"no feedback file names the misconception: {texts}"
    for name in ("q1", "q2", "q3", "q4", "q5", "q6"):
        assert name in mine[0], f"the feedback file does not mention {name}"
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text(encoding="utf-8"))))
    column = next((c for c in rows[0] if "feedback" in c.lower()), None)
    assert column, f"the CSV has no feedback column: {list(rows[0])}"
    assert named in rows[0][column], rows[0][column]
    table = _flat(done.stdout.decode("utf-8"))
    for row in json.loads(out_json.read_text()):
        assert _flat(row["error"] or "") in table, f"the table cut the error {row['error']!r}"
    assert "my own mistake: 4242" in mine[0], (
        f"the feedback file does not show the notebook's own error: {mine[0]}")


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_no_notebook_to_grade_is_a_usage_error(tmp_path, content):
    folder = tmp_path / "submissions"
    folder.mkdir()
    if content:
        (folder / content).write_text("not a notebook")
    out_json = tmp_path / "r.json"
    done = grade_cli([str(folder), "--json", str(out_json)], limit_s=60)
    assert done.returncode not in (0, None), done.describe()
    message = done.stderr.decode("utf-8", "replace")
    assert "notebook" in message.lower() and str(folder) in message, message
    assert not out_json.exists(), "something was graded"


def test_an_environment_other_users_cannot_read_costs_no_student_marks(tmp_path):
    """The grader's Python and attnlab inside a mode-700 folder, as ``mktemp -d`` makes.

    The sandbox's user cannot read them. The grader either makes them available to
    the child or refuses before grading, naming the path and what to do; it never
    gives each student a 0.
    """
    if os.geteuid() != 0:
        pytest.skip("the sandbox user differs from the grader's only when it runs as root")
    private = Path(tempfile.mkdtemp(prefix="attnlab-env-"))  # mode 700
    try:
        env = private / "env"
        made = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)],
                              capture_output=True, text=True, timeout=120)
        if made.returncode != 0:
            pytest.skip(f"cannot build a virtual environment offline: {made.stderr[-300:]}")
        shutil.copytree(ROOT / "attnlab", private / "pkgs" / "attnlab",
                        ignore=shutil.ignore_patterns("__pycache__"))
        site = next(env.glob("lib/python*/site-packages"))
        ours = {str(Path(importlib.util.find_spec(m).origin).parents[1])  # type: ignore[arg-type]
                for m in ("torch", "numpy", "IPython", "tqdm")}
        # attnlab from the private copy; the rest from our environment, whose editable
        # install of attnlab (a .pth file) is not processed
        (site / "attnlab-env.pth").write_text("\n".join([str(private / "pkgs"), *ours]) + "\n")
        python = env / "bin" / "python"
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        where = subprocess.run([str(python), "-c", "import attnlab; print(attnlab.__file__)"],
                               capture_output=True, text=True, timeout=60, cwd=tmp_path,
                               env=clean)
        assert where.stdout.startswith(str(private)), where.stdout + where.stderr
        out_json = tmp_path / "r.json"
        done = grade_cli([str(SOLUTION), "--json", str(out_json)], python=str(python),
                         cwd=tmp_path, limit_s=120, unset=("PYTHONPATH",))
        message = done.stderr.decode("utf-8", "replace")
        if done.returncode == 0:  # made available to the child
            (row,) = json.loads(out_json.read_text())
            assert_full_marks(SimpleNamespace(**row))
        else:  # refused before grading
            assert done.returncode is not None, done.describe()
            assert str(private) in message, f"the message does not name {private}: {message}"
            assert "chmod" in message or "--sandbox-user" in message, message
            assert not out_json.exists(), "something was graded"
    finally:
        shutil.rmtree(private, ignore_errors=True)
