"""attnlab.data.reviews: the rules, a deterministic generator, disjoint splits, clear errors."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from attnlab.data.reviews import (
    CONTRAST,
    KINDS,
    NEGATION,
    NEGATIVE,
    POSITIVE,
    WordVocab,
    make_review,
    positions_after,
    review_kind,
    review_label,
    reviews_task,
    swap_clauses,
    word_polarity,
)


@pytest.mark.parametrize("text, label, kind", [
    ("the plot was good", 1, "plain"),
    ("the plot was really awful at times", 0, "plain"),
    ("the plot was not good", 0, "negated"),
    ("honestly the plot was not very bad", 1, "negated"),
    ("the plot was good and the cast was great", 1, "plain"),
    ("the plot was not good and the cast was weak", 0, "negated"),
    ("the plot was not bad and the cast was fine", 1, "negated"),
    ("the plot was good but the cast was weak", 0, "contrast"),
    ("the plot was weak but the cast was good", 1, "contrast"),
    ("the plot was not good but the cast was not bad", 1, "contrast"),
    ("the plot was not weak but the cast was dull", 0, "contrast"),   # "not" before "but"
    ("the plot was great but the cast was not clever", 0, "contrast"),
])
def test_review_label_and_kind_follow_the_rules(text, label, kind):
    assert review_label(text) == label
    assert review_kind(text) == kind


def test_review_label_rejects_texts_outside_the_language():
    with pytest.raises(ValueError, match="exactly one sentiment word"):
        review_label("the plot was")
    with pytest.raises(ValueError, match="exactly one sentiment word"):
        review_label("the plot was good bad")
    with pytest.raises(ValueError, match="at most one 'but'"):
        review_label("the plot was good but the cast was bad but the music was fine")
    with pytest.raises(ValueError, match="must agree"):
        review_label("the plot was good and the cast was bad")


def test_word_lists_and_polarity():
    assert not set(POSITIVE) & set(NEGATIVE)
    assert all(word_polarity(w) == 1 for w in POSITIVE)
    assert all(word_polarity(w) == -1 for w in NEGATIVE)
    assert word_polarity(NEGATION) == word_polarity(CONTRAST) == word_polarity("the") == 0


def test_make_review_gives_the_kind_and_label_asked_for():
    rng = random.Random(3)
    for _ in range(600):
        kind, label = rng.choice(KINDS), rng.randrange(2)
        text = make_review(rng, kind, label)
        assert review_kind(text) == kind and review_label(text) == label, text
        words = text.split()
        assert sum(word_polarity(w) != 0 for w in words) == 1 + ("and" in words or
                                                                 CONTRAST in words)
    with pytest.raises(ValueError, match="kind must be one of"):
        make_review(rng, "sarcastic", 1)
    with pytest.raises(ValueError, match="label must be 0 or 1"):
        make_review(rng, "plain", 2)


def test_contrast_clauses_disagree_and_are_drawn_alike():
    rng = random.Random(0)
    texts = [make_review(rng, "contrast", rng.randrange(2)) for _ in range(3000)]
    openers = Counter()
    for text in texts:
        first, second = text.split(f" {CONTRAST} ")
        assert review_label(first) != review_label(second)
        openers["first"] += first.split()[0] != "the"
        openers["second"] += second.split()[0] != "the"
    # both clauses may open with "honestly", "to be fair", ...: a review and its twin with the
    # clauses swapped are equally likely (about 25 % of the clauses each)
    assert abs(openers["first"] - openers["second"]) < 0.1 * openers["first"]
    assert 0.2 * len(texts) < openers["first"] < 0.3 * len(texts)


def test_swap_clauses_keeps_the_bag_and_flips_the_label():
    task = reviews_task(50, 300, seed=1)
    contrast = [t for t, k in zip(task.test.texts, task.test.kinds) if k == "contrast"]
    assert len(contrast) > 50
    for text in contrast:
        twin = swap_clauses(text)
        assert sorted(twin.split()) == sorted(text.split())
        assert review_label(twin) != review_label(text)
        assert swap_clauses(twin) == text
    with pytest.raises(ValueError, match="exactly one 'but'"):
        swap_clauses("the plot was good")


def test_reviews_task_is_deterministic_disjoint_and_labelled_by_the_rules():
    a, b = reviews_task(800, 300, seed=4), reviews_task(800, 300, seed=4)
    assert a.train == b.train and a.test == b.test
    assert reviews_task(800, 300, seed=5).train != a.train
    everything = a.train.texts + a.test.texts
    assert len(set(everything)) == len(everything)                 # no review twice
    assert not set(a.train.texts) & set(a.test.texts)              # disjoint splits
    for split in (a.train, a.test):
        assert [review_label(t) for t in split.texts] == split.labels
        assert [review_kind(t) for t in split.texts] == split.kinds
    share = Counter(a.train.kinds)
    for kind, p in zip(KINDS, (0.4, 0.3, 0.3)):
        assert abs(share[kind] / len(a.train) - p) < 0.06, share
    assert 0.4 < sum(a.train.labels) / len(a.train) < 0.6
    only_plain = reviews_task(100, 50, mix=(1.0, 0.0, 0.0), seed=0)
    assert set(only_plain.train.kinds) == set(only_plain.test.kinds) == {"plain"}


def test_tensors_and_kind_masks():
    task = reviews_task(30, 20, seed=2)
    ids, lengths, labels = task.tensors("test")
    assert ids.shape == (20, int(lengths.max())) and ids.dtype == torch.long
    assert labels.tolist() == task.test.labels
    for row, text in enumerate(task.test.texts):
        assert task.vocab.decode(ids[row, : lengths[row]]) == text
        assert torch.all(ids[row, lengths[row]:] == 0)
    masks = task.kind_masks("test")
    assert set(masks) == set(KINDS)
    assert torch.equal(sum(m.long() for m in masks.values()), torch.ones(20, dtype=torch.long))
    with pytest.raises(ValueError, match="split must be"):
        task.tensors("validation")
    with pytest.raises(ValueError, match="split must be"):
        task.kind_masks("dev")


def test_reviews_task_errors_are_clear():
    with pytest.raises(ValueError, match="n_train must be a positive integer"):
        reviews_task(0, 10)
    with pytest.raises(ValueError, match="n_test must be a positive integer"):
        reviews_task(10, 2.5)
    with pytest.raises(ValueError, match="mix must be 3 non-negative"):
        reviews_task(10, 10, mix=(0.5, 0.5))
    with pytest.raises(ValueError, match="mix must be 3 non-negative"):
        reviews_task(10, 10, mix=(1.0, -0.5, 0.5))


def test_word_vocab_round_trip_and_errors():
    vocab = WordVocab(["good", "not", "the"])
    assert vocab.vocab_size == 4 and vocab["not"] == 2
    assert vocab.encode("the not good") == [3, 2, 1]
    ids, lengths = vocab.batch(["good", "the not good"])
    assert ids.tolist() == [[1, 0, 0], [3, 2, 1]] and lengths.tolist() == [1, 3]
    assert vocab.decode(ids[1]) == "the not good"
    with pytest.raises(ValueError, match="word 'bad' at position 1"):
        vocab.encode("not bad")
    with pytest.raises(ValueError, match="repeated"):
        WordVocab(["good", "good"])
    with pytest.raises(ValueError, match="without spaces"):
        WordVocab(["very good"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([7])
    with pytest.raises(ValueError, match="at least one word"):
        vocab.batch(["good", ""])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab["<pad>"]


def test_positions_after_marks_what_follows_the_first_marker():
    ids = torch.tensor([[5, 7, 6, 7, 6, 0],     # marker twice: everything after the first
                        [7, 6, 6, 0, 0, 0],     # marker first
                        [5, 6, 6, 6, 6, 6],     # no marker
                        [5, 6, 7, 0, 0, 0]])    # marker last
    lengths = torch.tensor([5, 3, 6, 3])
    want = torch.tensor([[0, 0, 1, 1, 1, 0],
                         [0, 1, 1, 0, 0, 0],
                         [0, 0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(positions_after(ids, 7, lengths), want)
    # against a naive loop on the test split of a task
    task = reviews_task(10, 200, seed=6)
    ids, lengths, _ = task.tensors("test")
    but = task.vocab[CONTRAST]
    got = positions_after(ids, but, lengths)
    for row in range(ids.shape[0]):
        words = ids[row, : lengths[row]].tolist()
        start = words.index(but) + 1 if but in words else len(words)
        expected = [start <= t < len(words) for t in range(ids.shape[1])]
        assert got[row].tolist() == expected
    with pytest.raises(ValueError, match=r"ids must be a \(B, T\) tensor"):
        positions_after(torch.zeros(4, dtype=torch.long), 7, torch.tensor([4]))
    with pytest.raises(ValueError, match=r"lengths must be \(B,\) = \(2,\)"):
        positions_after(torch.zeros(2, 3, dtype=torch.long), 7, torch.tensor([3]))
