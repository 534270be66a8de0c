"""A small Transformer that forecasts a time series, its baselines and its metrics.

:class:`Forecaster` reads a context of L past values and forecasts the next F
values at once (direct multi-horizon forecasting): each past value becomes a
token, F learned "horizon" tokens are appended, positions are added, and
pre-norm Transformer blocks let every token attend to the context; the final
state of horizon token j is read out as the forecast of step j + 1. Its
attention weights say which past steps each forecast step reads.

The baselines are those every forecast must beat: :func:`naive_forecast` (the
last value), :func:`seasonal_naive_forecast` (the value one period earlier)
and :class:`LinearForecaster` (least squares on the context). The metrics are
:func:`mae` and :func:`mase` (MAE scaled by the in-sample seasonal-naive MAE,
Hyndman & Koehler 2006); :func:`peak_lags` measures where the attention peaks.

Shapes: B windows, L context steps, F forecast steps (F, not H: H counts heads),
T = L + F tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab._validate import shape_str
from attnlab.layers import LearnedPositionalEmbedding, TransformerBlock, run_blocks

__all__ = [
    "ForecasterConfig",
    "Forecaster",
    "naive_forecast",
    "seasonal_naive_forecast",
    "LinearForecaster",
    "fit_ridge",
    "mae",
    "mase",
    "seasonal_scale",
    "peak_lags",
]


def _check_context(context: torch.Tensor, length: int | None = None) -> None:
    if not isinstance(context, torch.Tensor) or context.dim() != 2:
        got = shape_str(context) if isinstance(context, torch.Tensor) else type(context).__name__
        raise ValueError(f"context must be (B, L), got {got}")
    if length is not None and context.shape[1] != length:
        raise ValueError(f"context must be (B, L) with L={length}, got {shape_str(context)}")
    if not context.is_floating_point():
        raise ValueError(f"context must be floating point, got dtype {context.dtype}")


# ------------------------------------------------------------------------- the model


@dataclass
class ForecasterConfig:
    """Sizes of the forecaster; the defaults are the chapter's CPU preset."""

    context: int = 96  # L: eight days of two-hour steps, more than one week (84)
    horizon: int = 12  # F: one day ahead
    dim: int = 32  # C: one number per token needs little width
    depth: int = 2  # blocks
    num_heads: int = 4  # H; D = C / H = 8
    ff_dim: int = 64  # the feed-forward hidden width, 2 C
    dropout: float = 0.0  # thousands of overlapping windows: no need to regularise
    center: bool = True  # subtract each context's mean, add it back to the forecast

    def __post_init__(self) -> None:
        if self.context < 1 or self.horizon < 1:
            raise ValueError(f"context and horizon must be positive, got {self.context}, "
                             f"{self.horizon}")

    @property
    def seq_len(self) -> int:
        """T = L + F tokens, the context and then the horizon."""
        return self.context + self.horizon


