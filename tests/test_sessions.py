"""attnlab.data.sessions: deterministic, disjoint users, the promised structure, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.data.sessions import (
    GENRE,
    NOISE,
    PAD,
    PARTNER,
    SessionConfig,
    Sessions,
    generate_sessions,
    leave_last_out,
    make_catalogue,
    next_item_batch,
    next_item_probs,
    sessions_task,
)


@pytest.fixture(scope="module")
def task():
    return sessions_task(3000, 200, 1000, seed=0)


def test_deterministic_and_seed_dependent():
    a, b = sessions_task(50, 10, 20, seed=3), sessions_task(50, 10, 20, seed=3)
    for split in ("train", "valid", "test"):
        for name in ("items", "kinds", "lengths", "users", "tastes"):
            assert torch.equal(getattr(getattr(a, split), name), getattr(getattr(b, split), name))
    assert torch.equal(a.catalogue.partner, b.catalogue.partner)
    c = sessions_task(50, 10, 20, seed=4)
    assert not torch.equal(a.train.items, c.train.items)
    assert not torch.equal(a.catalogue.partner, c.catalogue.partner)


def test_splits_have_disjoint_users_and_sessions(task):
    users = [set(s.users.tolist()) for s in (task.train, task.valid, task.test)]
    assert [len(u) for u in users] == [3000, 200, 1000]
    assert not users[0] & users[1] and not users[0] & users[2] and not users[1] & users[2]
    train_rows = {tuple(r) for r in task.train.items.tolist()}
    assert not any(tuple(r) in train_rows for r in task.test.items.tolist())


def test_shapes_and_left_padding(task):
    c = task.config
    s = task.test
    assert s.items.shape == s.kinds.shape == (1000, c.max_len)
    assert s.tastes.shape == (1000, c.genres_per_user)
    assert int(s.lengths.min()) >= c.min_len and int(s.lengths.max()) <= c.max_len
    columns = torch.arange(c.max_len)
    real = columns[None, :] >= (c.max_len - s.lengths)[:, None]  # the last `length` columns
    assert torch.equal(s.items > 0, real)
    assert torch.equal(s.kinds == PAD, ~real)
    assert int(s.items.max()) <= c.num_items


def test_each_kind_follows_its_rule(task):
    c, cat, s = task.config, task.catalogue, task.train
    genre = cat.genre[s.items]  # (N, L)
    in_taste = (genre[..., None] == s.tastes[:, None, :]).any(-1)
    assert bool(in_taste[s.kinds == GENRE].all())  # ordinary steps stay in the user's genres
    first = (genre == s.tastes[:, :1])[s.kinds == GENRE].float().mean()
    assert abs(float(first) - 1 / c.genres_per_user) < 0.02  # ... and pick each one as often
    d = c.partner_delay
    earlier = torch.cat([torch.zeros(len(s), d, dtype=torch.long), s.items[:, :-d]], dim=1)
    due = cat.partner[earlier]  # (N, L): the partner due at each position, 0 if none
    partner_pos = s.kinds == PARTNER
    assert bool((s.items[partner_pos] == due[partner_pos]).all())
    real = s.kinds != PAD
    followed = (s.items == due)[(due > 0) & real].float().mean()
    assert abs(float(followed) - c.p_partner) < 0.02  # plus rare coincidences
    noise_share = float((s.kinds == NOISE).sum()) / float((real & (s.kinds != PARTNER)).sum())
    assert abs(noise_share - c.p_noise) < 0.01
    assert not bool((cat.partner[cat.triggers] == 0).any())
    assert not set(cat.partner[cat.triggers].tolist()) & set(cat.triggers.tolist())
    assert len(cat.triggers) == round(c.trigger_fraction * c.num_items)


def test_popularity_is_skewed_within_each_genre(task):
    c, s = task.config, task.train
    counts = torch.bincount(s.items[s.kinds == GENRE], minlength=c.num_items + 1)[1:]
    by_rank = counts.view(c.num_genres, c.items_per_genre).sum(0).double()  # rank r of all genres
    assert bool(by_rank[0] > 1.7 * by_rank[1] > 1.7 * by_rank[3])  # about 1 / r
    ratio = float(by_rank[0] / by_rank[9])
    assert 7 < ratio < 14  # 1 / r: 10


def test_next_item_probs_is_calibrated(task):
    c, cat, s = task.config, task.catalogue, task.test
    history, targets, kinds = leave_last_out(s, c.max_len - 1)
    p = next_item_probs(cat, c, history, s.tastes)
    assert torch.allclose(p.sum(1), torch.ones(len(s), dtype=p.dtype))
    assert bool((p[:, 0] == 0).all())
    # predicted vs observed: the share of targets that are a due partner, and in the taste
    due = cat.partner[history[:, -c.partner_delay]]
    predicted = float(p.gather(1, due[:, None])[due > 0].sum())
    observed = float((targets == due)[due > 0].sum())
    assert abs(predicted - observed) < 4 * np.sqrt(predicted)
    genre = cat.genre[1:]
    taste_items = (genre[None, :, None] == s.tastes[:, None, :]).any(-1)  # (N, V)
    predicted = float((p[:, 1:] * taste_items).sum())
    observed = float(taste_items.gather(1, (targets - 1)[:, None]).sum())
    assert abs(predicted - observed) < 4 * np.sqrt(predicted)
    # the oracle beats popularity on the likelihood of the real targets
    pop = cat.popularity[None, :].expand(len(s), -1)
    assert float(p.gather(1, targets[:, None]).log().mean()) > \
        float(pop.gather(1, targets[:, None]).log().mean()) + 0.5


def test_leave_last_out_and_training_batches_align():
    items = torch.tensor([[0, 0, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6]])
    s = Sessions(items, (items > 0).long(), torch.tensor([4, 6]), torch.tensor([0, 1]),
                 torch.tensor([[0], [1]]))
    history, targets, kinds = leave_last_out(s, max_len=4)
    assert history.tolist() == [[0, 4, 5, 6], [2, 3, 4, 5]] and targets.tolist() == [7, 6]
    assert kinds.tolist() == [1, 1]
    history, _, _ = leave_last_out(s, max_len=8)  # wider than the sessions: padded on the left
    assert history.tolist() == [[0, 0, 0, 0, 0, 4, 5, 6], [0, 0, 0, 1, 2, 3, 4, 5]]
    inputs, targets = next_item_batch(s, torch.tensor([0, 1]), max_len=5)
    assert inputs.tolist() == [[0, 0, 4, 5, 6], [1, 2, 3, 4, 5]]
    assert targets.tolist() == [[0, 0, 5, 6, 7], [2, 3, 4, 5, 6]]
    inputs, targets = next_item_batch(s, torch.tensor([1]), max_len=3)
    assert inputs.tolist() == [[3, 4, 5]] and targets.tolist() == [[4, 5, 6]]


def test_generate_sessions_uses_only_its_rng():
    cfg = SessionConfig(num_items=40, num_genres=4, max_len=8, min_len=3)
    cat = make_catalogue(cfg, np.random.default_rng(1))
    a = generate_sessions(cat, cfg, 30, np.random.default_rng(7), first_user=100)
    b = generate_sessions(cat, cfg, 30, np.random.default_rng(7), first_user=100)
    assert torch.equal(a.items, b.items) and a.users.tolist() == list(range(100, 130))


def test_clear_errors():
    with pytest.raises(ValueError, match="must be a multiple of num_genres"):
        SessionConfig(num_items=301)
    with pytest.raises(ValueError, match="min_len <= max_len"):
        SessionConfig(min_len=12, max_len=10)
    with pytest.raises(ValueError, match="p_noise must lie in"):
        SessionConfig(p_noise=1.5)
    with pytest.raises(ValueError, match="trigger_fraction"):
        SessionConfig(trigger_fraction=0.8)
    with pytest.raises(ValueError, match="genres_per_user=11 exceeds"):
        SessionConfig(genres_per_user=11)
    with pytest.raises(ValueError, match="n_train must be a positive integer"):
        sessions_task(0, 1, 1)
    task = sessions_task(5, 0, 5, seed=0)
    with pytest.raises(ValueError, match=r"index must be a 1-D \(B,\)"):
        next_item_batch(task.train, torch.tensor([[0]]), 4)
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        leave_last_out(task.test, 0)
    with pytest.raises(ValueError, match=r"tastes must be \(N, genres_per_user\)"):
        next_item_probs(task.catalogue, task.config, torch.zeros(5, 4, dtype=torch.long),
                        torch.zeros(5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="catalogue has 300 items"):
        generate_sessions(task.catalogue, SessionConfig(num_items=40, num_genres=4), 3,
                          np.random.default_rng(0))
