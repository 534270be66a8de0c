r"""Attention as pure functions on tensors: softmax, scores and attention.

Shapes follow the glossary of :mod:`attnlab`: queries ``q`` are (..., T, D),
keys ``k`` are (..., S, D), values ``v`` are (..., S, Dv) and scores or weights
are (..., T, S). Masks are bool with ``True`` = *may attend*.

Scaled dot-product attention, the function at the centre of the book:

.. math::

    \operatorname{Attention}(Q, K, V) =
    \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{D}}\right) V
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import torch
import torch.nn.functional as F

from attnlab._validate import (
    check_dim,
    check_float,
    check_mask,
    check_min_dims,
    check_qk,
    check_qkv,
    check_tensor,
    shape_str,
)
from attnlab.masks import causal_mask

__all__ = [
    "softmax",
    "masked_softmax",
    "dot_product_scores",
    "scaled_dot_product_scores",
    "additive_scores",
    "general_scores",
    "attention",
    "naive_attention",
    "kv_groups",
]

_TORCH_VERSION = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
# Before 2.5 some SDPA kernels returned NaN for a query whose keys are all masked.
_SDPA_MAY_NAN_ON_EMPTY_ROWS = _TORCH_VERSION < (2, 5)
# SDPA's enable_gqa arrived in 2.5; before it, keys and values are repeated per query head.
_SDPA_HAS_GQA = _TORCH_VERSION >= (2, 5)


# --------------------------------------------------------------------------- softmax


@overload
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor: ...
@overload
def softmax(x: np.ndarray, dim: int = -1) -> np.ndarray: ...
def softmax(x, dim=-1):
    r"""Numerically stable softmax of a torch tensor or a NumPy array.

    .. math::

        \operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},
        \qquad m = \max_j x_j

    Subtracting the maximum changes nothing mathematically (softmax is
    invariant to adding a constant) but keeps every exponent :math:`\le 0`, so
    ``exp`` cannot overflow: ``softmax([1000, 1000])`` is ``[0.5, 0.5]``, not NaN.

    Args:
        x: scores; a ``torch.Tensor``, a ``numpy.ndarray`` or a nested list
            (treated as NumPy). Integers are converted to floating point.
        dim: the axis that is normalised to sum to 1.

    Shape:
        Any shape -> the same shape. The result has the input's type: a tensor
        for a tensor (differentiable), an array otherwise.

    Example:
        >>> softmax(torch.tensor([1.0, 2.0, 3.0]))
        tensor([0.0900, 0.2447, 0.6652])
        >>> softmax(np.array([1000.0, 1000.0]))
        array([0.5, 0.5])
    """
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool or x.is_complex():
            raise ValueError(f"softmax needs real numbers, got a tensor of dtype {x.dtype}")
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        d = check_dim(tuple(x.shape), dim)
        if x.shape[d] == 0:
            raise ValueError(f"softmax over an empty dim {dim} of shape {shape_str(x)}")
        m = x.amax(dim=d, keepdim=True).detach()  # the shift needs no gradient
        e = torch.exp(x - m)
        return e / e.sum(dim=d, keepdim=True)
    a = np.asarray(x)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"softmax needs real numbers, got an array of dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise ValueError(f"softmax needs real numbers, got an array of dtype {a.dtype}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    d = check_dim(a.shape, dim)
    if a.shape[d] == 0:
        raise ValueError(f"softmax over an empty dim {dim} of shape {a.shape}")
    e = np.exp(a - a.max(axis=d, keepdims=True))
    return e / e.sum(axis=d, keepdims=True)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""Softmax over the positions where ``mask`` is True; zero elsewhere.

    .. math::

        w_i = \frac{[M_i]\, e^{x_i - m}}{\sum_j [M_j]\, e^{x_j - m}}

    A row in which nothing may be attended (all ``False``) gets all-zero
    weights, neither NaN nor a uniform row, and its gradient is finite (zero).
    The inputs are not modified.

    Args:
        scores: real scores, e.g. (..., T, S).
        mask: bool, ``True`` = may attend; (T, S) or one dim per scores dim,
            broadcastable to ``scores``.
        dim: the axis to normalise (the keys, by default).

    Shape:
        scores (..., T, S), mask broadcastable to it -> weights (..., T, S).

    Example:
        >>> scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        >>> mask = torch.tensor([[True, True, False], [False, False, False]])
        >>> masked_softmax(scores, mask)
        tensor([[0.2689, 0.7311, 0.0000],
                [0.0000, 0.0000, 0.0000]])
    """
    check_tensor(scores, "scores")
    check_float(scores, "scores")
    d = check_dim(tuple(scores.shape), dim)
    if scores.shape[d] == 0:
        raise ValueError(f"masked_softmax over an empty dim {dim} of shape {shape_str(scores)}")
    mask = check_mask(mask, scores.shape, "scores")
    if mask.device != scores.device:
        raise ValueError(f"mask is on {mask.device} but scores are on {scores.device}")
    x = scores.masked_fill(~mask, float("-inf"))
    m = x.amax(dim=d, keepdim=True).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # empty rows: shift by 0
    e = torch.exp(x - m)  # exactly 0 where masked
    total = e.sum(dim=d, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


# ---------------------------------------------------------------------------- scores


def _resolve_scale(d: int, scale: float | None) -> float:
    if scale is None:
        return 1.0 / math.sqrt(d)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise ValueError(f"scale must be a positive number or None, got {scale!r}")
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    return float(scale)


def dot_product_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    r"""Dot-product scores :math:`s_{ij} = q_i \cdot k_j` (Luong's *dot*).

    Args:
        q: queries (..., T, D).
        k: keys (..., S, D).

    Shape:
        (..., T, D), (..., S, D) -> (..., T, S).

    Example:
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> k = torch.tensor([[1.0, 1.0], [3.0, 0.0], [0.0, 0.0]])
        >>> dot_product_scores(q, k)
        tensor([[1., 3., 0.],
                [2., 0., 0.]])
    """
    check_qk(q, k)
    return q @ k.transpose(-2, -1)  # (..., T, D) @ (..., D, S) -> (..., T, S)


def scaled_dot_product_scores(
    q: torch.Tensor, k: torch.Tensor, scale: float | None = None
) -> torch.Tensor:
    r"""Scaled dot-product scores :math:`s_{ij} = q_i \cdot k_j / \sqrt{D}`.

    If the entries of ``q`` and ``k`` have mean 0 and variance 1, the dot
    product of two D-vectors has variance D; dividing by :math:`\sqrt{D}` brings
    it back to 1, so the softmax does not saturate as D grows
    (Vaswani et al., 2017).

    Args:
        q: queries (..., T, D).
        k: keys (..., S, D).
        scale: the factor; ``None`` means :math:`1/\sqrt{D}`.

    Shape:
        (..., T, D), (..., S, D) -> (..., T, S).

    Example:
        >>> q = torch.ones(1, 4)
        >>> k = torch.ones(2, 4)
        >>> scaled_dot_product_scores(q, k)
        tensor([[2., 2.]])
    """
    check_qk(q, k)
    return (q @ k.transpose(-2, -1)) * _resolve_scale(q.shape[-1], scale)  # (..., T, S)


def additive_scores(
    q: torch.Tensor,
    k: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_v: torch.Tensor,
) -> torch.Tensor:
    r"""Additive (Bahdanau) scores :math:`s_{ij} = w_v^\top \tanh(W_q q_i + W_k k_j)`.

    Queries and keys may have different widths; both are projected to a
    hidden width A. Costs O(T·S·A) memory, unlike the dot-product forms.

    Args:
        q: queries (..., T, Dq).
        k: keys (..., S, Dk).
        w_q: query projection (A, Dq), laid out like ``nn.Linear.weight``.
        w_k: key projection (A, Dk).
        w_v: the scoring vector (A,).

    Shape:
        (..., T, Dq), (..., S, Dk) -> (..., T, S).

    Example:
        >>> q, k = torch.zeros(2, 3), torch.zeros(4, 5)
        >>> w_q, w_k, w_v = torch.ones(6, 3), torch.ones(6, 5), torch.ones(6)
        >>> additive_scores(q, k, w_q, w_k, w_v).shape
        torch.Size([2, 4])
    """
    for name, x, layout in (("q", q, "(..., T, Dq)"), ("k", k, "(..., S, Dk)")):
        check_tensor(x, name)
        check_min_dims(x, name, 2, layout)
        check_float(x, name)
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            f"q and k must have the same leading dimensions: q {shape_str(q)} vs k {shape_str(k)}"
        )
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v)):
        check_tensor(w, name)
        check_float(w, name)
    if w_q.dim() != 2 or w_k.dim() != 2 or w_v.dim() != 1:
        raise ValueError(
            f"w_q must be (A, Dq), w_k (A, Dk) and w_v (A,); got w_q {shape_str(w_q)}, "
            f"w_k {shape_str(w_k)}, w_v {shape_str(w_v)}"
        )
    a = w_v.shape[0]
    if w_q.shape != (a, q.shape[-1]) or w_k.shape != (a, k.shape[-1]):
        raise ValueError(
            f"with w_v of shape ({a},), w_q must be ({a}, {q.shape[-1]}) and w_k must be "
            f"({a}, {k.shape[-1]}) for q {shape_str(q)} and k {shape_str(k)}; "
            f"got w_q {shape_str(w_q)} and w_k {shape_str(w_k)}"
        )
    qa = q @ w_q.T  # (..., T, Dq) @ (Dq, A) -> (..., T, A)
    ka = k @ w_k.T  # (..., S, Dk) @ (Dk, A) -> (..., S, A)
    hidden = torch.tanh(qa.unsqueeze(-2) + ka.unsqueeze(-3))  # (..., T, S, A)
    return hidden @ w_v  # (..., T, S, A) @ (A,) -> (..., T, S)


