"""A patch Transformer forecaster with instance normalisation and covariates (PatchTST-style).

:class:`PatchForecaster` cuts the context of L steps into L / P patches of P
steps (Nie et al. 2023, "A Time Series is Worth 64 Words"): each patch, with
the covariates over the same steps, becomes one token. The horizon of F steps
becomes F / P more tokens, which carry only what is known ahead (the
covariates) and a learned horizon embedding. Pre-norm Transformer blocks let
every token attend to every other, and a linear head reads P forecasts off
each horizon token.

Instance normalisation (RevIN, Kim et al. 2022) makes it scale-free: each
window's context is standardised by its own mean and standard deviation
(:func:`instance_norm`), and the forecast is mapped back with the same two
numbers. A level or a scale the model never saw in training is then no
problem: it forecasts the shape and the window supplies the level.

:class:`LinearCovariateForecaster` is its linear baseline (Zeng et al. 2023,
"Are Transformers Effective for Time Series Forecasting?"): least squares
from the centred context and the same covariates to the F forecasts.

Shapes: B windows, L context steps, F forecast steps, P steps per patch,
K covariates, C model width, T = (L + F) / P tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab._validate import shape_str
from attnlab.layers import LearnedPositionalEmbedding, TransformerBlock, run_blocks
from attnlab.models.forecaster import fit_ridge

__all__ = [
    "instance_norm",
    "PatchForecasterConfig",
    "PatchForecaster",
    "LinearCovariateForecaster",
]


def instance_norm(context: torch.Tensor, eps: float = 1e-5
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Standardise each window by its own statistics: :math:`(y - \mu_b) / \sigma_b`.

    Returns the normalised context and the mean and standard deviation that
    undo it (``forecast * std + mean``).

    Shape:
        context (B, L) -> normalised (B, L), mean (B, 1), std (B, 1).

    Example:
        >>> z, mean, std = instance_norm(torch.tensor([[1.0, 3.0], [10.0, 30.0]]), eps=0.0)
        >>> z.tolist(), mean.tolist(), std.tolist()
        ([[-1.0, 1.0], [-1.0, 1.0]], [[2.0], [20.0]], [[1.0], [10.0]])
    """
    _check_2d(context, "context")
    mean = context.mean(dim=1, keepdim=True)  # (B, 1)
    std = (context.var(dim=1, unbiased=False, keepdim=True) + eps).sqrt()  # (B, 1)
    return (context - mean) / std, mean, std


def _check_2d(x: torch.Tensor, name: str, width: int | None = None) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        got = shape_str(x) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a floating-point (B, L) tensor, got {got}")
    if width is not None and x.shape[1] != width:
        raise ValueError(f"{name} must be (B, {width}), got {shape_str(x)}")


def _check_covariates(covariates: torch.Tensor | None, B: int, steps: int, K: int) -> None:
    if K == 0:
        if covariates is not None:
            raise ValueError("this model was built with num_covariates=0; pass no covariates")
        return
    if (not isinstance(covariates, torch.Tensor)
            or tuple(covariates.shape) != (B, steps, K)):
        got = shape_str(covariates) if isinstance(covariates, torch.Tensor) else covariates
        raise ValueError(f"covariates must be (B, L + F, K) = ({B}, {steps}, {K}), got {got}")


@dataclass
class PatchForecasterConfig:
    """Sizes of the patch forecaster; the defaults are the electricity chapter's preset."""

    context: int = 7 * 48  # L: a week of half-hours
    horizon: int = 48  # F: the next day
    patch: int = 24  # P: half a day per token, so 14 context tokens and 2 horizon tokens
    num_covariates: int = 2  # K: temperature and the work-day flag
    dim: int = 64  # C
    depth: int = 2  # blocks
    num_heads: int = 4  # H; D = C / H = 16
    ff_dim: int = 128  # the feed-forward hidden width, 2 C
    dropout: float = 0.1  # a year of data is a few hundred days: some regularisation helps
    revin: bool = True  # normalise each window by its own mean and std, undo on the forecast

    def __post_init__(self) -> None:
        if min(self.context, self.horizon, self.patch) < 1 or self.num_covariates < 0:
            raise ValueError(f"context, horizon and patch must be positive and num_covariates "
                             f">= 0, got {self.context}, {self.horizon}, {self.patch}, "
                             f"{self.num_covariates}")
        if self.context % self.patch or self.horizon % self.patch:
            raise ValueError(f"patch={self.patch} must divide context={self.context} and "
                             f"horizon={self.horizon}")

    @property
    def num_tokens(self) -> int:
        """The number of tokens T = (L + F) / P, the context patches then the horizon patches."""
        return (self.context + self.horizon) // self.patch


