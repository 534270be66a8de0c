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
