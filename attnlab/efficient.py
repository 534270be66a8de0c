r"""Attention that does not materialise the (T, S) weights, and cheaper approximations.

:func:`chunked_attention` is *exact* attention computed block by block over the
keys with the online softmax (Milakov & Gimelshein 2018), the idea behind
FlashAttention (Dao et al. 2022), in plain PyTorch. For each query row it keeps
a running maximum ``m_i``, a running sum ``l_i`` and an unnormalised output
``acc``; a new block of scores :math:`s` updates them as

.. math::

    m_i' = \max(m_i, \max_j s_{ij}), \quad
    l_i' = e^{m_i - m_i'} l_i + \sum_j e^{s_{ij} - m_i'}, \quad
    \text{acc}_i' = e^{m_i - m_i'} \text{acc}_i + \sum_j e^{s_{ij} - m_i'} v_j,

and the output is ``acc / l``. Its backward pass recomputes each block's
weights from the saved log-sum-exp ``m + log l``, so memory stays linear in the
sequence length in both passes.

The approximations trade accuracy for cost: :func:`linear_attention` (a kernel
feature map, Katharopoulos et al. 2020), :func:`linformer_attention` (keys and
values projected to a fixed length, Wang et al. 2020) and
:func:`local_attention` (each query sees a window of neighbours). Linformer's
projection decides its accuracy: :func:`gaussian_projection` (random, as in the
paper's analysis), :func:`mean_pool_projection` (averages of neighbouring keys,
no parameters) and :func:`fit_linformer_projections` (learned).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attnlab._validate import check_mask, check_qkv, shape_str
from attnlab.masks import causal_mask, window_mask  # window_mask re-exported: it lived here

__all__ = ["chunked_attention", "fit_linformer_projections", "gaussian_projection",
           "linear_attention", "linformer_attention", "local_attention",
           "mean_pool_projection", "window_mask"]


def _block_scores(qs: torch.Tensor, kb: torch.Tensor, mask: torch.Tensor | None,
                  causal: bool, j0: int, j1: int) -> torch.Tensor:
    """Scores of the (pre-scaled) queries against keys j0..j1, masked with -inf, in fp32.

    Returns a fresh tensor (..., T, Bk) that the caller may overwrite in place.
    """
    s = qs @ kb.transpose(-2, -1)  # (..., T, D) @ (..., D, Bk) -> (..., T, Bk)
    if s.dtype != torch.float32:
        s = s.float()  # the softmax in fp32, as the fused kernels do
    if mask is not None:
        s.masked_fill_(~mask[..., j0:j1], float("-inf"))
    if causal:  # top-left aligned, as SDPA: query i sees keys j <= i, here j0..j1
        allowed = causal_mask(qs.shape[-2], j1 - j0, offset=-j0, device=qs.device)  # (T, Bk)
        s.masked_fill_(~allowed, float("-inf"))
    return s


class _ChunkedAttention(torch.autograd.Function):
    # Every (T, Bk) temporary is overwritten in place: one block of scores is alive at a time
    # in the forward pass, two in the backward pass, so the peak is O(T * block) + O(T * D).

    @staticmethod
    def forward(ctx, q, k, v, mask, causal, scale, block):  # noqa: ANN001, ANN205
        S = k.shape[-2]
        qs = q * scale  # (..., T, D): scale once, not every block of scores
        m_i = q.new_full((*q.shape[:-1], 1), float("-inf"), dtype=torch.float32)  # (..., T, 1)
        l_i = q.new_zeros((*q.shape[:-1], 1), dtype=torch.float32)  # (..., T, 1)
        acc = q.new_zeros((*q.shape[:-1], v.shape[-1]), dtype=torch.float32)  # (..., T, Dv)
        for j0 in range(0, S, block):
            j1 = min(j0 + block, S)
            s = _block_scores(qs, k[..., j0:j1, :], mask, causal, j0, j1)  # (..., T, Bk)
            m_new = torch.maximum(m_i, s.amax(dim=-1, keepdim=True))  # (..., T, 1)
            shift = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
            p = s.sub_(shift).exp_()  # (..., T, Bk), in place; exactly 0 where masked
            alpha = torch.exp(m_i - shift)  # rescales what was accumulated; 0 while m_i = -inf
            l_i.mul_(alpha).add_(p.sum(dim=-1, keepdim=True))
            pv = p.to(v.dtype) @ v[..., j0:j1, :]  # (..., T, Bk) @ (..., Bk, Dv) -> (..., T, Dv)
            acc.mul_(alpha).add_(pv)
            m_i = m_new
            del s, p
        shift = torch.where(torch.isfinite(m_i), m_i, torch.zeros_like(m_i))
        out = (acc / torch.where(l_i > 0, l_i, torch.ones_like(l_i))).to(q.dtype)  # (..., T, Dv)
        lse = torch.where(l_i > 0, shift + torch.log(l_i), torch.full_like(l_i, float("inf")))
        ctx.save_for_backward(q, k, v, out, lse, mask)
        ctx.causal, ctx.scale, ctx.block, ctx.has_mask = causal, scale, block, mask is not None
        return out

    @staticmethod
    def backward(ctx, dout):  # noqa: ANN001, ANN205
        q, k, v, out, lse, mask = ctx.saved_tensors
        mask = mask if ctx.has_mask else None
        scale, block, S = ctx.scale, ctx.block, k.shape[-2]
        dout = dout.float()
        qs = q * scale
        qf = q.float()
        delta = (dout * out.float()).sum(dim=-1, keepdim=True)  # (..., T, 1)
        dq = torch.zeros_like(q, dtype=torch.float32)
        dk = torch.zeros_like(k, dtype=torch.float32)
        dv = torch.zeros_like(v, dtype=torch.float32)
        for j0 in range(0, S, block):
            j1 = min(j0 + block, S)
            kb, vb = k[..., j0:j1, :].float(), v[..., j0:j1, :].float()
            s = _block_scores(qs, k[..., j0:j1, :], mask, ctx.causal, j0, j1)
            p = s.sub_(lse).exp_()  # the block's weights, recomputed in place: (..., T, Bk)
            dv[..., j0:j1, :] = p.transpose(-2, -1) @ dout  # (..., Bk, T) @ (..., T, Dv)
            dp = dout @ vb.transpose(-2, -1)  # (..., T, Dv) @ (..., Dv, Bk) -> (..., T, Bk)
            ds = dp.sub_(delta).mul_(p).mul_(scale)  # (..., T, Bk), in place
            dq.add_(ds @ kb)  # (..., T, Bk) @ (..., Bk, D)
            dk[..., j0:j1, :] = ds.transpose(-2, -1) @ qf  # (..., Bk, T) @ (..., T, D)
            del s, p, dp, ds
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None, None


def chunked_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    block_size: int | None = None,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """Exact attention, block by block over the keys, in memory linear in the length.

    Equal to :func:`attnlab.functional.attention` (and SDPA) up to rounding,
    masks and ``causal`` included; a query that may attend nothing gets a zero
    output. Differentiable, with a backward pass that recomputes each block.

    Args:
        q: queries (..., T, D).
        k: keys (..., S, D).
        v: values (..., S, Dv).
        mask: bool, True = may attend; (T, S) or one dim per score dim.
        causal: query i sees keys j <= i (top-left aligned, as SDPA).
        block_size: keys per block (default: 256, or S if smaller).
        scale: score factor; default 1/sqrt(D).

    Shape:
        -> (..., T, Dv). Peak extra memory O(T * block_size) per batch element.

    Example:
        >>> q, k, v = torch.randn(2, 5, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 3)
        >>> ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        >>> torch.allclose(chunked_attention(q, k, v, block_size=3), ref, atol=1e-6)
        True
    """
    check_qkv(q, k, v)
    S = k.shape[-2]
    if mask is not None:
        mask = check_mask(mask, q.shape[:-1] + (S,), "scores")
        if mask.device != q.device:
            raise ValueError(f"mask is on {mask.device} but q is on {q.device}")
    block = min(256, S) if block_size is None else block_size
    if isinstance(block, bool) or not isinstance(block, int) or block < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return _ChunkedAttention.apply(q, k, v, mask, causal, scale, block)


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     causal: bool = False, eps: float = 1e-6) -> torch.Tensor:
    r"""Linear attention with the feature map :math:`\phi(x) = \operatorname{elu}(x) + 1`.

    Replaces :math:`\exp(q \cdot k)` by :math:`\phi(q) \cdot \phi(k)`, so the sum over
    keys factorises: cost O(T D Dv) instead of O(T S D). An approximation: its
    weights differ from the softmax's.

    Shape:
        q (..., T, D), k (..., S, D), v (..., S, Dv) -> (..., T, Dv); with
        ``causal``, T must equal S.
    """
    check_qkv(q, k, v)
    fq, fk = F.elu(q) + 1, F.elu(k) + 1  # positive features
    if causal:
        if q.shape[-2] != k.shape[-2]:
            raise ValueError(f"causal linear attention needs T == S, got q {shape_str(q)}, "
                             f"k {shape_str(k)}")
        kv = torch.cumsum(fk.unsqueeze(-1) * v.unsqueeze(-2), dim=-3)  # (..., T, D, Dv)
        z = torch.cumsum(fk, dim=-2)  # (..., T, D)
        num = (fq.unsqueeze(-2) @ kv).squeeze(-2)  # (..., T, Dv)
        den = (fq * z).sum(-1, keepdim=True)  # (..., T, 1)
        return num / (den + eps)
    kv = fk.transpose(-2, -1) @ v  # (..., D, S) @ (..., S, Dv) -> (..., D, Dv)
    z = fk.sum(dim=-2, keepdim=True)  # (..., 1, D)
    return (fq @ kv) / ((fq * z).sum(-1, keepdim=True) + eps)  # (..., T, Dv)


def linformer_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        e: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Linformer-style attention: keys and values projected along the sequence to length r.

    Args:
        q: (..., T, D).
        k: (..., S, D).
        v: (..., S, Dv).
        e: (r, S) projection of the keys.
        f: (r, S) projection of the values.

    Shape:
        -> (..., T, Dv); cost O(T r D).
    """
    check_qkv(q, k, v)
    S = k.shape[-2]
    for name, p in (("e", e), ("f", f)):
        if p.dim() != 2 or p.shape[1] != S:
            raise ValueError(f"{name} must be (r, S={S}), got {shape_str(p)}")
    k_r = e @ k  # (r, S) @ (..., S, D) -> (..., r, D)
    v_r = f @ v  # (..., r, Dv)
    return F.scaled_dot_product_attention(q, k_r, v_r)


