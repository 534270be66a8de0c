r"""The GPU suite: every claim chapters 7 and 8 make about a GPU, measured by one command.

::

    attnlab bench --suite gpu              # on a CUDA device: benchmarks/results/<device>.json
    attnlab bench --suite gpu --dry-run    # anywhere: every case built and run at toy sizes

What it measures (each a list of records in the JSON, with the device's name and the versions):

* ``sdpa``: each SDPA backend (flash, memory-efficient, cuDNN, math) in bf16 and fp16, forward
  and forward + backward: time, peak memory above the inputs, and the forward error against
  SDPA's math backend in fp32. A backend that refuses the inputs is a record saying why.
* ``triton``: :func:`attnlab.triton_attention.triton_attention` beside SDPA's flash backend,
  bf16, T = 4096, D = 64: times, error, and the throughput ratio (target >= 0.70).
* ``gpt``: a GPT-2-small-sized :class:`attnlab.models.GPT` trained on random tokens with bf16
  autocast and a fused AdamW, eager and ``torch.compile``-d: tokens per second, model FLOPs
  utilisation against the device's data-sheet bf16 peak (target >= 0.35 on an H100), the peak
  memory of one step, and the compile speed-up.
* ``ddp``: :mod:`attnlab.distributed` over NCCL with one process per GPU, when there are
  several GPUs (a record saying so otherwise).

Targets are recorded (``met`` true or false), never asserted: a benchmark reports. The dry
run uses the CPU, fp32 where a case needs a GPU's dtype, tiny shapes, and ``torch.compile``'s
``eager`` backend (it traces the model but generates no code), so that the test suite checks
in seconds that every case builds and runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from attnlab.perf import sync, time_calls

__all__ = ["GPUSuiteConfig", "SUITE_SCHEMA", "run_gpu_suite", "validate_gpu_results",
           "suite_tag", "committed_results", "format_gpu_results", "run_from_args"]

SUITE_SCHEMA = 1
BACKENDS = ("flash", "efficient", "cudnn", "math")
PASSES = ("forward", "forward+backward")


@dataclass
class GPUSuiteConfig:
    """Sizes of the suite; the defaults are the ones the book's GPU claims are stated for."""

    device: str = "cuda"
    dry_run: bool = False  # toy sizes, on any device
    batch: int = 4  # B of the attention cases
    heads: int = 16  # H
    seq: int = 4096  # T = S of the attention cases (the Triton target is stated at 4096)
    head_dim: int = 64  # D (the Triton target is stated at 64)
    causal: bool = False  # the attention cases are unmasked, as attnlab bench's
    repeats: int = 10  # timed calls per attention case (the fastest counts; median recorded)
    gpt_layers: int = 12  # GPT-2 small: 12 layers, width 768, 12 heads, context 1024
    gpt_embd: int = 768
    gpt_heads: int = 12
    gpt_block: int = 1024
    gpt_vocab: int = 50304  # GPT-2's 50257 padded to a multiple of 64, as nanoGPT does
    gpt_batch: int = 16  # sequences per step: 16 384 tokens
    gpt_warmup: int = 5  # untimed steps (kernels, autotuning, compilation)
    gpt_steps: int = 20  # timed steps
    compile: bool = True  # also measure the torch.compile-d model
    seed: int = 0

    @classmethod
    def toy(cls, device: str = "cpu") -> GPUSuiteConfig:
        """The dry run's sizes: every case in seconds on a CPU."""
        return cls(device=device, dry_run=True, batch=1, heads=2, seq=64, head_dim=16,
                   repeats=1, gpt_layers=1, gpt_embd=32, gpt_heads=2, gpt_block=16,
                   gpt_vocab=64, gpt_batch=2, gpt_warmup=1, gpt_steps=2)


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> dict[str, Any]:
    """Best and median seconds of ``repeats`` calls, after one warm-up call."""
    times = time_calls(fn, repeats=max(1, repeats), warmup=1, device=device)
    return {"time_s": min(times), "median_s": statistics.median(times)}