class Forecaster(nn.Module):
    r"""A Transformer forecaster of F steps from L steps of context.

    .. math::

        z_0 = [\,(y_1 - \bar y) e;\, \dots;\, (y_L - \bar y) e;\; h;\, \dots;\, h\,]
              + E_{\text{pos}}, \quad
        z_\ell = \operatorname{Block}_\ell(z_{\ell-1}), \quad
        \hat y_{L+j} = \bar y + \operatorname{LN}\big(z_{\text{last}}^{(L+j)}\big) w

    with :math:`e` the value embedding (a linear map of one number),
    :math:`h` the learned horizon token, :math:`\bar y` the context's mean
    (``center=True``) and :math:`E_{\text{pos}}` learned, one per position.
    Every token may attend to the L context tokens only (True = may attend):
    a forecast is made from the past, and the horizon tokens hold no values.

    Args:
        config: a :class:`ForecasterConfig`.

    Shape:
        context (B, L) -> forecast (B, F); with ``need_weights`` also the
        attention weights (B, depth, H, T, T), T = L + F; query rows
        L .. T-1 are the forecast steps.

    Example:
        >>> model = Forecaster(ForecasterConfig(context=24, horizon=6))
        >>> forecast, weights = model(torch.randn(3, 24), need_weights=True)
        >>> forecast.shape, weights.shape
        (torch.Size([3, 6]), torch.Size([3, 2, 4, 30, 30]))
        >>> bool(weights[..., 24:].sum() == 0)   # nobody attends to a horizon token
        True
    """

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.value_embed = nn.Linear(1, c.dim)  # e: one number -> C
        self.horizon_token = nn.Parameter(torch.zeros(1, 1, c.dim))  # h
        nn.init.normal_(self.horizon_token, std=0.02)
        self.pos_embed = LearnedPositionalEmbedding(c.seq_len, c.dim)  # E_pos, (T, C)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.ff_dim, c.dropout, norm_first=True)
            for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, 1)
        keys = torch.arange(c.seq_len) < c.context  # (T,): the context steps
        self.register_buffer("mask", keys.expand(c.seq_len, c.seq_len).clone(),
                             persistent=False)  # (T, T), True = may attend

    def forward(self, context: torch.Tensor, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The forecast (B, F); with ``need_weights`` also the weights (B, depth, H, T, T)."""
        c = self.config
        _check_context(context, c.context)
        B = context.shape[0]
        level = context.mean(dim=1, keepdim=True) if c.center else torch.zeros_like(
            context[:, :1])  # (B, 1)
        values = self.value_embed((context - level)[..., None])  # (B, L, C)
        x = torch.cat([values, self.horizon_token.expand(B, c.horizon, -1)], dim=1)  # (B, T, C)
        x = self.pos_embed(x)
        x, weights = run_blocks(self.blocks, x, self.mask, need_weights)
        out = self.head(self.norm(x[:, c.context:]))[..., 0] + level  # (B, F)
        if need_weights:
            return out, torch.stack(weights, dim=1)  # (B, depth, H, T, T)
        return out

    def horizon_attention(self, weights: torch.Tensor) -> torch.Tensor:
        """The rows of the forecast steps over the context: (..., T, T) -> (..., F, L)."""
        L = self.config.context
        return weights[..., L:, :L]


# ------------------------------------------------------------------------- baselines


def naive_forecast(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """The last value of the context, repeated: ``y_hat[t + j] = y[t]``.

    Shape:
        context (B, L) -> (B, F).

    Example:
        >>> naive_forecast(torch.tensor([[1.0, 2.0, 3.0]]), 2)
        tensor([[3., 3.]])
    """
    _check_context(context)
    if horizon < 1:
        raise ValueError(f"horizon must be positive, got {horizon}")
    return context[:, -1:].expand(-1, horizon).clone()  # (B, F)


def seasonal_naive_forecast(context: torch.Tensor, horizon: int, period: int) -> torch.Tensor:
    r"""The value one period earlier: :math:`\hat y_{t+h} = y_{t+h-P\lceil h/P \rceil}`.

    For h <= P this is the value exactly P steps before the forecast step; for
    a horizon longer than the period, the last observed season repeats.

    Args:
        context: the past values, the last column being time t.
        horizon: F.
        period: P <= L.

    Shape:
        context (B, L) -> (B, F).

    Example:
        >>> y = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])     # period 2 would be ..., 4, 5
        >>> seasonal_naive_forecast(y, horizon=3, period=2)
        tensor([[4., 5., 4.]])
    """
    _check_context(context)
    L = context.shape[1]
    if horizon < 1 or not 1 <= period <= L:
        raise ValueError(f"need horizon >= 1 and 1 <= period <= L={L}, got horizon={horizon}, "
                         f"period={period}")
    j = torch.arange(horizon)  # step j forecasts time t + j + 1
    idx = L + j - period * (j // period + 1)  # (F,): index of t + j + 1 - P ceil((j+1)/P)
    return context[:, idx]  # (B, F)


class LinearForecaster(nn.Module):
    """A linear map from the L context values to the F forecasts, fitted by least squares.

    Like the Transformer it subtracts the context's mean first (``center``), so
    a level shift moves the forecast with it. :meth:`fit` solves the ridge
    problem in closed form (float64), so there is nothing to train.

    Shape:
        context (B, L) -> forecast (B, F).

    Example:
        >>> t = torch.arange(40.0)
        >>> windows = torch.stack([torch.sin(t[i:i + 10]) for i in range(30)])   # (30, 10)
        >>> model = LinearForecaster.fit(windows[:, :8], windows[:, 8:])
        >>> bool((model(windows[:, :8]) - windows[:, 8:]).abs().max() < 1e-3)
        True
    """

    def __init__(self, context: int, horizon: int, center: bool = True) -> None:
        super().__init__()
        self.center = center
        self.linear = nn.Linear(context, horizon)

    @classmethod
    def fit(cls, context: torch.Tensor, target: torch.Tensor, ridge: float = 1e-6,
            center: bool = True) -> LinearForecaster:
        """Least squares (with a small ridge penalty on the weights) on training windows.

        Args:
            context: (W, L) training contexts.
            target: (W, F) their targets.
            ridge: the penalty, relative to the mean squared input.
            center: subtract each context's mean from inputs and targets.
        """
        _check_context(context)
        if target.dim() != 2 or target.shape[0] != context.shape[0]:
            raise ValueError(f"target must be (W, F) for context {shape_str(context)}, got "
                             f"{shape_str(target)}")
        W, L = context.shape
        x, y = context.double(), target.double()
        if center:
            level = x.mean(dim=1, keepdim=True)  # (W, 1)
            x, y = x - level, y - level
        model = cls(L, target.shape[1], center)
        fit_ridge(model.linear, x, y, ridge)
        return model

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        _check_context(context, self.linear.in_features)
        level = context.mean(dim=1, keepdim=True) if self.center else 0.0
        return self.linear(context - level) + level  # (B, F)


# --------------------------------------------------------------------------- metrics


def _check_pair(forecast: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(forecast, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError("forecast and target must be tensors")
    if forecast.shape != target.shape:
        raise ValueError(f"forecast {shape_str(forecast)} and target {shape_str(target)} must "
                         "have the same shape")


def mae(forecast: torch.Tensor, target: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean absolute error, over everything or along ``dim``.

    Example:
        >>> mae(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 4.0]]))
        tensor(1.2500)
        >>> mae(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.zeros(2, 2), dim=0)
        tensor([2., 3.])
    """
    _check_pair(forecast, target)
    err = (forecast - target).abs()
    return err.mean() if dim is None else err.mean(dim=dim)


