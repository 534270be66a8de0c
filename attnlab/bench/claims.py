r"""The chapters' timing claims on a CPU, measured by one command and written as results.

::

    attnlab bench --suite claims             # benchmarks/results/claims-<device>.json
    attnlab bench --suite claims --quick     # small sizes, one call each: a smoke run

A chapter shows its timings as it runs, but a time depends on the machine and on what else
runs on it, so no chapter asserts one: it asserts what does not vary (operation counts,
FLOPs, dependent steps) and states the timing as measured. This suite measures each timing
statement on its own, on one thread and with the best of several calls, and records whether
it held (``holds`` true or false) on this machine, never asserting it: a benchmark reports.

The claims (each a record with its chapter, its statement, the numbers and ``holds``):

* ``scaling`` (chapter 3): the time of :func:`attnlab.functional.naive_attention` grows with
  slope about 2 in :math:`T` and about 1 in :math:`D` on a log–log plot.
* ``gru_vs_attention`` (chapter 3): at :math:`T = 128`, a GRU run step by step is several
  times slower than a self-attention layer of the same width, though it does less arithmetic;
  the GRU's time grows with slope about 1 and attention's with slope about 2.
* ``kv_cache`` (chapter 6): generating 100 tokens with a KV cache takes less time than
  without one.
* ``compile`` (chapter 8): compiling naive attention takes longer than any call of it.
* ``flex_attention`` (chapter 19): ``flex_attention`` not compiled is slower on a CPU than
  dense attention with the same window mask.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnlab.perf import best_time, device_name

__all__ = ["ClaimsConfig", "CLAIMS", "CLAIMS_SCHEMA", "run_claims", "validate_claims",
           "format_claims", "run_from_args"]

CLAIMS_SCHEMA = 1


@dataclass
class ClaimsConfig:
    """Sizes of the suite; the defaults are the chapters' own.

    Args:
        lengths: sequence lengths of the scaling fit (chapter 3, ``D = 64``).
        dims: head widths of the scaling fit (chapter 3, ``T = 512``).
        rnn_lengths: sequence lengths of the GRU against attention (chapter 3, ``D = 64``).
        new_tokens: tokens generated in the KV-cache comparison (chapter 6).
        compile_length: ``T`` of the compile comparison (chapter 8).
        flex_length: ``T`` of the flex-attention comparison (chapter 19).
        repeats: timed calls per measurement; the fastest counts.

    Example:
        >>> ClaimsConfig.quick().repeats
        1
    """

    lengths: tuple[int, ...] = (256, 512, 1024, 2048)
    dims: tuple[int, ...] = (64, 128, 256, 512, 1024)
    rnn_lengths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    new_tokens: int = 100
    compile_length: int = 2048
    flex_length: int = 1024
    repeats: int = 5

    @classmethod
    def quick(cls) -> ClaimsConfig:
        """Small sizes and one call each: checks that every claim runs, in seconds."""
        return cls(lengths=(64, 128), dims=(16, 32), rnn_lengths=(32, 128), new_tokens=8,
                   compile_length=128, flex_length=256, repeats=1)


def _slope(xs: tuple[int, ...], ts: list[float]) -> float:
    return float(np.polyfit(np.log(xs), np.log(ts), 1)[0])


def _claim(chapter: int, name: str, statement: str, holds: bool, **numbers: Any) -> dict:
    return {"chapter": chapter, "claim": name, "statement": statement, "holds": bool(holds),
            **numbers}


def _scaling(cfg: ClaimsConfig, timer: dict[str, Any]) -> dict:
    from attnlab.functional import naive_attention

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        t_T = [best_time(naive_attention, *(torch.randn(n, 64, generator=g) for _ in range(3)),
                         **timer) for n in cfg.lengths]
        t_D = [best_time(naive_attention, *(torch.randn(512, d, generator=g) for _ in range(3)),
                         **timer) for d in cfg.dims]
    slope_T, slope_D = _slope(cfg.lengths, t_T), _slope(cfg.dims, t_D)
    return _claim(3, "scaling", "naive attention's time grows with slope about 2 in T and "
                  "about 1 in D (log-log)", 1.4 < slope_T < 2.6 and 0.5 < slope_D < 1.5,
                  lengths=list(cfg.lengths), seconds_by_length=t_T, dims=list(cfg.dims),
                  seconds_by_dim=t_D, slope_T=slope_T, slope_D=slope_D)


def _gru_vs_attention(cfg: ClaimsConfig, timer: dict[str, Any]) -> dict:
    from attnlab.functional import naive_attention

    torch.manual_seed(0)
    D = 64
    gru = torch.nn.GRU(D, D, batch_first=True)
    cell = torch.nn.GRUCell(D, D)
    cell.load_state_dict({k.removesuffix("_l0"): p for k, p in gru.state_dict().items()})
    W_q, W_k, W_v = (torch.nn.Linear(D, D, bias=False) for _ in range(3))

    def gru_by_hand(x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(1, D)
        for t in range(x.shape[1]):
            h = cell(x[:, t], h)
        return h

    def attention(x: torch.Tensor) -> torch.Tensor:
        return naive_attention(W_q(x), W_k(x), W_v(x))

    g = torch.Generator().manual_seed(0)
    t_att, t_gru = [], []
    with torch.no_grad():
        for T in cfg.rnn_lengths:
            x = torch.randn(1, T, D, generator=g)
            t_att.append(best_time(attention, x, **timer))
            t_gru.append(best_time(gru_by_hand, x, **timer))
    at = cfg.rnn_lengths.index(128) if 128 in cfg.rnn_lengths else 0
    ratio = t_gru[at] / t_att[at]
    slope_att, slope_gru = _slope(cfg.rnn_lengths, t_att), _slope(cfg.rnn_lengths, t_gru)
    return _claim(3, "gru_vs_attention", "at T = 128 the GRU run step by step is more than 3 "
                  "times slower than self-attention of the same width", ratio > 3,
                  lengths=list(cfg.rnn_lengths), attention_seconds=t_att, gru_seconds=t_gru,
                  ratio_at=cfg.rnn_lengths[at], gru_over_attention=ratio,
                  slope_attention=slope_att, slope_gru=slope_gru)


def _kv_cache(cfg: ClaimsConfig, timer: dict[str, Any]) -> dict:
    from attnlab.models import GPT, GPTConfig

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=16, block_size=16 + cfg.new_tokens, n_layer=2, n_head=8,
                        n_embd=64)).eval()
    start = torch.randint(3, 16, (4, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        t = {cache: best_time(lambda c=cache: gpt.generate(start, cfg.new_tokens, use_cache=c),
                              **timer) for cache in (True, False)}
    return _claim(6, "kv_cache", f"generating {cfg.new_tokens} tokens with a KV cache takes "
                  "less time than without", t[True] < t[False], with_cache_seconds=t[True],
                  without_cache_seconds=t[False], speedup=t[False] / t[True])


def _compile(cfg: ClaimsConfig, timer: dict[str, Any]) -> dict:
    import torch.nn.functional as F

    from attnlab.functional import naive_attention

    torch._dynamo.reset()
    compiled = torch.compile(naive_attention)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, cfg.compile_length, 64, generator=g) for _ in range(3))
    with torch.no_grad():
        began = time.perf_counter()
        compiled(q, k, v)
        compile_s = time.perf_counter() - began
        calls = {"naive, eager": best_time(naive_attention, q, k, v, **timer),
                 "naive, torch.compile": best_time(compiled, q, k, v, **timer),
                 "SDPA (fused)": best_time(F.scaled_dot_product_attention, q, k, v, **timer)}
    return _claim(8, "compile", "compiling naive attention takes longer than any call of it",
                  compile_s > max(calls.values()), compile_seconds=compile_s,
                  call_seconds=calls, length=cfg.compile_length)


def _flex(cfg: ClaimsConfig, timer: dict[str, Any]) -> dict:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    from attnlab import functional as AF
    from attnlab.masks import window_mask

    T, W = cfg.flex_length, 128

    def sliding_window(b, h, q_idx, kv_idx):  # type: ignore[no-untyped-def]
        return (kv_idx <= q_idx) & (q_idx - kv_idx <= W)

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, T, 32, generator=g) for _ in range(3))
    dense = window_mask(T, window=W, causal=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flex_attention called without torch.compile"
        block_mask = create_block_mask(sliding_window, B=None, H=None, Q_LEN=T, KV_LEN=T,
                                       device="cpu")
        t_dense = best_time(lambda: AF.attention(q, k, v, dense), **timer)
        t_flex = best_time(lambda: flex_attention(q, k, v, block_mask=block_mask), **timer)
    return _claim(19, "flex_attention", "flex_attention, not compiled, is slower on a CPU than "
                  "dense attention with the same window mask", t_flex > t_dense,
                  length=T, window=W, dense_seconds=t_dense, flex_seconds=t_flex)


#: each claim's name and the function that measures it
CLAIMS: dict[str, Callable[[ClaimsConfig, dict[str, Any]], dict]] = {
    "scaling": _scaling, "gru_vs_attention": _gru_vs_attention, "kv_cache": _kv_cache,
    "compile": _compile, "flex_attention": _flex}


def run_claims(cfg: ClaimsConfig | None = None, names: tuple[str, ...] | None = None) -> dict:
    """Measure the chapters' timing claims on the CPU, one thread, CPU time of the process.

    Args:
        cfg: sizes (default: the chapters' own).
        names: which claims (default: all of :data:`CLAIMS`).

    Returns:
        A dict with ``suite``, ``schema``, ``device``, ``versions``, ``config`` and ``claims``
        (a list of records, each with ``chapter``, ``claim``, ``statement``, ``holds`` and its
        numbers).

    Example:
        >>> doc = run_claims(ClaimsConfig.quick(), names=("kv_cache",))
        >>> [c["claim"] for c in doc["claims"]], type(doc["claims"][0]["holds"])
        (['kv_cache'], <class 'bool'>)
    """
    cfg = cfg or ClaimsConfig()
    names = tuple(CLAIMS) if names is None else names
    unknown = [n for n in names if n not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claims {unknown}; known: {', '.join(CLAIMS)}")
    if cfg.repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {cfg.repeats}")
    timer = {"repeats": cfg.repeats, "clock": "process", "threads": 1}
    from attnlab.bench.suite import _versions

    return {"suite": "claims", "schema": CLAIMS_SCHEMA, "device": device_name("cpu", detail=True),
            "versions": _versions(), "config": asdict(cfg),
            "claims": [CLAIMS[n](cfg, timer) for n in names]}


def validate_claims(doc: dict) -> None:
    """Raise ``ValueError`` naming the problem when a results document is malformed."""
    if not isinstance(doc, dict) or doc.get("schema") != CLAIMS_SCHEMA:
        raise ValueError(f"not a claims document of schema {CLAIMS_SCHEMA}")
    for key in ("device", "versions", "config", "claims"):
        if key not in doc:
            raise ValueError(f"the claims document has no {key!r}")
    for c in doc["claims"]:
        for key in ("chapter", "claim", "statement", "holds"):
            if key not in c:
                raise ValueError(f"a claim record has no {key!r}: {c}")
        if not isinstance(c["holds"], bool):
            raise ValueError(f"{c['claim']}: 'holds' must be true or false")
        for key, value in c.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{c['claim']}: {key} is {value}")


def format_claims(doc: dict) -> str:
    """The results as lines of text: one per claim, held or not, with its chapter."""
    lines = [f"timing claims of the chapters on {doc['device']}, each timed on one thread "
             "(CPU time of the process, the fastest call)"]
    for c in doc["claims"]:
        mark = "holds  " if c["holds"] else "MISSED "
        lines.append(f"  {mark} ch {c['chapter']:2d}  {c['claim']:<17} {c['statement']}")
    held = sum(c["holds"] for c in doc["claims"])
    lines.append(f"{held} of {len(doc['claims'])} held")
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace) -> int:
    """``attnlab bench --suite claims``: measure, print, write ``<out>/claims-<tag>.json``."""
    cfg = ClaimsConfig.quick() if getattr(args, "quick", False) else ClaimsConfig()
    if getattr(args, "repeats", None) and not getattr(args, "quick", False):
        cfg.repeats = args.repeats
    try:
        doc = run_claims(cfg)
    except ValueError as err:
        print(f"attnlab bench: {err}", file=sys.stderr)
        return 2
    validate_claims(doc)
    print(format_claims(doc))
    tag = args.tag or "cpu"
    out = Path(args.out) / f"claims-{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0
