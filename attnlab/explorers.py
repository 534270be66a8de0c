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

__all__ = ["Explorer", "softmax_explorer"]


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
<svg role="img" aria-label="softmax weights of the scores {html.escape(str(values))}"
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