def general_scores(q: torch.Tensor, k: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""General / bilinear (Luong) scores :math:`s_{ij} = q_i^\top W k_j`.

    Args:
        q: queries (..., T, Dq).
        k: keys (..., S, Dk).
        w: the bilinear form (Dq, Dk).

    Shape:
        (..., T, Dq), (..., S, Dk) -> (..., T, S).

    Example:
        >>> q, k = torch.ones(1, 2), torch.ones(3, 4)
        >>> general_scores(q, k, torch.ones(2, 4))
        tensor([[8., 8., 8.]])
    """
    for name, x, layout in (("q", q, "(..., T, Dq)"), ("k", k, "(..., S, Dk)")):
        check_tensor(x, name)
        check_min_dims(x, name, 2, layout)
        check_float(x, name)
    check_tensor(w, "w")
    check_float(w, "w")
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            f"q and k must have the same leading dimensions: q {shape_str(q)} vs k {shape_str(k)}"
        )
    if w.shape != (q.shape[-1], k.shape[-1]):
        raise ValueError(
            f"w must be (Dq, Dk) = ({q.shape[-1]}, {k.shape[-1]}) for q {shape_str(q)} "
            f"and k {shape_str(k)}, got {shape_str(w)}"
        )
    return (q @ w) @ k.transpose(-2, -1)  # (..., T, Dk) @ (..., Dk, S) -> (..., T, S)


# ------------------------------------------------------------------------- attention


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    need_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Scaled dot-product attention, equal to ``F.scaled_dot_product_attention``.

    .. math::

        \operatorname{out} = \operatorname{softmax}\!\left(
            \operatorname{scale} \cdot Q K^\top \text{ masked}\right) V

    The reference computation, which is what runs when ``need_weights=True``::

        scores = (q @ k.transpose(-2, -1)) * scale  # (..., T, D) @ (..., D, S) -> (..., T, S)
        weights = masked_softmax(scores, mask)      # (..., T, S), rows sum to 1
        out = weights @ v                           # (..., T, S) @ (..., S, Dv) -> (..., T, Dv)

    When the weights are not needed, PyTorch's fused kernel computes the same
    result without materialising the (T, S) weights.

    **Grouped-query attention.** Keys and values may have fewer heads than
    the queries: with q (..., H, T, D) and k, v (..., H_kv, S, D), H divisible
    by H_kv, query head ``h`` uses key/value head ``h // (H // H_kv)``, as
    ``F.scaled_dot_product_attention(..., enable_gqa=True)`` does. H_kv = 1 is
    multi-query attention; H_kv = H is ordinary multi-head attention.

    Conventions, all as in PyTorch's SDPA: ``scale`` defaults to
    :math:`1/\sqrt{D}`; ``causal=True`` lets query ``i`` see keys ``j <= i``
    (aligned to the top left when ``T != S``, see
    :func:`attnlab.masks.causal_mask` for the bottom-right alignment a KV cache
    needs); a bool ``mask`` is ``True`` where attending is allowed. Unlike SDPA,
    ``mask`` and ``causal`` may be given together (they are combined with
    *and*), and a query that may attend nothing gets zero weights and a zero
    output. The inputs are never modified.

    Args:
        q: queries (..., T, D), floating point.
        k: keys (..., S, D), the same dtype and leading dims as ``q``, or
            (..., H_kv, S, D) with fewer heads than ``q``'s (..., H, T, D).
        v: values (..., S, Dv), with the heads of ``k``.
        mask: optional bool mask, (T, S) or one dim per score dim
            (..., T, S), size 1 where shared.
        causal: forbid attending to later positions.
        scale: score factor; ``None`` means :math:`1/\sqrt{D}`.
        dropout_p: dropout probability on the weights (applied whenever > 0,
            as in SDPA; pass 0.0 at evaluation).
        need_weights: also return the attention weights (before dropout).

    Shape:
        q (..., T, D), k (..., S, D), v (..., S, Dv) -> out (..., T, Dv);
        with ``need_weights`` also weights (..., T, S). Grouped:
        q (..., H, T, D), k (..., H_kv, S, D), v (..., H_kv, S, Dv) ->
        out (..., H, T, Dv), weights (..., H, T, S).

    Returns:
        ``out``, or ``(out, weights)`` when ``need_weights`` is True.

    Raises:
        ValueError: shapes that do not fit together, a mask that is not bool or
            does not broadcast, non-float inputs, empty sequences.

    Example:
        >>> q = torch.tensor([[1.0, 0.0]])                 # (T=1, D=2)
        >>> k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])     # (S=2, D=2)
        >>> v = torch.tensor([[10.0], [20.0]])             # (S=2, Dv=1)
        >>> out, w = attention(q, k, v, need_weights=True)
        >>> w
        tensor([[0.6698, 0.3302]])
        >>> out
        tensor([[13.3024]])

        Four query heads sharing two key/value heads (grouped-query attention):

        >>> q, k, v = torch.randn(1, 4, 3, 8), torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
        >>> ref = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        >>> torch.allclose(attention(q, k, v), ref, atol=1e-6)
        True
    """
    groups = kv_groups(q, k)
    if groups > 1:
        H_kv = k.shape[-3]
        check_qkv(q[..., :H_kv, :, :], k, v)  # each group's first head stands for the group
    else:
        check_qkv(q, k, v)
    T, S = q.shape[-2], k.shape[-2]
    scores_shape = q.shape[:-1] + (S,)  # (..., T, S)
    if mask is not None:
        mask = check_mask(mask, scores_shape, "scores")
        if mask.device != q.device:
            raise ValueError(f"mask is on {mask.device} but q is on {q.device}")
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, (int, float)):
        raise ValueError(f"dropout_p must be a number in [0, 1), got {dropout_p!r}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must lie in [0, 1), got {dropout_p}")
    scale = _resolve_scale(q.shape[-1], scale)

    if groups > 1 and (need_weights or not _SDPA_HAS_GQA):
        k = k.repeat_interleave(groups, dim=-3)  # (..., H_kv, S, D) -> (..., H, S, D)
        v = v.repeat_interleave(groups, dim=-3)  # (..., H_kv, S, Dv) -> (..., H, S, Dv)
        groups = 1
    gqa = {"enable_gqa": True} if groups > 1 else {}

    if not need_weights:
        if causal and mask is None:
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=dropout_p, is_causal=True, scale=scale, **gqa
            )
        if causal:
            mask = mask & causal_mask(T, S, device=q.device)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale, **gqa
        )
        if mask is not None and _SDPA_MAY_NAN_ON_EMPTY_ROWS:
            out = out.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
        return out

    if causal:
        cm = causal_mask(T, S, device=q.device)
        mask = cm if mask is None else mask & cm
    low_precision = q.dtype in (torch.float16, torch.bfloat16)
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., T, D) @ (..., D, S) -> (..., T, S)
    if low_precision:
        scores = scores.float()  # the softmax in fp32, as the fused kernels do
    weights = softmax(scores) if mask is None else masked_softmax(scores, mask)
    weights = weights.to(q.dtype)  # (..., T, S)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    out = dropped @ v  # (..., T, S) @ (..., S, Dv) -> (..., T, Dv)
    return out, weights


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Attention written out: :math:`\operatorname{softmax}(Q K^\top / \sqrt{D})\, V`.

    The textbook formula with nothing else: no mask, no checks, and the
    (T, S) scores and weights materialised in memory. It is the baseline that
    fused and efficient implementations are timed and measured against
    (:mod:`attnlab.bench`); :func:`attention` is the function to use. In
    bf16 or fp16 the softmax runs in fp32, as the fused kernels' does.

    Args:
        q: queries (..., T, D).
        k: keys (..., S, D).
        v: values (..., S, Dv).

    Shape:
        q (..., T, D), k (..., S, D), v (..., S, Dv) -> (..., T, Dv).

    Example:
        >>> q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
        >>> torch.allclose(naive_attention(q, k, v), attention(q, k, v), atol=1e-6)
        True
    """
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (..., T, D) @ (..., D, S)
    weights = torch.softmax(scores.float(), dim=-1).to(v.dtype)  # (..., T, S)
    return weights @ v  # (..., T, S) @ (..., S, Dv) -> (..., T, Dv)


def kv_groups(q: torch.Tensor, k: torch.Tensor) -> int:
    """How many query heads share one key/value head: H // H_kv (1 without grouping).

    Queries (..., H, T, D) and keys (..., H_kv, S, D) with the same batch
    dimensions and H a multiple of H_kv are grouped-query attention
    (multi-query attention when H_kv = 1); query head ``h`` then reads
    key/value head ``h // kv_groups(q, k)``. Any other mismatch of the leading
    dimensions is an error.

    Args:
        q: queries (..., H, T, D).
        k: keys (..., H_kv, S, D).

    Shape:
        q (..., H, T, D), k (..., H_kv, S, D) -> an int, H // H_kv.

    Example:
        >>> kv_groups(torch.zeros(2, 8, 5, 4), torch.zeros(2, 2, 5, 4))
        4
        >>> kv_groups(torch.zeros(2, 8, 5, 4), torch.zeros(2, 8, 5, 4))
        1
    """
    check_tensor(q, "q")
    check_tensor(k, "k")
    if q.dim() < 3 or k.dim() != q.dim() or q.shape[:-3] != k.shape[:-3]:
        return 1
    H, H_kv = q.shape[-3], k.shape[-3]
    if H == H_kv:
        return 1
    if H_kv == 0 or H % H_kv:
        raise ValueError(
            f"q and k must have the same leading (batch, head) dimensions: q {shape_str(q)} "
            f"vs k {shape_str(k)}; for grouped-query attention the H={H} query heads must "
            f"be a multiple of the H_kv={H_kv} key/value heads"
        )
    return H // H_kv
