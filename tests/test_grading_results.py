"""What comes back from the grader's child is read as data only: the reader's own checks,
each against the file a hostile child would leave (the attacks end to end are in
test_grading_attacks.py)."""

from __future__ import annotations

import io
import os
import resource
import zipfile

import numpy as np
import pytest

from attnlab.grading.codec import ResultError, decode_result, encode
from attnlab.grading.results import LIMITS, read_capped, read_npz
from attnlab.grading.spec import Model


@pytest.fixture
def folder(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def test_read_capped_reads_a_regular_file(folder):
    path, fd = folder
    (path / "r.json").write_bytes(b'{"ok": 1}')
    assert read_capped(fd, "r.json", 100) == b'{"ok": 1}'
    with pytest.raises(FileNotFoundError):
        read_capped(fd, "missing.json", 100)


@pytest.mark.parametrize("kind", ["symlink to a file", "symlink to /dev/zero", "fifo",
                                  "folder", "too large"])
def test_read_capped_refuses_links_fifos_devices_folders_and_size(folder, kind):
    path, fd = folder
    secret = path / "secret.json"
    secret.write_text('{"answers": "the grader\'s own file"}')
    target = path / "r.json"
    if kind == "symlink to a file":
        target.symlink_to(secret)
    elif kind == "symlink to /dev/zero":
        target.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(target)  # opening it for reading would block forever without O_NONBLOCK
    elif kind == "folder":
        target.mkdir()
    else:
        target.write_bytes(b"x" * 1001)
    with pytest.raises(ResultError):
        read_capped(fd, "r.json", 1000)


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_read_npz_loads_number_arrays_and_counts_their_size():
    budget = [LIMITS.array_bytes]
    out = read_npz(npz(a0=np.arange(6).reshape(2, 3), a1=np.array([True, False])), budget)
    assert out["a0"].tolist() == [[0, 1, 2], [3, 4, 5]] and out["a1"].dtype == bool
    assert budget[0] < LIMITS.array_bytes


def zip_bomb(inflated: int) -> bytes:
    """A valid .npy header, then zeros: deflates ~1000:1."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (inflated // 8,)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, z.open("a0.npy", "w") as f:
        f.write(header.getvalue())
        chunk = bytes(1 << 20)
        for _ in range(inflated >> 20):
            f.write(chunk)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    bomb = zip_bomb(256 << 20)  # 256 MB of zeros in about 0.25 MB
    assert len(bomb) < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ResultError, match="larger than the grader accepts"):
        read_npz(bomb, [LIMITS.array_bytes])
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 64 * 1024, f"reading the bomb grew the peak by {grown / 1024:.0f} MB"


def test_a_member_whose_declared_size_lies_is_refused():
    raw = bytearray(npz(a0=np.zeros(1000)))
    # shrink the declared uncompressed size in the central directory: inflation must stop
    cd = raw.rfind(b"PK\x01\x02")
    size = int.from_bytes(raw[cd + 24: cd + 28], "little")
    raw[cd + 24: cd + 28] = (size // 2).to_bytes(4, "little")
    with pytest.raises(ResultError):
        read_npz(bytes(raw), [LIMITS.array_bytes])


@pytest.mark.parametrize("bad", ["object", "structured", "name", "not a zip", "shape"])
def test_object_arrays_odd_members_and_forged_headers_are_refused(bad):
    if bad == "object":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z, z.open("a0.npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"x": 1}], dtype=object),
                                      allow_pickle=True)
        raw = buf.getvalue()
    elif bad == "structured":
        raw = npz(a0=np.zeros(2, dtype=[("x", "<f8"), ("y", "<i4")]))
    elif bad == "name":
        raw = npz(**{"../../etc/passwd": np.zeros(2)})
    elif bad == "not a zip":
        raw = b"\x00" * 100
    else:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 9,)})
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("a0.npy", header.getvalue() + bytes(80))
        raw = buf.getvalue()
    with pytest.raises(ResultError):
        read_npz(raw, [LIMITS.array_bytes])


def test_results_are_plain_data_only():
    arrays: dict = {}
    value = encode((np.ones(3), {"k": [1, 2.5, float("nan")]}, None, True, "s"), arrays)
    back = decode_result(value, arrays)
    assert back[0].tolist() == [1, 1, 1] and back[1]["k"][:2] == [1, 2.5]
    with pytest.raises(ResultError, match="not a plain value"):
        decode_result({"model": "attnlab.grading.spec.define", "seed": 0,
                       "kwargs": {"dict": {"code": "import os", "name": "f"}}}, {})
    model = encode(Model("attnlab.models.GPT"), {})  # what a child could send back
    with pytest.raises(ResultError):
        decode_result(model, {})
    with pytest.raises(ResultError):
        decode_result({"tensor": "a0", "dtype": "serialization.load"}, {"a0": np.zeros(1)})
    with pytest.raises(ResultError):
        decode_result({"ndarray": "missing"}, {})
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ResultError, match="deeper"):
        decode_result(deep, {})
    with pytest.raises(ResultError, match="more than"):
        decode_result(list(range(10)), {}, max_nodes=5)
