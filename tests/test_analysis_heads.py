"""attnlab.analysis: entropy, head masking, importance, pruning and attributions, by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attnlab.analysis import (
    attention_entropy,
    attention_layers,
    gradient_x_input,
    head_importance,
    head_order,
    mask_heads,
    occlusion,
    prunable_heads,
    pruning_curve,
    rank_correlation,
    record_attention,
)
from attnlab.layers import MultiHeadAttention
from attnlab.models import GPT, GPTConfig
from attnlab.models.vit import ViT, ViTConfig

# ------------------------------------------------------------------------- entropy


def test_entropy_of_uniform_and_one_hot_rows():
    S = 5
    uniform = torch.full((3, S), 1 / S)
    torch.testing.assert_close(attention_entropy(uniform), torch.full((3,), math.log(S)))
    torch.testing.assert_close(attention_entropy(uniform, base=2), torch.full((3,), math.log2(S)))
    one_hot = torch.eye(S)  # (T=S, S)
    out = attention_entropy(one_hot)
    assert torch.isfinite(out).all()  # 0 log 0 counts as 0, not NaN
    assert torch.equal(out, torch.zeros(S))
    assert not torch.signbit(out).any()  # no -0.0


def test_entropy_against_a_naive_sum_and_axis():
    g = torch.Generator().manual_seed(0)
    w = torch.softmax(torch.randn(2, 3, 4, 6, generator=g, dtype=torch.float64), -1)
    w[0, 0, 0, :2] = 0.0  # some keys masked
    w[0, 0, 0] /= w[0, 0, 0].sum()
    out = attention_entropy(w)
    assert out.shape == (2, 3, 4)  # one entropy per query: the key axis is summed
    naive = torch.zeros(2, 3, 4, dtype=torch.float64)
    for idx in torch.cartesian_prod(torch.arange(2), torch.arange(3), torch.arange(4)).tolist():
        naive[tuple(idx)] = -sum(p * math.log(p) for p in w[tuple(idx)].tolist() if p > 0)
    torch.testing.assert_close(out, naive)
    # a row that attended nothing has entropy 0
    assert float(attention_entropy(torch.zeros(1, 4))[0]) == 0.0


@pytest.mark.parametrize("weights, kwargs, match", [
    (torch.rand(3), {}, r"\(\.\.\., T, S\)"),
    (-torch.rand(2, 2), {}, "non-negative"),
    (torch.ones(2, 2, dtype=torch.long), {}, "floating point"),
    (torch.rand(2, 2), {"base": 1}, "base"),
    (torch.rand(2, 2), {"base": -2.0}, "base"),
])
def test_entropy_errors(weights, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_entropy(weights, **kwargs)


# --------------------------------------------------------------------- head masking


def per_head_outputs(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Head h's contribution head_h W^O_h to the output, (H, B, T, C), by hand (no bias)."""
    q, k, v = (mha.split_heads(t) for t in mha.in_proj(x).split(mha.embed_dim, -1))
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(mha.head_dim), -1)  # (B, H, T, T)
    heads = w @ v  # (B, H, T, D)
    D = mha.head_dim
    wo = mha.out_proj.weight  # (C, C)
    return torch.stack([heads[:, h] @ wo[:, h * D:(h + 1) * D].T for h in range(mha.num_heads)])


def test_masking_a_head_removes_exactly_its_contribution():
    torch.manual_seed(0)
    mha = MultiHeadAttention(12, num_heads=3).requires_grad_(False)
    x = torch.randn(2, 5, 12)
    parts = per_head_outputs(mha, x)  # (H, B, T, C)
    full = mha(x)
    torch.testing.assert_close(full, parts.sum(0) + mha.out_proj.bias)
    for h in range(3):
        with mask_heads(mha, [(0, h)]):
            masked = mha(x)
        torch.testing.assert_close(full - masked, parts[h])  # only head h's share is gone
    with mask_heads(mha, [(0, 0), (0, 2)]):
        torch.testing.assert_close(mha(x), parts[1] + mha.out_proj.bias)
    with mask_heads(mha, []):
        torch.testing.assert_close(mha(x), full)


def test_mask_heads_removes_its_hooks_and_keeps_the_parameters():
    torch.manual_seed(1)
    model = ViT(ViTConfig()).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(3, 8, 8)
    with torch.no_grad():
        full = model(x)
        with mask_heads(model, [(1, 2)]):
            changed = model(x)
        again = model(x)
    assert not torch.allclose(full, changed)
    torch.testing.assert_close(again, full)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    with pytest.raises(RuntimeError), mask_heads(model, [(0, 0)]):
        raise RuntimeError("an error inside the block")
    with torch.no_grad():
        torch.testing.assert_close(model(x), full)  # removed even after an error


