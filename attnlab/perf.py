"""Measuring speed: FLOPs per token, model FLOPs utilisation (MFU), peak memory.

MFU is the fraction of a device's peak arithmetic that a training run turns
into model FLOPs: ``tokens_per_second * flops_per_token / peak_flops``. For a
GPT, training costs about ``6 N`` FLOPs per token for the weight matrices
(2 N forward, 4 N backward) plus ``12 L C T`` for the attention scores and
their weighted sums (Chowdhery et al. 2022, appendix B).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from attnlab.models import GPT, GPTConfig

__all__ = [
    "gpt_flops_per_token",
    "peak_flops",
    "measured_matmul_flops",
    "measured_peak_flops",
    "reset_peak_memory",
    "peak_memory_bytes",
    "peak_memory_during",
    "MemoryTraffic",
    "gpt_step_memory",
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
    """FLOP/s of one (n, n) @ (n, n) matrix product here: the best of ``repeat`` timings.

    One shape says little about a device's peak: see :func:`measured_peak_flops`.

    Example:
        >>> measured_matmul_flops("cpu", n=64, repeat=2) > 0
        True
    """
    return _best_matmul_flops(torch.device(device), dtype, n, n, n, repeat)


def _best_matmul_flops(device: torch.device, dtype: torch.dtype, m: int, k: int, n: int,
                       repeat: int) -> float:
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)
    best = float("inf")
    for i in range(repeat + 1):  # the first call is a warm-up
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        if i:
            best = min(best, time.perf_counter() - start)
    return 2.0 * m * k * n / best


def measured_peak_flops(device: torch.device | str, dtype: torch.dtype = torch.float32,
                        shapes: Sequence[tuple[int, int, int]] = (
                            (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
                            (4096, 512, 4096), (2048, 4096, 512)),
                        repeat: int = 5) -> dict[str, Any]:
    """A practical peak: the best FLOP/s of several GEMM shapes, each the best of ``repeat``.

    On a CPU there is no data-sheet figure that a program reaches, so the
    denominator of an MFU is what the BLAS library achieves here. Several
    shapes (square, wide, a skinny inner dimension) and repeats make it the
    machine's best, not one product's luck; on a machine shared with other
    work every measurement is a lower bound on the true peak.

    Args:
        device: where to multiply.
        dtype: the dtype of the products.
        shapes: ``(m, k, n)`` of each ``(m, k) @ (k, n)`` product.
        repeat: timed calls per shape (after one warm-up); the fastest counts.

    Returns:
        The best FLOP/s under ``"flops"``, the ``(m, k, n)`` of the best under ``"shape"``
        and the FLOP/s of each shape under ``"by_shape"`` (keys ``"mxkxn"``).

    Example:
        >>> r = measured_peak_flops("cpu", shapes=((64, 64, 64), (32, 128, 32)), repeat=2)
        >>> r["flops"] == max(r["by_shape"].values())
        True
    """
    device = torch.device(device)
    if not shapes:
        raise ValueError("measured_peak_flops needs at least one shape")
    by_shape = {f"{m}x{k}x{n}": _best_matmul_flops(device, dtype, m, k, n, repeat)
                for m, k, n in shapes}
    best = max(by_shape, key=by_shape.__getitem__)
    return {"flops": by_shape[best], "shape": tuple(int(x) for x in best.split("x")),
            "by_shape": by_shape}


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
    started (``getrusage``): it includes everything the process did before,
    so it says nothing about one step; use :func:`peak_memory_during`.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _rss_bytes(field_name: str = "VmRSS") -> int | None:
    """This process's resident set (VmRSS) or its high-water mark (VmHWM), from /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Reset the high-water mark to the current resident set (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_memory_during(fn: Callable[[], Any], device: torch.device | str = "cpu"
                       ) -> tuple[Any, int, str]:
    """Run ``fn`` once; return its result and the memory peak it added to what was held before.

    CUDA: ``max_memory_allocated`` after the call minus ``memory_allocated``
    before it (the peak statistics are reset first). CPU: the resident-set
    high-water mark after the call minus the resident set before it, with the
    mark reset just before the call (``/proc/self/clear_refs``, Linux); where
    that is impossible, the process's lifetime peak minus the resident set
    before, an upper bound. Unlike :func:`peak_memory_bytes`, earlier work in
    the process does not count.

    Returns:
        ``(result, bytes, how)``; ``how`` is ``"cuda_max_allocated"``,
        ``"rss_hwm_reset"`` or ``"rss_lifetime_peak"``.

    Example:
        >>> _, extra, how = peak_memory_during(lambda: torch.ones(2**22).sum())
        >>> extra >= 0 and how in ("rss_hwm_reset", "rss_lifetime_peak")
        True
    """
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result, int(torch.cuda.max_memory_allocated(device) - base), "cuda_max_allocated"
    baseline = _rss_bytes("VmRSS")
    reset = _reset_rss_peak()
    result = fn()
    if reset and baseline is not None:
        peak, how = _rss_bytes("VmHWM") or 0, "rss_hwm_reset"
    else:
        peak, how = peak_memory_bytes("cpu"), "rss_lifetime_peak"
        baseline = baseline if baseline is not None else 0
    return result, max(0, peak - baseline), how


