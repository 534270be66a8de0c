"""attnlab.data: deterministic generators, disjoint splits, correct targets, clear errors."""

from __future__ import annotations

import datetime as dt

import pytest
import torch

from attnlab.data import (
    DATE_FORMATS,
    CharTokenizer,
    addition_task,
    batches,
    dates_task,
    format_date,
    reversal_task,
    sorting_task,
)
from attnlab.data.tasks import _check_counts, _distinct_strings, _pick_split


def test_tokenizer_round_trip_and_errors():
    tok = CharTokenizer("abc")
    assert tok.decode(tok.encode("cab", bos=True, eos=True)) == "cab"
    assert tok.decode(torch.tensor([3, 2, 4])) == "a"  # stops at <eos>
    with pytest.raises(ValueError, match=r"character 'z' at position 1 of 'az'"):
        tok.encode("az")
    with pytest.raises(ValueError, match="repeated characters"):
        CharTokenizer("aba")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([9])
    ids, lengths = tok.batch(["ab", "c"], bos=True, eos=True, length=6)
    assert ids.tolist() == [[1, 3, 4, 2, 0, 0], [1, 5, 2, 0, 0, 0]] and lengths.tolist() == [4, 3]
    with pytest.raises(ValueError, match="shorter than the longest"):
        tok.batch(["abc"], length=2)


def test_dates_task_is_deterministic_disjoint_and_correct():
    a, b = dates_task(500, 200, seed=3), dates_task(500, 200, seed=3)
    assert a.train == b.train and a.test == b.test
    assert dates_task(500, 200, seed=4).train != a.train
    assert not set(a.train.targets) & set(a.test.targets)
    for split in (a.train, a.test):
        for source, target in zip(split.sources, split.targets):
            date = dt.date.fromisoformat(target)
            assert any(format_date(date, f) == source for f in DATE_FORMATS), (source, target)
    used = {f for f in DATE_FORMATS for s, t in zip(a.train.sources, a.train.targets)
            if format_date(dt.date.fromisoformat(t), f) == s}
    assert used == set(DATE_FORMATS)
    src, src_lengths, tgt = a.tensors("test")
    assert src.shape[0] == 200 and tgt.shape == (200, 12)
    assert a.tgt_tokenizer.decode(tgt[0]) == a.test.targets[0]
    assert a.src_tokenizer.decode(src[0][: src_lengths[0]]) == a.test.sources[0]


def test_date_formats_are_unambiguous():
    # no two different dates share a written form, in any format
    day, seen = dt.date(1950, 1, 1), {}
    while day <= dt.date(2049, 12, 31):
        for f in DATE_FORMATS:
            text = format_date(day, f)
            assert seen.setdefault(text, day) == day, text
        day += dt.timedelta(days=1)
    assert format_date(dt.date(2026, 11, 24), "Tuesday, November 24, 2026") == (
        "Tuesday, November 24, 2026")


def test_reversal_and_sorting_targets_and_disjoint_splits():
    for make, fn in ((reversal_task, lambda s: s[::-1]),
                     (sorting_task, lambda s: "".join(sorted(s)))):
        task = make(300, 100, seed=2)
        assert not set(task.train.sources) & set(task.test.sources)
        assert all(t == fn(s) for s, t in zip(task.test.sources, task.test.targets))
        assert all(4 <= len(s) <= 12 for s in task.train.sources)
        assert make(300, 100, seed=2).test == task.test
    with pytest.raises(ValueError, match="more than half"):
        reversal_task(5, 5, min_len=1, max_len=3, alphabet="ab")


def test_distinct_strings_are_different_within_length_and_capped_at_half():
    import random

    drawn = _distinct_strings(7, "ab", 1, 3, random.Random(0), counts="n", hint="h")
    assert len(set(drawn)) == 7 and all(1 <= len(s) <= 3 and set(s) <= {"a", "b"}
                                        for s in drawn)
    # 2 + 4 + 8 = 14 strings: 7 is half of them, 8 would be more
    with pytest.raises(ValueError, match=r"n_a \+ n_b = 8 is more than half of the 14 possible "
                                         r"sequences; use more symbols"):
        _distinct_strings(8, "ab", 1, 3, random.Random(0), counts="n_a + n_b",
                          hint="use more symbols")
    # nothing to draw from: refused, where the loop would never end
    for symbols, lo, hi in (("", 1, 3), ("ab", 3, 2)):
        with pytest.raises(ValueError, match="half of the 0 possible"):
            _distinct_strings(1, symbols, lo, hi, random.Random(0), counts="n", hint="h")


def test_split_and_count_checks_name_the_bad_value():
    assert _pick_split("train", 1, 2) == 1 and _pick_split("test", 1, 2) == 2
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        _pick_split("val", 1, 2)
    _check_counts(n_train=1, n_test=3)
    for bad in (0, -2, 2.0, True, None):
        with pytest.raises(ValueError, match=f"n_val must be a positive integer, got {bad!r}"):
            _check_counts(n_train=1, n_val=bad)


