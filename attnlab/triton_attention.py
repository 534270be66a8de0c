r"""Exact attention as one Triton kernel: the forward pass of FlashAttention.

Each program of the kernel owns a block of ``BLOCK_M`` query rows of one
(batch, head) and walks over the keys in blocks of ``BLOCK_N`` with the online
softmax of :func:`attnlab.efficient.chunked_attention`: a running maximum
``m_i``, a running sum ``l_i`` and an unnormalised output ``acc``, all in fp32
registers. The (T, S) scores never leave the chip; the output is written once.
Scores are kept in base 2 (``exp2``, the scale multiplied by
:math:`\log_2 e`), which the hardware computes directly.

Triton is imported lazily: this module imports without it, and
:func:`triton_attention` raises a clear error where Triton or CUDA is missing.
With ``TRITON_INTERPRET=1`` the kernel runs on the CPU in Triton's interpreter
(slowly), which is how it is tested on machines without a GPU.

The backward pass is FlashAttention-2's: the forward kernel also stores each
row's log-sum-exp, and two kernels recompute the weights block by block from it
(one accumulates dK and dV over query blocks, the other dQ over key blocks).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import torch

from attnlab._validate import check_qkv, shape_str

__all__ = ["triton_attention", "is_available", "interpreted"]

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_LOG2E = 1.4426950408889634  # log2(e): exp(x) = exp2(x * log2(e))
_LN2 = 0.6931471805599453  # ln(2): log(x) = log2(x) * ln(2)


def interpreted() -> bool:
    """True when ``TRITON_INTERPRET=1``: kernels run on the CPU in Triton's interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def is_available() -> bool:
    """True when Triton is importable and CUDA (or Triton's interpreter) can run the kernel.

    Example:
        >>> isinstance(is_available(), bool)
        True
    """
    try:
        import triton  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() or interpreted()


