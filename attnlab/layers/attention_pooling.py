"""Attention pooling: a sequence pooled into one vector by attention with a learned query."""

from __future__ import annotations

import torch
from torch import nn

from attnlab._validate import shape_str
from attnlab.functional import attention

__all__ = ["AttentionPooling"]


class AttentionPooling(nn.Module):
    r"""Pool a sequence into one vector by attention with a learned query.

    .. math::

        \alpha_j = \operatorname{softmax}_j\!\left(\frac{q \cdot W_k h_j}{\sqrt{C}}\right)
        \text{ over the real positions}, \qquad z = \sum_j \alpha_j h_j

    The query :math:`q` is a parameter: the same question ("where is the evidence?") is
    asked of every sequence. The values are the states themselves.

    Args:
        dim: C, the width of the states.

    Shape:
        x (B, S, C), mask (B, S) bool (True = a real position, may be attended) or None
        -> pooled (B, C), weights (B, S).

    Example:
        >>> pool = AttentionPooling(4)
        >>> z, w = pool(torch.randn(2, 3, 4), torch.tensor([[True, True, False],
        ...                                                  [True, True, True]]))
        >>> z.shape, w.shape, bool(w[0, 2] == 0)   # the padded position gets no weight
        (torch.Size([2, 4]), torch.Size([2, 3]), True)
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.query = nn.Parameter(torch.randn(dim) * dim**-0.5)  # q (C,)
        self.key = nn.Linear(dim, dim, bias=False)  # W_k

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled vectors (B, C) and the weights (B, S)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.dim:
            shape = shape_str(x) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be (B, S, C) with C={self.dim}, got {shape}")
        B, S, C = x.shape
        if mask is not None and (not isinstance(mask, torch.Tensor) or mask.shape != (B, S)
                                 or mask.dtype != torch.bool):
            shape = shape_str(mask) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor (B, S) = ({B}, {S}) for x "
                             f"{shape_str(x)} (True = may attend), got {shape}")
        q = self.query.expand(B, 1, C)  # (B, 1, C): one query per sequence, T = 1
        k = self.key(x)  # (B, S, C)
        pooled, weights = attention(q, k, x, None if mask is None else mask[:, None, :],
                                    need_weights=True)  # (B, 1, C), (B, 1, S)
        return pooled[:, 0], weights[:, 0]  # (B, C), (B, S)
