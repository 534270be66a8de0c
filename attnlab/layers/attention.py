"""Attention layers: additive (Bahdanau) and multi-head attention.

Both are batch-first. Inside multi-head attention tensors are laid out
(B, H, T, D); at the boundaries they are (B, T, C) with C = H * D. Masks are
bool with ``True`` = *may attend* (the opposite of ``nn.MultiheadAttention``'s
bool masks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnlab._validate import check_mask, shape_str
from attnlab.functional import additive_scores, attention, masked_softmax
from attnlab.layers.cache import KVCache, RollingKVCache
from attnlab.layers.positions import RotaryEmbedding

__all__ = ["AdditiveAttention", "MultiHeadAttention"]


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
