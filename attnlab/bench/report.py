"""The benchmark's results: the JSON schema, the ratios the book's targets are stated in, a
table and plots.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnlab.bench.cases import METHODS, PASSES

__all__ = ["SCHEMA_VERSION", "validate_results", "summarise", "format_table", "plot_results"]

SCHEMA_VERSION = 1


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