def test_masking_a_later_layer_leaves_earlier_weights():
    torch.manual_seed(2)
    model = ViT(ViTConfig()).eval()
    x = torch.rand(2, 8, 8)
    with torch.no_grad():
        _, w = model(x, need_weights=True)
        with mask_heads(model, [(1, 0), (1, 3)]):
            _, w_masked = model(x, need_weights=True)
    torch.testing.assert_close(w_masked[:, 0], w[:, 0])  # layer 0 cannot see layer 1's heads
    torch.testing.assert_close(w_masked[:, 1], w[:, 1])  # and layer 1's weights come before


@pytest.mark.parametrize("heads, match", [
    ([(2, 0)], "layer 2 out of range"),
    ([(0, 4)], "head 4 out of range"),
    ([(0,)], r"\(layer, head\) pairs"),
])
def test_mask_heads_errors(heads, match):
    model = ViT(ViTConfig())
    with pytest.raises(ValueError, match=match), mask_heads(model, heads):
        pass


def test_mask_heads_needs_attention():
    with pytest.raises(ValueError, match="no MultiHeadAttention"), \
            mask_heads(nn.Linear(2, 2), [(0, 0)]):
        pass


# -------------------------------------------------------------- recording attention


def test_record_attention_on_a_gpt_matches_the_layers_own_weights():
    torch.manual_seed(3)
    gpt = GPT(GPTConfig(vocab_size=7, block_size=6, n_embd=16, n_head=2)).eval()
    ids = torch.randint(0, 7, (4, 6))
    with torch.no_grad():
        plain = gpt(ids)
        with record_attention(gpt) as weights:
            recorded = gpt(ids)
    torch.testing.assert_close(recorded, plain)  # the output is what the caller asked for
    assert len(weights) == 2 and weights[0].shape == (4, 2, 6, 6)
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones(4, 2, 6))
        assert (w.triu(1) == 0).all()  # causal: nothing on the future
    # by hand: layer 0's weights from its own input
    block = gpt.blocks[0]
    h = block.norm1(gpt.pos_embed(gpt.tok_embed(ids)))
    _, w0 = block.self_attn(h, causal=True, need_weights=True)
    torch.testing.assert_close(weights[0], w0.detach())
    # a caller that asks for weights still gets them
    model = ViT(ViTConfig()).eval()
    with torch.no_grad(), record_attention(model) as vit_weights:
        _, w = model(torch.rand(2, 8, 8), need_weights=True)
    torch.testing.assert_close(torch.stack(vit_weights, 1), w)
    assert len(attention_layers(model)) == 2


# -------------------------------------------------------- importance and pruning


