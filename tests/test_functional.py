"""attnlab.functional against PyTorch, a naive reference and the properties of attention."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab.functional import (
    additive_scores,
    attention,
    dot_product_scores,
    general_scores,
    kv_groups,
    masked_softmax,
    scaled_dot_product_scores,
    softmax,
)
from attnlab.masks import causal_mask, padding_mask


def naive_attention(q, k, v, mask=None, causal=False, scale=None):
    """Loops over queries and keys: the definition, with nothing clever."""
    *lead, T, D = q.shape
    S, Dv = k.shape[-2], v.shape[-1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    qf, kf, vf = (x.double().reshape(-1, *x.shape[-2:]) for x in (q, k, v))
    allowed = torch.ones(*lead, T, S, dtype=torch.bool)
    if mask is not None:
        allowed = allowed & mask
    if causal:
        allowed = allowed & torch.ones(T, S, dtype=torch.bool).tril()
    allowed = allowed.reshape(-1, T, S)
    out = torch.zeros(qf.shape[0], T, Dv, dtype=torch.float64)
    for b in range(qf.shape[0]):
        for i in range(T):
            keys = [j for j in range(S) if allowed[b, i, j]]
            if not keys:
                continue
            s = torch.stack([qf[b, i] @ kf[b, j] * scale for j in keys])
            w = torch.exp(s - s.max())
            w = w / w.sum()
            out[b, i] = sum(wj * vf[b, j] for wj, j in zip(w, keys))
    return out.reshape(*lead, T, Dv)


# shapes: (lead dims, T, S, D, Dv)
SHAPES = [
    ((), 1, 1, 4, 4),
    ((), 5, 5, 8, 8),
    ((2,), 1, 7, 8, 3),
    ((2,), 7, 3, 16, 16),
    ((2, 3), 6, 6, 8, 8),
    ((2, 3), 4, 9, 8, 5),
    ((3, 2), 9, 4, 32, 8),
    ((1, 4), 1, 16, 64, 64),
]


def make_qkv(lead, T, S, D, Dv, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, T, D, generator=g).to(dtype)
    k = torch.randn(*lead, S, D, generator=g).to(dtype)
    v = torch.randn(*lead, S, Dv, generator=g).to(dtype)
    return q, k, v


def random_mask(lead, T, S, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*lead, T, S, generator=g) > 0.3


# ------------------------------------------------------------------ equivalence with SDPA


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("need_weights", [False, True])
def test_matches_sdpa_plain(shape, need_weights):
    q, k, v = make_qkv(*shape)
    expected = F.scaled_dot_product_attention(q, k, v)
    got = attention(q, k, v, need_weights=need_weights)
    got = got[0] if need_weights else got
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("need_weights", [False, True])
def test_matches_sdpa_causal(shape, need_weights):
    q, k, v = make_qkv(*shape)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    got = attention(q, k, v, causal=True, need_weights=need_weights)
    got = got[0] if need_weights else got
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("need_weights", [False, True])
def test_matches_sdpa_with_bool_mask(shape, need_weights):
    lead, T, S = shape[0], shape[1], shape[2]
    q, k, v = make_qkv(*shape)
    mask = random_mask(lead, T, S)
    mask[..., 0] = True  # SDPA's reference semantics for empty rows differ across versions
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    got = attention(q, k, v, mask, need_weights=need_weights)
    got = got[0] if need_weights else got
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("scale", [0.5, 1.0, 0.01])
def test_matches_sdpa_with_scale(shape, scale):
    q, k, v = make_qkv(*shape)
    expected = F.scaled_dot_product_attention(q, k, v, scale=scale)
    torch.testing.assert_close(attention(q, k, v, scale=scale), expected, atol=1e-5, rtol=1e-5)
    out, _ = attention(q, k, v, scale=scale, need_weights=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_mask_and_causal_combine_like_an_explicit_mask(shape):
    lead, T, S = shape[0], shape[1], shape[2]
    q, k, v = make_qkv(*shape)
    mask = random_mask(lead, T, S)
    mask[..., 0] = True
    both = mask & torch.ones(T, S, dtype=torch.bool).tril()
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=both)
    torch.testing.assert_close(attention(q, k, v, mask, causal=True), expected)
    torch.testing.assert_close(attention(q, k, v, mask, causal=True, need_weights=True)[0],
                               expected)


@pytest.mark.parametrize("shape", SHAPES[:5], ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_matches_naive_loops(shape, causal):
    lead, T, S = shape[0], shape[1], shape[2]
    q, k, v = make_qkv(*shape)
    mask = random_mask(lead, T, S, seed=3)  # may contain empty rows: those give zeros
    expected = naive_attention(q, k, v, mask, causal=causal).float()
    for need_weights in (False, True):
        got = attention(q, k, v, mask, causal=causal, need_weights=need_weights)
        got = got[0] if need_weights else got
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_bf16_close_to_fp32_sdpa(shape, causal):
    q, k, v = make_qkv(*shape, dtype=torch.bfloat16)
    expected = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)
    fused = attention(q, k, v, causal=causal)
    ref, w = attention(q, k, v, causal=causal, need_weights=True)
    assert fused.dtype == ref.dtype == w.dtype == torch.bfloat16
    torch.testing.assert_close(fused.float(), expected, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(ref.float(), expected, atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(
        ref, F.scaled_dot_product_attention(q, k, v, is_causal=causal), atol=3e-2, rtol=3e-2
    )


def test_gradients_match_sdpa():
    q, k, v = make_qkv((2, 3), 5, 7, 8, 4)
    mask = random_mask((2, 3), 5, 7)
    mask[..., 0] = True
    grads = []
    for fn in (
        lambda a, b, c: attention(a, b, c, mask, need_weights=True)[0],
        lambda a, b, c: attention(a, b, c, mask),
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=mask),
    ):
        leaves = [x.clone().requires_grad_() for x in (q, k, v)]
        fn(*leaves).pow(2).sum().backward()
        grads.append([x.grad for x in leaves])
    for g in grads[1:]:
        for a, b in zip(grads[0], g):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_need_weights_returns_the_weights_sdpa_uses():
    q, k, v = make_qkv((2,), 4, 6, 8, 8)
    _, w = attention(q, k, v, need_weights=True)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(w, expected)


def test_dropout_is_applied_and_weights_are_returned_before_it():
    q, k, v = make_qkv((2,), 4, 6, 8, 8)
    torch.manual_seed(0)
    out, w = attention(q, k, v, dropout_p=0.5, need_weights=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4))
    assert not torch.allclose(out, attention(q, k, v))


# ------------------------------------------------------------------------- properties


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_weights_rows_sum_to_one_and_masked_weights_are_zero(shape):
    lead, T, S = shape[0], shape[1], shape[2]
    q, k, v = make_qkv(*shape)
    mask = random_mask(lead, T, S)
    _, w = attention(q, k, v, mask, need_weights=True)
    assert torch.all(w[~mask.expand_as(w)] == 0)
    has_any = mask.any(-1)
    torch.testing.assert_close(w.sum(-1)[has_any], torch.ones_like(w.sum(-1)[has_any]))
    assert torch.all(w.sum(-1)[~has_any] == 0)


def test_permuting_keys_and_values_together_changes_nothing():
    q, k, v = make_qkv((2, 2), 5, 9, 8, 4)
    mask = random_mask((2, 2), 5, 9)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(5))
    for need_weights in (False, True):
        a = attention(q, k, v, mask, need_weights=need_weights)
        b = attention(q, k[..., perm, :], v[..., perm, :], mask[..., perm],
                      need_weights=need_weights)
        if need_weights:
            torch.testing.assert_close(a[0], b[0])
            torch.testing.assert_close(a[1][..., perm], b[1])
        else:
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("need_weights", [False, True])
def test_causal_outputs_ignore_the_future(need_weights):
    q, k, v = make_qkv((2,), 8, 8, 16, 4)
    base = attention(q, k, v, causal=True, need_weights=need_weights)
    base = base[0] if need_weights else base
    for t in range(8):
        k2, v2 = k.clone(), v.clone()
        k2[:, t + 1:] = torch.randn_like(k2[:, t + 1:]) * 100
        v2[:, t + 1:] = torch.randn_like(v2[:, t + 1:]) * 100
        out = attention(q, k2, v2, causal=True, need_weights=need_weights)
        out = out[0] if need_weights else out
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1])


@pytest.mark.parametrize("need_weights", [False, True])
def test_inputs_are_not_mutated(need_weights):
    q, k, v = make_qkv((2,), 4, 5, 8, 8)
    mask = random_mask((2,), 4, 5)
    copies = [x.clone() for x in (q, k, v, mask)]
    attention(q, k, v, mask, causal=True, need_weights=need_weights)
    for a, b in zip((q, k, v, mask), copies):
        assert torch.equal(a, b)


@pytest.mark.parametrize("need_weights", [False, True])
def test_query_with_nothing_to_attend_gives_zeros_not_nan(need_weights):
    q, k, v = make_qkv((2,), 3, 4, 8, 8)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2] = False
    out = attention(q, k, v, mask, need_weights=need_weights)
    out = out[0] if need_weights else out
    assert torch.isfinite(out).all()
    assert torch.all(out[1, 2] == 0)
    # bottom-right causal with a negative offset leaves the first query empty
    cm = causal_mask(3, 4, offset=-1)
    out = attention(q, k, v, cm, need_weights=need_weights)
    out = out[0] if need_weights else out
    assert torch.all(out[:, 0] == 0) and torch.isfinite(out).all()


def test_padding_mask_hides_padded_keys():
    q, k, v = make_qkv((2,), 3, 5, 8, 4)
    mask = padding_mask([3, 5], 5)
    out = attention(q, k, v, mask)
    short = attention(q[:1], k[:1, :3], v[:1, :3])
    torch.testing.assert_close(out[:1], short)


# -------------------------------------------------------------------------- softmax


def test_softmax_torch_and_numpy_match_torch_softmax():
    x = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))
    for dim in (-1, 0, 1):
        torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim))
        got = softmax(x.numpy(), dim=dim)
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, torch.softmax(x, dim=dim).numpy(), rtol=1e-6)


def test_softmax_returns_the_input_type():
    assert isinstance(softmax(torch.tensor([1.0, 2.0])), torch.Tensor)
    assert isinstance(softmax(np.array([1.0, 2.0])), np.ndarray)
    assert isinstance(softmax([1.0, 2.0]), np.ndarray)
    assert softmax(np.array([1, 2])).dtype == np.float64
    assert softmax(torch.tensor([1, 2])).dtype == torch.float32
    assert softmax(np.array([1, 2], dtype=np.float32)).dtype == np.float32


def test_softmax_is_stable_for_large_scores():
    for x in (np.array([1000.0, 1000.0]), torch.tensor([1000.0, 1000.0])):
        np.testing.assert_allclose(np.asarray(softmax(x)), [0.5, 0.5])
    got = softmax(torch.tensor([1000.0, 999.0, -1000.0]))
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, torch.softmax(torch.tensor([1000.0, 999.0, -1000.0]), -1))


def test_softmax_properties():
    x = np.array([0.06, 0.14, 0.24, 0.36, 0.5])
    w = softmax(x)
    assert abs(w.sum() - 1) < 1e-12
    assert list(np.argsort(w)) == list(np.argsort(x))
    np.testing.assert_allclose(softmax(x + 123.0), w, rtol=1e-12)


def test_softmax_gradient_matches_torch():
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y = torch.randn(3, 5)
    (g1,) = torch.autograd.grad((softmax(x) * y).sum(), x)
    (g2,) = torch.autograd.grad((torch.softmax(x, -1) * y).sum(), x)
    torch.testing.assert_close(g1, g2)


def test_softmax_does_not_mutate():
    x = np.array([3.0, 1.0])
    softmax(x)
    np.testing.assert_array_equal(x, [3.0, 1.0])


def test_masked_softmax_matches_softmax_on_allowed_positions_and_zeros_elsewhere():
    scores = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(2))
    mask = random_mask((2,), 3, 6)
    w = masked_softmax(scores, mask)
    ref = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1).nan_to_num(0.0)
    torch.testing.assert_close(w, ref)


def test_masked_softmax_empty_row_is_zero_with_finite_gradient():
    scores = torch.randn(2, 4, requires_grad=True)
    mask = torch.tensor([[True, False, True, False], [False, False, False, False]])
    w = masked_softmax(scores, mask)
    assert torch.all(w[1] == 0)
    (w * torch.randn(2, 4)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.all(scores.grad[1] == 0)
    assert torch.all(scores.grad[0, [1, 3]] == 0)


def test_masked_softmax_with_shared_2d_mask_and_other_dim():
    scores = torch.randn(3, 4, 5)
    mask = torch.rand(4, 5) > 0.2
    mask[0] = True
    w = masked_softmax(scores, mask, dim=1)
    ref = torch.softmax(scores.masked_fill(~mask, float("-inf")), 1).nan_to_num(0.0)
    torch.testing.assert_close(w, ref)


# --------------------------------------------------------------------------- scores


def test_dot_and_scaled_scores():
    q, k, _ = make_qkv((2,), 3, 4, 16, 1)
    torch.testing.assert_close(dot_product_scores(q, k), torch.einsum("btd,bsd->bts", q, k))
    torch.testing.assert_close(scaled_dot_product_scores(q, k), dot_product_scores(q, k) / 4)
    torch.testing.assert_close(scaled_dot_product_scores(q, k, 0.5), dot_product_scores(q, k) / 2)


def test_additive_scores_match_a_loop():
    g = torch.Generator().manual_seed(4)
    q, k = torch.randn(2, 3, 5, generator=g), torch.randn(2, 4, 6, generator=g)
    w_q, w_k, w_v = torch.randn(7, 5, generator=g), torch.randn(7, 6, generator=g), torch.randn(7)
    got = additive_scores(q, k, w_q, w_k, w_v)
    assert got.shape == (2, 3, 4)
    for b in range(2):
        for i in range(3):
            for j in range(4):
                ref = w_v @ torch.tanh(w_q @ q[b, i] + w_k @ k[b, j])
                torch.testing.assert_close(got[b, i, j], ref)


def test_general_scores_match_einsum_and_reduce_to_dot_with_identity():
    g = torch.Generator().manual_seed(6)
    q, k = torch.randn(2, 3, 5, generator=g), torch.randn(2, 4, 6, generator=g)
    w = torch.randn(5, 6, generator=g)
    torch.testing.assert_close(general_scores(q, k, w), torch.einsum("bti,ij,bsj->bts", q, w, k))
    q2, k2 = torch.randn(3, 5), torch.randn(4, 5)
    torch.testing.assert_close(general_scores(q2, k2, torch.eye(5)), dot_product_scores(q2, k2))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        ((torch.randn(3, 8), torch.randn(4, 7), torch.randn(4, 2)), {}, r"same last dimension D"),
        ((torch.randn(2, 3, 8), torch.randn(3, 4, 8), torch.randn(3, 4, 2)), {},
         r"leading \(batch, head\) dimensions: q \(2, 3, 8\) vs k \(3, 4, 8\)"),
        ((torch.randn(3, 8), torch.randn(4, 8), torch.randn(5, 2)), {},
         r"k and v must agree on \(\.\.\., S\): k \(4, 8\)"),
        ((torch.randn(8), torch.randn(4, 8), torch.randn(4, 2)), {}, r"q must have shape"),
        ((torch.randn(0, 8), torch.randn(4, 8), torch.randn(4, 2)), {}, r"q has an empty dim"),
        ((torch.randn(3, 8), torch.randn(0, 8), torch.randn(0, 2)), {}, r"k has an empty dim"),
        ((torch.randint(0, 3, (3, 8)), torch.randn(4, 8), torch.randn(4, 2)), {},
         r"q must be a floating-point tensor, got dtype torch.int64"),
        ((torch.randn(3, 8), torch.randn(4, 8).double(), torch.randn(4, 2)), {},
         r"share a dtype"),
        ((torch.randn(3, 8), torch.randn(4, 8), torch.randn(4, 2),
          torch.ones(3, 4)), {}, r"mask must be a bool tensor .*got dtype torch.float32"),
        ((torch.randn(3, 8), torch.randn(4, 8), torch.randn(4, 2),
          torch.ones(4, 3, dtype=torch.bool)), {},
         r"mask of shape \(4, 3\) does not broadcast to the scores of shape \(3, 4\)"),
        ((torch.randn(2, 2, 3, 8), torch.randn(2, 2, 4, 8), torch.randn(2, 2, 4, 2),
          torch.ones(2, 1, 4, dtype=torch.bool)), {}, r"has 3 dims but the scores"),
        ((torch.randn(3, 8), torch.randn(4, 8), torch.randn(4, 2)), {"scale": 0.0},
         r"scale must be a positive"),
        ((torch.randn(3, 8), torch.randn(4, 8), torch.randn(4, 2)), {"dropout_p": 1.0},
         r"dropout_p must lie in \[0, 1\)"),
    ],
)
def test_attention_errors_name_the_problem(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        attention(*args, **kwargs)


def test_attention_rejects_non_tensors():
    with pytest.raises(TypeError, match="q must be a torch.Tensor, got ndarray"):
        attention(np.ones((2, 2)), torch.ones(2, 2), torch.ones(2, 2))


def test_softmax_and_mask_errors():
    with pytest.raises(ValueError, match="dim=2 is out of range for an input of shape"):
        softmax(torch.ones(2, 2), dim=2)
    with pytest.raises(ValueError, match="real numbers"):
        softmax(np.array([True, False]))
    with pytest.raises(ValueError, match="empty dim"):
        softmax(np.ones((2, 0)))
    with pytest.raises(ValueError, match="scalar"):
        softmax(np.float64(1.0))
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        masked_softmax(torch.ones(2, 3), torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"does not broadcast to the scores of shape \(2, 3\)"):
        masked_softmax(torch.ones(2, 3), torch.ones(3, 2, dtype=torch.bool))


def test_score_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"w_q must be \(7, 5\) and w_k must be \(7, 6\)"):
        additive_scores(torch.ones(3, 5), torch.ones(4, 6), torch.ones(7, 4), torch.ones(7, 6),
                        torch.ones(7))
    with pytest.raises(ValueError, match=r"w must be \(Dq, Dk\) = \(5, 6\)"):
        general_scores(torch.ones(3, 5), torch.ones(4, 6), torch.ones(6, 5))


# -------------------------------------------------------------- grouped-query attention


@pytest.mark.parametrize("H, H_kv", [(4, 1), (4, 2), (6, 3), (4, 4)])
@pytest.mark.parametrize("need_weights", [False, True])
def test_grouped_query_attention_equals_sdpa_enable_gqa(H, H_kv, need_weights):
    g = torch.Generator().manual_seed(H * 10 + H_kv)
    q = torch.randn(2, H, 5, 8, generator=g)
    k, v = torch.randn(2, H_kv, 7, 8, generator=g), torch.randn(2, H_kv, 7, 3, generator=g)
    mask = torch.rand(2, 1, 5, 7, generator=g) > 0.3
    cases = [({}, {}), ({"causal": True}, {"is_causal": True}),
             ({"mask": mask}, {"attn_mask": mask}), ({"scale": 0.3}, {"scale": 0.3})]
    for ours_kw, ref_kw in cases:
        ref = F.scaled_dot_product_attention(q, k, v, enable_gqa=True, **ref_kw)
        out = attention(q, k, v, need_weights=need_weights, **ours_kw)
        out = out[0] if need_weights else out
        torch.testing.assert_close(out, ref)


def test_grouped_query_head_h_reads_kv_head_h_over_group_size():
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, n, 4, 8, generator=g) for n in (6, 2, 2))
    out, w = attention(q, k, v, need_weights=True)
    assert w.shape == (1, 6, 4, 4) and out.shape == (1, 6, 4, 8)
    for h in range(6):
        ref, ref_w = attention(q[:, h], k[:, h // 3], v[:, h // 3], need_weights=True)
        torch.testing.assert_close(out[:, h], ref)
        torch.testing.assert_close(w[:, h], ref_w)
    assert kv_groups(q, k) == 3 and kv_groups(q, q) == 1


def test_grouped_query_gradients_match_repeated_keys():
    g = torch.Generator().manual_seed(6)
    q = torch.randn(2, 4, 5, 8, generator=g, requires_grad=True)
    k = torch.randn(2, 2, 5, 8, generator=g, requires_grad=True)
    v = torch.randn(2, 2, 5, 8, generator=g, requires_grad=True)
    attention(q, k, v, causal=True).square().sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    kr, vr = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
    attention(q, kr, vr, causal=True).square().sum().backward()
    for ours, ref in zip(grads, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(ours, ref)


def test_grouped_query_errors_name_the_heads():
    q, k = torch.randn(1, 6, 3, 8), torch.randn(1, 4, 3, 8)
    with pytest.raises(ValueError, match=r"H=6 query heads must be a multiple of the H_kv=4"):
        attention(q, k, k)
    with pytest.raises(ValueError, match=r"k and v must agree"):
        attention(q, torch.randn(1, 2, 3, 8), torch.randn(1, 3, 3, 8))
    with pytest.raises(ValueError, match=r"leading \(batch, head\) dimensions"):
        attention(torch.randn(2, 4, 3, 8), torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_naive_attention_equals_sdpa_and_keeps_the_dtype(dtype):
    from attnlab.functional import naive_attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 16, generator=g).to(dtype) for n in (5, 9, 9))
    out = naive_attention(q, k, v)  # (2, 3, 5, 16)
    assert out.dtype == dtype and out.shape == (2, 3, 5, 16)
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(out.double(), ref, atol=tol, rtol=tol)
    assert not torch.allclose(naive_attention(q, k.flip(-2), v).double(), ref, atol=tol)
