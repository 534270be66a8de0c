"""Interactive figures that work without a kernel: in JupyterLab and in the rendered book.

Each explorer is a small, self-contained piece of HTML, SVG and JavaScript (no library, no
network), shown as a cell's output. The reader drags a slider and the figure recomputes in the
browser, so the static book stays as explorable as the notebook.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence

import numpy as np

__all__ = ["Explorer", "softmax_explorer", "attention_explorer", "mask_explorer"]


class Explorer:
    """An HTML figure; Jupyter shows its ``_repr_html_``, a terminal its title."""

    def __init__(self, title: str, body: str) -> None:
        self.title = title
        self.body = body

    def _repr_html_(self) -> str:
        return self.body

    def __repr__(self) -> str:
        return f"<{self.title}: an interactive figure, shown in JupyterLab and in the book>"


def softmax_explorer(scores: Sequence[float], labels: Sequence[str] | None = None, *,
                     temperature: float = 1.0, low: float = 0.05, high: float = 5.0
                     ) -> Explorer:
    """Bars of ``softmax(scores / temperature)`` with a temperature slider.

    Args:
        scores: the S scores of one query.
        labels: a label per score (default: ``s=0``, ``s=1``, ...).
        temperature: where the slider starts.
        low: the slider's smallest temperature (> 0).
        high: the slider's largest temperature.

    Shape:
        scores: (S,), with 1 <= S <= 32.

    Returns:
        The figure; in JupyterLab or the book, dragging the slider redraws the weights.

    Example:
        >>> fig = softmax_explorer([1.0, 2.0, 3.0])
        >>> 'type="range"' in fig._repr_html_()
        True
    """
    values = [float(s) for s in scores]
    if not 1 <= len(values) <= 32:
        raise ValueError(f"scores must hold 1 to 32 numbers, got {len(values)}")
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise ValueError("scores must be finite numbers")
    names = [f"s={i}" for i in range(len(values))] if labels is None else [str(x) for x in labels]
    if len(names) != len(values):
        raise ValueError(f"{len(names)} labels for {len(values)} scores")
    if not 0 < low <= temperature <= high:
        raise ValueError(f"need 0 < low <= temperature <= high, got {low}, {temperature}, {high}")
    key = hashlib.sha1(json.dumps([values, names, temperature, low, high]).encode()).hexdigest()
    uid = f"attnlab-softmax-{key[:10]}"  # deterministic: re-run outputs compare equal
    width, bar, gap, top = 60 * len(values), 40, 20, 150
    bars = "".join(
        f'<rect x="{i * (bar + gap) + gap / 2:g}" y="{top}" width="{bar}" height="0" '
        f'fill="#3b5bdb"/><text x="{i * (bar + gap) + gap / 2 + bar / 2:g}" y="{top + 16}" '
        f'text-anchor="middle" font-size="12">{html.escape(n)}</text>'
        f'<text class="w" x="{i * (bar + gap) + gap / 2 + bar / 2:g}" y="{top - 4}" '
        f'text-anchor="middle" font-size="11"></text>'
        for i, n in enumerate(names))
    return Explorer("softmax explorer", f"""\
<div id="{uid}" class="attnlab-explorer" style="font-family: sans-serif; max-width: {width}px">
<label>temperature &tau; = <output>{temperature:g}</output><br>
<input type="range" min="{low:g}" max="{high:g}" step="0.01" value="{temperature:g}"
 aria-label="softmax temperature" style="width: 100%"></label>
<svg role="img" fill="currentColor"
 aria-label="softmax weights of the scores {html.escape(str(values))}"
 width="{width}" height="{top + 24}" viewBox="0 0 {width} {top + 24}">{bars}</svg>
