"""attnlab.perf: FLOP counts, device peaks and memory."""

from __future__ import annotations

import pytest
import torch

from attnlab.models import GPT, GPTConfig
from attnlab.perf import gpt_flops_per_token, measured_matmul_flops, peak_flops, peak_memory_bytes


def test_flops_per_token_counts_matmul_parameters_and_attention():
    for positional in ("learned", "rotary"):
        c = GPTConfig(vocab_size=20, block_size=10, n_layer=2, n_embd=32, n_head=4,
                      positional=positional)
        model = GPT(c)
        n = sum(p.numel() for p in model.parameters())
        table = c.block_size * c.n_embd if positional == "learned" else 0
        assert gpt_flops_per_token(model) == 6 * (n - table) + 12 * 2 * 32 * 10
        assert gpt_flops_per_token(model, T=5) == 6 * (n - table) + 12 * 2 * 32 * 5


@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.4),
    ("NVIDIA A100-SXM4-40GB", 312.0), ("NVIDIA L40S", 362.1), ("NVIDIA L4", 121.0),
    ("Some Future GPU", None),
])
def test_peak_flops_of_known_gpus(monkeypatch, name, tflops):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    got = peak_flops(torch.device("cuda"))
    assert got == (None if tflops is None else tflops * 1e12)
    assert peak_flops(torch.device("cuda"), torch.float32) is None
    assert peak_flops("cpu") is None


def test_matmul_throughput_and_peak_memory_are_sensible():
    assert measured_matmul_flops("cpu", n=256, repeat=2) > 1e6
    before = peak_memory_bytes("cpu")
    x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    x += 1
    assert peak_memory_bytes("cpu") >= before and peak_memory_bytes("cpu") > 64 * 2**20


def test_measured_peak_is_the_best_of_its_shapes():
    from attnlab.perf import measured_peak_flops

    r = measured_peak_flops("cpu", shapes=((128, 128, 128), (64, 256, 64)), repeat=2)
    assert set(r["by_shape"]) == {"128x128x128", "64x256x64"}
    assert r["flops"] == max(r["by_shape"].values()) > 1e6
    assert "x".join(map(str, r["shape"])) in r["by_shape"]
    with pytest.raises(ValueError, match="at least one shape"):
        measured_peak_flops("cpu", shapes=())


