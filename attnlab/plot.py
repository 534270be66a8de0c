"""Figures of attention: weight heatmaps with token labels and bar plots.

Each function draws on a Matplotlib ``Axes`` (a new one when ``ax`` is None)
and returns it, so figures can be combined and styled by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from attnlab.train import History

__all__ = ["heatmap", "bar", "alignment", "attention_grid", "learning_curves"]


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _colour_scale(w: np.ndarray, vmin: float, vmax: float | None, name: str) -> float:
    """The top of the colour scale; an error for values the scale would clip."""
    finite = w[np.isfinite(w)]
    if finite.size != w.size:
        raise ValueError(f"{name} has {w.size - finite.size} non-finite values (NaN or inf)")
    low = float(finite.min()) if finite.size else vmin
    high = float(finite.max()) if finite.size else vmin
    top = max(high, vmin + 1e-12) if vmax is None else float(vmax)
    if top <= vmin:
        raise ValueError(f"the colour scale needs vmin < vmax, got vmin={vmin}, vmax={top}")
    slack = 1e-6 * max(1.0, abs(top), abs(vmin))  # float round-off, e.g. a softmax's 1.0000001
    if low < vmin - slack or high > top + slack:
        raise ValueError(
            f"{name} range from {low:.4g} to {high:.4g}, outside the colour scale "
            f"[{vmin:.4g}, {top:.4g}]: pass vmin/vmax to fit them (vmax=None scales to the "
            f"data's maximum)")
    return top


def heatmap(
    weights: torch.Tensor | np.ndarray,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str = "keys",
    ylabel: str = "queries",
    cmap: str = "Blues",
    annotate: bool = False,
    fmt: str = ".2f",
    colorbar: bool = True,
    vmin: float = 0.0,
    vmax: float | None = 1.0,
) -> Axes:
    """Draw attention weights (T, S) as a heatmap: rows are queries, columns keys.

    Attention weights are probabilities, so every map is drawn on the same 0-1 colour scale
    (a pale cell means the same weight in every panel and every figure). For values that are
    not weights, pass ``vmax=None`` to scale the colours to the data's maximum.

    Args:
        weights: a (T, S) tensor or array, e.g. one head of attention weights.
        x_labels: S key labels (tokens), or None for indices.
        y_labels: T query labels, or None for indices.
        ax: the axes to draw on; a new figure when None.
        title, xlabel, ylabel: text for the axes.
        cmap: a Matplotlib colour map.
        annotate: write each weight in its cell.
        fmt: number format for ``annotate``.
        colorbar: add a colour bar.
        vmin, vmax: the values drawn palest and darkest; ``vmax=None`` takes the data's
            maximum. Values outside [vmin, vmax] raise an error rather than being clipped.

    Shape:
        weights (T, S); len(x_labels) == S, len(y_labels) == T.

    Returns:
        The Matplotlib ``Axes``.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> ax = heatmap(torch.eye(2), ["a", "b"], ["x", "y"])
        >>> [t.get_text() for t in ax.get_xticklabels()]
        ['a', 'b']
    """
    w = _to_numpy(weights, "weights")
    if w.ndim != 2:
        raise ValueError(f"heatmap needs 2-D weights (T, S), got shape {w.shape}")
    T, S = w.shape
    if x_labels is not None and len(x_labels) != S:
        raise ValueError(f"{len(x_labels)} x_labels for S={S} columns of weights {w.shape}")
    if y_labels is not None and len(y_labels) != T:
        raise ValueError(f"{len(y_labels)} y_labels for T={T} rows of weights {w.shape}")
    top = _colour_scale(w, vmin, vmax, "weights")
    ax = _new_axes(ax, (max(3.0, 0.5 * S + 1.5), max(2.5, 0.5 * T + 1.0)))
    image = ax.imshow(w, cmap=cmap, vmin=vmin, vmax=top, aspect="auto")
    ax.set_xticks(range(S), labels=list(x_labels) if x_labels is not None else range(S))
    ax.set_yticks(range(T), labels=list(y_labels) if y_labels is not None else range(T))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if annotate:
        threshold = vmin + 0.5 * (top - vmin)
        for i in range(T):
            for j in range(S):
                colour = "white" if w[i, j] > threshold else "black"
                ax.text(j, i, format(w[i, j], fmt), ha="center", va="center", color=colour)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax


def bar(
    values: torch.Tensor | np.ndarray | Sequence[float] | Mapping[str, Any],
    labels: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str = "weight",
    annotate: bool = True,
    fmt: str = ".3f",
) -> Axes:
    """Bar plot of one vector of weights, or grouped bars for several.

    Pass a sequence for one series, or a mapping ``{name: values}`` for
    grouped bars with a legend (e.g. the weights at several temperatures).

    Args:
        values: (N,) values, or a mapping from series name to (N,) values.
        labels: N labels for the bars, or None for indices.
        ax: the axes to draw on; a new figure when None.
        title, xlabel, ylabel: text for the axes.
        annotate: write the value above each bar (single series only).
        fmt: number format for ``annotate``.

    Returns:
        The Matplotlib ``Axes``.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> ax = bar({"T=1": [0.2, 0.8], "T=10": [0.45, 0.55]}, ["a", "b"])
        >>> len(ax.patches)
        4
    """
    series = dict(values) if isinstance(values, Mapping) else {"": values}
    if not series:
        raise ValueError("bar needs at least one series of values")
    arrays = {name: _to_numpy(v, f"values[{name!r}]" if name else "values")
              for name, v in series.items()}
    lengths = {a.shape for a in arrays.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        shapes = {name: a.shape for name, a in arrays.items()}
        raise ValueError(f"bar needs 1-D values of equal length, got shapes {shapes}")
    n = next(iter(arrays.values())).shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} values")
    ax = _new_axes(ax, (max(4.0, 0.6 * n * len(arrays) + 1.5), 3.0))
    width = 0.8 / len(arrays)
    x = np.arange(n)
    for i, (name, a) in enumerate(arrays.items()):
        offset = (i - (len(arrays) - 1) / 2) * width
        bars = ax.bar(x + offset, a, width=width, label=name or None)
        if annotate and len(arrays) == 1:
            ax.bar_label(bars, fmt="{:" + fmt + "}", padding=2)
    ax.set_xticks(x, labels=list(labels) if labels is not None else x)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(arrays) > 1:
        ax.legend(frameon=False)
    ax.margins(y=0.15)
    return ax


def alignment(
    weights: torch.Tensor | np.ndarray,
    source: Sequence[str],
    output: Sequence[str],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """An alignment map: which source tokens each output token attended to.

    Args:
        weights: (T, S) attention weights of one example.
        source: S source tokens (columns).
        output: T output tokens (rows).
        ax: the axes to draw on; a new figure when None.
        title: the title.

    Shape:
        weights (T, S).

    Returns:
        The Matplotlib ``Axes``.
    """
    return heatmap(weights, list(source), list(output), ax=ax, title=title,
                   xlabel="source", ylabel="output", colorbar=False)


def attention_grid(
    weights: torch.Tensor | np.ndarray | Sequence[torch.Tensor],
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    *,
    title: str | None = None,
    size: float = 2.2,
    row_labels: Sequence[str] | None = None,
    vmax: float | None = 1.0,
) -> Figure:
    """A grid of attention maps: one row per layer, one column per head.

    Every panel shares one colour scale (0-1 for attention weights) and one colour bar, so
    that panels compare at a glance.

    Args:
        weights: (L, H, T, S) for one example, or a sequence of L tensors
            (H, T, S) (e.g. one per layer, batch index already taken).
        x_labels: S key labels, or None.
        y_labels: T query labels, or None.
        title: the figure's title.
        size: inches per panel.
        row_labels: L names for the rows (default ``"layer 1"``, ``"layer 2"``, ...), e.g.
            to compare models rather than layers.
        vmax: the top of the shared colour scale; None takes the largest value in the grid.

    Shape:
        weights (L, H, T, S).

    Returns:
        The Matplotlib ``Figure``.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> fig = attention_grid(torch.softmax(torch.randn(2, 3, 4, 4), -1))
        >>> len(fig.axes)  # 2 x 3 maps and their colour bar
        7
    """
    import matplotlib.pyplot as plt

    if isinstance(weights, (list, tuple)):
        weights = torch.stack([torch.as_tensor(w) for w in weights])
    w = _to_numpy(weights, "weights")
    if w.ndim != 4:
        raise ValueError(f"attention_grid needs weights (L, H, T, S), got shape {w.shape}")
    L, H, T, S = w.shape
    if row_labels is not None and len(row_labels) != L:
        raise ValueError(f"{len(row_labels)} row_labels for L={L} rows")
    rows = list(row_labels) if row_labels is not None else [f"layer {i + 1}" for i in range(L)]
    top = _colour_scale(w, 0.0, vmax, "weights")
    fig, axes = plt.subplots(L, H, figsize=(size * H + 0.5, size * L + 0.4), squeeze=False,
                             layout="constrained")
    for layer in range(L):
        for head in range(H):
            ax = axes[layer][head]
            heatmap(w[layer, head], x_labels, y_labels, ax=ax, colorbar=False, vmax=top,
                    xlabel="" if layer < L - 1 else "keys", ylabel="" if head else "queries",
                    title=f"{rows[layer]}, head {head + 1}")
            if T > 12:
                ax.set_yticks([])
            if S > 12:
                ax.set_xticks([])
    fig.colorbar(axes[0][0].images[0], ax=axes, shrink=0.8, label="attention weight")
    if title:
        fig.suptitle(title)
    return fig


def learning_curves(
    histories: History | Mapping[str, History],
    metric: str | None = None,
    *,
    axes: Sequence[Axes] | None = None,
) -> Sequence[Axes]:
    """Training loss (log scale) and, optionally, an evaluation metric against steps.

    Args:
        histories: a :class:`attnlab.train.History`, or a mapping from a
            label to one (several runs on the same axes).
        metric: the name of an evaluation metric to plot beside the loss.
        axes: one or two axes to draw on; new ones when None.

    Returns:
        A list of axes, ``[loss]`` or ``[loss, metric]``.
    """
    import matplotlib.pyplot as plt

    runs = dict(histories) if isinstance(histories, Mapping) else {"": histories}
    n = 2 if metric else 1
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.2), layout="constrained", squeeze=False)
        axes = list(axes[0])
    if len(axes) != n:
        raise ValueError(f"learning_curves needs {n} axes, got {len(axes)}")
    for label, h in runs.items():
        axes[0].plot(h.steps, h.loss, label=label or None)
        if metric:
            if not h.evals or metric not in h.evals[0]:
                raise ValueError(f"metric {metric!r} is not in the history's evaluations")
            axes[1].plot(h.eval_steps, h.metric(metric), marker="o", label=label or None)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    if metric:
        axes[1].set_xlabel("step")
        axes[1].set_ylabel(metric)
    if len(runs) > 1:
        for ax in axes:
            ax.legend(frameon=False)
    return axes
