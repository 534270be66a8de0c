"""attnlab.layers against PyTorch's modules with copied weights, and each layer's properties."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.functional import additive_scores, attention
from attnlab.layers import (
    AdditiveAttention,
    DecoderBlock,
    KVCache,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    RMSNorm,
    RollingKVCache,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    SwiGLU,
    TransformerBlock,
    sinusoidal_encoding,
)
from attnlab.masks import causal_mask, padding_mask, window_mask


def seeded(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def torch_mask(mask: torch.Tensor, num_heads: int) -> torch.Tensor:
    """attnlab's (B, T, S) may-attend mask as nn.MultiheadAttention's (B*H, T, S) blocked mask."""
    return (~mask).repeat_interleave(num_heads, dim=0)


# --------------------------------------------------------------------- multi-head attention


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("T, S", [(5, 5), (3, 7), (1, 4)])
def test_mha_equals_torch_forward_weights_and_backward(bias, T, S):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(16, 4, bias=bias, batch_first=True)
    ours = MultiHeadAttention.from_torch(ref)
    x, y = seeded(2, T, 16, seed=1), seeded(2, S, 16, seed=2)
    mask = seeded(2, T, S, seed=3) > -0.5
    mask[..., 0] = True
    out, w = ours(x, y, y, mask=mask, need_weights=True)
    r_out, r_w = ref(x, y, y, attn_mask=torch_mask(mask, 4), average_attn_weights=False)
    torch.testing.assert_close(out, r_out)
    torch.testing.assert_close(w, r_w)
    # backward: gradients w.r.t. inputs and every parameter agree
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    ours(xs[0], y, y, mask=mask).pow(2).sum().backward()
    ref(xs[1], y, y, attn_mask=torch_mask(mask, 4), need_weights=False)[0].pow(2).sum().backward()
    torch.testing.assert_close(xs[0].grad, xs[1].grad)
    torch.testing.assert_close(ours.in_proj.weight.grad, ref.in_proj_weight.grad)
    torch.testing.assert_close(ours.out_proj.weight.grad, ref.out_proj.weight.grad)


def test_mha_self_attention_causal_and_padding_match_torch():
    torch.manual_seed(1)
    ref = nn.MultiheadAttention(12, 3, batch_first=True)
    ours = MultiHeadAttention.from_torch(ref)
    x = seeded(3, 6, 12)
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    torch.testing.assert_close(ours(x, causal=True),
                               ref(x, x, x, attn_mask=causal, is_causal=True)[0])
    pad = padding_mask([6, 4, 2], 6)  # (B, 1, S)
    torch.testing.assert_close(ours(x, mask=pad),
                               ref(x, x, x, key_padding_mask=~pad[:, 0])[0])
    per_head = pad[:, None].expand(3, 3, 6, 6)  # (B, H, T, S)
    torch.testing.assert_close(ours(x, mask=per_head), ours(x, mask=pad))


def test_mha_split_and_merge_heads_are_inverse_and_ordered():
    mha = MultiHeadAttention(8, 2)
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    heads = mha.split_heads(x)
    assert heads.shape == (2, 2, 3, 4)
    torch.testing.assert_close(heads[0, 1, 2], x[0, 2, 4:])  # head 1 holds features 4..7
    torch.testing.assert_close(mha.merge_heads(heads), x)


def test_mha_kv_cache_equals_full_causal_attention():
    torch.manual_seed(2)
    for rope in (None, RotaryEmbedding(4, max_len=16)):
        mha = MultiHeadAttention(8, 2, rope=rope).eval()
        x = seeded(2, 7, 8)
        full = mha(x, causal=True)
        cache = KVCache()
        parts = [mha(x[:, :3], causal=True, cache=cache)]
        parts += [mha(x[:, t : t + 1], causal=True, cache=cache) for t in range(3, 7)]
        assert cache.length == 7
        torch.testing.assert_close(torch.cat(parts, dim=1), full)


def test_mha_errors_name_shapes():
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"query must be \(B, T, C\) with C=8"):
        mha(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match="same batch size"):
        mha(torch.randn(2, 3, 8), torch.randn(3, 3, 8))
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(torch.randn(2, 3, 8), mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="multiple of num_heads"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="KV cache is for self-attention"):
        mha(torch.randn(1, 1, 8), torch.randn(1, 2, 8), cache=KVCache())
    with pytest.raises(ValueError, match="kdim == vdim"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, kdim=4, vdim=4))


def test_mha_permutation_equivariance_without_positions():
    mha = MultiHeadAttention(8, 2).eval()
    x = seeded(1, 6, 8)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    torch.testing.assert_close(mha(x)[:, perm], mha(x[:, perm]))


# ----------------------------------------------------------------------- additive attention


def test_additive_attention_matches_functional_and_masks():
    layer = AdditiveAttention(4, 6, 5)
    q, k, v = seeded(2, 3, 4), seeded(2, 7, 6, seed=1), seeded(2, 7, 2, seed=2)
    mask = padding_mask([7, 4], 7)
    out, w = layer(q, k, v, mask=mask, need_weights=True)
    scores = additive_scores(q, k, layer.w_q.weight, layer.w_k.weight, layer.w_v.weight[0])
    ref_w = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
    torch.testing.assert_close(w, ref_w)
    torch.testing.assert_close(out, ref_w @ v)
    assert torch.all(w[1, :, 4:] == 0)
    with pytest.raises(ValueError, match="must agree on"):
        layer(q, k, v[:, :5])


# ----------------------------------------------------------------------------- positions


def test_sinusoidal_encoding_values_and_relative_property():
    pe = sinusoidal_encoding(50, 16)
    t, i = 7, 3
    assert math.isclose(float(pe[t, 2 * i]), math.sin(t / 10_000 ** (2 * i / 16)), rel_tol=1e-5)
    assert math.isclose(float(pe[t, 2 * i + 1]), math.cos(t / 10_000 ** (2 * i / 16)),
                        rel_tol=1e-5)
    # PE(t + k) is a fixed linear map (a rotation per frequency) of PE(t)
    k = 5
    freq = 10_000 ** (-torch.arange(0, 16, 2) / 16)
    rot = torch.zeros(16, 16)
    for j, f in enumerate(freq):
        c, s = math.cos(k * f), math.sin(k * f)
        rot[2 * j : 2 * j + 2, 2 * j : 2 * j + 2] = torch.tensor([[c, -s], [s, c]])
    torch.testing.assert_close(pe[:-k] @ rot, pe[k:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sinusoidal_encoding(3, 16, offset=4), pe[4:7])
    with pytest.raises(ValueError, match="even width"):
        sinusoidal_encoding(4, 7)


def test_positional_modules_add_and_check_length():
    x = torch.zeros(2, 5, 8)
    pe = SinusoidalPositionalEncoding(8, 16)
    torch.testing.assert_close(pe(x)[0], sinusoidal_encoding(5, 8))
    learned = LearnedPositionalEmbedding(16, 8)
    torch.testing.assert_close(learned(x, offset=3)[1], learned.embedding.weight[3:8])
    with pytest.raises(ValueError, match="exceed max_len=16"):
        learned(torch.zeros(1, 17, 8))


def test_rope_scores_depend_only_on_relative_position_and_keep_norms():
    rope = RotaryEmbedding(8, max_len=64)
    q, k = seeded(8), seeded(8, seed=1)
    def score(t, s):
        qt = rope(q.expand(64, 8))[t]
        ks = rope(k.expand(64, 8))[s]
        return float(qt @ ks)
    assert math.isclose(score(10, 4), score(30, 24), rel_tol=1e-4)
    assert math.isclose(score(5, 5), float(q @ k), rel_tol=1e-4)
    x = seeded(3, 10, 8)
    torch.testing.assert_close(rope(x).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(rope(x[:, 4:], offset=4), rope(x)[:, 4:])


# ---------------------------------------------------------------------- Transformer blocks


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_block_equals_torch_encoder_layer(norm_first, activation):
    torch.manual_seed(3)
    ref = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation=activation,
                                     batch_first=True, norm_first=norm_first).eval()
    ours = TransformerBlock.from_torch(ref).eval()
    x = seeded(2, 6, 16)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    pad = padding_mask([6, 3], 6)
    torch.testing.assert_close(ours(x, mask=pad), ref(x, src_key_padding_mask=~pad[:, 0]),
                               atol=1e-5, rtol=1e-5)
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    torch.testing.assert_close(ours(x, causal=True), ref(x, src_mask=causal, is_causal=True),
                               atol=1e-5, rtol=1e-5)


def test_transformer_block_causal_ignores_the_future():
    block = TransformerBlock(8, 2, 16).eval()
    x = seeded(1, 6, 8)
    y = x.clone()
    y[:, 4:] = 100.0
    torch.testing.assert_close(block(x, causal=True)[:, :4], block(y, causal=True)[:, :4])


def test_decoder_block_equals_torch_decoder_layer():
    torch.manual_seed(4)
    for norm_first in (True, False):
        ref = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, activation="gelu",
                                         batch_first=True, norm_first=norm_first).eval()
        ours = DecoderBlock(16, 4, 32, norm_first=norm_first).eval()
        ours.self_attn = MultiHeadAttention.from_torch(ref.self_attn)
        ours.cross_attn = MultiHeadAttention.from_torch(ref.multihead_attn)
        with torch.no_grad():
            for a, b in ((ours.ff.linear1, ref.linear1), (ours.ff.linear2, ref.linear2),
                         (ours.norm1, ref.norm1), (ours.norm2, ref.norm2),
                         (ours.norm3, ref.norm3)):
                a.weight.copy_(b.weight)
                a.bias.copy_(b.bias)
        x, memory = seeded(2, 5, 16), seeded(2, 7, 16, seed=1)
        pad = padding_mask([7, 3], 7)
        expected = ref(x, memory, tgt_mask=causal_mask(5).logical_not(), tgt_is_causal=True,
                       memory_key_padding_mask=~pad[:, 0])
        torch.testing.assert_close(ours(x, memory, memory_mask=pad), expected,
                                   atol=1e-5, rtol=1e-5)


def test_transformer_block_returns_its_attention_weights():
    for norm_first in (True, False):
        block = TransformerBlock(8, 2, 16, norm_first=norm_first).eval()
        x = seeded(2, 5, 8)
        out, w = block(x, causal=True, need_weights=True)
        torch.testing.assert_close(out, block(x, causal=True))
        h = block.norm1(x) if norm_first else x
        torch.testing.assert_close(w, block.self_attn(h, causal=True, need_weights=True)[1])
        assert w.shape == (2, 2, 5, 5) and torch.all(w.triu(1) == 0)


# ------------------------------------------------------------- grouped-query attention


def gqa_reference(mha: MultiHeadAttention, x: torch.Tensor, mask=None, causal=False):
    """Grouped-query attention spelled out: project, repeat each K/V head, attend, merge."""
    B, T, C = x.shape
    H, G, D = mha.num_heads, mha.num_kv_heads, mha.head_dim
    w, b = mha.in_proj.weight, mha.in_proj.bias
    q, k, v = F.linear(x, w, b).split([C, G * D, G * D], dim=-1)
    q = q.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
    k, v = (t.view(B, T, G, D).transpose(1, 2).repeat_interleave(H // G, dim=1) for t in (k, v))
    out = attention(q, k, v, mask, causal=causal)  # (B, H, T, D)
    return mha.out_proj(out.transpose(1, 2).reshape(B, T, C))


@pytest.mark.parametrize("G", [1, 2, 4])
def test_mha_grouped_query_equals_repeated_heads_and_sdpa(G):
    torch.manual_seed(7)
    mha = MultiHeadAttention(16, 4, num_kv_heads=G).eval()
    assert mha.in_proj.weight.shape == (16 + 2 * G * 4, 16)
    x = seeded(2, 6, 16)
    pad = padding_mask([6, 4], 6)
    torch.testing.assert_close(mha(x), gqa_reference(mha, x))
    torch.testing.assert_close(mha(x, causal=True), gqa_reference(mha, x, causal=True))
    torch.testing.assert_close(mha(x, mask=pad), gqa_reference(mha, x, mask=pad[:, None]))
    out, w = mha(x, causal=True, need_weights=True)
    assert w.shape == (2, 4, 6, 6)
    torch.testing.assert_close(out, mha(x, causal=True))
    # cross-attention: the keys and values come from another sequence
    mem = seeded(2, 9, 16, seed=1)
    assert mha(x, mem).shape == (2, 6, 16)


def test_mha_default_kv_heads_is_multi_head_and_copies_torch():
    ref = nn.MultiheadAttention(8, 2, batch_first=True)
    ours = MultiHeadAttention.from_torch(ref)
    assert ours.num_kv_heads == 2 and MultiHeadAttention(8, 2).in_proj.weight.shape == (24, 8)
    x = seeded(1, 4, 8)
    torch.testing.assert_close(ours(x), ref(x, x, x, need_weights=False)[0])


@pytest.mark.parametrize("G", [1, 2])
def test_gqa_kv_cache_holds_g_heads_and_equals_the_full_forward(G):
    torch.manual_seed(8)
    for rope in (None, RotaryEmbedding(4, max_len=16)):
        mha = MultiHeadAttention(16, 4, num_kv_heads=G, rope=rope).eval()
        x = seeded(2, 9, 16)
        cache = KVCache()
        parts = [mha(x[:, :4], causal=True, cache=cache)]
        parts += [mha(x[:, t : t + 1], causal=True, cache=cache) for t in range(4, 9)]
        torch.testing.assert_close(torch.cat(parts, dim=1), mha(x, causal=True))
        assert cache.k.shape == (2, G, 9, 4) and cache.v.shape == (2, G, 9, 4)
        assert cache.nbytes == 2 * 2 * G * 9 * 4 * 4


def test_mha_num_kv_heads_errors():
    for bad in (3, 0, 8, 1.5):
        with pytest.raises(ValueError, match=r"num_kv_heads=.* must be a positive divisor"):
            MultiHeadAttention(16, 4, num_kv_heads=bad)


# -------------------------------------------------------------------- rolling KV cache


@pytest.mark.parametrize("window", [1, 3, 5, 20])
def test_rolling_cache_equals_sliding_window_attention(window):
    torch.manual_seed(9)
    for G, rope in ((2, None), (1, RotaryEmbedding(4, max_len=32))):
        mha = MultiHeadAttention(16, 4, num_kv_heads=G, rope=rope).eval()
        x = seeded(2, 12, 16)
        full = mha(x, mask=window_mask(12, window=window, causal=True))
        cache = RollingKVCache(window)
        parts = [mha(x[:, :4], causal=True, cache=cache)]          # a prefill of 4
        for t in range(4, 12):
            parts.append(mha(x[:, t : t + 1], causal=True, cache=cache))
            assert cache.length == min(window, t + 1) and cache.position == t + 1
        torch.testing.assert_close(torch.cat(parts, dim=1), full)


def test_rolling_cache_memory_stays_flat():
    mha = MultiHeadAttention(16, 4, num_kv_heads=2).eval()
    cache = RollingKVCache(4)
    sizes = []
    with torch.no_grad():
        for t in range(30):
            mha(seeded(1, 1, 16, seed=t), causal=True, cache=cache)
            sizes.append(cache.nbytes)
    assert sizes[3:] == [sizes[3]] * 27 and sizes[3] == 2 * 1 * 2 * 4 * 4 * 4
    with pytest.raises(ValueError, match="window must be a positive integer"):
        RollingKVCache(0)


# ------------------------------------------------------------------- RMSNorm and SwiGLU


def test_rmsnorm_equals_torch_rmsnorm_forward_and_backward():
    torch.manual_seed(10)
    ours, ref = RMSNorm(16), nn.RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.copy_(torch.rand(16) + 0.5)
        ref.weight.copy_(ours.weight)
    x1 = seeded(2, 5, 16).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    torch.testing.assert_close(ours(x1), ref(x2))
    ours(x1).pow(3).sum().backward()
    ref(x2).pow(3).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    # no centring: a constant row keeps its sign; scaling the input changes nothing
    torch.testing.assert_close(RMSNorm(4)(torch.full((1, 4), -2.0)), -torch.ones(1, 4),
                               check_dtype=False)
    x = seeded(3, 16)
    torch.testing.assert_close(ours(7.0 * x), ours(x))
    assert RMSNorm(16).eps == 1e-6 and ours.weight.shape == (16,)
    with pytest.raises(ValueError, match=r"RMSNorm\(16\) got x of shape \(3, 8\)"):
        ours(seeded(3, 8))


def test_swiglu_matches_its_definition_and_counts_parameters():
    torch.manual_seed(11)
    ff = SwiGLU(8, 24)
    x = seeded(2, 3, 8)
    w1, w3, w2 = ff.gate.weight, ff.up.weight, ff.down.weight
    expected = (F.silu(x @ w1.T) * (x @ w3.T)) @ w2.T
    torch.testing.assert_close(ff(x), expected)
    assert sum(p.numel() for p in ff.parameters()) == 3 * 8 * 24
    assert sum(p.numel() for p in SwiGLU(8, 24, bias=True).parameters()) == 3 * 8 * 24 + 2 * 24 + 8
    with pytest.raises(ValueError, match="hidden_dim must be a positive integer"):
        SwiGLU(8, 0)


def test_run_blocks_is_the_blocks_one_after_another_with_their_weights():
    from attnlab.layers import TransformerBlock, run_blocks
    from attnlab.masks import causal_mask

    torch.manual_seed(0)
    blocks = [TransformerBlock(8, 2, 16).eval() for _ in range(3)]
    x, mask = torch.randn(2, 5, 8), causal_mask(5, 5)
    by_hand, maps = x, []
    for block in blocks:
        by_hand, w = block(by_hand, mask=mask, need_weights=True)
        maps.append(w)
    y, weights = run_blocks(blocks, x, mask, need_weights=True)
    torch.testing.assert_close(y, by_hand)
    assert len(weights) == 3
    for w, expected in zip(weights, maps):
        torch.testing.assert_close(w, expected)
        assert float(w[..., 0, 1:].detach().abs().max()) == 0.0  # every block got the mask
    y_only, none = run_blocks(blocks, x, mask)
    torch.testing.assert_close(y_only, by_hand)
    assert none == []