def _qkv(cfg: GPUSuiteConfig, dtype: torch.dtype, grad: bool = False) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(cfg.seed)
    shape = (cfg.batch, cfg.heads, cfg.seq, cfg.head_dim)  # (B, H, T, D)
    return [torch.randn(*shape, generator=g).to(cfg.device, dtype).requires_grad_(grad)
            for _ in range(3)]


def _math_fp32(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)


def _measure(fn: Callable[[], torch.Tensor], backward: bool, inputs: list[torch.Tensor],
             device: torch.device, repeats: int) -> dict[str, Any]:
    """Time and peak memory of ``fn`` (forward, or forward + backward of a fixed gradient)."""
    from attnlab.perf import peak_memory_during

    grad = torch.ones_like(inputs[0]) if backward else None

    def call() -> torch.Tensor:
        if not backward:
            with torch.no_grad():
                return fn()
        for t in inputs:
            t.grad = None
        out = fn()
        out.backward(grad)
        return out

    out, peak, how = peak_memory_during(call, device)
    rec = {"peak_bytes": int(peak), "memory_method": how, **_timed(call, device, repeats)}
    return {**rec, "_out": out.detach()}


def sdpa_records(cfg: GPUSuiteConfig) -> list[dict[str, Any]]:
    """Each SDPA backend, bf16 and fp16, forward and forward + backward."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    device = torch.device(cfg.device)
    enum = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    records = []
    for dtype in (torch.bfloat16, torch.float16):
        for p in PASSES:
            q, k, v = _qkv(cfg, dtype, grad=p != "forward")
            ref = _math_fp32(q, k, v, cfg.causal)
            for name in BACKENDS:
                rec: dict[str, Any] = {"case": "sdpa", "backend": name,
                                       "dtype": str(dtype).removeprefix("torch."), "pass": p,
                                       "B": cfg.batch, "H": cfg.heads, "T": cfg.seq,
                                       "D": cfg.head_dim, "causal": cfg.causal}

                def fn(backend: Any = enum[name], q: torch.Tensor = q, k: torch.Tensor = k,
                       v: torch.Tensor = v) -> torch.Tensor:
                    with sdpa_kernel(backend):
                        return F.scaled_dot_product_attention(q, k, v, is_causal=cfg.causal)

                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        m = _measure(fn, p != "forward", [q, k, v], device, cfg.repeats)
                except RuntimeError as err:  # the backend refuses; its warnings say why
                    why = [str(w.message).splitlines()[0] for w in caught] or [str(err)]
                    if device.type != "cuda" and name in ("efficient", "cudnn"):
                        why.insert(0, "a CUDA backend")
                    rec.update(status="unsupported", reason=" | ".join(why)[:400])
                else:
                    out = m.pop("_out")
                    rec.update(status="ok", **m,
                               max_abs_err=float((out.float() - ref).abs().max()))
                records.append(rec)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    return records


def triton_records(cfg: GPUSuiteConfig) -> list[dict[str, Any]]:
    """The Triton kernel beside SDPA's flash backend (bf16 on CUDA; fp32 in the interpreter)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from attnlab.triton_attention import interpreted, is_available, triton_attention

    device = torch.device(cfg.device)
    base = {"case": "triton", "B": cfg.batch, "H": cfg.heads, "T": cfg.seq, "D": cfg.head_dim,
            "causal": cfg.causal}
    if not is_available() or (device.type != "cuda" and not interpreted()):
        return [{**base, "status": "skipped",
                 "reason": "needs Triton and CUDA (or TRITON_INTERPRET=1 on the CPU)"}]
    # Triton's interpreter has no bf16 arithmetic (NumPy): fp32 there
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    records = []
    for p in PASSES:
        q, k, v = _qkv(cfg, dtype, grad=p != "forward")
        ref = _math_fp32(q, k, v, cfg.causal)
        def tri(q: torch.Tensor = q, k: torch.Tensor = k, v: torch.Tensor = v) -> torch.Tensor:
            return triton_attention(q, k, v, causal=cfg.causal)

        impls = {"triton": tri}
        if device.type == "cuda":
            def flash(q: torch.Tensor = q, k: torch.Tensor = k,
                      v: torch.Tensor = v) -> torch.Tensor:
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=cfg.causal)

            impls["sdpa-flash"] = flash
        times = {}
        for name, fn in impls.items():
            rec = {**base, "impl": name, "pass": p, "dtype": str(dtype).removeprefix("torch.")}
            m = _measure(fn, p != "forward", [q, k, v], device, cfg.repeats)
            out = m.pop("_out")
            rec.update(status="ok", **m, max_abs_err=float((out.float() - ref).abs().max()))
            times[name] = m["time_s"]
            records.append(rec)
        if "sdpa-flash" in times:
            records[-2]["throughput_vs_flash"] = times["sdpa-flash"] / times["triton"]
    return records


