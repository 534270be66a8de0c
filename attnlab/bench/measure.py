"""Measuring one benchmark case: time and peak memory, in a fresh Python process.

:func:`measure_case` starts ``python -m attnlab.bench --case <spec>``, whose
:func:`run_case` warms the libraries up on tiny inputs, measures the peak
memory of one call (:func:`attnlab.perf.peak_memory_during`) and times the
calls that follow (:func:`attnlab.perf.time_calls`); one case's memory thus
cannot leak into the next one's measurement.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attnlab.bench.cases import METHODS, PASSES, BenchConfig, make_case
from attnlab.perf import peak_memory_during, sync, time_calls

__all__ = ["peak_rss_during", "run_case", "measure_case"]


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
    return peak_memory_during(fn, "cpu")

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
        sync(device)
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
    start = time.perf_counter()
    out, peak, how = peak_memory_during(lambda: step(fn, grad), device)
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

    def clear_grads() -> None:
        for t in tensors:
            t.grad = None

    times = time_calls(step, fn, grad, repeats=n, warmup=0, device=device,
                       setup=clear_grads if backward else None)
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
    root = str(Path(__file__).resolve().parents[2])
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


