"""What comes back from a sandboxed child, read as data: capped, never followed, never unpickled.

The child (:mod:`attnlab.grading.runner`) writes its records into its work folder
under names the grader chose. They are opened relative to the folder, without
following links (``O_NOFOLLOW``) or blocking on a FIFO (``O_NONBLOCK``), checked to
be regular files, read with a byte cap; the JSON is checked against its schema;
each ``.npz`` member is checked for its name, its declared uncompressed size, a
plain number dtype and a shape that matches its data before it is inflated, and
loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.grading.codec import ResultError

__all__ = ["Limits", "LIMITS", "ChildOutput", "read_capped", "read_npz", "read_results"]


@dataclass(frozen=True)
class Limits:
    """What a child may use and send back."""

    output_bytes: int = 64 * 1024  # of its stdout and of its stderr, each, kept
    json_bytes: int = 1 * 2**20  # one answers file
    cells_bytes: int = 512 * 1024  # the cells record (errors and printed log)
    npz_bytes: int = 16 * 2**20  # one arrays file, as stored
    array_bytes: int = 32 * 2**20  # all arrays of a submission, uncompressed
    arrays: int = 4096  # arrays of one question
    processes: int = 96  # RLIMIT_NPROC (threads count too)
    open_files: int = 512
    file_mb: int = 256  # RLIMIT_FSIZE
    scratch_mb: int = 64  # /var/tmp and /dev/shm


LIMITS = Limits()


@dataclass
class ChildOutput:
    """What came back from the child, read and checked as data."""

    answers: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by probe index
    forbidden: dict[int, list[str]] = field(default_factory=dict)  # forbidden calls made
    arrays: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    cell_errors: list[dict[str, Any]] = field(default_factory=list)
    cells_ran: bool = False
    log: str = ""
    error: str | None = None  # why nothing (or not everything) came back
    internal: bool = False  # the error is the grader's, not the submission's


def read_capped(dir_fd: int, name: str, cap: int) -> bytes:
    """The bytes of the regular file ``name`` in ``dir_fd``, refusing links, FIFOs, devices
    and anything over ``cap`` bytes.

    Raises:
        FileNotFoundError: there is no such file.
        ResultError: it is not a regular file, or it is too large.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ResultError(f"{name} could not be opened as a regular file "
                          f"({err.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ResultError(f"{name} is not a regular file")
        if info.st_size > cap:
            raise ResultError(f"{name} is larger than {cap} bytes")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                raise ResultError(f"{name} is larger than {cap} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


_ARRAY_NAME = re.compile(r"a\d{1,6}\.npy")
_KINDS = "biufc"  # bool, int, uint, float, complex: numbers only


def read_npz(raw: bytes, budget: list[int], max_arrays: int = LIMITS.arrays
             ) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive, checked before anything is inflated.

    Each member must be named ``aN.npy``, declare an uncompressed size within what is
    left of ``budget[0]`` (decreased as arrays are read), hold a plain number dtype
    and a shape that matches its size; it is then inflated with a limit and loaded
    with ``allow_pickle=False``.

    Raises:
        ResultError: a check fails (a zip bomb, an object array, a forged header...).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError) as err:
        raise ResultError(f"the arrays are not a valid .npz archive ({err})") from None
    out: dict[str, np.ndarray] = {}
    with archive:
        infos = archive.infolist()
        if len(infos) > max_arrays:
            raise ResultError(f"more than {max_arrays} arrays")
        for info in infos:
            if not _ARRAY_NAME.fullmatch(info.filename) or info.filename[:-4] in out:
                raise ResultError(f"unexpected member {info.filename[:40]!r} in the arrays")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ResultError("the arrays use an unexpected compression")
            if info.file_size > budget[0]:
                raise ResultError("the arrays are larger than the grader accepts "
                                  f"({LIMITS.array_bytes // 2**20} MB in all)")
            try:
                with archive.open(info) as member:
                    data = member.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as err:
                raise ResultError(f"a damaged array in the archive ({err})") from None
            if len(data) != info.file_size:
                raise ResultError("an array's size is not what the archive declares")
            budget[0] -= len(data)
            out[info.filename[:-4]] = _load_npy(data)
    return out


def _load_npy(data: bytes) -> np.ndarray:
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"npy version {version}")
    except ValueError as err:
        raise ResultError(f"an array with a malformed header ({err})") from None
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
        raise ResultError(f"an array of dtype {dtype} (numbers only)")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count < 0 or count * dtype.itemsize != len(data) - stream.tell():
        raise ResultError("an array whose shape does not match its data")
    stream.seek(0)
    return np.load(stream, allow_pickle=False)


def read_results(workdir: Path, token: str, questions: int) -> ChildOutput:
    """Read the child's records from ``workdir``: data only, within :data:`LIMITS`."""
    out = ChildOutput()
    try:
        dir_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as err:
        out.error = f"the work folder could not be opened ({err.strerror})"
        out.internal = True
        return out
    budget = [LIMITS.array_bytes]
    try:
        try:
            cells = json.loads(read_capped(dir_fd, f"cells-{token}.json", LIMITS.cells_bytes))
            errors = cells["cell_errors"]
            if not isinstance(errors, list) or not isinstance(cells["log"], str):
                raise ResultError("malformed cells record")
            out.cell_errors = [_cell_error(e) for e in errors[:200]]
            out.log = cells["log"][:20_000]
            out.cells_ran = True
        except FileNotFoundError:
            return out
        for i in range(questions):
            try:
                record = json.loads(read_capped(dir_fd, f"answers-{token}-{i}.json",
                                                LIMITS.json_bytes))
            except FileNotFoundError:
                break
            answers = record.get("answers") if isinstance(record, dict) else None
            if not isinstance(answers, list) or not all(
                    isinstance(a, dict) and (set(a) == {"value"} or
                                             (set(a) == {"error"} and isinstance(a["error"], str)))
                    for a in answers):
                raise ResultError(f"malformed answers record for question {i + 1}")
            try:
                raw = read_capped(dir_fd, f"arrays-{token}-{i}.npz", LIMITS.npz_bytes)
            except FileNotFoundError:
                raise ResultError(f"the arrays of question {i + 1} are missing") from None
            used = record.get("forbidden", [])
            if not isinstance(used, list) or not all(isinstance(u, str) for u in used):
                raise ResultError(f"malformed answers record for question {i + 1}")
            out.forbidden[i] = [u[:100] for u in used[:20]]
            out.arrays[i] = read_npz(raw, budget)
            out.answers[i] = [{"error": a["error"][:1000]} if "error" in a else a
                              for a in answers]
    except (ResultError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError,
            RecursionError) as err:
        out.error = f"the grading process returned unreadable results ({err})"
    finally:
        os.close(dir_fd)
    return out


def _cell_error(e: Any) -> dict[str, Any]:
    if not isinstance(e, dict):
        raise ResultError("malformed cell error")
    cell, line = e.get("cell"), e.get("line")
    if not isinstance(cell, int) or not (line is None or isinstance(line, int)):
        raise ResultError("malformed cell error")
    return {"cell": cell, "line": line, "type": str(e.get("type", ""))[:80],
            "message": str(e.get("message", ""))[:500]}