def _gpt_step_fn(cfg: GPUSuiteConfig, compiled: bool) -> tuple[Callable[[], float], Any, int]:
    from attnlab.models import GPT, GPTConfig

    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = GPT(GPTConfig(vocab_size=cfg.gpt_vocab, block_size=cfg.gpt_block,
                          n_layer=cfg.gpt_layers, n_embd=cfg.gpt_embd, n_head=cfg.gpt_heads,
                          bias=False)).to(device)
    cuda = device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, **({"fused": True} if cuda else {}))
    if compiled:  # the dry run traces with the eager backend: no code generation
        step_model: Any = torch.compile(model, **({"backend": "eager"} if cfg.dry_run else {}))
    else:
        step_model = model
    g = torch.Generator().manual_seed(cfg.seed)
    x = torch.randint(0, cfg.gpt_vocab, (cfg.gpt_batch, cfg.gpt_block + 1), generator=g)
    x = x.to(device)
    amp = cuda and torch.cuda.is_bf16_supported()

    def step() -> float:
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            logits = step_model(x[:, :-1])  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step, model, amp


def gpt_records(cfg: GPUSuiteConfig) -> list[dict[str, Any]]:
    """Training throughput, MFU, a step's peak memory; eager and torch.compile."""
    from attnlab.perf import peak_flops, peak_memory_during

    device = torch.device(cfg.device)
    records = []
    for compiled in ((False, True) if cfg.compile else (False,)):
        step, model, amp = _gpt_step_fn(cfg, compiled)
        began = time.perf_counter()
        losses = [float(step()) for _ in range(cfg.gpt_warmup)]
        warmup_s = time.perf_counter() - began
        _, peak, how = peak_memory_during(step, device)
        sync(device)
        start = time.perf_counter()
        for _ in range(cfg.gpt_steps):
            last = step()
        sync(device)
        seconds = time.perf_counter() - start
        tokens = cfg.gpt_batch * cfg.gpt_block * cfg.gpt_steps
        fpt = model.flops_per_token(cfg.gpt_block)
        peak_fl = peak_flops(device)
        tps = tokens / seconds
        records.append({
            "case": "gpt", "compile": compiled, "status": "ok",
            "compile_backend": ("eager (dry run)" if cfg.dry_run else "inductor") if compiled
            else None,
            "bf16_autocast": amp, "parameters": sum(p.numel() for p in model.parameters()),
            "n_layer": cfg.gpt_layers, "n_embd": cfg.gpt_embd, "T": cfg.gpt_block,
            "batch": cfg.gpt_batch, "steps": cfg.gpt_steps, "warmup_s": warmup_s,
            "step_s": seconds / cfg.gpt_steps, "tokens_per_second": tps,
            "flops_per_token": fpt, "peak_flops": peak_fl,
            "mfu": None if peak_fl is None else tps * fpt / peak_fl,
            "peak_bytes": int(peak), "memory_method": how,
            "first_loss": losses[0] if losses else None, "last_loss": float(last)})
        del step, model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if len(records) == 2:
        records[1]["speedup_vs_eager"] = (records[1]["tokens_per_second"]
                                          / records[0]["tokens_per_second"])
    return records


