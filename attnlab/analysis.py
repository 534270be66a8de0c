"""Reading trained attention: where information flows through a Transformer.

- :func:`attention_rollout` -- attention rollout (Abnar & Zuidema 2020):
  the attention of every layer, with the residual connection counted as
  attention to oneself, multiplied through the layers.

Weights are laid out as :class:`attnlab.layers.MultiHeadAttention` returns
them, (B, H, T, S), with self-attention's S = T; a stack of L layers is
(B, L, H, T, T), as :class:`attnlab.models.vit.ViT` returns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from attnlab._validate import shape_str

__all__ = ["attention_rollout"]

HeadFusion = Literal["mean", "max", "min"]


def _stack_layers(weights: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(weights, torch.Tensor):
        return weights
    if not isinstance(weights, (list, tuple)) or len(weights) == 0:
        raise ValueError("weights must be a tensor (..., L, H, T, T) or a non-empty sequence "
                         "of L tensors (..., H, T, T)")
    shapes = {tuple(w.shape) for w in weights}
    if len(shapes) != 1:
        raise ValueError(f"the layers' weights must share one shape (..., H, T, T), got "
                         f"{sorted(shapes)}")
    return torch.stack(list(weights), dim=-4)  # (..., L, H, T, T)


def attention_rollout(
    weights: torch.Tensor | Sequence[torch.Tensor],
    *,
    residual: float = 0.5,
    head_fusion: HeadFusion = "mean",
) -> torch.Tensor:
    r"""Attention rollout: how much each input token flows into each final token.

    Abnar & Zuidema (2020) treat each layer's attention as the share of a
    token's next representation that comes from each token. The residual
    connection carries a token's own representation forward too, so the heads'
    weights :math:`A_\ell` (fused by their mean) are mixed with the identity and
    the rows renormalised; the layers are then chained by matrix products:

    .. math::

        \tilde A_\ell = \operatorname{rownorm}\big(r\, I + (1 - r)\, A_\ell\big),
        \qquad
        R = \tilde A_L\, \tilde A_{L-1} \cdots \tilde A_1 .

    Row i of R says how much of final token i comes from each input token
    (each row sums to 1). With :math:`r = 0.5` this is the paper's
    :math:`0.5\,W_{att} + 0.5\,I`. For a ViT, ``R[..., 0, 1:]`` is the class
    token's rollout over the patches.

    The products assume that information mixes linearly, as the weights say,
    and ignore the values, the feed-forward layers and the norms: a rollout
    map is a summary of the attention, not a measured attribution.

    Args:
        weights: the attention weights of L self-attention layers, first layer
            first: a tensor (..., L, H, T, T), or a sequence of L tensors
            (..., H, T, T). Each row should sum to 1 (or 0 for a query that
            attended nothing).
        residual: r, the weight of the identity, in [0, 1]; 0 multiplies the
            raw attention, 1 returns the identity.
        head_fusion: how the H heads of a layer are combined: ``"mean"`` (the
            paper's), ``"max"`` or ``"min"``.

    Shape:
        (..., L, H, T, T) -> (..., T, T).

    Returns:
        The rollout R, a new float tensor; ``weights`` is not modified.

    Raises:
        ValueError: weights that are not (..., L, H, T, T) with square T x T
            maps, negative or non-finite weights, a ``residual`` outside
            [0, 1], or an unknown ``head_fusion``.

    Example:
        Two tokens; in each of two layers, both attend only to token 0:

        >>> one_layer = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])   # (H=1, T=2, T=2)
        >>> attention_rollout(torch.stack([one_layer, one_layer]))  # (L=2, H, T, T)
        tensor([[1.0000, 0.0000],
                [0.7500, 0.2500]])

        Token 1 keeps a quarter of itself: half survives each residual.
    """
    w = _stack_layers(weights)
    if not isinstance(w, torch.Tensor) or w.dim() < 4 or w.shape[-1] != w.shape[-2]:
        got = shape_str(w) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"weights must be (..., L, H, T, T) with square (T, T) maps of "
                         f"self-attention, got {got}")
    if not w.is_floating_point():
        raise ValueError(f"weights must be floating point, got dtype {w.dtype}")
    if w.numel() == 0:
        raise ValueError(f"weights {shape_str(w)} are empty")
    if not torch.isfinite(w).all() or bool((w < 0).any()):
        raise ValueError("weights must be finite and non-negative (attention probabilities)")
    if isinstance(residual, bool) or not 0.0 <= float(residual) <= 1.0:
        raise ValueError(f"residual must lie in [0, 1], got {residual!r}")
    if head_fusion == "mean":
        fused = w.mean(dim=-3)  # (..., L, T, T)
    elif head_fusion == "max":
        fused = w.amax(dim=-3)
    elif head_fusion == "min":
        fused = w.amin(dim=-3)
    else:
        raise ValueError(f"head_fusion must be 'mean', 'max' or 'min', got {head_fusion!r}")
    T = w.shape[-1]
    eye = torch.eye(T, dtype=w.dtype, device=w.device)
    mixed = residual * eye + (1.0 - residual) * fused  # (..., L, T, T)
    totals = mixed.sum(dim=-1, keepdim=True)  # (..., L, T, 1)
    mixed = mixed / torch.where(totals > 0, totals, torch.ones_like(totals))
    rollout = mixed[..., 0, :, :]  # (..., T, T): the first layer
    for layer in range(1, w.shape[-4]):
        rollout = mixed[..., layer, :, :] @ rollout  # (..., T, T) @ (..., T, T) -> (..., T, T)
    return rollout