def seasonal_scale(history: torch.Tensor, period: int) -> torch.Tensor:
    r"""The in-sample MAE of the seasonal-naive forecast, per series: the MASE scale.

    .. math::  q = \frac{1}{n - P} \sum_{t=P+1}^{n} |y_t - y_{t-P}|

    Shape:
        history (N, n) -> (N,).

    Example:
        >>> seasonal_scale(torch.tensor([[0.0, 1.0, 0.0, 3.0]]), period=2)
        tensor([1.])
    """
    if not isinstance(history, torch.Tensor) or history.dim() != 2:
        raise ValueError("history must be a (N, n) tensor of training series")
    if not 1 <= period < history.shape[1]:
        raise ValueError(f"need 1 <= period < n={history.shape[1]}, got period={period}")
    return (history[:, period:] - history[:, :-period]).abs().mean(dim=1)  # (N,)


def mase(forecast: torch.Tensor, target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    r"""Mean absolute scaled error (Hyndman & Koehler 2006).

    Each window's absolute errors are divided by its series' ``scale`` (from
    :func:`seasonal_scale` on the *training* range), then averaged. Below 1:
    better than the seasonal-naive forecast did in sample.

    Shape:
        forecast, target (B, F); scale (B,) or a scalar -> a scalar.

    Example:
        >>> mase(torch.tensor([[2.0, 2.0]]), torch.tensor([[1.0, 4.0]]), torch.tensor([3.0]))
        tensor(0.5000)
    """
    _check_pair(forecast, target)
    scale = torch.as_tensor(scale, dtype=forecast.dtype)
    if scale.dim() == 1:
        if scale.shape[0] != forecast.shape[0]:
            raise ValueError(f"scale {shape_str(scale)} must be (B,) for forecast "
                             f"{shape_str(forecast)}")
        scale = scale.view(-1, *(1,) * (forecast.dim() - 1))
    if bool((scale <= 0).any()):
        raise ValueError("scale must be positive")
    return ((forecast - target).abs() / scale).mean()


def peak_lags(weights: torch.Tensor) -> torch.Tensor:
    """How far back each forecast step looks: the lag of its largest attention weight.

    Row j of ``weights`` (the forecast of time t + j + 1) attends over the L
    context steps t - L + 1 .. t; its peak at column s is a lag of
    ``L + j - s`` steps before the step being forecast. A seasonal-naive
    forecast of period P would have every lag equal to P.

    Shape:
        weights (..., F, L) -> lags (..., F), int64.

    Example:
        >>> w = torch.zeros(2, 5)                  # F = 2 steps, L = 5
        >>> w[0, 3] = w[1, 4] = 1.0                # each looks 2 steps before itself
        >>> peak_lags(w)
        tensor([2, 2])
    """
    if not isinstance(weights, torch.Tensor) or weights.dim() < 2:
        raise ValueError("weights must be a (..., F, L) tensor")
    F, L = weights.shape[-2:]
    j = torch.arange(F, device=weights.device)  # (F,)
    return L + j - weights.argmax(dim=-1)  # (..., F)


def fit_ridge(linear: nn.Linear, x: torch.Tensor, y: torch.Tensor, ridge: float) -> None:
    """Set ``linear`` to the ridge least-squares fit of ``y`` on ``x`` (the bias unpenalised).

    The penalty is ``ridge`` times the mean diagonal of the Gram matrix, so one ``ridge``
    means the same for any scale of the features.

    Args:
        linear: an ``nn.Linear(n, F)``; its weight and bias are overwritten.
        x: the features (W, n), float64 for a stable solve.
        y: the targets (W, F).
        ridge: the penalty's weight, >= 0 (0: ordinary least squares).

    Shape:
        x (W, n), y (W, F) -> linear.weight (F, n), linear.bias (F,).

    Example:
        >>> x = torch.randn(50, 2, dtype=torch.float64)
        >>> linear = nn.Linear(2, 1)
        >>> fit_ridge(linear, x, x @ torch.tensor([[2.0], [-1.0]], dtype=x.dtype) + 3, 0.0)
        >>> linear.weight.round(decimals=4).tolist(), round(linear.bias.item(), 4)
        ([[2.0, -1.0]], 3.0)
    """
    W, n = x.shape
    x1 = torch.cat([x, torch.ones(W, 1, dtype=x.dtype)], dim=1)  # (W, n + 1)
    gram = x1.T @ x1  # (n + 1, n + 1)
    penalty = ridge * gram.diagonal()[:n].mean() * torch.eye(n + 1, dtype=x.dtype)
    penalty[n, n] = 0.0  # the bias is not penalised
    solution = torch.linalg.solve(gram + penalty, x1.T @ y)  # (n + 1, F)
    with torch.no_grad():
        linear.weight.copy_(solution[:n].T.to(linear.weight.dtype))
        linear.bias.copy_(solution[n].to(linear.bias.dtype))
