"""attnlab.efficient: chunked attention is exact (forward and backward); approximations are what
they claim to be."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.efficient import (
    chunked_attention,
    fit_linformer_projections,
    gaussian_projection,
    linear_attention,
    linformer_attention,
    local_attention,
    mean_pool_projection,
    window_mask,
)
from attnlab.masks import causal_mask


def qkv(*lead, T=9, S=11, D=8, Dv=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*lead, T, D, generator=g).to(dtype),
            torch.randn(*lead, S, D, generator=g).to(dtype),
            torch.randn(*lead, S, Dv, generator=g).to(dtype))


@pytest.mark.parametrize("block", [1, 3, 4, 11, 64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T, S", [(9, 11), (11, 9), (1, 7), (16, 16)])
def test_chunked_equals_sdpa_forward_and_backward(block, causal, T, S):
    q, k, v = qkv(2, 3, T=T, S=S)
    mask = torch.rand(2, 3, T, S, generator=torch.Generator().manual_seed(1)) > 0.3
    mask[..., 0] = True  # SDPA's handling of empty rows differs between versions
    ref_mask = mask & causal_mask(T, S) if causal else mask
    leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    out = chunked_attention(*leaves, mask, causal=causal, block_size=block)
    ref_leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    ref = F.scaled_dot_product_attention(*ref_leaves, attn_mask=ref_mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    for a, b in zip(leaves, ref_leaves):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4)


def test_chunked_without_mask_and_with_scale():
    q, k, v = qkv(3, T=40, S=70, D=16)
    for causal in (False, True):
        torch.testing.assert_close(chunked_attention(q, k, v, causal=causal, block_size=16),
                                   F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                   atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(chunked_attention(q, k, v, scale=0.5),
                               F.scaled_dot_product_attention(q, k, v, scale=0.5),
                               atol=1e-5, rtol=1e-4)


def test_chunked_empty_rows_are_zero_with_finite_gradients():
    q, k, v = (x.requires_grad_() for x in qkv(T=4, S=6))
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[2] = False
    out = chunked_attention(q, k, v, mask, block_size=2)
    assert torch.all(out[2] == 0) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in (q, k, v))
    assert torch.all(q.grad[2] == 0)


def test_chunked_bf16_close_to_fp32():
    q, k, v = qkv(2, T=32, S=48, D=16, dtype=torch.bfloat16)
    out = chunked_attention(q, k, v, causal=True, block_size=16)
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=3e-2, rtol=3e-2)


def test_chunked_errors():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        chunked_attention(q, k, v, block_size=0)
    with pytest.raises(ValueError, match="mask must be a bool"):
        chunked_attention(q, k, v, torch.ones(9, 11))
    with pytest.raises(ValueError, match="same last dimension"):
        chunked_attention(q, k[..., :4], v)


def test_local_attention_equals_exact_attention_with_a_window_mask():
    q, k, v = qkv(2, T=50, S=50)
    for causal in (False, True):
        for window in (0, 3, 7, 60):
            mask = window_mask(50, window=window, causal=causal)
            torch.testing.assert_close(local_attention(q, k, v, window, causal=causal),
                                       F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                                       atol=1e-5, rtol=1e-4)


def test_linear_attention_matches_its_definition():
    q, k, v = qkv(2, T=6, S=6, D=4, Dv=3)
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    w = fq @ fk.transpose(-2, -1)  # (..., T, S)
    torch.testing.assert_close(linear_attention(q, k, v), (w / w.sum(-1, keepdim=True)) @ v,
                               atol=1e-5, rtol=1e-4)
    wc = w * torch.ones(6, 6).tril()
    torch.testing.assert_close(linear_attention(q, k, v, causal=True),
                               (wc / wc.sum(-1, keepdim=True)) @ v, atol=1e-5, rtol=1e-4)


def test_linformer_with_identity_projections_is_exact():
    q, k, v = qkv(2, T=5, S=7)
    eye = torch.eye(7)
    torch.testing.assert_close(linformer_attention(q, k, v, eye, eye),
                               F.scaled_dot_product_attention(q, k, v))
    with pytest.raises(ValueError, match=r"e must be \(r, S=7\)"):
        linformer_attention(q, k, v, torch.ones(3, 6), eye)


def test_chunked_in_place_blocks_leave_the_inputs_alone():
    q, k, v = (x.requires_grad_() for x in qkv(2, T=20, S=30))
    mask = torch.rand(20, 30, generator=torch.Generator().manual_seed(3)) > 0.2
    before = [x.detach().clone() for x in (q, k, v)] + [mask.clone()]
    chunked_attention(q, k, v, mask, causal=True, block_size=7).sum().backward()
    for a, b in zip((q, k, v, mask), before):
        assert torch.equal(a.detach(), b)


def test_chunked_fp16_close_to_fp32():
    q, k, v = qkv(2, T=24, S=40, D=16, dtype=torch.float16)
    out = chunked_attention(q, k, v, block_size=8)
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), ref, atol=5e-3, rtol=5e-3)


def test_mean_pool_projection_is_adaptive_average_pooling():
    for r, S in ((4, 16), (5, 17), (7, 7), (1, 9)):
        e = mean_pool_projection(r, S)
        x = torch.randn(2, S, 3, generator=torch.Generator().manual_seed(r))
        pooled = F.adaptive_avg_pool1d(x.transpose(1, 2), r).transpose(1, 2)  # (2, r, 3)
        torch.testing.assert_close(e @ x, pooled)
        torch.testing.assert_close(e.sum(-1), torch.ones(r))
    with pytest.raises(ValueError, match=r"r must be an integer in \[1, S=4\]"):
        mean_pool_projection(5, 4)
    with pytest.raises(ValueError, match="r must be an integer"):
        mean_pool_projection(0, 4)


def test_gaussian_projection_has_variance_one_over_r():
    e = gaussian_projection(64, 4096, generator=torch.Generator().manual_seed(0))
    assert e.shape == (64, 4096)
    assert abs(e.var().item() * 64 - 1) < 0.02 and abs(e.mean().item()) < 0.01
    with pytest.raises(ValueError, match="r must be an integer"):
        gaussian_projection(True, 4)


def sorted_regression(S=512, T=128, width=0.1, seed=0):
    # kernel regression on sorted points as attention, as in chapter 8
    g = torch.Generator().manual_seed(seed)
    xk = (5 * torch.rand(S, generator=g)).sort().values
    xq = (5 * torch.rand(T, generator=g)).sort().values
    k = torch.stack([xk / width**2, -xk**2 / (2 * width**2)], -1)  # (S, 2)
    q = 2**0.5 * torch.stack([xq, torch.ones(T)], -1)  # (T, 2)
    v = (torch.sin(xk) + 0.3 * torch.randn(S, generator=g))[:, None]  # (S, 1)
    return q, k, v


def test_pooled_and_learned_projections_beat_the_random_one_on_ordered_keys():
    q, k, v = sorted_regression()
    exact = F.scaled_dot_product_attention(q, k, v)

    def err(e, f):
        return (linformer_attention(q, k, v, e, f) - exact).pow(2).mean().item()

    g = torch.Generator().manual_seed(1)
    random_err = err(*[gaussian_projection(32, 512, generator=g)] * 2)
    pooled_err = err(*[mean_pool_projection(32, 512)] * 2)
    e, f = fit_linformer_projections(q, k, v, 32, steps=60, generator=g)
    learned_err = err(e, f)
    assert pooled_err < learned_err < random_err / 100
    torch.testing.assert_close(e.sum(-1), torch.ones(32))
    assert (e >= 0).all() and not torch.equal(e, f)


def test_fit_linformer_projections_reduces_its_loss_and_is_reproducible():
    q, k, v = sorted_regression(S=64, T=32)
    target = F.scaled_dot_product_attention(q, k, v)

    def fit(steps):
        return fit_linformer_projections(q, k, v, 8, steps=steps, shared=True,
                                         generator=torch.Generator().manual_seed(0))

    def loss(ef):
        return (linformer_attention(q, k, v, *ef) - target).pow(2).mean()

    one, many = fit(1), fit(40)
    assert torch.equal(one[0], one[1])  # shared: E = F
    assert loss(many) < 0.8 * loss(one)
    torch.testing.assert_close(fit(40)[0], many[0], rtol=0, atol=0)
    with torch.no_grad():  # fits under no_grad too
        torch.testing.assert_close(fit(40)[0], many[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        fit_linformer_projections(q, k, v, 8, steps=0)
    with pytest.raises(ValueError, match=r"target must be \(32, 1\)"):
        fit_linformer_projections(q, k, v, 8, target=target[:3])
