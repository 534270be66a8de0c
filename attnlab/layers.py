"""Attention layers: additive and multi-head attention, positional encodings, Transformer blocks.

All layers are batch-first. Inside multi-head attention tensors are laid out
(B, H, T, D); at the boundaries they are (B, T, C) with C = H * D. Masks are
bool with ``True`` = *may attend* (the opposite of ``nn.MultiheadAttention``'s
bool masks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from attnlab._validate import check_mask, shape_str
from attnlab.functional import additive_scores, attention, masked_softmax
from attnlab.masks import causal_mask, window_mask

__all__ = [
    "AdditiveAttention",
    "KVCache",
    "RollingKVCache",
    "MultiHeadAttention",
    "sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "RotaryEmbedding",
    "FeedForward",
    "RMSNorm",
    "SwiGLU",
    "TransformerBlock",
    "DecoderBlock",
]


# ----------------------------------------------------------------- additive attention


class AdditiveAttention(nn.Module):
    r"""Additive (Bahdanau) attention: :math:`s_{ij} = w_v^\top \tanh(W_q q_i + W_k k_j)`.

    Args:
        query_dim: Dq, the width of a query.
        key_dim: Dk, the width of a key.
        hidden_dim: A, the width of the hidden layer that scores a pair.
        dropout: dropout on the attention weights while training.

    Shape:
        query (B, T, Dq), key (B, S, Dk), value (B, S, Dv), mask broadcastable
        to (B, T, S) -> out (B, T, Dv); weights (B, T, S).

    Example:
        >>> layer = AdditiveAttention(4, 6, 8)
        >>> out, w = layer(torch.randn(2, 3, 4), torch.randn(2, 5, 6), need_weights=True)
        >>> out.shape, w.shape
        (torch.Size([2, 3, 6]), torch.Size([2, 3, 5]))
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.w_q = nn.Linear(query_dim, hidden_dim, bias=False)
        self.w_k = nn.Linear(key_dim, hidden_dim, bias=False)
        self.w_v = nn.Linear(hidden_dim, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` to ``key``; ``value`` defaults to ``key``."""
        value = key if value is None else value
        if value.shape[:-1] != key.shape[:-1]:
            raise ValueError(
                f"key {shape_str(key)} and value {shape_str(value)} must agree on (B, S)"
            )
        scores = additive_scores(query, key, self.w_q.weight, self.w_k.weight,
                                 self.w_v.weight[0])  # (B, T, S)
        if mask is None:
            weights = torch.softmax(scores, dim=-1)
        else:
            weights = masked_softmax(scores, mask)  # (B, T, S)
        out = self.dropout(weights) @ value  # (B, T, S) @ (B, S, Dv) -> (B, T, Dv)
        return (out, weights) if need_weights else out


# -------------------------------------------------------------------- multi-head attention


@dataclass
class KVCache:
    """Keys and values of the positions seen so far, for incremental decoding.

    Each self-attention layer keeps one. ``append`` adds the new positions'
    keys and values and returns everything cached. With grouped-query
    attention it holds the G = H_kv key/value heads, not the H query heads.

    Shape:
        k, v: (B, G, S, D), S growing by T with each ``append``.

    Example:
        >>> cache = KVCache()
        >>> k, v = cache.append(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
        >>> k, v = cache.append(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 4))
        >>> cache.length, cache.position, tuple(k.shape)
        (4, 4, (1, 2, 4, 4))
    """

    k: torch.Tensor | None = field(default=None, repr=False)
    v: torch.Tensor | None = field(default=None, repr=False)

    @property
    def length(self) -> int:
        """How many positions are cached."""
        return 0 if self.k is None else self.k.shape[-2]

    @property
    def position(self) -> int:
        """The number of positions seen so far, which is the position of the next one."""
        return self.length

    @property
    def nbytes(self) -> int:
        """Memory held by the cached keys and values, in bytes."""
        return sum(t.numel() * t.element_size() for t in (self.k, self.v) if t is not None)

    def causal_mask(self, T: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The (T, S) mask of the last ``append``'s T queries over the keys it returned."""
        return causal_mask(T, self.length, offset=self.length - T, device=device)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add (B, H, T, D) keys and values; return all of them, (B, H, S + T, D)."""
        if self.k is None or self.v is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=-2)  # (B, H, S + T, D)
            self.v = torch.cat([self.v, v], dim=-2)
        return self.k, self.v


class RollingKVCache(KVCache):
    r"""A KV cache of fixed size for sliding-window attention.

    It keeps the keys and values of the last ``window`` positions only:
    with them, the next query sees exactly the keys
    :func:`attnlab.masks.window_mask` (``causal=True``) allows, its own
    position and the ``window`` before it. However long the sequence, the
    cache holds at most ``window`` positions, so its memory stays flat.

    ::

        positions seen  0 1 2 3 4 5 6      window = 3
        cached                  4 5 6      (the next query, 7, adds itself)

    Args:
        window: how many earlier positions a query may attend, >= 1.

    Shape:
        k, v: (B, G, S, D) with S <= window between calls; ``append`` returns
        the cached and the new positions, (B, G, S + T, D).

    Example:
        >>> cache = RollingKVCache(window=3)
        >>> for t in range(7):
        ...     k, v = cache.append(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 4))
        >>> cache.length, cache.position, tuple(k.shape)
        (3, 7, (1, 2, 4, 4))
    """

    def __init__(self, window: int) -> None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        super().__init__()
        self.window = window
        self._seen = 0  # positions appended so far
        self._returned = 0  # keys the last append returned

    @property
    def position(self) -> int:
        """How many positions have been seen (more than are kept)."""
        return self._seen

    def causal_mask(self, T: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The (T, S) sliding-window mask of the last ``append``'s queries over its keys."""
        S = self._returned
        return window_mask(T, S, self.window, causal=True, offset=S - T, device=device)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add (B, G, T, D) keys and values; return the kept and the new ones, (B, G, S + T, D).

        Afterwards only the last ``window`` positions stay in the cache.
        """
        k_all, v_all = super().append(k, v)  # (B, G, S + T, D)
        self._seen += k.shape[-2]
        self._returned = k_all.shape[-2]
        self.k = k_all[..., -self.window :, :].clone()  # (B, G, <= window, D): a copy, so
        self.v = v_all[..., -self.window :, :].clone()  # the longer tensor can be freed
        return k_all, v_all


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention, batch-first, with the ``True`` = may-attend mask convention.

    .. math::

        \operatorname{head}_h = \operatorname{softmax}\!\left(
            \frac{Q W^Q_h (K W^K_h)^\top}{\sqrt{D}}\right) V W^V_h, \qquad
        \operatorname{out} = [\operatorname{head}_1, \dots, \operatorname{head}_H]\, W^O

    The projections are stored like ``nn.MultiheadAttention``'s (one packed
    ``in_proj`` of shape (3C, C), then ``out_proj``), so weights copy across
    with :meth:`from_torch`.

    Args:
        embed_dim: C, the model width.
        num_heads: H; C must be divisible by H, D = C / H.
        bias: add biases to the projections.
        dropout: dropout on the attention weights while training.
        rope: a :class:`RotaryEmbedding` of width D to rotate queries and keys
            by their positions, or None.
        num_kv_heads: G, the number of key/value heads (default H). With
            G < H, each group of H / G query heads shares one key and value
            head: grouped-query attention (multi-query attention when G = 1).
            The key and value projections then have G·D output columns each,
            and a :class:`KVCache` holds G heads instead of H.

    Shape:
        query (B, T, C), key and value (B, S, C) (default: ``query``), mask
        (T, S), (B, T, S) or (B, H, T, S) (size 1 where shared) -> out
        (B, T, C); weights (B, H, T, S). The packed ``in_proj`` is
        (C + 2·G·D, C): (3C, C) when G = H.

    Example:
        >>> mha = MultiHeadAttention(8, num_heads=2)
        >>> x = torch.randn(3, 5, 8)
        >>> out, w = mha(x, causal=True, need_weights=True)
        >>> out.shape, w.shape
        (torch.Size([3, 5, 8]), torch.Size([3, 2, 5, 5]))
        >>> gqa = MultiHeadAttention(8, num_heads=4, num_kv_heads=2)
        >>> tuple(gqa.in_proj.weight.shape)                # C + 2 * G * D = 8 + 2 * 2 * 2
        (16, 8)
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        bias: bool = True,
        dropout: float = 0.0,
        *,
        rope: RotaryEmbedding | None = None,
        num_kv_heads: int | None = None,
    ) -> None:
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"embed_dim={embed_dim} must be a positive multiple of num_heads={num_heads}"
            )
        G = num_heads if num_kv_heads is None else num_kv_heads
        if isinstance(G, bool) or not isinstance(G, int) or G < 1 or num_heads % G:
            raise ValueError(
                f"num_kv_heads={num_kv_heads!r} must be a positive divisor of "
                f"num_heads={num_heads}"
            )
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, G
        self.head_dim = embed_dim // num_heads
        self.kv_dim = G * self.head_dim  # the width of the keys (and of the values): G·D
        self.dropout = dropout
        self.in_proj = nn.Linear(embed_dim, embed_dim + 2 * self.kv_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        if rope is not None and rope.dim != self.head_dim:
            raise ValueError(f"rope has width {rope.dim}, the head dimension is {self.head_dim}")
        self.rope = rope

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, H, T, D), or keys and values (B, T, G·D) -> (B, G, T, D)."""
        B, T, width = x.shape
        return x.view(B, T, width // self.head_dim, self.head_dim).transpose(1, 2)  # (B,H,T,D)

    @staticmethod
    def merge_heads(x: torch.Tensor) -> torch.Tensor:
        """(B, H, T, D) -> (B, T, C)."""
        B, H, T, D = x.shape
        return x.transpose(1, 2).reshape(B, T, H * D)  # (B, T, C)

    def _project(
        self, query: torch.Tensor, key: torch.Tensor | None, value: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        C, Ckv = self.embed_dim, self.kv_dim
        sizes = [C, Ckv, Ckv]
        if key is None and value is None:  # self-attention: one packed matmul
            return self.in_proj(query).split(sizes, dim=-1)  # (B,T,C), 2 x (B,T,G·D)
        key = query if key is None else key
        value = key if value is None else value
        w, b = self.in_proj.weight, self.in_proj.bias
        bq, bk, bv = (None, None, None) if b is None else b.split(sizes)
        wq, wk, wv = w.split(sizes)
        if key is value:
            kv = F.linear(key, torch.cat([wk, wv]), None if b is None else b[C:])
            k, v = kv.split(Ckv, -1)  # 2 x (B, S, G·D)
        else:
            k, v = F.linear(key, wk, bk), F.linear(value, wv, bv)
        return F.linear(query, wq, bq), k, v

    def _check(self, query: torch.Tensor, key: torch.Tensor | None, value: torch.Tensor | None):
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x is None:
                continue
            if x.dim() != 3 or x.shape[-1] != self.embed_dim:
                raise ValueError(
                    f"{name} must be (B, T, C) with C={self.embed_dim} (batch first), "
                    f"got {shape_str(x)}"
                )
            if x.shape[0] != query.shape[0]:
                raise ValueError(f"{name} {shape_str(x)} and query {shape_str(query)} "
                                 "must have the same batch size B")
        if key is not None and value is not None and key.shape[1] != value.shape[1]:
            raise ValueError(f"key {shape_str(key)} and value {shape_str(value)} must have "
                             "the same length S")

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` to ``key``/``value`` (default: self-attention).

        With a ``cache`` (self-attention only), ``query`` holds the T newest
        positions; their keys and values are appended to the cache and each
        new position attends to every cached one before it (a causal mask
        aligned to the bottom right). With a :class:`RollingKVCache` and
        ``causal=True`` each position attends only the last ``window``
        positions before it and itself.
        """
        self._check(query, key, value)
        B, T, _ = query.shape
        if cache is not None and (key is not None or value is not None):
            raise ValueError("a KV cache is for self-attention: pass no key or value with it")
        q, k, v = (self.split_heads(x) for x in self._project(query, key, value))  # (B,H|G,*,D)
        offset = cache.position if cache is not None else 0
        if self.rope is not None:
            q = self.rope(q, offset=offset)
            k = self.rope(k, offset=offset)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, G, S, D): the cached positions and the T new ones
        S = k.shape[-2]
        if mask is not None:
            mask = self._head_mask(mask, B, T, S)
        if cache is not None and causal and (offset > 0 or isinstance(cache, RollingKVCache)):
            cm = cache.causal_mask(T, device=query.device)  # bottom-right aligned
            mask = cm if mask is None else mask & cm
            causal = False
        result = attention(q, k, v, mask, causal=causal, need_weights=need_weights,
                           dropout_p=self.dropout if self.training else 0.0)
        out, weights = result if need_weights else (result, None)
        out = self.out_proj(self.merge_heads(out))  # (B, H, T, D) -> (B, T, C)
        return (out, weights) if need_weights else out

    def _head_mask(self, mask: torch.Tensor, B: int, T: int, S: int) -> torch.Tensor:
        if isinstance(mask, torch.Tensor) and mask.dim() == 3:
            check_mask(mask, torch.Size((B, T, S)), "scores (B, T, S)")
            mask = mask.unsqueeze(1)  # (B, 1, T, S)
        return check_mask(mask, torch.Size((B, self.num_heads, T, S)), "scores (B, H, T, S)")

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention) -> MultiHeadAttention:
        """A copy of ``nn.MultiheadAttention``'s weights in this layer.

        Only the standard configuration is supported: equal query, key and
        value widths, no ``add_bias_kv`` and no ``add_zero_attn``.

        Example:
            >>> ref = nn.MultiheadAttention(8, 2, batch_first=True)
            >>> x = torch.randn(2, 4, 8)
            >>> ours = MultiHeadAttention.from_torch(ref)
            >>> torch.allclose(ours(x), ref(x, x, x, need_weights=False)[0], atol=1e-6)
            True
        """
        if not isinstance(module, nn.MultiheadAttention):
            raise TypeError(f"expected nn.MultiheadAttention, got {type(module).__name__}")
        if not module._qkv_same_embed_dim:
            raise ValueError("from_torch needs kdim == vdim == embed_dim")
        if module.bias_k is not None or module.add_zero_attn:
            raise ValueError("from_torch does not support add_bias_kv or add_zero_attn")
        bias = module.in_proj_bias is not None
        layer = cls(module.embed_dim, module.num_heads, bias=bias, dropout=module.dropout)
        layer = layer.to(device=module.in_proj_weight.device, dtype=module.in_proj_weight.dtype)
        with torch.no_grad():
            layer.in_proj.weight.copy_(module.in_proj_weight)
            layer.out_proj.weight.copy_(module.out_proj.weight)
            if bias:
                layer.in_proj.bias.copy_(module.in_proj_bias)
                layer.out_proj.bias.copy_(module.out_proj.bias)
        return layer


# ------------------------------------------------------------------ positional encodings


def sinusoidal_encoding(
    length: int, dim: int, base: float = 10_000.0, *, offset: int = 0
) -> torch.Tensor:
    r"""The sinusoidal position encoding of Vaswani et al. (2017).

    .. math::

        PE_{t, 2i} = \sin\!\left(t / \text{base}^{2i/C}\right), \qquad
        PE_{t, 2i+1} = \cos\!\left(t / \text{base}^{2i/C}\right)

    Args:
        length: number of positions T.
        dim: C, an even width.
        base: the longest wavelength is :math:`2\pi \cdot \text{base}`.
        offset: the first position (for continuing a sequence).

    Shape:
        Returns (T, C).

    Example:
        >>> pe = sinusoidal_encoding(3, 4)
        >>> pe[0]
        tensor([0., 1., 0., 1.])
    """
    if dim < 2 or dim % 2:
        raise ValueError(f"sinusoidal encodings need an even width, got dim={dim}")
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    position = torch.arange(offset, offset + length, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angles = position * freq  # (T, C/2)
    pe = torch.empty(length, dim)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe


class SinusoidalPositionalEncoding(nn.Module):
    """Adds :func:`sinusoidal_encoding` to token embeddings (no parameters).

    Args:
        dim: C.
        max_len: the longest sequence.

    Shape:
        x (B, T, C) -> (B, T, C).
    """

    def __init__(self, dim: int, max_len: int = 1024, base: float = 10_000.0) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_len, dim, base), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if offset + T > self.pe.shape[0]:
            raise ValueError(f"positions up to {offset + T} exceed max_len={self.pe.shape[0]}")
        return x + self.pe[offset : offset + T].to(x.dtype)  # (B, T, C)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned vector per position (as in GPT and BERT).

    Shape:
        x (B, T, C) -> (B, T, C).
    """

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(max_len, dim)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if offset + T > self.embedding.num_embeddings:
            raise ValueError(
                f"positions up to {offset + T} exceed max_len={self.embedding.num_embeddings}"
            )
        positions = torch.arange(offset, offset + T, device=x.device)
        return x + self.embedding(positions)  # (B, T, C)


class RotaryEmbedding(nn.Module):
    r"""Rotary position embedding (RoPE, Su et al. 2021) for queries and keys.

    Each pair of features :math:`(x_{2i}, x_{2i+1})` at position t is rotated
    by the angle :math:`t\,\theta_i`, :math:`\theta_i = \text{base}^{-2i/D}`.
    The dot product of a rotated query at position t and a rotated key at
    position s then depends on the positions only through t - s.

    Args:
        dim: D, the (even) head dimension.
        max_len: the longest sequence.
        base: as in :func:`sinusoidal_encoding`.

    Shape:
        x (..., T, D) -> (..., T, D).

    Example:
        >>> rope = RotaryEmbedding(4)
        >>> q = torch.randn(1, 1, 4)
        >>> torch.allclose(rope(q).norm(), q.norm())   # a rotation keeps lengths
        True
    """

    def __init__(self, dim: int, max_len: int = 1024, base: float = 10_000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"rotary embeddings need an even width, got dim={dim}")
        self.dim = dim
        theta = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (D/2,)
        angles = torch.arange(max_len, dtype=torch.float32)[:, None] * theta  # (L, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if x.shape[-1] != self.dim:
            raise ValueError(f"rotary embedding of width {self.dim} got x of shape {shape_str(x)}")
        if offset + T > self.cos.shape[0]:
            raise ValueError(f"positions up to {offset + T} exceed max_len={self.cos.shape[0]}")
        cos = self.cos[offset : offset + T].to(x.dtype)  # (T, D/2)
        sin = self.sin[offset : offset + T].to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, D/2) each
        out = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
        return out.flatten(-2)  # (..., T, D/2, 2) -> (..., T, D)


# -------------------------------------------------------------------- Transformer blocks


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
