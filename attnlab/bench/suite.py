"""The benchmark suite: every case of a configuration, each in its own process, as one document.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from attnlab.bench.cases import (
    METHODS,
    PASSES,
    BenchConfig,
    _available,
    _quadratic_bytes,
    default_methods,
)
from attnlab.bench.measure import measure_case
from attnlab.bench.report import SCHEMA_VERSION, summarise
from attnlab.perf import device_name

__all__ = ["run_suite"]


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
    common = {"device": device.type, "device_name": device_name(device, detail=True),
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


