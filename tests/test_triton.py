"""attnlab.triton_attention: the Triton kernel equals SDPA (on CUDA, or on the CPU under
TRITON_INTERPRET=1); its input checks work everywhere."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from attnlab.triton_attention import interpreted, is_available, triton_attention

HAS_TRITON = importlib.util.find_spec("triton") is not None
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_kernel = pytest.mark.skipif(
    not is_available(),
    reason=("triton is not installed" if not HAS_TRITON else
            "no CUDA device (set TRITON_INTERPRET=1 to run the kernel in Triton's interpreter)"))


def qkv(*lead, T, S, D, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*lead, n, D, generator=g).to(DEVICE, dtype) for n in (T, S, S))


# The interpreter runs the kernel in NumPy, slowly: small shapes there, larger ones on a GPU.
SHAPES = [(37, 50, 16), (64, 64, 32)] if interpreted() else [(37, 50, 16), (256, 256, 64),
                                                             (1000, 777, 128), (4096, 4096, 64)]


@needs_kernel
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T, S, D", SHAPES)
def test_fp32_equals_sdpa(T, S, D, causal):
    q, k, v = qkv(2, T=T, S=S, D=D)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(triton_attention(q, k, v, causal=causal), ref,
                               atol=1e-4, rtol=1e-4)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_close_to_fp32(dtype):
    if dtype == torch.bfloat16 and interpreted():
        pytest.skip("Triton's interpreter multiplies bf16 as raw integers (NumPy has no bf16): "
                    "a (16, 16) bf16 tl.dot is wrong there by ~1e10")
    T, S, D = SHAPES[1]
    q, k, v = qkv(1, 2, T=T, S=S, D=D, dtype=dtype)
    out = triton_attention(q, k, v, causal=True)
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    assert out.dtype == dtype and out.shape == (1, 2, T, D)
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


@needs_kernel
def test_scale_and_small_blocks():
    q, k, v = qkv(T=40, S=24, D=16)
    out = triton_attention(q, k, v, scale=0.3, block_m=16, block_n=16)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3),
                               atol=1e-4, rtol=1e-4)


def test_input_checks_need_no_triton():
    q, k, v = qkv(T=8, S=8, D=16)
    with pytest.raises(ValueError, match="power of two"):
        triton_attention(q[..., :12], k[..., :12], v[..., :12])
    with pytest.raises(ValueError, match="value width"):
        triton_attention(q, k, v[..., :8])
    with pytest.raises(ValueError, match="one dtype"):
        triton_attention(q.double(), k.double(), v.double())


@pytest.mark.skipif(is_available(), reason="the kernel can run here")
def test_clear_error_where_the_kernel_cannot_run():
    q, k, v = qkv(T=8, S=8, D=16)
    with pytest.raises(RuntimeError, match="Triton|CUDA"):
        triton_attention(q, k, v)
