"""attnlab.metrics: ranks with ties against the target, HR@k and NDCG@k on hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.metrics import (
    accuracy,
    hit_rate_at_k,
    model_accuracy,
    ndcg_at_k,
    target_ranks,
)


def naive_ranks(scores: torch.Tensor, targets: torch.Tensor) -> list[int]:
    """Position of the target in a list sorted by score, with ties placed before it."""
    ranks = []
    for row, t in zip(scores.tolist(), targets.tolist()):
        ahead = [j for j, s in enumerate(row) if j != t and s >= row[t]]
        ranks.append(len(ahead))
    return ranks


def test_ranks_on_hand_made_cases():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3],   # target 1 is first
                           [0.1, 0.9, 0.5, 0.3],   # target 0 is last
                           [0.2, 0.2, 0.2, 0.2],   # all tied: ranked last
                           [0.7, 0.2, 0.7, 0.1]])  # tied with one other
    targets = torch.tensor([1, 0, 3, 2])
    assert target_ranks(scores, targets).tolist() == [0, 3, 3, 1]


def test_hit_rate_and_ndcg_on_hand_made_ranks():
    # twelve candidates with scores 12, 11, ..., 1: the target at index j has rank j
    V = 12
    scores = torch.arange(V, 0, -1, dtype=torch.float32).expand(5, V)
    targets = torch.tensor([0, 1, 2, 9, 10])  # ranks 0, 1, 2, 9, 10
    assert hit_rate_at_k(scores, targets, k=10, reduction="none").tolist() == [1, 1, 1, 1, 0]
    assert float(hit_rate_at_k(scores, targets, k=10)) == pytest.approx(0.8)
    assert float(hit_rate_at_k(scores, targets, k=1)) == pytest.approx(0.2)
    ndcg = ndcg_at_k(scores, targets, k=10, reduction="none").tolist()
    want = [1.0, 1 / math.log2(3), 0.5, 1 / math.log2(11), 0.0]
    assert ndcg == pytest.approx(want, abs=1e-6)
    assert float(ndcg_at_k(scores, targets, k=10)) == pytest.approx(sum(want) / 5, abs=1e-6)
    assert float(ndcg_at_k(scores, targets, k=3)) == pytest.approx(sum(want[:3]) / 5, abs=1e-6)


def test_ranks_match_a_naive_reference_and_argsort():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (200, 30), generator=g).float()  # many ties
    targets = torch.randint(0, 30, (200,), generator=g)
    assert target_ranks(scores, targets).tolist() == naive_ranks(scores, targets)
    distinct = torch.randn(50, 30, generator=g)  # no ties: the position in a descending sort
    order = distinct.argsort(dim=1, descending=True)
    position = (order == targets[:50, None]).float().argmax(dim=1)
    assert torch.equal(target_ranks(distinct, targets[:50]), position)


def test_metrics_agree_with_ranks_and_ignore_minus_inf_candidates():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(100, 40, generator=g)
    targets = torch.randint(1, 40, (100,), generator=g)
    ranks = target_ranks(scores, targets)
    for k in (1, 5, 10, 40):
        assert torch.equal(hit_rate_at_k(scores, targets, k, "none"), (ranks < k).float())
        nd = ndcg_at_k(scores, targets, k, "none")
        assert torch.allclose(nd, torch.where(ranks < k, 1 / torch.log2(ranks + 2.0), 0.0))
    masked = scores.clone()
    masked[:, 0] = float("-inf")  # a candidate that is never recommended (padding)
    lower = (scores[:, 0:1] >= scores.gather(1, targets[:, None]))[:, 0].long()
    assert torch.equal(target_ranks(masked, targets), ranks - lower)
    assert float(hit_rate_at_k(scores, targets, k=40)) == 1.0
    assert torch.equal(scores, torch.randn(100, 40, generator=torch.Generator().manual_seed(1)))


def test_constant_scores_rank_the_target_last():
    scores = torch.zeros(3, 50)
    assert float(hit_rate_at_k(scores, torch.tensor([0, 7, 49]), k=10)) == 0.0


def test_clear_errors():
    s, t = torch.randn(4, 6), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"scores must be \(B, V\)"):
        target_ranks(torch.randn(6), t)
    with pytest.raises(ValueError, match=r"targets must be \(B,\) = \(4,\)"):
        target_ranks(s, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, V=6\)"):
        target_ranks(s, torch.tensor([0, 1, 2, 6]))
    with pytest.raises(ValueError, match="integer indices"):
        target_ranks(s, t.float())
    with pytest.raises(ValueError, match="floating point"):
        target_ranks(torch.ones(4, 6, dtype=torch.long), t)
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(torch.full((4, 6), float("nan")), t)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        hit_rate_at_k(s, t, k=0)
    with pytest.raises(ValueError, match="reduction must be"):
        ndcg_at_k(s, t, k=2, reduction="sum")


def test_accuracy_of_labels_and_of_scores_against_a_loop():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(5, 7, 4, generator=gen)                 # (B, T, K)
    targets = torch.randint(0, 4, (5, 7), generator=gen)         # (B, T)
    labels = scores.argmax(-1)
    by_hand = sum(int(p == t) for p, t in zip(labels.flatten().tolist(),
                                              targets.flatten().tolist())) / targets.numel()
    assert accuracy(scores, targets) == pytest.approx(by_hand)
    assert accuracy(labels, targets) == accuracy(scores, targets)
    assert accuracy(targets, targets) == 1.0 and accuracy((targets + 1) % 4, targets) == 0.0


def test_accuracy_leaves_out_the_ignored_targets():
    predictions = torch.tensor([[1, 2, 3, 0]])
    targets = torch.tensor([[1, 0, -100, -100]])
    assert accuracy(predictions, targets, ignore_index=-100) == 0.5
    assert accuracy(predictions, targets) == 0.25
    with pytest.raises(ValueError, match="at least one target not equal to -100"):
        accuracy(predictions, torch.full((1, 4), -100), ignore_index=-100)


@pytest.mark.parametrize("predictions, targets, message", [
    (torch.zeros(3, 2), torch.zeros(4, dtype=torch.long), r"scores \(4, K\) .* got \(3, 2\)"),
    (torch.zeros(3), torch.zeros(3, dtype=torch.long), "must be integer labels"),
    (torch.zeros(3, 2), torch.zeros(3), "targets must hold integer labels"),
    (torch.zeros(3, 0), torch.zeros(3, dtype=torch.long), "no class"),
    ([1, 2], torch.zeros(2, dtype=torch.long), "predictions must be a tensor"),
])
def test_accuracy_names_what_is_wrong(predictions, targets, message):
    with pytest.raises(ValueError, match=message):
        accuracy(predictions, targets)


def test_model_accuracy_calls_the_model_without_gradients_on_one_or_more_inputs():
    class Sum(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, a, b=None):
            out = self.scale * (a if b is None else a + b)           # (N, K)
            assert out.requires_grad is False                        # no graph is built
            return out

    a = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 3.0]])
    b = torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([0, 2])
    model = Sum()
    assert model_accuracy(model, a, targets) == 1.0
    assert model_accuracy(model, (a, b), targets) == 0.5            # row 0 now says 1
    with pytest.raises(ValueError, match="model must be an nn.Module"):
        model_accuracy(lambda x: x, a, targets)
