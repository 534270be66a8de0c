"""Measuring speed: FLOPs per token, model FLOPs utilisation (MFU), peak memory.

MFU is the fraction of a device's peak arithmetic that a training run turns
into model FLOPs: ``tokens_per_second * flops_per_token / peak_flops``. For a
GPT, training costs about ``6 N`` FLOPs per token for the weight matrices
(2 N forward, 4 N backward) plus ``12 L C T`` for the attention scores and
their weighted sums (Chowdhery et al. 2022, appendix B).
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from attnlab.models import GPT

__all__ = [
    "gpt_flops_per_token",
    "peak_flops",
    "measured_matmul_flops",
    "reset_peak_memory",
    "peak_memory_bytes",
    "device_name",
]

# Dense bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets (no sparsity).
# The first matching entry wins, so more specific names come first.
_PEAK_BF16_TFLOPS: list[tuple[tuple[str, ...], float]] = [
    (("H100", "PCIE"), 756.0),
    (("H100",), 989.4),
    (("H200",), 989.4),
    (("GH200",), 989.4),
    (("A100",), 312.0),
    (("L40S",), 362.1),
    (("A10G",), 70.0),
    (("L4",), 121.0),
]


def gpt_flops_per_token(model: GPT, T: int | None = None) -> float:
    """Training FLOPs per token of a :class:`attnlab.models.GPT`: ``6 N + 12 L C T``.

    N counts every parameter that takes part in a matrix product: the token
    embedding is counted once, as the tied output layer; a learned position
    table is a lookup and is left out.

    Args:
        model: the GPT.
        T: the sequence length trained on (default: ``block_size``).

    Example:
        >>> from attnlab.models import GPTConfig
        >>> m = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_embd=16, n_head=2))
        >>> gpt_flops_per_token(m) == 6 * (sum(p.numel() for p in m.parameters()) - 8 * 16) \\
        ...     + 12 * 1 * 16 * 8
        True
    """
    c = model.config
    T = c.block_size if T is None else T
    n = sum(p.numel() for p in model.parameters())
    if c.positional == "learned":
        n -= c.block_size * c.n_embd
    return 6.0 * n + 12.0 * c.n_layer * c.n_embd * T


def device_name(device: torch.device | str) -> str:
    """A readable name: the GPU's model, ``"Apple MPS"`` or ``"CPU"``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "Apple MPS" if device.type == "mps" else "CPU"


def peak_flops(device: torch.device | str, dtype: torch.dtype = torch.bfloat16) -> float | None:
    """The data-sheet peak FLOP/s of a known GPU for bf16/fp16, or None when unknown.

    Example:
        >>> peak_flops("cpu") is None
        True
    """
    device = torch.device(device)
    if device.type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
        return None
    name = torch.cuda.get_device_name(device).upper()
    for keys, tflops in _PEAK_BF16_TFLOPS:
        if all(k in name for k in keys):
            return tflops * 1e12
    return None


def measured_matmul_flops(device: torch.device | str, dtype: torch.dtype = torch.float32,
                          n: int = 1024, repeat: int = 5) -> float:
    """FLOP/s of an (n, n) @ (n, n) matrix product here: a practical peak for MFU on a CPU.

    Returns the best of ``repeat`` timings, after one warm-up.
    """
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for i in range(repeat + 1):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        if i:
            best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def reset_peak_memory(device: torch.device | str) -> None:
    """Start a new peak-memory measurement (CUDA; the CPU's peak cannot be reset)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device | str) -> int:
    """Peak memory: CUDA's largest allocation since the last reset, else this process's RSS peak.

    On the CPU this is the resident-set peak of the whole process since it
    started (``getrusage``), an upper bound on what one step needed.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
