"""attnlab.triton_attention: the Triton kernels equal SDPA, forward and backward (on CUDA, or on
the CPU in Triton's interpreter); the input checks work everywhere.

Without CUDA this module turns on Triton's interpreter (TRITON_INTERPRET=1) before any kernel is
built, so that the kernels run on the CPU, in NumPy, with small shapes.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from attnlab.triton_attention import interpreted, is_available, triton_attention  # noqa: E402

HAS_TRITON = importlib.util.find_spec("triton") is not None
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
needs_kernel = pytest.mark.skipif(
    not is_available(),
    reason=("triton is not installed (pip install -r requirements.txt; wheels: Linux x86-64)"
            if not HAS_TRITON else "no CUDA device and TRITON_INTERPRET=0"))


def qkv(*lead, T, S, D, dtype=torch.float32, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*lead, n, D, generator=g).to(DEVICE, dtype).requires_grad_(grad)
                 for n in (T, S, S))


def math_sdpa(q, k, v, **kw):
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v, **kw)


# The interpreter runs the kernel in NumPy, slowly: small shapes there, larger ones on a GPU.
SHAPES = [(37, 50, 16), (64, 64, 32)] if interpreted() else [(37, 50, 16), (256, 256, 64),
                                                             (1000, 777, 128), (4096, 4096, 64)]


@needs_kernel
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T, S, D", SHAPES)
def test_fp32_equals_sdpa(T, S, D, causal):
    q, k, v = qkv(2, T=T, S=S, D=D)
    ref = math_sdpa(q, k, v, is_causal=causal)
    torch.testing.assert_close(triton_attention(q, k, v, causal=causal), ref,
                               atol=1e-4, rtol=1e-4)


@needs_kernel
@pytest.mark.parametrize("causal", [False, True])
def test_log_sum_exp_of_each_row(causal):
    T, S, D = SHAPES[0]
    q, k, v = qkv(2, T=T, S=S, D=D, seed=1)
    out, lse = triton_attention(q, k, v, causal=causal, return_lse=True)
    scores = q @ k.transpose(-2, -1) / D**0.5  # (2, T, S)
    if causal:
        scores = scores.masked_fill(~torch.ones(T, S, dtype=torch.bool,
                                                device=DEVICE).tril(), float("-inf"))
    assert lse.shape == (2, T) and lse.dtype == torch.float32
    torch.testing.assert_close(lse, torch.logsumexp(scores, -1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out, torch.softmax(scores, -1) @ v, atol=1e-4, rtol=1e-4)


@needs_kernel
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T, S, D", SHAPES)
def test_backward_equals_autograd_through_sdpa(T, S, D, causal):
    q, k, v = qkv(2, T=T, S=S, D=D, seed=2, grad=True)
    d_out = torch.randn(2, T, D, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    grads = torch.autograd.grad(triton_attention(q, k, v, causal=causal), (q, k, v), d_out)
    refs = torch.autograd.grad(math_sdpa(q, k, v, is_causal=causal), (q, k, v), d_out)
    for name, got, ref in zip("qkv", grads, refs):
        torch.testing.assert_close(got, ref, atol=2e-4, rtol=2e-4, msg=f"d{name} differs")


@needs_kernel
def test_backward_with_small_blocks_a_scale_and_heads():
    q, k, v = qkv(2, 3, T=40, S=24, D=16, seed=4, grad=True)
    out = triton_attention(q, k, v, scale=0.3, block_m=16, block_n=16)
    ref = math_sdpa(q, k, v, scale=0.3)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    refs = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for got, want in zip(grads, refs):
        torch.testing.assert_close(got, want, atol=2e-4, rtol=2e-4)


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_close_to_fp32(dtype):
    if dtype == torch.bfloat16 and interpreted():
        pytest.skip("Triton's interpreter multiplies bf16 as raw integers (NumPy has no bf16): "
                    "a (16, 16) bf16 tl.dot is wrong there by ~1e10")
    T, S, D = SHAPES[1]
    q, k, v = qkv(1, 2, T=T, S=S, D=D, dtype=dtype)
    out = triton_attention(q, k, v, causal=True)
    ref = math_sdpa(q.float(), k.float(), v.float(), is_causal=True)
    assert out.dtype == dtype and out.shape == (1, 2, T, D)
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


def test_input_checks_need_no_triton():
    q, k, v = qkv(T=8, S=8, D=16)
    with pytest.raises(ValueError, match="power of two"):
        triton_attention(q[..., :12], k[..., :12], v[..., :12])
    with pytest.raises(ValueError, match="value width"):
        triton_attention(q, k, v[..., :8])
    with pytest.raises(ValueError, match="one dtype"):
        triton_attention(q.double(), k.double(), v.double())
    with pytest.raises(ValueError, match="block sizes"):
        triton_attention(q, k, v, block_m=24)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA runs the kernel here")
def test_clear_error_where_the_kernel_cannot_run(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    q, k, v = qkv(T=8, S=8, D=16)
    with pytest.raises(RuntimeError, match="Triton|CUDA"):
        triton_attention(q, k, v)
