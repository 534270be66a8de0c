"""A candidate model built from an architecture, and its deterministic cost model."""

from __future__ import annotations

import torch
from torch import nn

from attnlab.efficient import linear_attention
from attnlab.functional import attention
from attnlab.layers import (
    KVCache,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from attnlab.masks import window_mask
from attnlab.nas.space import ATTENTION_TYPES, Architecture

__all__ = [
    "SwappableAttention",
    "CandidateModel",
    "build_model",
    "parameter_count",
    "flops_per_example",
]


# ------------------------------------------------------------------------ the model


class SwappableAttention(MultiHeadAttention):
    """Multi-head self-attention whose core is softmax, linear or sliding-window attention.

    The projections (and :class:`~attnlab.layers.RotaryEmbedding`, if given) are those of
    :class:`attnlab.layers.MultiHeadAttention`, so the three kinds have the same parameters
    and differ only in how queries meet keys:

    - ``"softmax"``: :func:`attnlab.functional.attention`;
    - ``"linear"``: :func:`attnlab.efficient.linear_attention` (feature map elu + 1);
    - ``"local"``: softmax over the keys within ``window`` positions
      (:func:`attnlab.efficient.window_mask`). For the short sequences here it runs as a dense
      masked softmax, which equals :func:`attnlab.efficient.local_attention` and is faster
      when T is small; the cost model counts the pairs a banded kernel would compute.

    Shape:
        query (B, T, C) -> (B, T, C).

    Example:
        >>> layer = SwappableAttention(8, 2, kind="linear")
        >>> layer(torch.randn(3, 5, 8)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(self, embed_dim: int, num_heads: int, *, kind: str = "softmax",
                 window: int = 2, rope: RotaryEmbedding | None = None) -> None:
        super().__init__(embed_dim, num_heads, rope=rope)
        if kind not in ATTENTION_TYPES:
            raise ValueError(f"kind must be one of {ATTENTION_TYPES}, got {kind!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise ValueError(f"window must be a non-negative integer, got {window!r}")
        self.kind, self.window = kind, window

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None,
                value: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                causal: bool = False, need_weights: bool = False,
                cache: KVCache | None = None) -> torch.Tensor:
        """Self-attention over ``query``; the other arguments must keep their defaults."""
        if key is not None or value is not None or mask is not None or causal or need_weights \
                or cache is not None:
            raise ValueError("SwappableAttention does unmasked self-attention only")
        self._check(query, None, None)
        q, k, v = (self.split_heads(x) for x in self._project(query, None, None))  # (B,H,T,D)
        if self.rope is not None:
            q, k = self.rope(q), self.rope(k)
        if self.kind == "linear":
            out = linear_attention(q, k, v)  # (B, H, T, D)
        elif self.kind == "local":
            T = q.shape[-2]
            out = attention(q, k, v, window_mask(T, window=self.window, device=q.device))
        else:
            out = attention(q, k, v)  # (B, H, T, D)
        return self.out_proj(self.merge_heads(out))  # (B, T, C)


class CandidateModel(nn.Module):
    """An encoder built from an :class:`Architecture` that labels every position.

    Token embedding (+ sinusoidal or learned positions) -> ``depth`` pre-norm
    :class:`attnlab.layers.TransformerBlock`\\ s with :class:`SwappableAttention` (rotary
    positions rotate queries and keys inside it) -> LayerNorm -> a linear layer to ``n_out``
    classes per position.

    Args:
        arch: the architecture.
        vocab_size: V, the number of input ids.
        max_len: the longest sequence (size of a learned position table).
        n_out: classes per position (default V).
        ff_mult: the feed-forward width is ``ff_mult * C``.
        window: the half-width of local attention.

    Shape:
        ids (B, T) int64 -> logits (B, T, n_out).
    """

    def __init__(self, arch: Architecture, vocab_size: int, max_len: int,
                 n_out: int | None = None, *, ff_mult: int = 2, window: int = 2) -> None:
        super().__init__()
        if vocab_size < 1 or max_len < 1 or ff_mult < 1:
            raise ValueError(f"need positive vocab_size, max_len and ff_mult, got "
                             f"{vocab_size}, {max_len}, {ff_mult}")
        self.arch, self.max_len = arch, max_len
        C, n_out = arch.width, vocab_size if n_out is None else n_out
        self.embed = nn.Embedding(vocab_size, C)
        self.pos: nn.Module | None = None
        if arch.position == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(C, max_len)
        elif arch.position == "learned":
            self.pos = LearnedPositionalEmbedding(max_len, C)
        blocks = []
        for _ in range(arch.depth):
            rope = RotaryEmbedding(C // arch.heads, max_len) if arch.position == "rotary" else None
            block = TransformerBlock(C, arch.heads, ff_mult * C, norm_first=True)
            block.self_attn = SwappableAttention(C, arch.heads, kind=arch.attention,
                                                 window=window, rope=rope)
            blocks.append(block)
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(C)
        self.head = nn.Linear(C, n_out)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"ids must be (B, T) int64, got {tuple(ids.shape)} {ids.dtype}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"T={ids.shape[1]} exceeds max_len={self.max_len}")
        x = self.embed(ids)  # (B, T, C)
        if self.pos is not None:
            x = self.pos(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))  # (B, T, n_out)


def build_model(arch: Architecture, vocab_size: int, max_len: int, n_out: int | None = None,
                *, ff_mult: int = 2, window: int = 2, seed: int = 0) -> CandidateModel:
    """A :class:`CandidateModel` whose weights depend only on ``arch`` and ``seed``.

    Example:
        >>> arch = Architecture(2, 1, 16, "local", "rotary")
        >>> build_model(arch, vocab_size=10, max_len=6)(torch.zeros(4, 6, dtype=torch.long)).shape
        torch.Size([4, 6, 10])
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CandidateModel(arch, vocab_size, max_len, n_out, ff_mult=ff_mult, window=window)


# ------------------------------------------------------------------- the cost model


def parameter_count(arch: Architecture, vocab_size: int, max_len: int,
                    n_out: int | None = None, *, ff_mult: int = 2) -> int:
    """The number of parameters of :func:`build_model`'s model, from the formula.

    Per block: Q, K, V and O projections ``4 C^2 + 4 C``, feed-forward ``2 C F + F + C``,
    two LayerNorms ``4 C``; plus the embedding ``V C``, a learned table ``max_len C``, the
    final LayerNorm ``2 C`` and the output layer ``C n_out + n_out``. The attention type
    changes no parameter.

    Example:
        >>> arch = Architecture(2, 1, 16, "softmax", "learned")
        >>> parameter_count(arch, 10, 6) == sum(
        ...     p.numel() for p in build_model(arch, 10, 6).parameters())
        True
    """
    C, n_out = arch.width, vocab_size if n_out is None else n_out
    Fw = ff_mult * C
    block = (4 * C * C + 4 * C) + (2 * C * Fw + Fw + C) + 4 * C
    table = max_len * C if arch.position == "learned" else 0
    return vocab_size * C + table + arch.depth * block + 2 * C + C * n_out + n_out


def flops_per_example(arch: Architecture, seq_len: int, n_out: int, *, ff_mult: int = 2,
                      window: int = 2) -> int:
    """Forward-pass FLOPs of the matrix products for one sequence of length T (2 per MAC).

    Element-wise work (softmax, norms, activations, the feature map) is left out, as in the
    usual ``2 N`` per token estimates. Local attention counts only the (query, key) pairs of
    its window, ``P = window_mask(T, window).sum()``: what a banded kernel computes.

    Example:
        >>> flops_per_example(Architecture(1, 1, 4, "softmax", "none"), seq_len=2, n_out=3)
        624
    """
    if seq_len < 1 or n_out < 1:
        raise ValueError(f"need seq_len >= 1 and n_out >= 1, got {seq_len}, {n_out}")
    T, C = seq_len, arch.width
    D = C // arch.heads
    if arch.attention == "softmax":
        core = 4 * T * T * C  # Q K^T and weights @ V, each 2 T^2 C
    elif arch.attention == "local":
        pairs = int(window_mask(T, window=window).sum())
        core = 4 * pairs * C
    else:
        core = 4 * T * C * D  # phi(K)^T V and phi(Q) (KV): 2 T D D per head each
    block = 8 * T * C * C + 4 * T * C * ff_mult * C + core
    return arch.depth * block + 2 * T * C * n_out