class OneHeadDecides(nn.Module):
    """A MultiHeadAttention whose score is the norm of head 1's output only."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.attn = MultiHeadAttention(6, num_heads=3, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.attn.out_proj.weight.zero_()
            self.attn.out_proj.weight[:, 2:4] = torch.randn(6, 2)  # only head 1 reaches out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x)


def test_head_importance_finds_the_one_head_that_matters():
    model = OneHeadDecides()
    x = torch.randn(2, 4, 6)
    base, imp = head_importance(model, lambda m: float(m(x).norm()))
    assert base > 0
    assert imp.shape == (1, 3)
    torch.testing.assert_close(imp, torch.tensor([[0.0, base, 0.0]], dtype=torch.float64))
    order = head_order(imp)
    assert order[-1].tolist() == [0, 1]  # the most important last
    curve = pruning_curve(model, order, lambda m: float(m(x).norm()))
    assert curve[:3] == [base, base, base] and curve[3] == 0.0
    assert prunable_heads(curve, tolerance=0.0) == 2


def test_head_order_is_stable_and_row_major():
    imp = torch.tensor([[0.5, 0.1], [0.1, -0.2], [0.3, 0.0]])  # (L=3, H=2)
    assert head_order(imp).tolist() == [[1, 1], [2, 1], [0, 1], [1, 0], [2, 0], [0, 0]]
    with pytest.raises(ValueError, match=r"\(L, H\)"):
        head_order(torch.rand(4))


def test_prunable_heads():
    assert prunable_heads([0.9, 0.9, 0.9]) == 2
    assert prunable_heads([0.9, 0.85, 0.9]) == 0  # stops at the first fall
    assert prunable_heads([0.9, 0.895, 0.89, 0.88], tolerance=0.01) == 2
    with pytest.raises(ValueError, match="empty"):
        prunable_heads([])
    with pytest.raises(ValueError, match="tolerance"):
        prunable_heads([1.0], tolerance=-0.1)


def test_pruning_curve_errors():
    model = OneHeadDecides()
    with pytest.raises(ValueError, match="twice"):
        pruning_curve(model, [(0, 1), (0, 1)], lambda m: 0.0)
    with pytest.raises(ValueError, match="out of range"):
        pruning_curve(model, [(0, 3)], lambda m: 0.0)


def test_head_importance_needs_one_head_count():
    model = nn.Sequential(MultiHeadAttention(4, 2), MultiHeadAttention(4, 4))
    with pytest.raises(ValueError, match="different head counts"):
        head_importance(model, lambda m: 0.0)


# ------------------------------------------------------------------ attributions


class LinearBag(nn.Module):
    """Embeds tokens and scores a sequence by a fixed linear read-out of their sum:
    token t's exact contribution is e_t . w, and the score is their total."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.embed = nn.Embedding(6, 3)
        self.readout = nn.Linear(3, 1, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.readout(self.embed(ids).sum(1))  # (B, 1)


def test_gradient_x_input_is_exact_for_a_linear_model():
    model = LinearBag()
    ids = torch.tensor([[0, 3, 5, 1], [2, 2, 4, 0]])
    out = gradient_x_input(model, ids, model.embed, lambda y: y[:, 0])
    expected = model.embed(ids) @ model.readout.weight[0]  # (B, T)
    torch.testing.assert_close(out, expected.detach())
    assert out.shape == (2, 4) and not out.requires_grad
    assert all(p.grad is None for p in model.parameters())  # parameters' grads untouched


def test_gradient_x_input_errors():
    model = LinearBag()
    ids = torch.tensor([[0, 1]])
    with pytest.raises(ValueError, match=r"\(B,\)"):
        gradient_x_input(model, ids, model.embed, lambda y: y)
    with pytest.raises(ValueError, match="ran 0 times"):
        gradient_x_input(model, ids, nn.Linear(3, 3), lambda y: y[:, 0])


class AnswerAfterMarker(nn.Module):
    """A hand-written classifier: the class is the token right after the marker (id 9),
    read with hard attention; its prediction depends on exactly two known tokens."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        after = torch.roll(ids == 9, 1, dims=1)  # (B, T): True right after a marker
        after[:, 0] = False
        value = torch.where(after, ids, torch.zeros_like(ids)).sum(1)  # (B,)
        found = after.any(1)
        logits = torch.full((ids.shape[0], 9), -5.0)
        logits[found, value[found]] = 5.0
        return logits


def test_occlusion_finds_the_decisive_tokens():
    model = AnswerAfterMarker()
    ids = torch.tensor([[1, 2, 9, 4, 8, 3], [9, 7, 8, 8, 2, 1]])
    blank = 8
    pred = model(ids).argmax(-1)  # [4, 7]
    assert pred.tolist() == [4, 7]

    def score(x):
        return model(x).log_softmax(-1)[torch.arange(len(x)), pred.repeat_interleave(
            len(x) // len(pred))]

    drops = occlusion(score, ids, blank)
    assert drops.shape == (2, 6)
    decisive = (drops > 1e-6).nonzero().tolist()
    assert decisive == [[0, 2], [0, 3], [1, 0], [1, 1]]  # the marker and the answer only
    # a subset of positions, in the order given
    torch.testing.assert_close(occlusion(score, ids, blank, positions=[3, 0]), drops[:, [3, 0]])
    # inputs are not modified
    assert ids.tolist() == [[1, 2, 9, 4, 8, 3], [9, 7, 8, 8, 2, 1]]


def test_occlusion_of_patches_with_a_tensor_replacement():
    patches = torch.arange(24.0).reshape(1, 3, 8)  # (B=1, N=3, 8 pixels)
    drops = occlusion(lambda x: x.sum(dim=(1, 2)), patches, torch.zeros(8))
    torch.testing.assert_close(drops, patches.sum(-1))  # removing patch n loses its ink


@pytest.mark.parametrize("kwargs, match", [
    ({"inputs": torch.tensor([1, 2])}, r"\(B, T, \.\.\.\)"),
    ({"positions": [5]}, "positions"),
    ({"score_fn": lambda x: x.float()}, r"\(B,\)"),
])
def test_occlusion_errors(kwargs, match):
    args = {"score_fn": lambda x: x.sum(-1).float(), "inputs": torch.tensor([[1, 2]]),
            "replacement": 0} | kwargs
    with pytest.raises(ValueError, match=match):
        occlusion(**args)


def test_rank_correlation():
    a = torch.tensor([[0.1, 0.4, 0.2, 0.9], [1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[1.0, 5.0, 2.0, 7.0], [4.0, 3.0, 2.0, 1.0]])
    torch.testing.assert_close(rank_correlation(a, b), torch.tensor([1.0, -1.0],
                                                                    dtype=torch.float64))
    # against the textbook formula 1 - 6 sum d^2 / (n (n^2 - 1)) without ties
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(50, generator=g), torch.randn(50, generator=g)
    d = (x.argsort().argsort() - y.argsort().argsort()).double()
    torch.testing.assert_close(rank_correlation(x, y), 1 - 6 * (d ** 2).sum() / (50 * 2499))
    # ties share their average rank; a constant row gives NaN
    tied = rank_correlation(torch.tensor([1.0, 1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(tied, torch.tensor(math.sqrt(3) / 2, dtype=torch.float64))
    assert torch.isnan(rank_correlation(torch.ones(3), torch.tensor([1.0, 2.0, 3.0])))
    with pytest.raises(ValueError, match="one shape"):
        rank_correlation(torch.rand(3), torch.rand(4))
    with pytest.raises(ValueError, match="N >= 2"):
        rank_correlation(torch.rand(2, 1), torch.rand(2, 1))