class PatchForecaster(nn.Module):
    r"""Forecast F steps from L steps of context and K covariates, a token per patch.

    .. math::

        (\tilde y, \mu, \sigma) = \operatorname{norm}(y_{1..L}),\quad
        z_0 = [\,E[\tilde y_p; x_p]\,]_{p \le L/P} \,\|\, [\,E_h x_p + h\,]_{p > L/P}
              + E_{\text{pos}},\quad
        \hat y = \mu + \sigma\, W \operatorname{LN}(z_{\text{depth}})_{p > L/P}

    with :math:`x_p` the covariates of patch p, :math:`E` and :math:`E_h`
    linear patch embeddings, :math:`h` the learned horizon embedding and
    :math:`W` a linear map of C to the P values of a patch.

    Shape:
        context (B, L), covariates (B, L + F, K) -> forecast (B, F); with
        ``need_weights`` also the attention weights (B, depth, H, T, T),
        T = (L + F) / P; rows L/P .. T-1 are the horizon patches.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> config = PatchForecasterConfig(context=48, horizon=12, patch=12, dim=16)
        >>> model = PatchForecaster(config)
        >>> y, x = torch.randn(3, 48), torch.randn(3, 60, 2)
        >>> forecast, weights = model(y, x, need_weights=True)
        >>> tuple(forecast.shape), tuple(weights.shape)
        ((3, 12), (3, 2, 4, 5, 5))
        >>> _ = model.eval()                            # RevIN: a new level and scale ...
        >>> moved = model(5 + 2 * y, x)                 # ... follow (float32 rounding aside)
        >>> torch.testing.assert_close(moved, 5 + 2 * model(y, x), rtol=1e-5, atol=1e-4)
    """

    def __init__(self, config: PatchForecasterConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        P, K = c.patch, c.num_covariates
        self.patch_embed = nn.Linear(P * (1 + K), c.dim)  # E: a patch of values + covariates
        self.horizon_embed = nn.Linear(P * K, c.dim) if K else None  # E_h: covariates only
        self.horizon_token = nn.Parameter(0.02 * torch.randn(1, 1, c.dim))  # h
        self.pos_embed = LearnedPositionalEmbedding(c.num_tokens, c.dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.ff_dim, c.dropout, norm_first=True)
            for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, P)  # W: one token -> P forecasts

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """(B, steps, k) -> (B, steps / P, P * k), each patch's steps then its channels."""
        B, steps, k = x.shape
        return x.reshape(B, steps // self.config.patch, self.config.patch * k)

    def forward(self, context: torch.Tensor, covariates: torch.Tensor | None = None,
                need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The forecast (B, F); with ``need_weights`` also the weights (B, depth, H, T, T)."""
        c = self.config
        _check_2d(context, "context", c.context)
        B, L = context.shape
        _check_covariates(covariates, B, c.context + c.horizon, c.num_covariates)
        if c.revin:
            y, mean, std = instance_norm(context)  # (B, L), (B, 1), (B, 1)
        else:
            y, mean, std = context, context.new_zeros(B, 1), context.new_ones(B, 1)
        past = y[..., None]  # (B, L, 1)
        if c.num_covariates:
            past = torch.cat([past, covariates[:, :L]], dim=2)  # (B, L, 1 + K)
        tokens = self.patch_embed(self._patches(past))  # (B, L/P, C)
        ahead = self.horizon_token.expand(B, c.horizon // c.patch, -1)  # (B, F/P, C)
        if self.horizon_embed is not None:
            ahead = ahead + self.horizon_embed(self._patches(covariates[:, L:]))
        x = self.pos_embed(torch.cat([tokens, ahead], dim=1))  # (B, T, C)
        x, weights = run_blocks(self.blocks, x, need_weights=need_weights)  # (B, T, C)
        out = self.head(self.norm(x[:, L // c.patch:])).reshape(B, c.horizon)  # (B, F)
        out = out * std + mean
        if need_weights:
            return out, torch.stack(weights, dim=1)  # (B, depth, H, T, T)
        return out


class LinearCovariateForecaster(nn.Module):
    """Least squares from the centred context and the covariates to the F forecasts.

    The features are the L context values minus their mean, and the L + F
    steps of K covariates; the targets are the F future values minus the same
    mean. :meth:`fit` solves the ridge problem in closed form (float64).
    Without covariates it is :class:`attnlab.models.forecaster.LinearForecaster`.

    Shape:
        context (B, L), covariates (B, L + F, K) or None -> forecast (B, F).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y, x = torch.randn(200, 8, generator=g), torch.randn(200, 10, 1, generator=g)
        >>> target = y[:, -2:] + 3 * x[:, -2:, 0]          # the last values + 3 x ahead
        >>> model = LinearCovariateForecaster.fit(y, x, target)
        >>> bool((model(y, x) - target).abs().max() < 1e-3)
        True
    """

    def __init__(self, context: int, horizon: int, num_features: int) -> None:
        super().__init__()
        self.context, self.horizon = context, horizon
        self.linear = nn.Linear(num_features, horizon)

    @staticmethod
    def _features(context: torch.Tensor, covariates: torch.Tensor | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        level = context.mean(dim=1, keepdim=True)  # (B, 1)
        parts = [context - level]
        if covariates is not None:
            parts.append(covariates.flatten(1))  # (B, (L + F) K)
        return torch.cat(parts, dim=1), level

    @classmethod
    def fit(cls, context: torch.Tensor, covariates: torch.Tensor | None, target: torch.Tensor,
            ridge: float = 1e-6) -> LinearCovariateForecaster:
        """Ridge least squares on training windows.

        Args:
            context: (W, L) training contexts.
            covariates: (W, L + F, K) their covariates, or None.
            target: (W, F) their targets.
            ridge: the penalty, relative to the mean squared feature.
        """
        _check_2d(context, "context")
        _check_2d(target, "target")
        W, L = context.shape
        if target.shape[0] != W:
            raise ValueError(f"target {shape_str(target)} needs one row per context window "
                             f"({W})")
        if covariates is not None:
            _check_covariates(covariates, W, L + target.shape[1], covariates.shape[-1])
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        x, level = cls._features(context.double(), None if covariates is None
                                 else covariates.double())
        y = target.double() - level
        model = cls(L, target.shape[1], x.shape[1])
        fit_ridge(model.linear, x, y, ridge)
        return model

    def forward(self, context: torch.Tensor, covariates: torch.Tensor | None = None
                ) -> torch.Tensor:
        _check_2d(context, "context", self.context)
        x, level = self._features(context, covariates)
        if x.shape[1] != self.linear.in_features:
            raise ValueError(f"the model was fitted on {self.linear.in_features} features, "
                             f"got {x.shape[1]}: pass the same covariates as in fit")
        return self.linear(x) + level  # (B, F)
