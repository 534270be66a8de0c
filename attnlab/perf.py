"""Measuring: time, peak memory, the operators a computation runs, FLOP/s and MFU.

The book's one home for measuring. :func:`best_time` (over
:func:`time_calls`) times a call, waiting for the device; :func:`device_name`
and :func:`sync` name and wait for a device; :func:`peak_memory_during`
measures the memory a call adds, on the CPU or a GPU; :class:`DispatchLog`
records every operator PyTorch runs and the bytes it returns;
:class:`MemoryTraffic` counts the bytes a kernel moves to and from main memory.

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
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from attnlab.models import GPT, GPTConfig

__all__ = [
    "sync",
    "time_calls",
    "best_time",
    "DispatchLog",
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


def sync(device: torch.device | str | None = None) -> None:
    """Wait until ``device`` has finished the work queued on it (CUDA, MPS; the CPU never waits).

    GPU kernels run asynchronously: a timer read without waiting measures
    only the time to *queue* the work.

    Example:
        >>> sync("cpu")  # nothing to wait for
    """
    device = torch.device("cpu" if device is None else device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


_CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter,
                                           "process": time.process_time}


def time_calls(fn: Callable[..., Any], *args: Any, repeats: int = 5, warmup: int = 1,
               device: torch.device | str | None = None, clock: str = "wall",
               threads: int | None = None, setup: Callable[[], Any] | None = None
               ) -> list[float]:
    """Seconds of each of ``repeats`` calls ``fn(*args)``, after ``warmup`` untimed calls.

    The one timer of the book: :func:`best_time` takes the fastest of these.
    Each timed call starts and ends with :func:`sync` on ``device``, so that a
    GPU's queued work is inside the measurement.

    Args:
        fn: what to time; its result is discarded.
        args: its positional arguments.
        repeats: timed calls, at least 1.
        warmup: untimed calls first (caches, allocators, kernel selection), at least 0.
        device: the device to wait for (default: the CPU, nothing to wait for).
        clock: ``"wall"`` (``time.perf_counter``) or ``"process"``
            (``time.process_time``: the CPU seconds of this process, which other
            programs on a shared machine disturb less; CPU work only).
        threads: run with this many PyTorch threads (restored afterwards); None
            keeps the current setting.
        setup: called before each call, outside the timed span (e.g. clearing gradients).

    Returns:
        ``repeats`` durations in seconds, in the order they were measured.

    Example:
        >>> times = time_calls(torch.ones, 1000, repeats=3)
        >>> len(times), all(t > 0 for t in times)
        (3, True)
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
    if clock not in _CLOCKS:
        raise ValueError(f"clock must be one of {sorted(_CLOCKS)}, got {clock!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    device = torch.device("cpu" if device is None else device)
    if clock == "process" and device.type != "cpu":
        raise ValueError("clock='process' counts this process's CPU time: it cannot time work "
                         f"on {device.type}; use clock='wall'")
    now = _CLOCKS[clock]
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    times = []
    try:
        for _ in range(warmup):
            if setup is not None:
                setup()
            fn(*args)
        for _ in range(repeats):
            if setup is not None:
                setup()
            sync(device)
            start = now()
            fn(*args)
            sync(device)
            times.append(now() - start)
    finally:
        torch.set_num_threads(before)
    return times


def best_time(fn: Callable[..., Any], *args: Any, repeats: int = 5, warmup: int = 1,
              device: torch.device | str | None = None, clock: str = "wall",
              threads: int | None = None) -> float:
    """Seconds of the fastest of ``repeats`` calls ``fn(*args)``, after ``warmup`` calls.

    The fastest, not the mean: other work on the machine can only slow a call
    down, so the best call is the closest to what the code itself costs.
    The arguments are those of :func:`time_calls`.

    Example:
        >>> a = torch.randn(64, 64)
        >>> t = best_time(torch.matmul, a, a, repeats=3)
        >>> 0 < t < 1
        True
        >>> best_time(torch.matmul, a, a, repeats=0)
        Traceback (most recent call last):
        ...
        ValueError: repeats must be a positive integer, got 0
    """
    return min(time_calls(fn, *args, repeats=repeats, warmup=warmup, device=device,
                          clock=clock, threads=threads))


class DispatchLog:
    """Record every PyTorch operator run inside ``with DispatchLog() as log:``.

    A ``TorchDispatchMode`` (PyTorch's hook below autograd, in the internal
    module ``torch.utils._python_dispatch``) sees each ATen operator as it
    runs. The log keeps, for each call, the operator's name (``"mm"``,
    ``"softmax"``, ...) and the bytes of the largest tensor it returned, so
    that it answers two questions: which operators ran, and how large the
    largest intermediate tensor was.

    Attributes:
        calls: ``[(operator name, bytes of its largest output tensor)]`` in order.

    Example:
        >>> a = torch.ones(8, 4)
        >>> with DispatchLog() as log:
        ...     b = (a @ a.T).softmax(-1)      # (8, 4) @ (4, 8) -> (8, 8)
        >>> log.names()
        ['permute', 'mm', '_softmax']
        >>> log.largest(), log.count("mm", "bmm")
        (256, 1)
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self._mode: Any = None

    def _record(self, func: Any, args: tuple, kwargs: dict | None) -> Any:
        from torch.utils._pytree import tree_flatten

        out = func(*args, **(kwargs or {}))
        sizes = [t.numel() * t.element_size() for t in tree_flatten(out)[0]
                 if isinstance(t, torch.Tensor)]
        self.calls.append((func.overloadpacket.__name__, max(sizes, default=0)))
        return out

    def names(self) -> list[str]:
        """The operators' names, in the order they ran."""
        return [name for name, _ in self.calls]

    def largest(self) -> int:
        """Bytes of the largest tensor any operator returned (0 if none ran)."""
        return max((size for _, size in self.calls), default=0)

    def count(self, *names: str) -> int:
        """How many calls ran one of the operators ``names`` (e.g. ``"mm", "bmm"``)."""
        return sum(name in names for name, _ in self.calls)

    def __enter__(self) -> DispatchLog:
        from torch.utils._python_dispatch import TorchDispatchMode

        log = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
                return log._record(func, args, kwargs)

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


def gpt_flops_per_token(model: GPT, T: int | None = None) -> float:
    """Training FLOPs per token of a GPT: :meth:`attnlab.models.GPT.flops_per_token`.

    Kept for the callers written before the count moved onto the model.

    Example:
        >>> from attnlab.models import GPT, GPTConfig
        >>> m = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_embd=16, n_head=2))
        >>> gpt_flops_per_token(m, T=4) == m.flops_per_token(4)
        True
    """
    return model.flops_per_token(T)


def device_name(device: torch.device | str, detail: bool = False) -> str:
    """A readable name: the GPU's model, ``"Apple MPS"`` or ``"CPU"``.

    Args:
        device: the device.
        detail: for the CPU, add the processor's model and PyTorch's thread
            count, e.g. ``"CPU (AMD EPYC 7B13, 2 threads)"``.

    Example:
        >>> device_name("cpu")
        'CPU'
        >>> device_name("cpu", detail=True).startswith("CPU (")
        True
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    if not detail:
        return "CPU"
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU ({name}, {torch.get_num_threads()} threads)"


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
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
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
    from attnlab.models import GPT, GPTConfig

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
