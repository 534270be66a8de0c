"""attnlab.models.sasrec's neural baselines, GRU4Rec and MeanPoolRec: shapes, padding,
causality, order, the errors, and a model that learns."""

from __future__ import annotations

import pytest
import torch

from attnlab.metrics import hit_rate_at_k
from attnlab.models.sasrec import GRU4Rec, HistoryRecConfig, MeanPoolRec, next_item_loss
from attnlab.train import TrainConfig, fit
from attnlab.utils import set_seed

MODELS = [GRU4Rec, MeanPoolRec]


def small(cls, **kwargs):
    set_seed(0)
    return cls(HistoryRecConfig(num_items=20, dim=16, **kwargs)).eval()


@pytest.mark.parametrize("cls", MODELS)
def test_shapes_padding_column_and_score(cls):
    model = small(cls)
    ids = torch.tensor([[0, 0, 0, 3, 4, 5], [1, 2, 3, 4, 5, 6]])
    logits = model(ids)
    assert logits.shape == (2, 6, 21)
    assert bool(torch.isneginf(logits[..., 0]).all())
    assert bool(torch.isfinite(logits[..., 1:]).all())
    torch.testing.assert_close(model.score(ids), logits[:, -1])


@pytest.mark.parametrize("cls", MODELS)
def test_left_padding_changes_nothing(cls):
    model = small(cls)
    short = torch.tensor([[7, 3, 9]])
    padded = torch.tensor([[0, 0, 0, 0, 7, 3, 9]])
    torch.testing.assert_close(model(padded)[:, -3:], model(short))
    # a batch whose rows have different amounts of padding: each row as if alone
    batch = torch.tensor([[0, 0, 7, 3, 9], [1, 2, 7, 3, 9]])
    torch.testing.assert_close(model.score(batch)[0], model.score(short)[0])


@pytest.mark.parametrize("cls", MODELS)
def test_causal_the_future_does_not_change_the_past(cls):
    model = small(cls)
    a = torch.tensor([[0, 4, 5, 6, 7, 8]])
    b = a.clone()
    b[0, -1] = 19
    la, lb = model(a), model(b)
    torch.testing.assert_close(la[:, :-1], lb[:, :-1])
    assert not torch.allclose(la[:, -1, 1:], lb[:, -1, 1:])


def test_gru_reads_order_and_mean_pool_does_not():
    gru, mean = small(GRU4Rec), small(MeanPoolRec)
    a, b = torch.tensor([[3, 4, 5, 6]]), torch.tensor([[6, 5, 4, 3]])
    torch.testing.assert_close(mean.score(a), mean.score(b))
    assert not torch.allclose(gru.score(a)[:, 1:], gru.score(b)[:, 1:])


def test_mean_pool_is_the_running_mean_through_its_head():
    model = small(MeanPoolRec)
    ids = torch.tensor([[0, 2, 5, 11]])
    M = model.item_embed.weight
    h = model.norm(model.out(M[[2, 5, 11]].mean(0)))  # (C,)
    torch.testing.assert_close(model.score(ids)[0, 1:], (M @ h)[1:])


@pytest.mark.parametrize("kwargs, message", [
    ({"num_items": 0}, "num_items must be a positive integer"),
    ({"num_items": 5, "dim": True}, "dim must be a positive integer"),
    ({"num_items": 5, "dropout": 1.0}, r"dropout must lie in \[0, 1\)"),
])
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HistoryRecConfig(**kwargs)


@pytest.mark.parametrize("cls", MODELS)
def test_ids_out_of_range_are_an_error(cls):
    with pytest.raises(ValueError, match=r"outside \[0, V=20\]"):
        small(cls)(torch.tensor([[1, 21]]))


def test_gru_learns_what_came_two_steps_back():
    """The next item is the one two steps back: a GRU must remember, the mean pool cannot
    tell which of the history's items it is."""
    V, T = 12, 8
    g = torch.Generator().manual_seed(0)

    def sequences(n: int) -> torch.Tensor:
        start = torch.randint(1, V + 1, (n, 2), generator=g)
        return start.repeat(1, T // 2 + 1)[:, : T + 1]  # a b a b ... : (n, T + 1)

    def batch(step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        s = sequences(64)
        return s[:, :-1], s[:, 1:]

    test = sequences(200)
    hr = {}
    for cls in MODELS:
        set_seed(0)
        model = cls(HistoryRecConfig(num_items=V, dim=16))
        fit(model, batch, lambda m, b: next_item_loss(m(b[0]), b[1]),
            TrainConfig(steps=100, lr=1e-2, warmup=10, device="cpu", progress=False))
        hr[cls.__name__] = float(hit_rate_at_k(model.score(test[:, :-1]), test[:, -1], k=1))
    assert hr["GRU4Rec"] > 0.85, hr  # the mean pool: about 1/2, a guess between a and b
    assert hr["MeanPoolRec"] < 0.7, hr