<div class="sum" style="font-size: 12px"></div>
</div>
<script>
(() => {{
  const root = document.getElementById("{uid}");
  const scores = {json.dumps(values)}, top = {top};
  const slider = root.querySelector("input"), out = root.querySelector("output");
  function draw() {{
    const t = parseFloat(slider.value), m = Math.max(...scores.map(s => s / t));
    const e = scores.map(s => Math.exp(s / t - m)), z = e.reduce((a, b) => a + b, 0);
    const w = e.map(x => x / z);
    root.querySelectorAll("rect").forEach((r, i) => {{
      r.setAttribute("height", (w[i] * (top - 20)).toFixed(2));
      r.setAttribute("y", (top - w[i] * (top - 20)).toFixed(2));
    }});
    root.querySelectorAll("text.w").forEach((x, i) => {{
      x.textContent = w[i].toFixed(3);
      x.setAttribute("y", (top - w[i] * (top - 20) - 4).toFixed(2));
    }});
    out.textContent = t.toFixed(2);
    root.querySelector(".sum").textContent = "the weights sum to " +
      w.reduce((a, b) => a + b, 0).toFixed(3) + "; the largest is " + Math.max(...w).toFixed(3);
  }}
  slider.addEventListener("input", draw);
  draw();
}})();
</script>""")


def _uid(kind: str, *parts: object) -> str:
    key = hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()
    return f"attnlab-{kind}-{key[:10]}"  # deterministic: re-run outputs compare equal


def _labels(labels: Sequence[str] | None, n: int, what: str, prefix: str) -> list[str]:
    names = [f"{prefix}{i}" for i in range(n)] if labels is None else [str(x) for x in labels]
    if len(names) != n:
        raise ValueError(f"{len(names)} {what} labels for {n} positions")
    return names


_GRID_JS = """
  function cell(v) { const a = Math.max(0, Math.min(1, v));
    return `rgba(59, 91, 219, ${(0.06 + 0.94 * a).toFixed(3)})`; }
  function paint(w) {
    root.querySelectorAll("rect.c").forEach((r, k) => {
      const v = w[Math.floor(k / S)][k % S];
      r.setAttribute("fill", cell(v / Math.max(1e-9, scale(w))));
      r.dataset.w = v.toFixed(3);
      r.querySelector("title").textContent = v.toFixed(3);
    });
  }
"""


def _grid_svg(rows: list[str], cols: list[str], size: int = 26) -> str:
    left, top = 8 + 7 * max(len(r) for r in rows), 8 + 7 * max(len(c) for c in cols)
    parts = []
    for j, c in enumerate(cols):
        x = left + j * size + size / 2
        parts.append(f'<text x="{x:g}" y="{top - 6}" font-size="11" text-anchor="start" '
                     f'transform="rotate(-60 {x:g} {top - 6})">{html.escape(c)}</text>')
    for i, r in enumerate(rows):
        parts.append(f'<text x="{left - 6}" y="{top + i * size + size * 0.65:g}" font-size="11" '
                     f'text-anchor="end">{html.escape(r)}</text>')
        for j in range(len(cols)):
            parts.append(f'<rect class="c" data-t="{i}" data-s="{j}" x="{left + j * size}" '
                         f'y="{top + i * size}" width="{size - 2}" height="{size - 2}" '
                         f'fill="#eee"><title></title></rect>')
    w, h = left + len(cols) * size + 4, top + len(rows) * size + 4
    return (f'<svg role="img" fill="currentColor" aria-label="attention weights, one row per '
            f'query" width="{w}" height="{h}" viewBox="0 0 {w} {h}">{"".join(parts)}</svg>')


def attention_explorer(weights: np.ndarray | Sequence, query_labels: Sequence[str] | None = None,
                       key_labels: Sequence[str] | None = None) -> Explorer:
    """Attention maps of every layer and head, picked with two menus, without a kernel.

    Args:
        weights: attention weights (L, H, T, S) of one example, e.g. from a model's
            ``need_weights=True``; rounded to 3 decimals for the page.
        query_labels: T labels (the rows).
        key_labels: S labels (the columns).

    Shape:
        weights: (L, H, T, S), with T, S <= 64 and L * H <= 64.

    Returns:
        The figure; choosing a layer or a head redraws the map, hovering a cell shows its weight.

    Example:
        >>> w = np.full((2, 3, 4, 4), 0.25)
        >>> 'aria-label="layer"' in attention_explorer(w)._repr_html_()
        True
    """
    w = np.asarray(getattr(weights, "detach", lambda: weights)(), dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"weights must be (L, H, T, S), got shape {tuple(w.shape)}")
    L, H, T, S = w.shape
    if T > 64 or S > 64 or L * H > 64 or min(w.shape) < 1:
        raise ValueError(f"weights (L, H, T, S) = {w.shape}: at most 64 positions and 64 maps")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    rows = _labels(query_labels, T, "query", "t=")
    cols = _labels(key_labels, S, "key", "s=")
    data = np.round(w, 3).tolist()
    uid = _uid("heads", data, rows, cols)
    options = lambda n: "".join(f'<option value="{i}">{i}</option>' for i in range(n))  # noqa: E731
    return Explorer("attention explorer", f"""\