def _check_rank(r: int, S: int) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= S:
        raise ValueError(f"r must be an integer in [1, S={S}], got {r!r}")


def gaussian_projection(r: int, S: int, *, generator: torch.Generator | None = None,
                        dtype: torch.dtype | None = None) -> torch.Tensor:
    r"""A random Linformer projection with i.i.d. entries :math:`\mathcal{N}(0, 1/r)`.

    The projection of the Johnson-Lindenstrauss argument in Wang et al. (2020):
    each of the r projected keys mixes *all* S keys with random signs.

    Args:
        r: projected length.
        S: key length.
        generator: for reproducible draws.
        dtype: default: torch's default float dtype.

    Shape:
        -> (r, S).

    Example:
        >>> gaussian_projection(4, 10, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([4, 10])
    """
    _check_rank(r, S)
    return torch.randn(r, S, generator=generator, dtype=dtype) / math.sqrt(r)


def mean_pool_projection(r: int, S: int, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The Linformer projection that averages r contiguous blocks of keys.

    Row i averages positions ``floor(i S / r)`` to ``ceil((i + 1) S / r) - 1``,
    the blocks of ``torch.nn.functional.adaptive_avg_pool1d``, so ``e @ k``
    equals that pooling along the sequence. No parameters; every row sums to 1.

    Args:
        r: projected length, 1 <= r <= S.
        S: key length.
        dtype: default: torch's default float dtype.

    Shape:
        -> (r, S).

    Example:
        >>> mean_pool_projection(2, 4)
        tensor([[0.5000, 0.5000, 0.0000, 0.0000],
                [0.0000, 0.0000, 0.5000, 0.5000]])
    """
    _check_rank(r, S)
    i = torch.arange(r)
    start = (i * S) // r  # (r,)
    stop = -((-(i + 1) * S) // r)  # (r,) ceil((i + 1) S / r)
    j = torch.arange(S)
    inside = (j[None] >= start[:, None]) & (j[None] < stop[:, None])  # (r, S)
    e = inside.to(dtype or torch.get_default_dtype())
    return e / e.sum(-1, keepdim=True)


def fit_linformer_projections(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    r: int,
    *,
    target: torch.Tensor | None = None,
    steps: int = 200,
    lr: float = 1.0,
    shared: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Learn Linformer's projections E, F by fitting its output to a target.

    Each row of E and F is a softmax over its S logits: a learned weighted
    average of keys (values), as mean pooling is, which keeps the projected
    keys on the scale of the keys and the fit well conditioned. The logits start
    random (standard normal) and Adam minimises the mean squared error between
    ``linformer_attention(q, k, v, E, F)`` and ``target`` (default: exact
    attention of the same q, k, v, i.e. distillation; pass validation queries,
    never test ones).

    Args:
        q: queries to fit on (..., T, D).
        k: keys (..., S, D).
        v: values (..., S, Dv).
        r: projected length, 1 <= r <= S.
        target: (..., T, Dv); default ``F.scaled_dot_product_attention(q, k, v)``.
        steps: Adam steps (full batch).
        lr: Adam's learning rate on the logits.
        shared: one projection for keys and values, E = F (Linformer's
            key-value sharing): half the parameters and half the cost.
        generator: for the initial logits.

    Shape:
        -> E (r, S), F (r, S), rows summing to 1, detached.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> q, k, v = (torch.randn(n, d, generator=g) for n, d in ((6, 4), (8, 4), (8, 2)))
        >>> e, f = fit_linformer_projections(q, k, v, 3, steps=5, generator=g)
        >>> e.shape, torch.allclose(f.sum(-1), torch.ones(3))
        (torch.Size([3, 8]), True)
    """
    check_qkv(q, k, v)
    S = k.shape[-2]
    _check_rank(r, S)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    q, k, v = q.detach(), k.detach(), v.detach()
    if target is None:
        with torch.no_grad():
            target = F.scaled_dot_product_attention(q, k, v)
    expected = (*q.shape[:-1], v.shape[-1])
    if tuple(target.shape) != expected:
        raise ValueError(f"target must be {expected}, got {shape_str(target)}")
    n = 1 if shared else 2
    logits = torch.randn(n, r, S, generator=generator, dtype=k.dtype).to(k.device)
    logits.requires_grad_()
    opt = torch.optim.Adam([logits], lr=lr)
    with torch.enable_grad():  # also when called under torch.no_grad()
        for _ in range(steps):
            p = logits.softmax(-1)  # (n, r, S)
            loss = (linformer_attention(q, k, v, p[0], p[-1]) - target).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    p = logits.detach().softmax(-1)  # (n, r, S)
    return p[0], p[-1]


def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int = 64,
                    causal: bool = False) -> torch.Tensor:
    """Sliding-window attention, computed block by block so that cost is O(T * window).

    Each block of queries attends only the keys its window can reach. Equal to
    exact attention with :func:`attnlab.masks.window_mask`.

    Shape:
        q (..., T, D), k (..., T, D), v (..., T, Dv) -> (..., T, Dv).
    """
    check_qkv(q, k, v)
    T = q.shape[-2]
    if k.shape[-2] != T:
        raise ValueError(f"local attention needs T == S, got q {shape_str(q)}, k {shape_str(k)}")
    block = max(1, window)
    outs = []
    for i0 in range(0, T, block):
        i1 = min(i0 + block, T)
        j0, j1 = max(0, i0 - window), i1 if causal else min(T, i1 + window)
        m = window_mask(i1 - i0, j1 - j0, window, causal=causal, offset=i0 - j0,
                        device=q.device)  # (Tb, Sb): the band, queries i0.. against keys j0..
        outs.append(F.scaled_dot_product_attention(q[..., i0:i1, :], k[..., j0:j1, :],
                                                   v[..., j0:j1, :], attn_mask=m))
    return torch.cat(outs, dim=-2)
