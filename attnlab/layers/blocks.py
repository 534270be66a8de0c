"""Transformer blocks and their parts: feed-forward networks, RMSNorm, encoder, decoder."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from attnlab._validate import shape_str
from attnlab.layers.attention import MultiHeadAttention
from attnlab.layers.cache import KVCache
from attnlab.layers.positions import RotaryEmbedding

__all__ = ["FeedForward", "RMSNorm", "SwiGLU", "TransformerBlock", "DecoderBlock", "run_blocks"]


class FeedForward(nn.Module):
    """The position-wise feed-forward network: Linear -> activation -> dropout -> Linear.

    Shape:
        (B, T, C) -> (B, T, C).
    """

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0,
                 activation: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        if activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {activation!r}")
        self.linear1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.linear2 = nn.Linear(hidden_dim, dim, bias=bias)
        self.activation = F.gelu if activation == "gelu" else F.relu
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class RMSNorm(nn.Module):
    r"""Root-mean-square layer normalisation (Zhang & Sennrich, 2019).

    .. math::

        \operatorname{RMSNorm}(x) = \frac{x}{\sqrt{\tfrac{1}{C}\sum_i x_i^2 + \epsilon}}
        \odot w

    Unlike ``nn.LayerNorm`` it neither subtracts the mean nor adds a bias: one
    statistic per position instead of two, and a learned gain ``weight``
    (initialised to ones). Equal to ``torch.nn.RMSNorm(dim, eps=eps)``; the
    sum of squares is taken in float32 for half-precision inputs.

    Args:
        dim: C, the width normalised over (the last axis).
        eps: added to the mean square, for inputs near zero.

    Shape:
        x (..., C) -> (..., C).

    Example:
        >>> norm = RMSNorm(4)
        >>> norm(torch.tensor([[3.0, -3.0, 3.0, -3.0]]))
        tensor([[ 1.0000, -1.0000,  1.0000, -1.0000]], grad_fn=<MulBackward0>)
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.dim, self.eps = dim, float(eps)
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"RMSNorm({self.dim}) got x of shape {shape_str(x)}")
        xf = x.float()
        rms = torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return (xf * rms).to(x.dtype) * self.weight  # (..., C)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class SwiGLU(nn.Module):
    r"""The gated feed-forward network of LLaMA-style models (Shazeer, 2020).

    .. math::

        \operatorname{SwiGLU}(x) = W_\text{down}\,
            \big(\operatorname{SiLU}(W_\text{gate}\, x) \odot W_\text{up}\, x\big),
        \qquad \operatorname{SiLU}(z) = z\,\sigma(z)

    Three matrices instead of two: a hidden width of about 8C/3 (instead of
    4C) keeps the parameter count of :class:`FeedForward`.

    Args:
        dim: C.
        hidden_dim: the hidden width.
        bias: biases in the three linear layers (LLaMA has none).

    Shape:
        x (B, T, C) -> (B, T, C).

    Example:
        >>> ff = SwiGLU(8, 24)
        >>> ff(torch.randn(2, 3, 8)).shape
        torch.Size([2, 3, 8])
        >>> sum(p.numel() for p in ff.parameters())       # 3 * 8 * 24
        576
    """

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False) -> None:
        super().__init__()
        for name, n in (("dim", dim), ("hidden_dim", hidden_dim)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be a positive integer, got {n!r}")
        self.gate = nn.Linear(dim, hidden_dim, bias=bias)
        self.up = nn.Linear(dim, hidden_dim, bias=bias)
        self.down = nn.Linear(hidden_dim, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))  # (B,T,C) -> (B,T,hidden) -> (B,T,C)