class MemoryTraffic:
    """Count the bytes a computation moves to and from main memory (HBM), op by op.

    A dispatch tracer (``TorchDispatchMode``) sees every ATen operation with
    its input and output tensors. The model of a fused kernel it applies: a
    tensor that is a view of a *resident* tensor (the kernel's inputs and
    output, registered with ``resident=``) lives in main memory, so every op
    that reads it or writes it moves its bytes; any other tensor is a
    temporary that stays in on-chip memory when it fits in ``on_chip_bytes``,
    and travels through main memory (written, then read) when it does not.
    Written as PyTorch operations, a kernel's loop thus has its traffic
    counted as if each block-sized temporary lived in SRAM or registers.

    Args:
        on_chip_bytes: the on-chip budget M (e.g. an SM's shared memory).
        resident: tensors that live in main memory (inputs and outputs).

    Attributes:
        read, written: bytes counted so far.

    Example:
        >>> a, b = torch.ones(64, 64), torch.ones(64, 64)
        >>> with MemoryTraffic(on_chip_bytes=2**20, resident=[a, b]) as t:
        ...     c = (a @ b).relu()  # reads a, b; the 16 KiB product stays on chip
        >>> t.read, t.written
        (32768, 0)
    """

    def __init__(self, on_chip_bytes: int, resident: Sequence[torch.Tensor] = ()) -> None:
        if on_chip_bytes < 0:
            raise ValueError(f"on_chip_bytes must be >= 0, got {on_chip_bytes}")
        self.on_chip_bytes = on_chip_bytes
        self._resident = {t.untyped_storage().data_ptr() for t in resident}
        self.read = 0
        self.written = 0
        self._mode: Any = None

    def _in_memory(self, t: torch.Tensor) -> bool:
        return (t.untyped_storage().data_ptr() in self._resident
                or t.numel() * t.element_size() > self.on_chip_bytes)

    def _count(self, func: Any, types: Any, args: tuple, kwargs: dict | None) -> Any:
        from torch.utils._pytree import tree_flatten

        out = func(*args, **(kwargs or {}))
        if func in (torch.ops.aten.detach.default, torch.ops.aten.alias.default) or (
                getattr(func, "is_view", False)):
            return out  # a view moves nothing
        inputs = [t for t in tree_flatten((args, kwargs or {}))[0]
                  if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        in_place = {t.untyped_storage().data_ptr() for t in outputs}
        for t in inputs:
            # an in-place op's destination is written, not read
            if t.untyped_storage().data_ptr() in in_place and func._schema.is_mutable:
                continue
            if self._in_memory(t):
                self.read += t.numel() * t.element_size()
        for t in outputs:
            if self._in_memory(t):
                self.written += t.numel() * t.element_size()
        return out

    @property
    def total(self) -> int:
        """Bytes read plus bytes written."""
        return self.read + self.written

    def __enter__(self) -> MemoryTraffic:
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
                return counter._count(func, types, args, kwargs)

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


def _gpt_step_child(spec_json: str) -> None:
    spec = json.loads(spec_json)
    config = GPTConfig(**spec["config"])
    device = torch.device(spec["device"])

    def make(c: GPTConfig, batch: int, T: int) -> Callable[[], None]:
        torch.manual_seed(0)
        model = GPT(c).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, c.vocab_size, (batch, T + 1)).to(device)

        def step() -> None:
            logits = model(x[:, :-1])  # (B, T, V)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    # warm the libraries (BLAS, autograd, AdamW) on a tiny model: their one-off buffers are
    # part of the baseline, not of the step
    tiny = GPTConfig(**{**spec["config"], "n_layer": 1, "n_embd": 16, "n_head": 1})
    make(tiny, 2, 4)()
    step = make(config, spec["batch"], spec["T"])
    _, peak, how = peak_memory_during(step, device)
    print("ATTNLAB_STEP_MEMORY " + json.dumps({"peak_bytes": peak, "method": how}))


def gpt_step_memory(config: GPTConfig, batch: int, T: int,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """Peak memory of one GPT training step, measured in a fresh Python process.

    The step (forward, cross-entropy, backward, an AdamW update that creates
    its state) runs first thing in a new process, after the libraries are
    warmed up on a tiny model, and :func:`peak_memory_during` measures it. In
    a process that has trained before, the allocator would reuse pages it
    already holds and the resident set would not grow at all.

    Returns:
        ``{"peak_bytes": int, "method": str}``.
    """
    spec = {"config": asdict(config), "batch": batch, "T": T, "device": str(device)}
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    code = f"from attnlab.perf import _gpt_step_child; _gpt_step_child({json.dumps(spec)!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("ATTNLAB_STEP_MEMORY "):
            return json.loads(line.split(" ", 1)[1])
    raise RuntimeError(f"the step's process failed: {proc.stderr.strip()[-500:]}")