<div id="{uid}" class="attnlab-explorer" style="font-family: sans-serif">
<label>layer <select aria-label="layer">{options(L)}</select></label>
<label>head <select aria-label="head">{options(H)}<option value="mean">mean</option>
</select></label>
<div>{_grid_svg(rows, cols)}</div>
<div class="note" style="font-size: 12px"></div>
</div>
<script>
(() => {{
  const root = document.getElementById("{uid}"), W = {json.dumps(data)}, S = {S};
  const [layer, head] = root.querySelectorAll("select");
  const scale = w => Math.max(...w.flat());
{_GRID_JS}
  function draw() {{
    const maps = W[+layer.value], h = head.value;
    const w = h === "mean" ? maps[0].map((row, t) => row.map((_, s) =>
      maps.reduce((a, m) => a + m[t][s], 0) / maps.length)) : maps[+h];
    paint(w);
    const top = w.map(r => Math.max(...r));
    root.querySelector(".note").textContent = "layer " + layer.value + ", head " + h +
      ": the largest weight of a row is " + Math.min(...top).toFixed(3) + " to " +
      Math.max(...top).toFixed(3);
  }}
  layer.addEventListener("change", draw);
  head.addEventListener("change", draw);
  draw();
}})();
</script>""")


def mask_explorer(scores: np.ndarray | Sequence, query_labels: Sequence[str] | None = None,
                  key_labels: Sequence[str] | None = None, *, causal: bool = False) -> Explorer:
    """A mask editor without a kernel: click a cell to allow or block that key.

    The weights are the masked softmax of ``scores`` (True = may attend; masked scores
    are -inf; a row with nothing to attend to gets zero weights, as in
    :func:`attnlab.functional.masked_softmax`), recomputed in the browser at each click.

    Args:
        scores: the (T, S) scores of one head.
        query_labels: T labels (the rows).
        key_labels: S labels (the columns).
        causal: start from the causal mask instead of allowing every key.

    Shape:
        scores: (T, S), with T, S <= 32.

    Returns:
        The figure; clicking a cell toggles it, the buttons set no mask or the causal one.

    Example:
        >>> 'masked softmax' in mask_explorer(np.zeros((3, 3)), causal=True)._repr_html_()
        True
    """
    x = np.asarray(getattr(scores, "detach", lambda: scores)(), dtype=np.float64)
    if x.ndim != 2 or not (1 <= x.shape[0] <= 32 and 1 <= x.shape[1] <= 32):
        raise ValueError(f"scores must be (T, S) with T, S <= 32, got shape {tuple(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError("scores must be finite")
    T, S = x.shape
    rows = _labels(query_labels, T, "query", "t=")
    cols = _labels(key_labels, S, "key", "s=")
    data = np.round(x, 4).tolist()
    uid = _uid("mask", data, rows, cols, causal)
    return Explorer("mask explorer", f"""\
<div id="{uid}" class="attnlab-explorer" style="font-family: sans-serif">
<button type="button" class="none">no mask</button>
<button type="button" class="causal">causal mask</button>
<span style="font-size: 12px"> click a cell to block or allow that key (blocked: crossed)</span>
<div>{_grid_svg(rows, cols)}</div>
<div class="note" style="font-size: 12px"></div>
</div>
<script>
(() => {{
  const root = document.getElementById("{uid}"), X = {json.dumps(data)}, T = {T}, S = {S};
  let M = X.map((row, t) => row.map((_, s) => {str(not causal).lower()} || s <= t));
  const scale = () => 1;
{_GRID_JS}
  function draw() {{
    // the masked softmax: -inf where blocked, zero weights for a row with nothing allowed
    const w = X.map((row, t) => {{
      const ok = row.map((_, s) => M[t][s]);
      if (!ok.some(Boolean)) return row.map(() => 0);
      const m = Math.max(...row.filter((_, s) => ok[s]));
      const e = row.map((v, s) => ok[s] ? Math.exp(v - m) : 0), z = e.reduce((a, b) => a + b);
      return e.map(v => v / z);
    }});
    paint(w);
    root.querySelectorAll("rect.c").forEach(r => {{
      r.setAttribute("stroke", M[+r.dataset.t][+r.dataset.s] ? "none" : "#c92a2a");
      r.setAttribute("stroke-dasharray", M[+r.dataset.t][+r.dataset.s] ? "" : "3 2");
    }});
    const sums = w.map(r => r.reduce((a, b) => a + b, 0));
    root.querySelector(".note").textContent = "masked softmax: row sums " +
      sums.map(v => v.toFixed(2)).join(", ") + " (0 for a row with nothing to attend to)";
  }}
  root.querySelectorAll("rect.c").forEach(r => r.addEventListener("click", () => {{
    M[+r.dataset.t][+r.dataset.s] = !M[+r.dataset.t][+r.dataset.s]; draw(); }}));
  root.querySelector(".none").addEventListener("click", () => {{
    M = X.map(row => row.map(() => true)); draw(); }});
  root.querySelector(".causal").addEventListener("click", () => {{
    M = X.map((row, t) => row.map((_, s) => s <= t)); draw(); }});
  draw();
}})();
</script>""")