@functools.cache
def _kernel() -> Any:
    import triton  # type: ignore[import-not-found]
    import triton.language as tl  # type: ignore[import-not-found]

    @triton.jit
    def _attn_fwd(Q, K, V, O, LSE, T, S,  # noqa: E741 -- Triton's style: pointers in capitals
                  stride_qb, stride_qt, stride_kb, stride_kt, stride_vb, stride_vt,
                  stride_ob, stride_ot, qk_scale,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_D: tl.constexpr,
                  CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
        pid_m = tl.program_id(0)  # which block of query rows
        bh = tl.program_id(1)  # which (batch, head)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # query rows of this program
        offs_n = tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, HEAD_D)
        row_ok = offs_m[:, None] < T
        q = tl.load(Q + bh * stride_qb + offs_m[:, None] * stride_qt + offs_d[None, :],
                    mask=row_ok, other=0.0)  # (BLOCK_M, D)
        m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)  # running max (base 2)
        l_i = tl.zeros([BLOCK_M], tl.float32)  # running sum of exp2(s - m_i)
        acc = tl.zeros([BLOCK_M, HEAD_D], tl.float32)  # running sum of exp2(s - m_i) v
        hi = tl.minimum(S, (pid_m + 1) * BLOCK_M) if CAUSAL else S  # keys a block can see
        for start_n in range(0, hi, BLOCK_N):
            cols = start_n + offs_n  # key positions of this block
            k = tl.load(K + bh * stride_kb + cols[None, :] * stride_kt + offs_d[:, None],
                        mask=cols[None, :] < S, other=0.0)  # (D, BLOCK_N), transposed
            s = tl.dot(q, k, input_precision=PRECISION) * qk_scale  # (BLOCK_M, BLOCK_N)
            valid = cols[None, :] < S
            if CAUSAL:
                valid = valid & (cols[None, :] <= offs_m[:, None])  # top-left aligned
            s = tl.where(valid, s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing yet
            p = tl.math.exp2(s - m_safe[:, None])  # (BLOCK_M, BLOCK_N); 0 where masked
            alpha = tl.math.exp2(m_i - m_safe)  # rescale what was accumulated
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(V + bh * stride_vb + cols[:, None] * stride_vt + offs_d[None, :],
                        mask=cols[:, None] < S, other=0.0)  # (BLOCK_N, D)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
            m_i = m_new
        out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
        tl.store(O + bh * stride_ob + offs_m[:, None] * stride_ot + offs_d[None, :],
                 out.to(O.dtype.element_ty), mask=row_ok)
        # the log-sum-exp of each row, in natural units: (m_i + log2 l_i) * ln 2; -inf when a
        # row saw no key. The backward pass recomputes the weights from it.
        lse2 = m_i + tl.math.log2(tl.where(l_i > 0, l_i, 1.0))
        lse = tl.where(l_i > 0, lse2 * _LN2, float("-inf"))
        tl.store(LSE + bh * T + offs_m, lse, mask=offs_m < T)

    return _attn_fwd


@functools.cache
def _bwd_kernels() -> tuple[Any, Any]:
    import triton  # type: ignore[import-not-found]
    import triton.language as tl  # type: ignore[import-not-found]

    @triton.jit
    def _attn_bwd_dkdv(Q, K, V, DO, LSE, DELTA, DK, DV, T, S,
                       stride_qb, stride_qt, stride_kb, stride_kt, qk_scale, sm_scale,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_D: tl.constexpr,
                       CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
        # one program per block of keys: walks over the query blocks that can see them
        pid_n = tl.program_id(0)
        bh = tl.program_id(1)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, HEAD_D)
        col_ok = offs_n[:, None] < S
        kv_off = bh * stride_kb + offs_n[:, None] * stride_kt + offs_d[None, :]
        k = tl.load(K + kv_off, mask=col_ok, other=0.0)  # (BLOCK_N, D)
        v = tl.load(V + kv_off, mask=col_ok, other=0.0)  # (BLOCK_N, D)
        dk = tl.zeros([BLOCK_N, HEAD_D], tl.float32)
        dv = tl.zeros([BLOCK_N, HEAD_D], tl.float32)
        lo = (pid_n * BLOCK_N // BLOCK_M) * BLOCK_M if CAUSAL else 0  # earlier queries see none
        for start_m in range(lo, T, BLOCK_M):
            offs_m = start_m + tl.arange(0, BLOCK_M)
            row_ok = offs_m[:, None] < T
            q_off = bh * stride_qb + offs_m[:, None] * stride_qt + offs_d[None, :]
            q = tl.load(Q + q_off, mask=row_ok, other=0.0)  # (BLOCK_M, D)
            do = tl.load(DO + q_off, mask=row_ok, other=0.0)  # (BLOCK_M, D)
            lse = tl.load(LSE + bh * T + offs_m, mask=offs_m < T, other=0.0)
            lse = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)
            delta = tl.load(DELTA + bh * T + offs_m, mask=offs_m < T, other=0.0)
            # P = exp(s - lse), recomputed (base 2: exp2(s log2 e - lse log2 e))
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale  # (BM, BN)
            valid = (offs_m[:, None] < T) & (offs_n[None, :] < S)
            if CAUSAL:
                valid = valid & (offs_n[None, :] <= offs_m[:, None])
            p = tl.where(valid, tl.math.exp2(s - lse[:, None]), 0.0)  # (BM, BN)
            dv += tl.dot(tl.trans(p).to(do.dtype), do, input_precision=PRECISION)
            dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)  # (BLOCK_M, BLOCK_N)
            ds = p * (dp - delta[:, None])  # softmax's backward, row by row
            dk += tl.dot(tl.trans(ds).to(q.dtype), q, input_precision=PRECISION)
        tl.store(DK + kv_off, (dk * sm_scale).to(DK.dtype.element_ty), mask=col_ok)
        tl.store(DV + kv_off, dv.to(DV.dtype.element_ty), mask=col_ok)

    @triton.jit
    def _attn_bwd_dq(Q, K, V, DO, LSE, DELTA, DQ, T, S,
                     stride_qb, stride_qt, stride_kb, stride_kt, qk_scale, sm_scale,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_D: tl.constexpr,
                     CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
        # one program per block of queries, as the forward pass: dQ = dS K * scale
        pid_m = tl.program_id(0)
        bh = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, HEAD_D)
        row_ok = offs_m[:, None] < T
        q_off = bh * stride_qb + offs_m[:, None] * stride_qt + offs_d[None, :]
        q = tl.load(Q + q_off, mask=row_ok, other=0.0)
        do = tl.load(DO + q_off, mask=row_ok, other=0.0)
        lse = tl.load(LSE + bh * T + offs_m, mask=offs_m < T, other=0.0)
        lse = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)  # base 2
        delta = tl.load(DELTA + bh * T + offs_m, mask=offs_m < T, other=0.0)
        dq = tl.zeros([BLOCK_M, HEAD_D], tl.float32)
        hi = tl.minimum(S, (pid_m + 1) * BLOCK_M) if CAUSAL else S
        for start_n in range(0, hi, BLOCK_N):
            offs_n = start_n + tl.arange(0, BLOCK_N)
            kv_off = bh * stride_kb + offs_n[:, None] * stride_kt + offs_d[None, :]
            k = tl.load(K + kv_off, mask=offs_n[:, None] < S, other=0.0)
            v = tl.load(V + kv_off, mask=offs_n[:, None] < S, other=0.0)
            # P = exp(s - lse), recomputed (base 2: exp2(s log2 e - lse log2 e))
            s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale  # (BM, BN)
            valid = (offs_m[:, None] < T) & (offs_n[None, :] < S)
            if CAUSAL:
                valid = valid & (offs_n[None, :] <= offs_m[:, None])
            p = tl.where(valid, tl.math.exp2(s - lse[:, None]), 0.0)  # (BM, BN)
            dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
            ds = p * (dp - delta[:, None])
            dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
        tl.store(DQ + q_off, (dq * sm_scale).to(DQ.dtype.element_ty), mask=row_ok)

    return _attn_bwd_dkdv, _attn_bwd_dq


