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

Forward pass only: ``triton_attention`` is not differentiable.
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
    def _attn_fwd(Q, K, V, O, T, S,  # noqa: E741 -- Triton's style: pointers in capitals
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

    return _attn_fwd


def triton_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    causal: bool = False,
    *,
    scale: float | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
) -> torch.Tensor:
    r"""Exact scaled dot-product attention with a fused Triton kernel (forward only).

    Equal to ``F.scaled_dot_product_attention(q, k, v, is_causal=causal)``
    up to rounding: fp32 inputs are multiplied in full fp32 precision
    (``input_precision="ieee"``), fp16 / bf16 inputs on the tensor cores with
    fp32 accumulation. No mask other than ``causal``.

    Args:
        q: queries (..., T, D), on a CUDA device (or the CPU under
            ``TRITON_INTERPRET=1``); fp16, bf16 or fp32.
        k: keys (..., S, D), same dtype and device.
        v: values (..., S, D); the value width must equal D.
        causal: query i sees keys j <= i (top-left aligned, as SDPA).
        scale: score factor; default :math:`1/\sqrt{D}`.
        block_m: query rows per program (default 128 on a GPU for D <= 64, else 64).
        block_n: keys per step of the loop (default 64).

    Shape:
        q (..., T, D), k (..., S, D), v (..., S, D) -> (..., T, D). D must be
        a power of two between 16 and 256.

    Returns:
        The attention output, in the dtype of ``q``.

    Raises:
        ValueError: a head dimension, dtype or shape the kernel does not take.
        RuntimeError: Triton is not installed, or the tensors are not on CUDA
            (and the interpreter is off).
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
    try:
        import triton  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeError("triton_attention needs Triton: pip install triton") from None
    if not interpreted() and q.device.type != "cuda":
        raise RuntimeError(f"triton_attention runs on CUDA tensors (or with TRITON_INTERPRET=1);"
                           f" got tensors on {q.device}")
    lead, T, S = q.shape[:-2], q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    bm = block_m or (128 if D <= 64 and not interpreted() else 64)
    bn = block_n or 64
    q3, k3, v3 = (x.reshape(-1, x.shape[-2], D).contiguous() for x in (q, k, v))  # (B*H, T, D)
    out = torch.empty_like(q3)  # (B*H, T, D)
    grid = (triton.cdiv(T, bm), q3.shape[0])
    launch = {} if interpreted() else {"num_warps": 8 if bm == 128 else 4, "num_stages": 3}
    _kernel()[grid](
        q3, k3, v3, out, T, S,
        q3.stride(0), q3.stride(1), k3.stride(0), k3.stride(1), v3.stride(0), v3.stride(1),
        out.stride(0), out.stride(1), scale * _LOG2E,
        BLOCK_M=bm, BLOCK_N=bn, HEAD_D=D, CAUSAL=bool(causal),
        PRECISION="ieee" if q.dtype == torch.float32 else "tf32", **launch)
    return out.reshape(*lead, T, D)
