r"""Benchmarks: time and peak memory of attention implementations against the sequence length.

``attnlab bench`` (or ``python -m attnlab.bench``) runs every implementation
side by side, for sequence lengths 256 ... 16 384, for the forward pass and for
forward + backward, and writes ``<tag>.json``, ``<tag>_time.png`` and
``<tag>_memory.png`` to ``benchmarks/results/``; it prints a table and the
ratios the book's targets are stated in.

Each case (one method, one length, one pass) runs in a fresh Python process,
so that one case's memory cannot leak into the next one's measurement:

* **Peak memory** on the CPU is the resident-set high-water mark of that
  process *minus* its resident set just after the inputs were created (the
  libraries are warmed up on tiny inputs before that, so their one-off
  buffers are not counted). The high-water mark is reset at that point where
  Linux allows it (``/proc/self/clear_refs``), else the process's lifetime
  peak is used. On CUDA it is ``torch.cuda.max_memory_allocated`` minus the
  memory allocated after creating the inputs.
* **Time** is the fastest of 3 to 5 timed calls (the median is recorded too),
  after one untimed call (the one whose memory is measured), with
  ``torch.cuda.synchronize`` on a GPU.

Methods (``q, k, v`` are (B, H, T, D), self-attention, no mask):

==================  =========================================================
``naive``           ``softmax(q k^T / sqrt(D)) v`` with the (T, T) matrix
``functional``      :func:`attnlab.functional.attention` (no weights)
``chunked``         :func:`attnlab.efficient.chunked_attention`
``sdpa``            ``F.scaled_dot_product_attention``, PyTorch's own choice
``sdpa-<backend>``  SDPA forced to one backend (flash, efficient, cudnn, math)
``triton``          :func:`attnlab.triton_attention.triton_attention` (CUDA)
``linear``          :func:`attnlab.efficient.linear_attention` (approximate)
``linformer``       :func:`attnlab.efficient.linformer_attention`, r = 256
``local``           :func:`attnlab.efficient.local_attention`, window 128
``mha``             :class:`attnlab.layers.MultiHeadAttention`, x (B, T, C)
``torch-mha``       ``nn.MultiheadAttention`` with the same weights
==================  =========================================================

Tests check that what is benchmarked is correct, never how fast it is.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "BenchConfig",
    "METHODS",
    "PASSES",
    "SCHEMA_VERSION",
    "default_methods",
    "make_case",
    "run_case",
    "measure_case",
    "peak_rss_during",
    "run_suite",
    "summarise",
    "validate_results",
    "format_table",
    "plot_results",
    "main",
]

SCHEMA_VERSION = 1
PASSES = ("forward", "forward+backward")
DEFAULT_LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384)

# name -> (kind, what it is). kind: "exact" attention on (B, H, T, D), "approx", or "layer".
METHODS: dict[str, tuple[str, str]] = {
    "naive": ("exact", "softmax(q k^T / sqrt(D)) v, materialising the (T, T) weights"),
    "functional": ("exact", "attnlab.functional.attention (no weights)"),
    "chunked": ("exact", "attnlab.efficient.chunked_attention (online softmax, plain PyTorch)"),
    "sdpa": ("exact", "F.scaled_dot_product_attention, backend chosen by PyTorch"),
    "sdpa-flash": ("exact", "SDPA, flash-attention backend"),
    "sdpa-efficient": ("exact", "SDPA, memory-efficient backend"),
    "sdpa-cudnn": ("exact", "SDPA, cuDNN backend"),
    "sdpa-math": ("exact", "SDPA, math (reference) backend"),
    "triton": ("exact", "attnlab.triton_attention (Triton kernel)"),
    "linear": ("approx", "attnlab.efficient.linear_attention (elu + 1 features)"),
    "linformer": ("approx", "attnlab.efficient.linformer_attention, r = 256"),
    "local": ("approx", "attnlab.efficient.local_attention, window 128"),
    "mha": ("layer", "attnlab.layers.MultiHeadAttention"),
    "torch-mha": ("layer", "nn.MultiheadAttention (same weights, need_weights=False)"),
}
# Methods whose memory grows with T * S: skipped when their estimate exceeds the budget.
QUADRATIC = {"naive", "sdpa-math"}
LINFORMER_R = 256
LOCAL_WINDOW = 128


@dataclass
class BenchConfig:
    """What one run of the suite measures.

    Every default is the suite the book's targets are stated for.
    """

    lengths: tuple[int, ...] = DEFAULT_LENGTHS  # T = S, self-attention
    methods: tuple[str, ...] | None = None  # None: every method available on the device
    passes: tuple[str, ...] = PASSES
    device: str = "cpu"
    dtype: str | None = None  # None: float32 on the CPU, bfloat16 on CUDA
    batch: int = 1  # B
    heads: int = 1  # H for the attention functions (q, k, v are (B, H, T, D))
    head_dim: int = 64  # D
    layer_heads: int = 4  # H of the layers "mha" and "torch-mha": C = layer_heads * head_dim
    layer_max_len: int = 4096  # the layers are timed up to this T
    block_size: int | None = None  # chunked attention's keys per block (None: its default)
    max_quadratic_mib: float = 1024.0  # skip naive / math cases whose (T, T) tensors exceed this
    min_time: float = 0.5  # seconds of timed calls per case
    min_repeats: int = 3  # timed calls per case at least (unless max_repeats is smaller)
    max_repeats: int = 5  # timed calls per case at most (after the untimed one)
    case_timeout: float = 600.0  # seconds before a case is abandoned
    seed: int = 0

    def resolved_dtype(self) -> torch.dtype:
        name = self.dtype or ("bfloat16" if self.device.startswith("cuda") else "float32")
        dt = getattr(torch, name, None)
        if not isinstance(dt, torch.dtype):
            raise ValueError(f"unknown dtype {name!r}")
        return dt


def default_methods(device: str) -> tuple[str, ...]:
    """The methods that can run on ``device``: SDPA's CPU backends are flash and math."""
    if device.startswith("cuda"):
        return ("naive", "functional", "chunked", "sdpa", "sdpa-flash", "sdpa-efficient",
                "sdpa-cudnn", "sdpa-math", "triton", "linear", "linformer", "local", "mha",
                "torch-mha")
    # On the CPU, "sdpa" dispatches to the flash kernel: "sdpa-flash" would time it twice.
    return ("naive", "functional", "chunked", "sdpa", "sdpa-math", "linear", "linformer",
            "local", "mha", "torch-mha")


