"""attnlab.models.sasrec: shapes, causality, padding, the loss, the baselines, a model that
learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.metrics import hit_rate_at_k
from attnlab.models.sasrec import (
    MarkovRecommender,
    PopularityRecommender,
    SASRec,
    SASRecConfig,
    next_item_loss,
)
from attnlab.train import TrainConfig, fit
from attnlab.utils import set_seed


def small_model(**kwargs) -> SASRec:
    set_seed(0)
    return SASRec(SASRecConfig(num_items=20, max_len=8, dim=16, ff_dim=32, **kwargs)).eval()


def test_shapes_padding_column_and_score():
    model = small_model()
    ids = torch.tensor([[0, 0, 0, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7, 8]])
    logits, weights = model(ids, need_weights=True)
    assert logits.shape == (2, 8, 21) and weights.shape == (2, 2, 2, 8, 8)
    assert bool(torch.isneginf(logits[..., 0]).all())
    assert bool(torch.isfinite(logits[..., 1:]).all())
    torch.testing.assert_close(model.score(ids), logits[:, -1])
    torch.testing.assert_close(model(ids), logits)


def test_attention_is_causal_and_ignores_padding():
    model = small_model()
    ids = torch.tensor([[0, 0, 0, 3, 4, 5, 6, 7]])
    _, w = model(ids, need_weights=True)  # (1, L, H, T, T)
    assert bool((w.triu(diagonal=1) == 0).all())  # no query sees a later key
    assert bool((w[..., :3] == 0).all())  # no query sees a padded key
    real_rows = w[..., 3:, :].sum(-1)
    torch.testing.assert_close(real_rows, torch.ones_like(real_rows))
    assert bool((w[..., :3, :] == 0).all())  # padded queries attend to nothing: zeros, not NaN
    later = ids.clone()
    later[0, -1] = 11  # change the last item: earlier positions' outputs must not change
    torch.testing.assert_close(model(later)[:, :-1], model(ids)[:, :-1])
    assert not torch.allclose(model(later)[:, -1], model(ids)[:, -1])


def test_scores_do_not_depend_on_how_much_padding():
    model = small_model()
    history = torch.tensor([[0, 0, 0, 3, 4, 5, 6, 7]])
    short = history[:, -5:]  # the same history, less left padding
    shorter = history[:, 3:]  # no padding at all
    torch.testing.assert_close(model.score(short), model.score(history))
    torch.testing.assert_close(model.score(shorter), model.score(history))


def test_score_keeps_the_training_mode_and_has_no_gradient():
    model = small_model(dropout=0.5).train()
    s = model.score(torch.tensor([[1, 2, 3]]))
    assert model.training and not s.requires_grad
    torch.testing.assert_close(s, model.eval().score(torch.tensor([[1, 2, 3]])))


def test_next_item_loss_is_cross_entropy_over_real_items():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 6, generator=g)
    targets = torch.tensor([[0, 2, 5], [1, 1, 0]])
    real = targets > 0
    want = F.cross_entropy(logits[real][:, 1:], targets[real] - 1)
    torch.testing.assert_close(next_item_loss(logits, targets), want)
    padded = logits.clone()
    padded[..., 0] = float("-inf")  # the model's padding column changes nothing
    torch.testing.assert_close(next_item_loss(padded, targets), want)
    with pytest.raises(ValueError, match=r"logits must be \(B, T, V \+ 1\)"):
        next_item_loss(logits, targets[:, :2])


def test_sasrec_learns_to_look_two_steps_back():
    """Each sequence alternates two random items (a b a b ...): the next item is the one two
    steps back, which no first-order Markov chain can know."""
    V, T = 16, 8

    def batch(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.randint(1, V + 1, (n,), generator=g)
        b = (a + torch.randint(1, V, (n,), generator=g) - 1) % V + 1  # another item than a
        seq = torch.stack([a, b], dim=1)[:, torch.arange(T + 1) % 2]  # (n, T + 1)
        return seq[:, :-1], seq[:, 1:]

    set_seed(0)
    model = SASRec(SASRecConfig(num_items=V, max_len=T, dim=32, ff_dim=64, num_layers=1,
                                dropout=0.0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds overhead
    try:
        fit(model, lambda step, g: batch(64, g), lambda m, b: next_item_loss(m(b[0]), b[1]),
            TrainConfig(steps=150, lr=1e-2, warmup=10, device="cpu", progress=False))
    finally:
        torch.set_num_threads(threads)
    x, y = batch(200, torch.Generator().manual_seed(1))
    hr1 = float(hit_rate_at_k(model.score(x), y[:, -1], k=1))
    markov = MarkovRecommender(V).fit(torch.cat([x, y[:, -1:]], 1))
    assert hr1 > 0.95
    assert float(hit_rate_at_k(markov.score(x), y[:, -1], k=1)) < 0.3


def test_popularity_and_markov_on_hand_made_sessions():
    items = torch.tensor([[0, 1, 2, 3], [1, 2, 1, 2], [0, 0, 3, 2]])
    pop = PopularityRecommender(4).fit(items)
    counts = torch.tensor([0, 3, 4, 2, 0]) / 9
    torch.testing.assert_close(pop.score(torch.tensor([[0, 1], [3, 3]]))[:, 1:],
                               counts[1:].float().expand(2, -1))
    mc = MarkovRecommender(4, smoothing=0.0).fit(items)
    s = mc.score(torch.tensor([[0, 1], [0, 2], [0, 4], [0, 0]]))
    # 1 -> 2 three times; 2 -> 3 once, 2 -> 1 once; 3 -> 2 once; item 4 never seen: popularity
    torch.testing.assert_close(s[0, 1:], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(s[1, 1:], torch.tensor([0.5, 0.0, 0.5, 0.0]))
    torch.testing.assert_close(s[2, 1:], counts[1:].float())
    torch.testing.assert_close(s[3, 1:], counts[1:].float())  # an empty history
    assert bool(torch.isneginf(s[:, 0]).all())
    beta = 2.0
    smooth = MarkovRecommender(4, smoothing=beta).fit(items).score(torch.tensor([[2]]))[0, 1:]
    want = (torch.tensor([1.0, 0.0, 1.0, 0.0]) + beta * counts[1:]) / (2 + beta)
    torch.testing.assert_close(smooth, want.float())
    torch.testing.assert_close(smooth.sum(), torch.tensor(1.0))


def test_clear_errors():
    with pytest.raises(ValueError, match="dim=30 must be a multiple of num_heads=4"):
        SASRecConfig(num_items=5, dim=30, num_heads=4)
    with pytest.raises(ValueError, match="num_items must be a positive integer"):
        SASRecConfig(num_items=0)
    model = small_model()
    with pytest.raises(ValueError, match=r"ids must be a \(B, T\) tensor of item ids"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"ids outside \[0, V=20\]"):
        model(torch.tensor([[1, 21]]))
    with pytest.raises(ValueError, match="T=9 > max_len=8"):
        model(torch.ones(1, 9, dtype=torch.long))
    with pytest.raises(RuntimeError, match="call fit"):
        MarkovRecommender(3).score(torch.tensor([[1]]))
    with pytest.raises(RuntimeError, match="call fit"):
        PopularityRecommender(3).score(torch.tensor([[1]]))
    with pytest.raises(ValueError, match="only padding"):
        PopularityRecommender(3).fit(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer item ids"):
        MarkovRecommender(3).fit(torch.ones(2, 3))