def ddp_records(cfg: GPUSuiteConfig, out_dir: Path) -> list[dict[str, Any]]:
    """attnlab.distributed over NCCL, one process per GPU, when there are several."""
    from attnlab import distributed

    gpus = torch.cuda.device_count() if torch.device(cfg.device).type == "cuda" else 0
    argv = ["--steps", "100", "--batch-size", "256", "--amp", "--out", str(out_dir / "ddp")]
    distributed._parse(argv)  # the command is well formed, even where it cannot run
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(max(gpus, 2)), "-m", "attnlab.distributed", *argv]
    base = {"case": "ddp", "command": " ".join(cmd[2:])}
    if cfg.dry_run or gpus < 2:
        why = "dry run" if cfg.dry_run else f"{gpus} GPU here: DDP over NCCL needs 2 or more"
        return [{**base, "status": "skipped", "reason": why}]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        return [{**base, "status": "error", "reason": proc.stderr.strip()[-300:]}]
    report = json.loads((out_dir / "ddp" / "report.json").read_text())
    return [{**base, "status": "ok", **report}]


def _targets(records: list[dict[str, Any]], device_name: str) -> list[dict[str, Any]]:
    targets = []
    tri = [r for r in records if r.get("case") == "triton" and "throughput_vs_flash" in r
           and r["pass"] == "forward"]
    if tri and tri[0]["dtype"] == "bfloat16" and tri[0]["T"] == 4096 and tri[0]["D"] == 64:
        v = tri[0]["throughput_vs_flash"]
        targets.append({"target": "Triton / SDPA flash throughput, bf16, T = 4096, D = 64",
                        "value": v, "limit": 0.70, "relation": ">=", "met": v >= 0.70})
    gpt = [r for r in records if r.get("case") == "gpt" and r.get("mfu") is not None]
    if gpt and "H100" in device_name.upper():
        best = max(r["mfu"] for r in gpt)
        targets.append({"target": "GPT training MFU against the bf16 data-sheet peak (H100)",
                        "value": best, "limit": 0.35, "relation": ">=", "met": best >= 0.35})
    return targets


def suite_tag(device_name: str, dry_run: bool) -> str:
    """The results file's stem: the device's name in lower case with dashes.

    Example:
        >>> suite_tag("NVIDIA H100 80GB HBM3", False)
        'nvidia-h100-80gb-hbm3'
    """
    slug = "".join(c if c.isalnum() else "-" for c in device_name.lower())
    slug = "-".join(p for p in slug.split("-") if p)
    return f"dry-run-{slug}" if dry_run else slug


