"""attnlab.analysis: attention rollout on hand-made cases, against a naive loop, and its errors."""

from __future__ import annotations

import pytest
import torch

from attnlab.analysis import attention_rollout
from attnlab.models.vit import ViT, ViTConfig


def random_weights(*shape, seed=0):
    """Rows that sum to 1: a softmax of random scores, (..., T, T)."""
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def naive_rollout(w: torch.Tensor, residual: float = 0.5, fusion: str = "mean") -> torch.Tensor:
    """One example (L, H, T, T) with explicit loops over layers, heads and entries."""
    L, H, T, _ = w.shape
    result = torch.eye(T, dtype=w.dtype)
    for layer in range(L):
        a = torch.zeros(T, T, dtype=w.dtype)
        for i in range(T):
            for j in range(T):
                values = [float(w[layer, h, i, j]) for h in range(H)]
                a[i, j] = {"mean": sum(values) / H, "max": max(values),
                           "min": min(values)}[fusion]
        a = residual * torch.eye(T, dtype=w.dtype) + (1 - residual) * a
        a = a / a.sum(dim=1, keepdim=True)
        new = torch.zeros(T, T, dtype=w.dtype)
        for i in range(T):  # new = a @ result, written out
            for j in range(T):
                new[i, j] = sum(a[i, k] * result[k, j] for k in range(T))
        result = new
    return result


def test_hand_made_cases():
    to_first = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # (H=1, T=2, T=2)
    two = torch.stack([to_first, to_first])  # (L=2, H=1, T, T)
    torch.testing.assert_close(attention_rollout(two), torch.tensor([[1.0, 0.0], [0.75, 0.25]]))
    torch.testing.assert_close(attention_rollout(two, residual=0.0), to_first[0])
    torch.testing.assert_close(attention_rollout(two, residual=1.0), torch.eye(2))
    # attending to oneself changes nothing: the identity, whatever the residual
    eye = torch.eye(4).expand(3, 2, 4, 4)
    torch.testing.assert_close(attention_rollout(eye, residual=0.3), torch.eye(4))
    # a uniform first layer without residual mixes all tokens: later layers cannot unmix them
    uniform = torch.full((1, 2, 3, 3), 1 / 3)
    stacked = torch.cat([uniform, random_weights(1, 2, 3, 3).float()])
    torch.testing.assert_close(attention_rollout(stacked, residual=0.0), torch.full((3, 3), 1 / 3))


def test_layers_multiply_latest_on_the_left():
    w = random_weights(2, 1, 5, 5, seed=1)
    a1, a2 = (0.5 * torch.eye(5, dtype=w.dtype) + 0.5 * w[i, 0] for i in (0, 1))
    torch.testing.assert_close(attention_rollout(w), a2 @ a1)
    assert not torch.allclose(attention_rollout(w), a1 @ a2)


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("residual", [0.0, 0.5, 0.9])
def test_equals_a_naive_loop(fusion, residual):
    w = random_weights(3, 4, 6, 6, seed=2)
    out = attention_rollout(w, residual=residual, head_fusion=fusion)
    torch.testing.assert_close(out, naive_rollout(w, residual, fusion))
    torch.testing.assert_close(out.sum(-1), torch.ones(6, dtype=w.dtype))


def test_batches_lists_and_inputs_untouched():
    w = random_weights(2, 3, 2, 4, 5, 5, seed=3)  # (B1, B2, L, H, T, T)
    before = w.clone()
    out = attention_rollout(w)
    assert out.shape == (2, 3, 5, 5)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(out[i, j], naive_rollout(w[i, j]))
    layers = [w[..., layer, :, :, :] for layer in range(w.shape[-4])]  # L tensors (.., H, T, T)
    torch.testing.assert_close(attention_rollout(layers), out)
    assert torch.equal(w, before)


def test_rows_that_attended_nothing_keep_themselves():
    w = random_weights(2, 2, 3, 3, seed=4)
    w[:, :, 1] = 0.0  # query 1 attended nothing (a fully masked row)
    out = attention_rollout(w, residual=0.0)
    assert torch.isfinite(out).all()
    out = attention_rollout(w)
    torch.testing.assert_close(out.sum(-1), torch.ones(3, dtype=w.dtype))


def test_on_a_vit():
    torch.manual_seed(0)
    model = ViT(ViTConfig()).eval()
    _, weights = model(torch.rand(4, 8, 8), need_weights=True)  # (B, L, H, T, T)
    rollout = attention_rollout(weights)
    assert rollout.shape == (4, 17, 17)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(4, 17))
    assert (rollout[:, 0, 1:] > 0).all()  # the class token draws on every patch


@pytest.mark.parametrize("weights, kwargs, match", [
    (torch.rand(2, 3, 3), {}, r"\(\.\.\., L, H, T, T\).*got \(2, 3, 3\)"),
    (torch.rand(1, 2, 3, 4), {}, r"square .* got \(1, 2, 3, 4\)"),
    (-torch.rand(1, 1, 3, 3), {}, "non-negative"),
    (torch.full((1, 1, 2, 2), float("nan")), {}, "finite"),
    (torch.ones(1, 1, 2, 2, dtype=torch.long), {}, "floating point"),
    (torch.rand(1, 1, 2, 2), {"residual": 1.5}, r"\[0, 1\]"),
    (torch.rand(1, 1, 2, 2), {"head_fusion": "sum"}, "'mean', 'max' or 'min'"),
    ([torch.rand(1, 2, 2), torch.rand(1, 3, 3)], {}, "share one shape"),
    ([], {}, "non-empty sequence"),
])
def test_errors(weights, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_rollout(weights, **kwargs)
