"""ipywidgets explorers for JupyterLab: the same explorations as :mod:`attnlab.explorers`,
computed live by ``attnlab`` in the kernel (so they also take a model's own tensors).

The rendered book shows the kernel-free explorers instead (a widget needs a running kernel).
Each function returns an ``ipywidgets.VBox`` whose current result is kept in attributes
(``weights``, ``mask``, ``current``), which is also how the tests drive them.

Requires ``ipywidgets`` (in ``requirements.txt``; ``pip install ipywidgets`` elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attnlab import functional as AF

__all__ = ["softmax_widget", "attention_widget", "mask_widget"]


def _widgets() -> Any:
    try:
        import ipywidgets
    except ImportError as err:  # pragma: no cover - ipywidgets is pinned in requirements.txt
        raise ImportError("the explorers need ipywidgets: pip install ipywidgets") from err
    return ipywidgets


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _show(out: Any, draw: Any) -> None:
    """Redraw the figure in ``out``; only a kernel has a front end to draw for."""
    if not _in_kernel():
        return
    import matplotlib.pyplot as plt

    out.clear_output(wait=True)
    with out:
        fig, ax = plt.subplots(figsize=(5, 3))
        draw(ax)
        plt.show()


def softmax_widget(scores: Sequence[float] | torch.Tensor, *, temperature: float = 1.0,
                   low: float = 0.05, high: float = 5.0) -> Any:
    """A temperature slider over ``softmax(scores / temperature)``, drawn as bars.

    Args:
        scores: the S scores of one query.
        temperature: where the slider starts.
        low: the smallest temperature (> 0).
        high: the largest temperature.

    Shape:
        scores: (S,); ``box.weights`` (S,).

    Returns:
        The widget; ``box.weights`` holds the weights at the slider's temperature.

    Example:
        >>> box = softmax_widget([1.0, 2.0, 3.0])
        >>> box.children[0].value = 0.1
        >>> round(float(box.weights.max()), 4)
        1.0
    """
    w = _widgets()
    x = torch.as_tensor(scores, dtype=torch.float64)
    if x.dim() != 1 or not 1 <= x.numel() <= 64:
        raise ValueError(f"scores must be (S,) with 1 <= S <= 64, got shape {tuple(x.shape)}")
    if not 0 < low <= temperature <= high:
        raise ValueError(f"need 0 < low <= temperature <= high, got {low}, {temperature}, {high}")
    slider = w.FloatSlider(value=temperature, min=low, max=high, step=0.01,
                           description="τ", continuous_update=True)
    out = w.Output()
    box = w.VBox([slider, out])

    def update(_: Any = None) -> None:
        box.weights = AF.softmax(x / slider.value).numpy()

        def draw(ax: Any) -> None:
            ax.bar(range(len(box.weights)), box.weights, color="#3b5bdb")
            ax.set(ylim=(0, 1), xlabel="key s", ylabel="weight",
                   title=f"softmax(scores / {slider.value:.2f})")
        _show(out, draw)

    slider.observe(update, names="value")
    update()
    return box


def attention_widget(weights: torch.Tensor | np.ndarray,
                     query_labels: Sequence[str] | None = None,
                     key_labels: Sequence[str] | None = None) -> Any:
    """Pick a layer and a head (or their mean) and see its attention map.

    Args:
        weights: attention weights of one example, e.g. a model's ``need_weights=True``.
        query_labels: T labels (the rows).
        key_labels: S labels (the columns).

    Shape:
        weights: (L, H, T, S); ``box.current`` (T, S).

    Returns:
        The widget; ``box.current`` holds the map on show.

    Example:
        >>> box = attention_widget(torch.full((2, 3, 4, 4), 0.25))
        >>> box.children[1].value = "mean"
        >>> box.current.shape
        (4, 4)
    """
    wd = _widgets()
    a = torch.as_tensor(weights, dtype=torch.float64).detach()
    if a.dim() != 4:
        raise ValueError(f"weights must be (L, H, T, S), got shape {tuple(a.shape)}")
    L, H = a.shape[:2]
    layer = wd.Dropdown(options=list(range(L)), value=0, description="layer")
    head = wd.Dropdown(options=[*range(H), "mean"], value=0, description="head")
    out = wd.Output()
    box = wd.VBox([layer, head, out])

    def update(_: Any = None) -> None:
        maps = a[layer.value]
        box.current = (maps.mean(0) if head.value == "mean" else maps[head.value]).numpy()

        def draw(ax: Any) -> None:
            from attnlab.plot import heatmap

            heatmap(box.current, key_labels, query_labels, ax=ax,
                    title=f"layer {layer.value}, head {head.value}")
        _show(out, draw)

    layer.observe(update, names="value")
    head.observe(update, names="value")
    update()
    return box


def mask_widget(scores: torch.Tensor | np.ndarray, *, causal: bool = False) -> Any:
    """A grid of toggles, one per (query, key): the weights are the masked softmax.

    Args:
        scores: the scores of one head.
        causal: start from the causal mask instead of allowing every key.

    Shape:
        scores: (T, S); ``box.mask`` (T, S) bool, True = may attend; ``box.weights`` (T, S).

    Returns:
        The widget; toggling a button blocks or allows that key for that query, and
        ``box.weights`` is :func:`attnlab.functional.masked_softmax` of the scores.

    Example:
        >>> box = mask_widget(torch.zeros(2, 2), causal=True)
        >>> box.weights.tolist()
        [[1.0, 0.0], [0.5, 0.5]]
    """
    wd = _widgets()
    x = torch.as_tensor(scores, dtype=torch.float64)
    if x.dim() != 2 or max(x.shape) > 16:
        raise ValueError(f"scores must be (T, S) with T, S <= 16, got shape {tuple(x.shape)}")
    T, S = x.shape
    start = torch.ones(T, S, dtype=torch.bool)
    if causal:
        start = torch.tril(start)
    toggles = [[wd.ToggleButton(value=bool(start[t, s]), description=f"{t},{s}",
                                layout=wd.Layout(width="52px")) for s in range(S)]
               for t in range(T)]
    out = wd.Output()
    box = wd.VBox([*(wd.HBox(row) for row in toggles), out])

    def update(_: Any = None) -> None:
        box.mask = np.array([[b.value for b in row] for row in toggles])
        box.weights = AF.masked_softmax(x, torch.as_tensor(box.mask)).numpy()

        def draw(ax: Any) -> None:
            from attnlab.plot import heatmap

            heatmap(box.weights, ax=ax, title="masked softmax (pressed = may attend)")
        _show(out, draw)

    for row in toggles:
        for b in row:
            b.observe(update, names="value")
    update()
    return box
