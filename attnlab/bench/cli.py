"""Benchmarks: time and peak memory of attention implementations against the sequence length.

The command line: ``attnlab bench [options]`` or ``python -m attnlab.bench [options]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from attnlab.bench.cases import DEFAULT_LENGTHS, METHODS, PASSES, BenchConfig
from attnlab.bench.measure import _child
from attnlab.bench.report import _tag, format_table, plot_results
from attnlab.bench.suite import run_suite

__all__ = ["add_arguments", "run_from_args", "main"]


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
    p.add_argument("--suite", choices=("attention", "gpu", "claims"), default="attention",
                   help="attention: this sweep over lengths (default); gpu: every GPU claim of "
                        "chapters 7 and 8 (attnlab.bench_gpu), written to <out>/<device>.json; "
                        "claims: the timing claims of chapters 3, 6, 8 and 19 on the CPU "
                        "(attnlab.bench.claims), written to <out>/claims-<tag>.json")
    p.add_argument("--dry-run", action="store_true",
                   help="with --suite gpu: build and run every case at toy sizes (any device)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the suite from parsed options; print the table; write JSON and plots."""

    if getattr(args, "suite", "attention") == "gpu":
        from attnlab.bench_gpu import run_from_args as run_gpu

        return run_gpu(args)
    if getattr(args, "suite", "attention") == "claims":
        from attnlab.bench.claims import run_from_args as run_claims

        return run_claims(args)
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