def run_gpu_suite(cfg: GPUSuiteConfig, out_dir: str | Path = "benchmarks/results",
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every case; return the results document (see :func:`validate_gpu_results`)."""
    from attnlab.bench.suite import _versions
    from attnlab.perf import device_name

    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("the GPU suite needs a CUDA device; use --dry-run to check it here")
    if device.type != "cuda" and not cfg.dry_run:
        raise ValueError(f"the GPU suite measures a CUDA device, not {device.type!r}; "
                         f"--dry-run runs its cases at toy sizes anywhere")
    name = device_name(device)
    records: list[dict[str, Any]] = []
    for label, fn in (("sdpa", lambda: sdpa_records(cfg)),
                      ("triton", lambda: triton_records(cfg)),
                      ("gpt", lambda: gpt_records(cfg)),
                      ("ddp", lambda: ddp_records(cfg, Path(out_dir)))):
        began = time.perf_counter()
        recs = fn()
        records.extend(recs)
        log(f"{label}: {len(recs)} records in {time.perf_counter() - began:.1f} s")
    return {"suite": "gpu", "schema": SUITE_SCHEMA, "dry_run": cfg.dry_run,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "device": device.type, "device_name": name, "versions": _versions(),
            "config": asdict(cfg), "records": records,
            "targets": _targets(records, name)}


_CASES = {"sdpa", "triton", "gpt", "ddp"}
_STATUS = {"ok", "skipped", "unsupported", "error"}


def validate_gpu_results(doc: dict[str, Any]) -> None:
    """Raise ValueError unless ``doc`` is a GPU-suite results document.

    Example:
        >>> validate_gpu_results({"suite": "gpu", "schema": 1, "dry_run": True,
        ...     "device": "cpu", "device_name": "CPU", "versions": {}, "config": {},
        ...     "records": [], "targets": []})
    """
    for key, typ in (("suite", str), ("schema", int), ("dry_run", bool), ("device", str),
                     ("device_name", str), ("versions", dict), ("config", dict),
                     ("records", list), ("targets", list)):
        if not isinstance(doc.get(key), typ):
            raise ValueError(f"GPU-suite results need {key!r} of type {typ.__name__}")
    if doc["suite"] != "gpu" or doc["schema"] != SUITE_SCHEMA:
        raise ValueError(f"not a GPU-suite document of schema {SUITE_SCHEMA}")
    for i, rec in enumerate(doc["records"]):
        if rec.get("case") not in _CASES or rec.get("status") not in _STATUS:
            raise ValueError(f"record {i}: unknown case or status: {rec}")
        if rec["status"] == "ok" and rec["case"] in ("sdpa", "triton", "gpt"):
            t = rec.get("time_s", rec.get("step_s"))
            if not isinstance(t, float) or t <= 0 or not isinstance(rec.get("peak_bytes"), int):
                raise ValueError(f"record {i}: an ok record needs a positive time and memory")
            err = rec.get("max_abs_err")
            if err is not None and not math.isfinite(err):
                raise ValueError(f"record {i}: non-finite error")
        elif rec["status"] != "ok" and not isinstance(rec.get("reason"), str):
            raise ValueError(f"record {i}: a {rec['status']} record needs a reason")


def committed_results(folder: str | Path) -> list[dict[str, Any]]:
    """The GPU-suite documents in ``folder`` (dry runs left out), each validated, by name.

    Example:
        >>> committed_results("no/such/folder")
        []
    """
    docs = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and doc.get("suite") == "gpu" and not doc.get("dry_run"):
            validate_gpu_results(doc)
            docs.append(doc)
    return docs


def format_gpu_results(doc: dict[str, Any]) -> str:
    """A readable summary of a GPU-suite document."""
    lines = [f"{doc['device_name']}{' (dry run)' if doc['dry_run'] else ''} | "
             + ", ".join(f"{k} {v}" for k, v in doc["versions"].items())]
    for r in doc["records"]:
        what = " ".join(str(r[k]) for k in ("case", "backend", "impl", "dtype", "pass")
                        if r.get(k) is not None)
        if r["case"] == "gpt":
            what += " compiled" if r["compile"] else " eager"
        if r["status"] != "ok":
            lines.append(f"  {what}: {r['status']} ({r['reason'][:90]})")
        elif r["case"] == "gpt":
            mfu = "-" if r["mfu"] is None else f"{r['mfu']:.3f}"
            lines.append(f"  {what}: {r['tokens_per_second']:.0f} tokens/s, MFU {mfu}, "
                         f"step peak {r['peak_bytes'] / 2**20:.0f} MiB")
        elif r["case"] == "ddp":
            lines.append(f"  {what}: {r.get('tokens_per_second', 0):.0f} tokens/s on "
                         f"{r.get('world_size')} ranks")
        else:
            lines.append(f"  {what}: {1e3 * r['time_s']:.3f} ms, "
                         f"{r['peak_bytes'] / 2**20:.1f} MiB, max |err| {r['max_abs_err']:.1e}")
    for t in doc["targets"]:
        lines.append(f"  target [{'met' if t['met'] else 'MISSED'}] {t['target']}: "
                     f"{t['value']:.3f} ({t['relation']} {t['limit']})")
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace) -> int:
    """``attnlab bench --suite gpu [--dry-run] [--out DIR]``."""
    if args.dry_run:
        cfg = GPUSuiteConfig.toy(args.device or "cpu")
    else:
        cfg = GPUSuiteConfig(device=args.device or "cuda")
    out = Path(args.out)
    try:
        doc = run_gpu_suite(cfg, out, log=lambda s: print(s, file=sys.stderr))
    except ValueError as err:
        print(f"attnlab bench --suite gpu: {err}", file=sys.stderr)
        return 2
    validate_gpu_results(doc)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.tag or suite_tag(doc['device_name'], cfg.dry_run)}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(format_gpu_results(doc))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":  # python -m attnlab.bench_gpu [--dry-run]
    _p = argparse.ArgumentParser(prog="python -m attnlab.bench_gpu")
    _p.add_argument("--dry-run", action="store_true")
    _p.add_argument("--device", default=None)
    _p.add_argument("--out", default="benchmarks/results")
    _p.add_argument("--tag", default=None)
    sys.exit(run_from_args(_p.parse_args()))