def _launch_args(q: torch.Tensor, block_m: int | None, block_n: int | None
                 ) -> tuple[int, int, dict[str, int], str]:
    D = q.shape[-1]
    bm = block_m or (128 if D <= 64 and not interpreted() else 64)
    bn = block_n or 64
    launch = {} if interpreted() else {"num_warps": 8 if bm == 128 else 4, "num_stages": 3}
    return bm, bn, launch, "ieee" if q.dtype == torch.float32 else "tf32"


def _forward(q3: torch.Tensor, k3: torch.Tensor, v3: torch.Tensor, causal: bool, scale: float,
             block_m: int | None, block_n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    import triton  # type: ignore[import-not-found]

    BH, T, D = q3.shape
    S = k3.shape[1]
    bm, bn, launch, precision = _launch_args(q3, block_m, block_n)
    out = torch.empty_like(q3)  # (B*H, T, D)
    lse = torch.empty(BH, T, device=q3.device, dtype=torch.float32)  # (B*H, T)
    _kernel()[(triton.cdiv(T, bm), BH)](
        q3, k3, v3, out, lse, T, S,
        q3.stride(0), q3.stride(1), k3.stride(0), k3.stride(1), v3.stride(0), v3.stride(1),
        out.stride(0), out.stride(1), scale * _LOG2E,
        BLOCK_M=bm, BLOCK_N=bn, HEAD_D=D, CAUSAL=causal, PRECISION=precision, **launch)
    return out, lse


class _TritonAttention(torch.autograd.Function):
    """Forward with the fused kernel; backward with two kernels that recompute the weights."""

    @staticmethod
    def forward(ctx: Any, q3: torch.Tensor, k3: torch.Tensor, v3: torch.Tensor, causal: bool,
                scale: float, block_m: int | None, block_n: int | None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        out, lse = _forward(q3, k3, v3, causal, scale, block_m, block_n)
        ctx.save_for_backward(q3, k3, v3, out, lse)
        ctx.causal, ctx.scale, ctx.blocks = causal, scale, (block_m, block_n)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx: Any, d_out: torch.Tensor, _d_lse: torch.Tensor | None
                 ) -> tuple[torch.Tensor | None, ...]:
        import triton  # type: ignore[import-not-found]

        q3, k3, v3, out, lse = ctx.saved_tensors
        d_out = d_out.contiguous()
        BH, T, D = q3.shape
        S = k3.shape[1]
        bm, bn, launch, precision = _launch_args(q3, *ctx.blocks)
        bm = bn = min(bm, bn)  # one block size both ways keeps the causal bounds simple
        # delta_i = sum_d dO_i * O_i = sum_j P_ij dP_ij: the softmax backward's row term
        delta = (d_out.float() * out.float()).sum(-1)  # (B*H, T)
        dq, dk, dv = torch.empty_like(q3), torch.empty_like(k3), torch.empty_like(v3)
        dkdv, dq_kernel = _bwd_kernels()
        common = dict(BLOCK_M=bm, BLOCK_N=bn, HEAD_D=D, CAUSAL=ctx.causal, PRECISION=precision,
                      **launch)
        strides = (q3.stride(0), q3.stride(1), k3.stride(0), k3.stride(1))
        dkdv[(triton.cdiv(S, bn), BH)](q3, k3, v3, d_out, lse, delta, dk, dv, T, S, *strides,
                                       ctx.scale * _LOG2E, ctx.scale, **common)
        dq_kernel[(triton.cdiv(T, bm), BH)](q3, k3, v3, d_out, lse, delta, dq, T, S, *strides,
                                            ctx.scale * _LOG2E, ctx.scale, **common)
        return dq, dk, dv, None, None, None, None


def triton_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    *,
    scale: float | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Exact scaled dot-product attention with fused Triton kernels, forward and backward.

    Equal to ``F.scaled_dot_product_attention(q, k, v, is_causal=causal)``
    up to rounding: fp32 inputs are multiplied in full fp32 precision
    (``input_precision="ieee"``), fp16 / bf16 inputs on the tensor cores with
    fp32 accumulation. No mask other than ``causal``.

    Differentiable: the backward pass (FlashAttention-2's) recomputes each
    block of weights from q, k and the saved log-sum-exp instead of storing
    the (T, S) weights; one kernel accumulates dK and dV over the query
    blocks, another dQ over the key blocks.

    Args:
        q: queries (..., T, D), on a CUDA device (or the CPU under
            ``TRITON_INTERPRET=1``); fp16, bf16 or fp32.
        k: keys (..., S, D), same dtype and device.
        v: values (..., S, D); the value width must equal D.
        causal: query i sees keys j <= i (top-left aligned, as SDPA).
        scale: score factor; default :math:`1/\sqrt{D}`.
        block_m: query rows per program (default 128 on a GPU for D <= 64, else 64).
        block_n: keys per step of the loop (default 64).
        return_lse: also return each row's log-sum-exp
            :math:`\log \sum_j e^{s_{ij}}` of the scaled scores (fp32; -inf
            for a row that sees no key).

    Shape:
        q (..., T, D), k (..., S, D), v (..., S, D) -> (..., T, D), and
        lse (..., T). D must be a power of two between 16 and 256.

    Returns:
        The attention output, in the dtype of ``q`` (and the log-sum-exp).

    Raises:
        ValueError: a head dimension, dtype or shape the kernel does not take.
        RuntimeError: Triton is not installed, or the tensors are not on CUDA
            (and the interpreter is off).

    Example:
        >>> q = k = v = torch.randn(1, 2, 32, 16)
        >>> if is_available():  # CUDA, or the CPU with TRITON_INTERPRET=1
        ...     out, lse = triton_attention(q, k, v, return_lse=True)
        ...     ref = torch.logsumexp(q @ k.transpose(-2, -1) / 4, -1)
        ...     assert torch.allclose(lse, ref, atol=1e-4) and out.shape == q.shape
    """
    check_qkv(q, k, v)
    D = q.shape[-1]
    if v.shape[-1] != D:
        raise ValueError(f"the kernel needs the value width to equal D: q {shape_str(q)}, "
                         f"v {shape_str(v)}")
    if D < 16 or D > 256 or D & (D - 1):
        raise ValueError(f"D must be a power of two in [16, 256], got q {shape_str(q)}")
    if q.dtype not in _DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v must share one dtype of fp16, bf16, fp32; got {q.dtype}, "
                         f"{k.dtype}, {v.dtype}")
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(f"q, k, v need the same leading dims: {shape_str(q)}, "
                         f"{shape_str(k)}, {shape_str(v)}")
    for b in (block_m, block_n):
        if b is not None and (b < 16 or b & (b - 1)):
            raise ValueError(f"block sizes must be powers of two >= 16, got {b}")
    try:
        import triton  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        raise RuntimeError("triton_attention needs Triton: pip install triton") from None
    if not interpreted() and q.device.type != "cuda":
        raise RuntimeError(f"triton_attention runs on CUDA tensors (or with TRITON_INTERPRET=1);"
                           f" got tensors on {q.device}")
    lead, T = q.shape[:-2], q.shape[-2]
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    q3, k3, v3 = (x.reshape(-1, x.shape[-2], D).contiguous() for x in (q, k, v))  # (B*H, T, D)
    out, lse = _TritonAttention.apply(q3, k3, v3, bool(causal), scale, block_m, block_n)
    out = out.reshape(*lead, T, D)
    return (out, lse.reshape(*lead, T)) if return_lse else out