class TransformerBlock(nn.Module):
    """A Transformer encoder block: self-attention and a feed-forward network.

    With ``norm_first=True`` (pre-norm, as in GPT-2 and most models since)::

        x = x + attn(norm1(x));  x = x + ff(norm2(x))

    With ``norm_first=False`` (post-norm, the original Transformer)::

        x = norm1(x + attn(x));  x = norm2(x + ff(x))

    The parameters are laid out like ``nn.TransformerEncoderLayer``'s, and
    :meth:`from_torch` copies one.

    Args:
        dim: C.
        num_heads: H.
        ff_dim: the feed-forward hidden width (4 C is usual).
        dropout: dropout on attention weights and on each residual branch.
        norm_first: pre-norm (True) or post-norm (False).
        activation: ``"gelu"`` or ``"relu"``.
        bias: biases in linear layers and layer norms.
        rope: a :class:`RotaryEmbedding` for the self-attention, or None.

    Shape:
        x (B, T, C), mask (T, T) / (B, T, T) / (B, H, T, T) -> (B, T, C).
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0,
                 norm_first: bool = True, activation: str = "gelu", bias: bool = True,
                 *, rope: RotaryEmbedding | None = None) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, num_heads, bias=bias, dropout=dropout, rope=rope)
        self.ff = FeedForward(dim, ff_dim, dropout, activation, bias)
        self.norm1 = nn.LayerNorm(dim, bias=bias)
        self.norm2 = nn.LayerNorm(dim, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False,
                cache: KVCache | None = None, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The block's output (B, T, C); with ``need_weights`` also the attention weights
        (B, H, T, S) of its self-attention."""
        h = self.norm1(x) if self.norm_first else x
        attn = self.self_attn(h, mask=mask, causal=causal, cache=cache, need_weights=need_weights)
        attn, weights = attn if need_weights else (attn, None)
        if self.norm_first:
            x = x + self.dropout1(attn)
            x = x + self.dropout2(self.ff(self.norm2(x)))
        else:
            x = self.norm1(x + self.dropout1(attn))
            x = self.norm2(x + self.dropout2(self.ff(x)))
        return (x, weights) if need_weights else x

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> TransformerBlock:
        """A copy of an ``nn.TransformerEncoderLayer`` (relu or gelu activation)."""
        act = layer.activation
        name = {F.relu: "relu", F.gelu: "gelu"}.get(act) if callable(act) else None
        if name is None:
            name = type(act).__name__.lower() if isinstance(act, nn.Module) else None
        if name not in ("relu", "gelu"):
            raise ValueError(f"unsupported activation {act!r}")
        attn = layer.self_attn
        block = cls(attn.embed_dim, attn.num_heads, layer.linear1.out_features,
                    dropout=layer.dropout.p, norm_first=layer.norm_first, activation=name,
                    bias=layer.linear1.bias is not None)
        block.self_attn = MultiHeadAttention.from_torch(attn)
        with torch.no_grad():
            for ours, theirs in ((block.ff.linear1, layer.linear1),
                                 (block.ff.linear2, layer.linear2),
                                 (block.norm1, layer.norm1), (block.norm2, layer.norm2)):
                ours.weight.copy_(theirs.weight)
                if theirs.bias is not None:
                    ours.bias.copy_(theirs.bias)
        return block.to(layer.linear1.weight.device)


class DecoderBlock(nn.Module):
    """A Transformer decoder block: causal self-attention, cross-attention, feed-forward.

    Pre-norm by default; laid out like ``nn.TransformerDecoderLayer``.

    Shape:
        x (B, T, C), memory (B, S, C), memory_mask broadcastable to (B, T, S)
        (e.g. a padding mask (B, 1, S)) -> (B, T, C).
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float = 0.0,
                 norm_first: bool = True, activation: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, num_heads, bias=bias, dropout=dropout)
        self.cross_attn = MultiHeadAttention(dim, num_heads, bias=bias, dropout=dropout)
        self.ff = FeedForward(dim, ff_dim, dropout, activation, bias)
        self.norm1 = nn.LayerNorm(dim, bias=bias)
        self.norm2 = nn.LayerNorm(dim, bias=bias)
        self.norm3 = nn.LayerNorm(dim, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.norm_first = norm_first

    def forward(self, x: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        def self_block(h: torch.Tensor) -> torch.Tensor:
            return self.dropout(self.self_attn(h, causal=True, cache=cache))

        def cross_block(h: torch.Tensor) -> torch.Tensor:
            return self.dropout(self.cross_attn(h, memory, memory, mask=memory_mask))

        if self.norm_first:
            x = x + self_block(self.norm1(x))
            x = x + cross_block(self.norm2(x))
            return x + self.dropout(self.ff(self.norm3(x)))
        x = self.norm1(x + self_block(x))
        x = self.norm2(x + cross_block(x))
        return self.norm3(x + self.dropout(self.ff(x)))


def run_blocks(blocks: Iterable[nn.Module], x: torch.Tensor, mask: torch.Tensor | None = None,
               need_weights: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Pass ``x`` through Transformer blocks in order, collecting their attention weights.

    Args:
        blocks: :class:`TransformerBlock` s (or modules with the same call).
        x: the input of the first block.
        mask: the attention mask every block gets (True = may attend), or None.
        need_weights: also return each block's attention weights.

    Shape:
        x (B, T, C) -> (B, T, C); weights: L tensors (B, H, T, T), or [] without
        ``need_weights``.

    Example:
        >>> blocks = [TransformerBlock(8, 2, 16), TransformerBlock(8, 2, 16)]
        >>> y, weights = run_blocks(blocks, torch.randn(1, 3, 8), need_weights=True)
        >>> tuple(y.shape), [tuple(w.shape) for w in weights]
        ((1, 3, 8), [(1, 2, 3, 3), (1, 2, 3, 3)])
    """
    weights: list[torch.Tensor] = []
    for block in blocks:
        if need_weights:
            x, w = block(x, mask=mask, need_weights=True)  # w (B, H, T, T)
            weights.append(w)
        else:
            x = block(x, mask=mask)
    return x, weights
