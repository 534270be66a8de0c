"""attnlab.attribution: Michel et al.'s head-gradient proxy and integrated gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_analysis_heads import LinearBag  # the linear model both files test against
from torch import nn

from attnlab.analysis import (
    gradient_x_input,
    head_gradient_importance,
    integrated_gradients,
    mask_heads,
)
from attnlab.layers import MultiHeadAttention
from attnlab.models import GPT, GPTConfig

# --------------------------------------------------------- head-gradient importance


def small_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=7, block_size=6, n_layer=2, n_head=3, n_embd=12)).eval()


def test_proxy_is_exact_for_a_loss_linear_in_the_gates():
    # one layer and a linear loss: dL/d(xi_h) is head h's term, what masking removes
    torch.manual_seed(1)
    mha = MultiHeadAttention(6, num_heads=3)
    x = torch.randn(4, 5, 6)
    w = torch.randn(6)

    def per_example(m):
        return (m(x) @ w).sum(1)  # (B,)

    proxy = head_gradient_importance(mha, per_example)
    with torch.no_grad():
        full = per_example(mha)
        for h in range(3):
            with mask_heads(mha, [(0, h)]):
                term = full - per_example(mha)  # (B,): head h's share of each loss
            torch.testing.assert_close(proxy[0, h], term.abs().mean().double())
    assert proxy.dtype == torch.float64 and proxy.shape == (1, 3)


def test_proxy_takes_the_absolute_value_per_example():
    # the mean of |g| over the batch, not |mean g|: it equals B separate calls
    model = small_gpt()
    ids = torch.randint(0, 7, (5, 6), generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 7, (5,), generator=torch.Generator().manual_seed(1))

    def loss_on(rows):
        return lambda m: F.cross_entropy(m(ids[rows])[:, -1], target[rows], reduction="none")

    batch = head_gradient_importance(model, loss_on(slice(None)))
    one_by_one = torch.stack([head_gradient_importance(model, loss_on(slice(b, b + 1)))
                              for b in range(5)]).mean(0)
    torch.testing.assert_close(batch, one_by_one)
    # the gradient of the mean loss w.r.t. one shared gate is smaller: signs cancel
    assert batch.shape == (2, 3) and (batch > 0).all()
    assert all(p.grad is None for p in model.parameters())


def test_proxy_matches_a_finite_difference_of_a_shared_gate():
    model = small_gpt(2)
    ids = torch.randint(0, 7, (1, 6), generator=torch.Generator().manual_seed(3))

    def loss(m):
        return m(ids)[:, -1].logsumexp(-1)  # (1,)

    proxy = head_gradient_importance(model, loss)
    layer, head, eps = 1, 2, 1e-3
    D = model.blocks[layer].self_attn.head_dim

    def scaled(xi):
        keep = torch.ones(12)
        keep[head * D:(head + 1) * D] = xi
        handle = model.blocks[layer].self_attn.out_proj.register_forward_pre_hook(
            lambda _m, args: (args[0] * keep,))
        try:
            with torch.no_grad():
                return float(loss(model))
        finally:
            handle.remove()

    slope = (scaled(1 + eps) - scaled(1 - eps)) / (2 * eps)
    assert abs(proxy[layer, head].item() - abs(slope)) < 1e-3 * max(1.0, abs(slope))


def test_a_head_that_writes_nothing_gets_zero_and_normalize():
    model = small_gpt()
    D = model.blocks[0].self_attn.head_dim
    with torch.no_grad():  # head 1 of layer 0 cannot reach the output
        model.blocks[0].self_attn.out_proj.weight[:, D:2 * D] = 0.0
    ids = torch.randint(0, 7, (8, 6), generator=torch.Generator().manual_seed(0))

    def loss(m):
        return m(ids)[:, -1].logsumexp(-1)

    raw = head_gradient_importance(model, loss)
    assert raw[0, 1] == 0 and (raw[0, [0, 2]] > 0).all()
    unit = head_gradient_importance(model, loss, normalize=True)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(unit, raw / raw.norm(dim=1, keepdim=True))


def test_proxy_errors():
    model = small_gpt()
    ids = torch.zeros(3, 6, dtype=torch.long)
    with pytest.raises(ValueError, match=r"\(B,\) = \(3,\)"):
        head_gradient_importance(model, lambda m: m(ids)[:, -1].sum())
    with pytest.raises(ValueError, match="did not run"):
        head_gradient_importance(model, lambda m: torch.zeros(3))
    with pytest.raises(ValueError, match="no MultiHeadAttention"):
        head_gradient_importance(nn.Linear(2, 2), lambda m: torch.zeros(1))
    mixed = nn.Sequential(MultiHeadAttention(4, num_heads=2), MultiHeadAttention(4, num_heads=4))
    with pytest.raises(ValueError, match="different head counts"):
        head_gradient_importance(mixed, lambda m: torch.zeros(1))
    # the hooks are gone after an error
    assert all(not blk.self_attn.out_proj._forward_pre_hooks for blk in model.blocks)

# ------------------------------------------------------------- integrated gradients


def test_integrated_gradients_of_a_linear_model_is_gradient_x_input():
    model = LinearBag()
    ids = torch.tensor([[0, 3, 5, 1], [2, 2, 4, 0]])
    for steps in (1, 7):
        ig = integrated_gradients(model, ids, model.embed, lambda y: y[:, 0], steps=steps)
        torch.testing.assert_close(ig, gradient_x_input(model, ids, model.embed,
                                                        lambda y: y[:, 0]))
    # with a baseline, the difference from it is what is attributed
    base = model.embed.weight[4].detach()  # (C,): every token replaced by token 4
    ig = integrated_gradients(model, ids, model.embed, lambda y: y[:, 0], baseline=base)
    expected = (model.embed(ids) - base) @ model.readout.weight[0]  # (B, T)
    torch.testing.assert_close(ig, expected.detach())
    assert all(p.grad is None for p in model.parameters())


def test_integrated_gradients_is_complete_on_a_gpt():
    model = small_gpt(4)
    ids = torch.randint(0, 7, (6, 6), generator=torch.Generator().manual_seed(2))

    def score(logits):
        return logits[:, -1].log_softmax(-1)[:, 3]  # (B,)

    blanks = model.tok_embed(torch.full_like(ids, 6)).detach()  # (B, T, C)
    a, delta = integrated_gradients(model, ids, model.tok_embed, score, baseline=blanks,
                                    steps=64, return_delta=True)
    with torch.no_grad():
        f_x = score(model(ids))
        f_base = score(model(torch.full_like(ids, 6)))  # the baseline is that input
    torch.testing.assert_close(a.sum(-1) - (f_x - f_base), delta)
    assert delta.abs().max() < 1e-3 * (f_x - f_base).abs().max()
    # a coarse sum is further from complete than a fine one
    _, coarse = integrated_gradients(model, ids, model.tok_embed, score, baseline=blanks,
                                     steps=2, return_delta=True)
    assert coarse.abs().max() > 5 * delta.abs().max()
    # a token equal to its baseline gets nothing
    same = ids.clone()
    same[:, 2] = 6
    a = integrated_gradients(model, same, model.tok_embed, score, baseline=blanks)
    assert (a[:, 2] == 0).all()


def test_integrated_gradients_errors():
    model = LinearBag()
    ids = torch.tensor([[0, 1]])
    with pytest.raises(ValueError, match="steps"):
        integrated_gradients(model, ids, model.embed, lambda y: y[:, 0], steps=0)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        integrated_gradients(model, ids, model.embed, lambda y: y)
    with pytest.raises(ValueError, match="ran 0 times"):
        integrated_gradients(model, ids, nn.Linear(3, 3), lambda y: y[:, 0])
    with pytest.raises(ValueError, match="does not broadcast"):
        integrated_gradients(model, ids, model.embed, lambda y: y[:, 0],
                             baseline=torch.zeros(5))
    assert not model.embed._forward_hooks  # removed after each error