def test_addition_task_sums_masks_and_disjoint_pairs():
    task = addition_task(2000, 500, seed=1)
    def pair(p):
        x, y = p[:-1].split("+")
        return min(int(x), int(y)), max(int(x), int(y))
    assert not {pair(p) for p in task.train.sources} & {pair(p) for p in task.test.sources}
    for p, a in zip(task.test.sources, task.test.targets):
        assert sum(pair(p)) == int(a)
    ids, answer = task.tensors("train")
    tok = task.tokenizer
    for n in range(5):
        text = task.train.sources[n] + task.train.targets[n]
        predicted = ids[n, 1:][answer[n]]  # the targets where the loss counts
        assert tok.decode(predicted) == task.train.targets[n]
        assert predicted[-1] == tok.eos_id
        assert tok.decode(ids[n]) == text
    padded = addition_task(10, 5, pad=True, reverse_answer=True, seed=0)
    p, a = padded.train.sources[0], padded.train.targets[0]
    assert len(p) == 8 and len(a) == 4 and int(a[::-1]) == sum(int(x) for x in p[:-1].split("+"))
    with pytest.raises(ValueError, match="exceeds the 55 distinct pairs"):
        addition_task(50, 10, n_digits=1)


def test_batches_cover_everything_once():
    g = torch.Generator().manual_seed(0)
    seen = torch.cat(list(batches(103, 10, generator=g)))
    assert sorted(seen.tolist()) == list(range(103))
    assert [len(b) for b in batches(10, 4, shuffle=False, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="batch_size >= 1"):
        next(batches(10, 0))


def test_random_rows_draws_the_same_rows_of_every_tensor_as_the_loop_would():
    from attnlab.data import random_rows

    x, y = torch.arange(40.0).reshape(20, 2), torch.arange(20)
    batch_fn = random_rows(x, y, batch_size=7)
    bx, by = batch_fn(3, torch.Generator().manual_seed(5))
    rows = torch.randint(0, 20, (7,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(bx, x[rows]) and torch.equal(by, y[rows])
    with pytest.raises(ValueError, match="share a non-empty first dimension"):
        random_rows(x, y[:3], batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        random_rows(x, batch_size=0)
    with pytest.raises(ValueError, match="one or more tensors"):
        random_rows(batch_size=2)


def test_random_rows_cuts_padded_sequences_to_the_batch_s_longest():
    from attnlab.data import random_rows

    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 9, (50,), generator=gen)                  # (N,)
    ids = torch.zeros(50, 12, dtype=torch.long)                           # (N, L): 0 = padding
    for i, n in enumerate(lengths.tolist()):
        ids[i, :n] = torch.randint(1, 5, (n,), generator=gen)
    labels = torch.arange(50)
    batch_fn = random_rows(ids, lengths, labels, batch_size=6, padded=0, lengths=1)
    for seed in range(20):
        b_ids, b_lengths, b_labels = batch_fn(seed, torch.Generator().manual_seed(seed))
        rows = torch.randint(0, 50, (6,), generator=torch.Generator().manual_seed(seed))
        longest = int(lengths[rows].max())
        assert b_ids.shape == (6, longest) and longest < 12
        assert torch.equal(b_ids, ids[rows, :longest]) and (ids[rows, longest:] == 0).all()
        assert torch.equal(b_lengths, lengths[rows]) and torch.equal(b_labels, labels[rows])
    with pytest.raises(ValueError, match="give padded and lengths together"):
        random_rows(ids, lengths, batch_size=2, padded=0)
    with pytest.raises(ValueError, match="lengths must index one of the 2 tensors, got 2"):
        random_rows(ids, lengths, batch_size=2, padded=0, lengths=2)
    with pytest.raises(ValueError, match=r"lengths their lengths \(N,\), got \(50,\) and"):
        random_rows(lengths, ids, batch_size=2, padded=0, lengths=1)


def test_shift_task_loss_and_accuracy():
    from torch import nn

    from attnlab.data import SHIFT, shift_accuracy, shift_loss, shift_task

    x, y = shift_task(50, 12, torch.Generator().manual_seed(0), vocab=5, shift=3)
    assert x.shape == y.shape == (50, 12) and int(x.max()) < 5 and int(x.min()) >= 0
    assert torch.equal(y[:, 3:], x[:, :-3])
    x2, _ = shift_task(50, 12, torch.Generator().manual_seed(0), vocab=5, shift=3)
    assert torch.equal(x, x2)                                      # seeded: the same data

    class Copy(nn.Module):                                         # scores: x[t - lag]
        def __init__(self, lag):
            super().__init__()
            self.lag = lag

        def forward(self, ids, mask=None):
            self.mask = mask
            return 5.0 * nn.functional.one_hot(ids.roll(self.lag, dims=1), 16).float()

    x, y = shift_task(40, 10, torch.Generator().manual_seed(1))
    assert shift_accuracy(Copy(SHIFT), x, y) == 1.0
    wrong = shift_accuracy(Copy(SHIFT + 1), x, y)
    assert wrong == ((x.roll(SHIFT + 1, 1) == y)[:, SHIFT:]).float().mean().item() < 0.2
    model, mask = Copy(SHIFT), torch.ones(10, 10, dtype=torch.bool)
    shift_accuracy(model, x, y, mask)
    assert model.mask is mask                                      # passed on to the model
    scores = Copy(SHIFT)(x)
    expected = nn.functional.cross_entropy(scores[:, SHIFT:].reshape(-1, 16),
                                           y[:, SHIFT:].reshape(-1))
    assert torch.equal(shift_loss(Copy(SHIFT), (x, y)), expected)
    with pytest.raises(ValueError, match="need T > shift"):
        shift_task(4, 2, torch.Generator())
    with pytest.raises(ValueError, match="shift must be a positive integer, got 0"):
        shift_loss(Copy(SHIFT), (x, y), shift=0)
    with pytest.raises(ValueError, match="vocab must be a positive integer"):
        shift_task(4, 8, torch.Generator(), vocab=0)