def _versions() -> dict[str, str]:
    from attnlab import __version__

    v = {"python": platform.python_version(), "torch": torch.__version__, "attnlab": __version__}
    if torch.version.cuda:
        v["cuda"] = torch.version.cuda
    try:
        import triton  # type: ignore[import-not-found]

        v["triton"] = triton.__version__
    except ImportError:
        pass
    return v


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
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


# ----------------------------------------------------------------------- the cases


def _sdpa_backend(name: str):  # noqa: ANN202
    from torch.nn.attention import SDPBackend

    return {"sdpa-flash": SDPBackend.FLASH_ATTENTION,
            "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION,
            "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION,
            "sdpa-math": SDPBackend.MATH}[name]


def _naive(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B,H,T,D) @ (B,H,D,S)
    return torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v  # (B,H,T,S) @ (B,H,S,D)


def make_case(method: str, T: int, cfg: BenchConfig, requires_grad: bool = False
              ) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
    """Inputs and a closure for one case: ``fn()`` runs the method once on them.

    Args:
        method: a key of ``METHODS``.
        T: the sequence length (T = S).
        cfg: the suite's configuration (device, dtype, B, H, D).
        requires_grad: make the inputs (and a layer's weights) trainable.

    Returns:
        ``(fn, tensors)``: ``tensors`` are the inputs that require grad (the
        first ones) followed by the others, so that a caller can inspect them.

    Example:
        >>> fn, (q, k, v) = make_case("chunked", 16, BenchConfig())
        >>> fn().shape
        torch.Size([1, 1, 16, 64])
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    device, dtype = torch.device(cfg.device), cfg.resolved_dtype()
    g = torch.Generator(device="cpu").manual_seed(cfg.seed)
    kind = METHODS[method][0]
    if kind == "layer":
        from attnlab.layers import MultiHeadAttention

        C = cfg.layer_heads * cfg.head_dim
        x = torch.randn(cfg.batch, T, C, generator=g).to(device, dtype)  # (B, T, C)
        x.requires_grad_(requires_grad)
        torch.manual_seed(cfg.seed)
        ref = torch.nn.MultiheadAttention(C, cfg.layer_heads, batch_first=True)
        ref = ref.to(device, dtype)
        if method == "torch-mha":
            return (lambda: ref(x, x, x, need_weights=False)[0]), [x]
        ours = MultiHeadAttention.from_torch(ref)
        return (lambda: ours(x)), [x]

    shape = (cfg.batch, cfg.heads, T, cfg.head_dim)  # (B, H, T, D)
    q, k, v = (torch.randn(*shape, generator=g).to(device, dtype).requires_grad_(requires_grad)
               for _ in range(3))
    if method == "naive":
        return (lambda: _naive(q, k, v)), [q, k, v]
    if method == "functional":
        from attnlab.functional import attention

        return (lambda: attention(q, k, v)), [q, k, v]
    if method == "chunked":
        from attnlab.efficient import chunked_attention

        return (lambda: chunked_attention(q, k, v, block_size=cfg.block_size)), [q, k, v]
    if method == "sdpa":
        return (lambda: F.scaled_dot_product_attention(q, k, v)), [q, k, v]
    if method.startswith("sdpa-"):
        from torch.nn.attention import sdpa_kernel

        backend = _sdpa_backend(method)

        def forced() -> torch.Tensor:
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v)

        return forced, [q, k, v]
    if method == "triton":
        from attnlab.triton_attention import triton_attention

        return (lambda: triton_attention(q, k, v)), [q, k, v]
    if method == "linear":
        from attnlab.efficient import linear_attention

        return (lambda: linear_attention(q, k, v)), [q, k, v]
    if method == "linformer":
        from attnlab.efficient import linformer_attention

        r = min(LINFORMER_R, T)
        e = (torch.randn(r, T, generator=g) / math.sqrt(r)).to(device, dtype)  # (r, S)
        f = (torch.randn(r, T, generator=g) / math.sqrt(r)).to(device, dtype)  # (r, S)
        return (lambda: linformer_attention(q, k, v, e, f)), [q, k, v, e, f]
    from attnlab.efficient import local_attention  # method == "local"

    return (lambda: local_attention(q, k, v, LOCAL_WINDOW)), [q, k, v]


def _quadratic_bytes(method: str, T: int, cfg: BenchConfig, pass_: str) -> int:
    """A lower bound on what a method that materialises (T, T) matrices holds at once."""
    if method not in QUADRATIC:
        return 0
    one = cfg.batch * cfg.heads * T * T * cfg.resolved_dtype().itemsize
    return one * (2 if pass_ == "forward" else 3)


# --------------------------------------------------------------------- measuring


def peak_rss_during(fn: Callable[[], Any]) -> tuple[Any, int, str]:
    """Run ``fn`` once; return its result and the resident-set peak above the current RSS.

    :func:`attnlab.perf.peak_memory_during` on the CPU. Meaningful in a fresh
    process (the suite runs each case in one).

    Returns:
        ``(result, bytes, how)``: ``how`` says whether the high-water mark was
        reset before the call (``"rss_hwm_reset"``) or is the process's
        lifetime peak (``"rss_lifetime_peak"``, an upper bound).

    Example:
        >>> _, extra, how = peak_rss_during(lambda: torch.ones(1000))
        >>> extra >= 0
        True
    """
    from attnlab.perf import peak_memory_during

    return peak_memory_during(fn, "cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_case(method: str, T: int, pass_: str, cfg: BenchConfig) -> dict[str, Any]:
    """Measure one case in this process (the suite calls it in a fresh one).

    Returns:
        A record, with ``status`` ``"ok"`` with ``time_s`` (the fastest timed call),
        ``median_s``, ``times_s``,
        ``peak_bytes``, ``memory_method`` and ``max_abs_err`` (forward output
        against SDPA's math backend in fp32, up to T = 4096), or ``"error"``
        with ``reason``.
    """
    if pass_ not in PASSES:
        raise ValueError(f"pass must be one of {PASSES}, got {pass_!r}")
    device = torch.device(cfg.device)
    backward = pass_ == "forward+backward"
    torch.manual_seed(cfg.seed)

    def step(fn: Callable[[], torch.Tensor], grad: torch.Tensor | None) -> torch.Tensor:
        if not backward:
            with torch.no_grad():
                out = fn()
        else:
            out = fn()
            out.backward(grad)
        _sync(device)
        return out

    # Warm the libraries (BLAS, OpenMP, autograd, kernels) on tiny inputs first, so that their
    # one-off buffers are part of the baseline, not of the case.
    warm_fn, _ = make_case(method, min(T, 64), cfg, requires_grad=backward)
    out = warm_fn()
    step(warm_fn, torch.ones_like(out) if backward else None)
    del warm_fn, out
    gc.collect()

    fn, tensors = make_case(method, T, cfg, requires_grad=backward)
    grad = None
    if backward:  # every method's output has the shape of its first input
        grad = torch.randn(tensors[0].shape, generator=torch.Generator().manual_seed(1)).to(
            device, tensors[0].dtype)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        out = step(fn, grad)
        first = time.perf_counter() - start
        peak, how = torch.cuda.max_memory_allocated(device) - base, "cuda_max_allocated"
    else:
        start = time.perf_counter()
        out, peak, how = peak_rss_during(lambda: step(fn, grad))
        first = time.perf_counter() - start
    err = None
    if T <= 4096 and METHODS[method][0] != "layer":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            q, k, v = (t.detach().float() for t in tensors[:3])
            err = float((out.detach().float() - F.scaled_dot_product_attention(q, k, v))
                        .abs().max())
    del out
    n = max(1, min(cfg.max_repeats, max(cfg.min_repeats, int(cfg.min_time / max(first, 1e-6)))))
    times = []
    for _ in range(n):
        if backward:
            for t in tensors:
                t.grad = None
        _sync(device)
        start = time.perf_counter()
        step(fn, grad)
        times.append(time.perf_counter() - start)
    # The best call: other processes can only slow a call down, never speed it up.
    return {"status": "ok", "time_s": min(times), "median_s": statistics.median(times),
            "times_s": times,
            "peak_bytes": int(peak), "memory_method": how, "max_abs_err": err}


def _child(spec_json: str) -> int:
    spec = json.loads(spec_json)
    cfg = BenchConfig(**{**spec["config"], "lengths": tuple(spec["config"]["lengths"])})
    try:
        rec = run_case(spec["method"], spec["T"], spec["pass"], cfg)
    except Exception as err:  # noqa: BLE001 -- a failing case is a row, not a crash of the suite
        rec = {"status": "error", "reason": f"{type(err).__name__}: {err}".splitlines()[0][:300]}
    print("ATTNLAB_BENCH_RESULT " + json.dumps(rec))
    return 0


def measure_case(method: str, T: int, pass_: str, cfg: BenchConfig) -> dict[str, Any]:
    """Run one case (:func:`run_case`) in a fresh Python process; return its record.

    A case that fails or times out gives ``{"status": "error", "reason": ...}``.
    """
    spec = {"method": method, "T": T, "pass": pass_, "config": asdict(cfg)}
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
    try:
        proc = subprocess.run([sys.executable, "-m", "attnlab.bench", "--case", json.dumps(spec)],
                              capture_output=True, text=True, timeout=cfg.case_timeout, env=env,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {cfg.case_timeout:g} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("ATTNLAB_BENCH_RESULT "):
            return json.loads(line.split(" ", 1)[1])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
    return {"status": "error", "reason": f"the case's process exited {proc.returncode}: {tail}"}


# ------------------------------------------------------------------------ the suite


def _available(method: str, device: torch.device) -> str | None:
    """None if ``method`` can run on ``device``, else why not."""
    if method == "triton":
        if device.type != "cuda":
            return "the Triton kernel needs CUDA"
        try:
            import triton  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            return "triton is not installed"
    if method in ("sdpa-efficient", "sdpa-cudnn") and device.type != "cuda":
        return f"{method} is a CUDA backend"
    return None


@dataclass
class _Progress:
    total: int
    enabled: bool = True
    done: int = 0
    start: float = field(default_factory=time.perf_counter)

    def step(self, label: str) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                         f" {elapsed:5.0f} s  {label:<40.40}")
        sys.stderr.flush()
        self.done += 1

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write(f"\r[{'#' * 24}] {self.total}/{self.total} "
                             f"{time.perf_counter() - self.start:5.0f} s{' ' * 42}\n")


def run_suite(cfg: BenchConfig, progress: bool = True) -> dict[str, Any]:
    """Run every case of ``cfg``, each in a fresh process; return the results document.

    Returns:
        ``{"schema", "created", "device", "device_name", "versions", "config",
        "records", "summary"}``; see :func:`validate_results`.
    """
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {cfg.device!r} was asked for, but CUDA is not available")
    methods = cfg.methods or default_methods(cfg.device)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; known: {', '.join(METHODS)}")
    for p in cfg.passes:
        if p not in PASSES:
            raise ValueError(f"unknown pass {p!r}; known: {', '.join(PASSES)}")
    if not cfg.lengths or any(t < 1 for t in cfg.lengths):
        raise ValueError(f"lengths must be positive, got {cfg.lengths}")
    dtype = cfg.resolved_dtype()
    common = {"device": device.type, "device_name": _device_name(device),
              "versions": _versions(), "dtype": str(dtype).removeprefix("torch."),
              "B": cfg.batch, "D": cfg.head_dim}
    cases = [(m, T, p) for p in cfg.passes for T in cfg.lengths for m in methods]
    bar = _Progress(len(cases), enabled=progress)
    records = []
    for m, T, p in cases:
        bar.step(f"{m} T={T} {p}")
        rec: dict[str, Any] = {"method": m, "kind": METHODS[m][0], "T": T, "pass": p, **common,
                               "H": cfg.layer_heads if METHODS[m][0] == "layer" else cfg.heads}
        why = _available(m, device)
        quad = _quadratic_bytes(m, T, cfg, p)
        if why is None and quad > cfg.max_quadratic_mib * 2**20:
            why = (f"its (T, T) tensors need >= {quad / 2**20:.0f} MiB "
                   f"> --max-quadratic-mib {cfg.max_quadratic_mib:g}")
        if why is None and METHODS[m][0] == "layer" and T > cfg.layer_max_len:
            why = f"layers are timed up to T = {cfg.layer_max_len} (--layer-max-len)"
        rec.update({"status": "skipped", "reason": why} if why else
                   measure_case(m, T, p, cfg))
        records.append(rec)
    bar.close()
    doc = {"schema": SCHEMA_VERSION,
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "device": device.type, "device_name": common["device_name"],
           "versions": common["versions"],
           "memory_note": ("CPU: resident-set high-water mark of the case's own process minus "
                           "its resident set after creating the inputs (libraries warmed up "
                           "before); CUDA: max_memory_allocated minus the allocation after "
                           "creating the inputs"),
           "config": {**asdict(cfg), "methods": list(methods)}, "records": records}
    doc["summary"] = summarise(records)
    return doc


_RECORD_KEYS = {"method": str, "kind": str, "T": int, "pass": str, "status": str,
                "device": str, "device_name": str, "versions": dict, "dtype": str}
_OK_KEYS = {"time_s": float, "times_s": list, "peak_bytes": int, "memory_method": str}


def validate_results(doc: dict[str, Any]) -> None:
    """Raise ValueError unless ``doc`` is a results document of this schema.

    Example:
        >>> validate_results({"schema": 1, "device": "cpu", "device_name": "CPU",
        ...                   "versions": {}, "config": {}, "records": [], "summary": {}})
    """
    for key, typ in (("schema", int), ("device", str), ("device_name", str),
                     ("versions", dict), ("config", dict), ("records", list),
                     ("summary", dict)):
        if not isinstance(doc.get(key), typ):
            raise ValueError(f"results need {key!r} of type {typ.__name__}")
    if doc["schema"] != SCHEMA_VERSION:
        raise ValueError(f"schema {doc['schema']} is not {SCHEMA_VERSION}")
    for i, rec in enumerate(doc["records"]):
        for key, typ in _RECORD_KEYS.items():
            if not isinstance(rec.get(key), typ):
                raise ValueError(f"record {i} needs {key!r} of type {typ.__name__}: {rec}")
        if rec["method"] not in METHODS or rec["pass"] not in PASSES:
            raise ValueError(f"record {i}: unknown method or pass: {rec}")
        if rec["status"] == "ok":
            for key, typ in _OK_KEYS.items():
                if not isinstance(rec.get(key), typ):
                    raise ValueError(f"record {i} needs {key!r} of type {typ.__name__}")
            if rec["time_s"] <= 0 or rec["peak_bytes"] < 0:
                raise ValueError(f"record {i}: time must be > 0 and memory >= 0")
        elif rec["status"] in ("skipped", "error"):
            if not isinstance(rec.get("reason"), str):
                raise ValueError(f"record {i}: a {rec['status']} record needs a reason")
        else:
            raise ValueError(f"record {i}: unknown status {rec['status']!r}")


# --------------------------------------------------------------------- ratios, targets


def _lookup(records: Sequence[dict[str, Any]]) -> dict[tuple[str, int, str], dict[str, Any]]:
    return {(r["method"], r["T"], r["pass"]): r for r in records if r["status"] == "ok"}


def _ratio(ok: dict, a: str, b: str, T: int, p: str, key: str) -> float | None:
    ra, rb = ok.get((a, T, p)), ok.get((b, T, p))
    if ra is None or rb is None or not rb[key]:
        return None
    return ra[key] / rb[key]


def summarise(records: Sequence[dict[str, Any]], target_T: int = 8192) -> dict[str, Any]:
    """Ratios between methods measured in the same run, and the book's targets.

    Returns:
        ``{"ratios": [...], "targets": [...]}``. A ratio row names ``a``,
        ``b``, the quantity (``time_s`` or ``peak_bytes``), the pass and its
        value per T. A target row has the measured ``value``, the ``limit``,
        ``met`` (True / False, or None when not measured) and how it was judged.

    Example:
        >>> recs = [{"method": m, "T": 8192, "pass": "forward", "status": "ok",
        ...          "time_s": t, "peak_bytes": b}
        ...         for m, t, b in (("naive", 2.0, 800), ("chunked", 1.0, 80))]
        >>> [t["value"] for t in summarise(recs)["targets"] if t["met"] is not None]
        [0.1, 0.5]
    """
    ok = _lookup(records)
    lengths = sorted({r["T"] for r in records})
    pairs = [("functional", "sdpa", "time_s"), ("chunked", "naive", "time_s"),
             ("chunked", "naive", "peak_bytes"), ("chunked", "sdpa", "time_s"),
             ("mha", "torch-mha", "time_s"), ("triton", "sdpa-flash", "time_s"),
             ("sdpa-flash", "sdpa-math", "peak_bytes")]
    ratios = []
    for a, b, key in pairs:
        for p in PASSES:
            vals = {T: _ratio(ok, a, b, T, p, key) for T in lengths}
            vals = {T: v for T, v in vals.items() if v is not None}
            if vals:
                ratios.append({"a": a, "b": b, "quantity": key, "pass": p,
                               "by_T": {str(T): v for T, v in vals.items()}})

    def over_lengths(a: str, b: str, p: str) -> tuple[float | None, str]:
        vals = [v for T in lengths if (v := _ratio(ok, a, b, T, p, "time_s")) is not None]
        if not vals:
            return None, "not measured"
        return statistics.median(vals), (f"median over {len(vals)} lengths "
                                         f"(worst {max(vals):.2f})")

    targets = []

    def target(name: str, value: float | None, limit: float, how: str,
               at_least: bool = False) -> None:
        met = None if value is None else (value >= limit if at_least else value <= limit)
        targets.append({"target": name, "value": value, "limit": limit,
                        "relation": ">=" if at_least else "<=", "met": met, "how": how})

    v, how = over_lengths("functional", "sdpa", "forward")
    target("functional.attention time / SDPA time (forward)", v, 1.10, how)
    v, how = over_lengths("functional", "sdpa", "forward+backward")
    target("functional.attention time / SDPA time (forward+backward)", v, 1.10, how)
    at = f"T = {target_T}"
    target(f"chunked / naive peak memory, forward, {at}",
           _ratio(ok, "chunked", "naive", target_T, "forward", "peak_bytes"), 1 / 8, at)
    target(f"chunked / naive time, forward, {at}",
           _ratio(ok, "chunked", "naive", target_T, "forward", "time_s"), 1.5, at)
    target(f"chunked / naive peak memory, forward+backward, {at}",
           _ratio(ok, "chunked", "naive", target_T, "forward+backward", "peak_bytes"), 1 / 4, at)
    v, how = over_lengths("mha", "torch-mha", "forward+backward")
    target("MultiHeadAttention / nn.MultiheadAttention time (forward+backward)", v, 1.10, how)
    tri = [r for r in records if r["method"] == "triton" and r["T"] == 4096]
    if tri and tri[0].get("dtype") == "bfloat16" and tri[0].get("D") == 64:
        r = _ratio(ok, "triton", "sdpa-flash", 4096, "forward", "time_s")
        target("Triton throughput / SDPA flash throughput, bf16, T = 4096, D = 64",
               None if r is None else 1 / r, 0.70, "forward, throughput = 1 / time",
               at_least=True)
    return {"ratios": ratios, "targets": targets}


# ------------------------------------------------------------------------- output


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.1f}"


def format_table(doc: dict[str, Any]) -> str:
    """A readable table: per pass and length, each method's time (ms) and peak memory (MiB)."""
    recs = doc["records"]
    methods = list(dict.fromkeys(r["method"] for r in recs))
    lengths = sorted({r["T"] for r in recs})
    ok = _lookup(recs)
    lines = [f"{doc['device_name']} | " + ", ".join(f"{k} {v}" for k, v in
                                                     doc["versions"].items())]
    for p in PASSES:
        if not any(r["pass"] == p for r in recs):
            continue
        for what, key, fmt in (("time, ms", "time_s", lambda x: f"{1e3 * x:.2f}"),
                               ("peak memory, MiB", "peak_bytes", _fmt_bytes)):
            lines.append("")
            lines.append(f"{p}: {what}")
            lines.append(f"{'T':>6} " + " ".join(f"{m:>11}" for m in methods))
            for T in lengths:
                cells = []
                for m in methods:
                    r = ok.get((m, T, p))
                    cells.append(f"{fmt(r[key]) if r else '-':>11}")
                lines.append(f"{T:>6} " + " ".join(cells))
    errors = [r for r in recs if r["status"] == "error"]
    if errors:
        lines.append("")
        lines.extend(f"error: {r['method']} T={r['T']} {r['pass']}: {r['reason']}"
                     for r in errors)
    lines.append("")
    lines.append("Ratios measured in this run (a / b):")
    for row in doc["summary"]["ratios"]:
        vals = ", ".join(f"{T}: {v:.3g}" for T, v in row["by_T"].items())
        lines.append(f"  {row['a']} / {row['b']} {row['quantity']} ({row['pass']}): {vals}")
    lines.append("")
    lines.append("Targets:")
    for t in doc["summary"]["targets"]:
        state = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        val = "-" if t["value"] is None else f"{t['value']:.3f}"
        lines.append(f"  [{state}] {t['target']}: {val} (target {t['relation']} "
                     f"{t['limit']:.3f}; {t['how']})")
    return "\n".join(lines)


def plot_results(doc: dict[str, Any], out_dir: str | Path, tag: str) -> list[Path]:
    """Log-log plots of time and peak memory against T, one panel per pass; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    ok = _lookup(doc["records"])
    methods = list(dict.fromkeys(r["method"] for r in doc["records"]))
    passes = [p for p in PASSES if any(r["pass"] == p for r in doc["records"])]
    paths = []
    for key, ylabel, scale, name in (("time_s", "time per call (ms)", 1e3, "time"),
                                     ("peak_bytes", "peak memory (MiB)", 2.0**-20, "memory")):
        fig, axes = plt.subplots(1, len(passes), figsize=(6.2 * len(passes), 4.6),
                                 squeeze=False)
        for ax, p in zip(axes[0], passes):
            for i, m in enumerate(methods):
                pts = sorted((T, r[key] * scale) for (mm, T, pp), r in ok.items()
                             if mm == m and pp == p and r[key] > 0)
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, label=m,
                            ls="-" if i < 10 else "--")
            ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel=ylabel,
                   title=p)
            ax.set_xscale("log", base=2)
            ax.grid(True, which="both", alpha=0.3)
        axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(f"{name}: {doc['device_name']}", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{tag}_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _tag(doc: dict[str, Any]) -> str:
    if doc["device"] != "cuda":
        return "cpu"
    name = "".join(c if c.isalnum() else "-" for c in doc["device_name"].lower())
    return "cuda-" + "-".join(p for p in name.split("-") if p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``attnlab bench`` (shared by ``python -m attnlab.bench``)."""
    p.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)),
                   help="comma-separated sequence lengths (default 256..16384)")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated methods (default: all available); known: "
                        f"{', '.join(METHODS)}")
    p.add_argument("--passes", default=",".join(PASSES),
                   help="forward, forward+backward or both (comma-separated)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--dtype", default=None,
                   help="float32, bfloat16 or float16 (default: float32 on CPU, bf16 on CUDA)")
    p.add_argument("--batch", type=int, default=1, help="B (default 1)")
    p.add_argument("--heads", type=int, default=1, help="H of q, k, v (default 1)")
    p.add_argument("--head-dim", type=int, default=64, help="D (default 64)")
    p.add_argument("--block-size", type=int, default=None, help="chunked attention's block")
    p.add_argument("--max-quadratic-mib", type=float, default=1024.0,
                   help="skip naive / SDPA-math cases whose (T, T) tensors exceed this")
    p.add_argument("--layer-max-len", type=int, default=4096,
                   help="time the layers (mha, torch-mha) up to this T")
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds of timed calls per case (default 0.5)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per case at most")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: lengths 128,256, one timed call, forward only")
    p.add_argument("--out", default="benchmarks/results", help="folder for JSON and plots")
    p.add_argument("--tag", default=None, help="file name stem (default: cpu / cuda-<gpu>)")
    p.add_argument("--no-plots", action="store_true", help="write only the JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--suite", choices=("attention", "gpu"), default="attention",
                   help="attention: this sweep over lengths (default); gpu: every GPU claim of "
                        "chapters 7 and 8 (attnlab.bench_gpu), written to <out>/<device>.json")
    p.add_argument("--dry-run", action="store_true",
                   help="with --suite gpu: build and run every case at toy sizes (any device)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the suite from parsed options; print the table; write JSON and plots."""

    if getattr(args, "suite", "attention") == "gpu":
        from attnlab.bench_gpu import run_from_args as run_gpu

        return run_gpu(args)
    if getattr(args, "dry_run", False):
        print("attnlab bench: --dry-run goes with --suite gpu", file=sys.stderr)
        return 2

    def split(s: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in s.split(",") if x.strip())

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        lengths = tuple(int(x) for x in split(args.lengths))
    except ValueError:
        print(f"attnlab bench: --lengths must be integers, got {args.lengths!r}", file=sys.stderr)
        return 2
    cfg = BenchConfig(lengths=lengths, methods=split(args.methods) if args.methods else None,
                      passes=split(args.passes), device=device, dtype=args.dtype,
                      batch=args.batch, heads=args.heads, head_dim=args.head_dim,
                      layer_max_len=args.layer_max_len, block_size=args.block_size,
                      max_quadratic_mib=args.max_quadratic_mib, min_time=args.min_time,
                      max_repeats=args.repeats)
    if args.quick:
        cfg.lengths, cfg.passes, cfg.min_time, cfg.max_repeats = (128, 256), ("forward",), 0, 1
    try:
        doc = run_suite(cfg, progress=not args.no_progress)
    except ValueError as err:
        print(f"attnlab bench: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = args.tag or _tag(doc)
    (out / f"{tag}.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(format_table(doc))
    written = [out / f"{tag}.json"]
    if not args.no_plots:
        written += plot_results(doc, out, tag)
    print("\nwrote " + ", ".join(str(p) for p in written))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m attnlab.bench [options]``; see ``--help``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--case":
        return _child(argv[1])
    p = argparse.ArgumentParser(prog="attnlab bench", description=__doc__.split("\n")[0])
    add_arguments(p)
    return run_from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