def test_peak_memory_during_counts_the_call_not_the_past():
    import subprocess
    import sys

    # In a fresh process: allocate and free 256 MiB first, then measure a 32 MiB call.
    code = ("import torch\nfrom attnlab.perf import peak_memory_during, peak_memory_bytes\n"
            "x = torch.ones(256 * 2**20 // 4); x += 1; del x\n"
            "_, n, how = peak_memory_during(lambda: (torch.ones(32 * 2**20 // 4) + 1).sum())\n"
            "print(n, how, peak_memory_bytes('cpu'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    n, how, lifetime = int(out[0]), out[1], int(out[2])
    assert lifetime > 256 * 2**20  # the lifetime peak remembers the earlier allocation
    if how == "rss_hwm_reset":  # Linux: the call's own peak, two 32 MiB tensors at most
        assert 30 * 2**20 < n < 100 * 2**20
    else:
        assert n > 30 * 2**20


def test_memory_traffic_counts_resident_tensors_and_spills_only():
    from attnlab.perf import MemoryTraffic

    a, b = torch.ones(64, 64), torch.ones(64, 64)  # 16 KiB each
    out = torch.empty(64, 64)
    with MemoryTraffic(on_chip_bytes=32 * 2**10, resident=[a, b, out]) as t:
        c = a @ b  # reads a and b; c (16 KiB) stays on chip
        d = c.relu()  # on chip: nothing moves
        out.copy_(d)  # writes out; d is on chip
    assert (t.read, t.written) == (2 * 2**14, 2**14)
    with MemoryTraffic(on_chip_bytes=8 * 2**10, resident=[a, b]) as t:
        (a @ b).relu()  # the product no longer fits: written, then read back
    assert (t.read, t.written) == (3 * 2**14, 2 * 2**14) and t.total == 5 * 2**14
    with MemoryTraffic(on_chip_bytes=0, resident=[a]) as t:
        a[:32].t()  # views move nothing
    assert t.total == 0
    with pytest.raises(ValueError, match="on_chip_bytes"):
        MemoryTraffic(on_chip_bytes=-1)


def test_gpt_step_memory_grows_with_the_batch():
    from attnlab.perf import gpt_step_memory

    c = GPTConfig(vocab_size=16, block_size=16, n_layer=1, n_embd=64, n_head=2)
    small, large = (gpt_step_memory(c, b, 15)["peak_bytes"] for b in (8, 512))
    assert 0 < small < large  # activations grow with the batch


def test_flops_per_token_lives_on_the_model_and_rejects_bad_lengths():
    model = GPT(GPTConfig(vocab_size=20, block_size=10, n_layer=2, n_embd=32, n_head=4))
    assert model.flops_per_token(7) == gpt_flops_per_token(model, T=7)
    assert model.flops_per_token(8) - model.flops_per_token(7) == 12 * 2 * 32
    with pytest.raises(ValueError, match="T must be a positive integer"):
        model.flops_per_token(0)


def test_best_time_is_the_fastest_call_after_the_warm_up(monkeypatch):
    from attnlab import perf

    durations = iter([5.0, 3.0, 4.0])
    now = [0.0]

    def fake_clock():
        return now[0]

    def fn():
        now[0] += next(durations)

    monkeypatch.setitem(perf._CLOCKS, "wall", fake_clock)
    calls = []
    assert perf.time_calls(fn, repeats=2, warmup=1, setup=lambda: calls.append(1)) == [3.0, 4.0]
    assert len(calls) == 3  # setup before the warm-up call and each timed call
    durations = iter([9.0, 2.0, 6.0, 1.0])
    assert perf.best_time(fn, repeats=3, warmup=1) == 1.0


def test_best_time_waits_for_the_device_and_restores_threads(monkeypatch):
    from attnlab import perf

    synced = []
    monkeypatch.setattr(perf, "sync", lambda device=None: synced.append(str(device)))
    threads = torch.get_num_threads()
    seen = []
    perf.time_calls(lambda: seen.append(torch.get_num_threads()), repeats=2, warmup=0,
                    device="cuda", threads=1)
    assert synced == ["cuda"] * 4  # before and after each timed call
    assert seen == [1, 1] and torch.get_num_threads() == threads


def test_process_clock_counts_cpu_time_not_sleep():
    import time

    from attnlab.perf import best_time

    assert best_time(time.sleep, 0.05, repeats=1, warmup=0) >= 0.05
    assert best_time(time.sleep, 0.05, repeats=1, warmup=0, clock="process") < 0.02


@pytest.mark.parametrize("kwargs, message", [
    ({"repeats": 0}, "repeats must be a positive integer"),
    ({"repeats": 2.0}, "repeats must be a positive integer"),
    ({"warmup": -1}, "warmup must be an integer >= 0"),
    ({"clock": "cpu"}, "clock must be one of"),
    ({"threads": 0}, "threads must be a positive integer"),
    ({"clock": "process", "device": "cuda"}, "cannot time work on cuda"),
])
def test_timer_rejects_bad_arguments(kwargs, message):
    from attnlab.perf import best_time

    with pytest.raises(ValueError, match=message):
        best_time(lambda: None, **kwargs)


def test_dispatch_log_records_names_and_the_largest_output():
    from attnlab.perf import DispatchLog

    q, k = torch.randn(16, 8), torch.randn(32, 8)
    with DispatchLog() as log:
        w = torch.softmax(q @ k.T, dim=-1)  # (16, 32)
        values, _ = w.max(-1)  # a tuple of two tensors
    assert log.count("mm") == 1 and "_softmax" in log.names() and "max" in log.names()
    assert log.largest() == 16 * 32 * 4
    assert dict(log.calls)["max"] == 16 * 8  # the largest of the pair: the int64 indices
    with DispatchLog() as empty:
        pass
    assert empty.calls == [] and empty.largest() == 0
    # outside the block nothing is recorded
    torch.ones(3) + 1
    assert log.count("add") == 0


def test_device_name_of_the_cpu():
    from attnlab.perf import device_name

    assert device_name("cpu") == "CPU"
    detailed = device_name(torch.device("cpu"), detail=True)
    assert detailed.startswith("CPU (") and f"{torch.get_num_threads()} threads" in detailed
