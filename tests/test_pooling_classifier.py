"""attnlab.models.pooling_classifier: pooling against references, masks, baselines, metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnlab.data.reviews import reviews_task
from attnlab.models.pooling_classifier import (
    AttentionPooling,
    AttentionPoolingClassifier,
    BagOfWordsClassifier,
    PoolingClassifierConfig,
    attention_mass,
    bag_of_words,
    subset_accuracy,
)
from attnlab.train import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_thread")  # from conftest


def naive_pool(x, mask, q, w_k):
    # One review at a time, one position at a time: the definition, in plain Python loops.
    B, T, C = x.shape
    z, weights = torch.zeros(B, C), torch.zeros(B, T)
    for b in range(B):
        real = [t for t in range(T) if mask is None or mask[b, t]]
        scores = [float(q @ (w_k @ x[b, t])) / math.sqrt(C) for t in real]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        for t, e in zip(real, exps):
            weights[b, t] = e / sum(exps)
            z[b] += weights[b, t] * x[b, t]
    return z, weights


def test_attention_pooling_matches_a_naive_loop_and_sdpa():
    torch.manual_seed(0)
    pool = AttentionPooling(6)
    x = torch.randn(3, 5, 6)
    mask = torch.arange(5)[None, :] < torch.tensor([5, 2, 1])[:, None]   # (B, T)
    with torch.no_grad():
        z, w = pool(x, mask)
        z_ref, w_ref = naive_pool(x, mask, pool.query, pool.key.weight)
        z_sdpa = F.scaled_dot_product_attention(pool.query.expand(3, 1, 6), pool.key(x), x,
                                                attn_mask=mask[:, None, :])[:, 0]
        torch.testing.assert_close(z, z_ref)
        torch.testing.assert_close(w, w_ref)
        torch.testing.assert_close(z, z_sdpa)
        torch.testing.assert_close(w.sum(-1), torch.ones(3))
        assert torch.all(w[~mask] == 0)
        torch.testing.assert_close(z[2], x[2, 0])                          # one real position
        z_all, w_all = pool(x)                                             # no mask
        torch.testing.assert_close(z_all, naive_pool(x, None, pool.query, pool.key.weight)[0])
        assert torch.all(w_all > 0)


def test_attention_pooling_ignores_padding_content_and_order():
    torch.manual_seed(1)
    pool = AttentionPooling(4)
    x = torch.randn(2, 6, 4)
    mask = torch.arange(6)[None, :] < torch.tensor([4, 6])[:, None]
    x2 = x.clone()
    x2[0, 4:] = 1e3                                        # change the padding only
    x_before = x.clone()
    with torch.no_grad():
        z, w = pool(x, mask)
        torch.testing.assert_close(pool(x2, mask)[0], z)
        perm = torch.tensor([3, 1, 0, 2, 5, 4])            # permute the real positions
        zp, wp = pool(x[:, perm], mask[:, perm])
        torch.testing.assert_close(zp, z)                  # a set function: order is ignored
        torch.testing.assert_close(wp, w[:, perm])
    assert torch.equal(x, x_before)                        # inputs are not modified


def test_attention_pooling_errors_name_shapes():
    pool = AttentionPooling(4)
    with pytest.raises(ValueError, match=r"x must be \(B, S, C\) with C=4, got \(2, 3, 5\)"):
        pool(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"mask must be a bool tensor \(B, S\) = \(2, 3\)"):
        pool(torch.randn(2, 3, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"got \(3, 2\)"):
        pool(torch.randn(2, 3, 4), torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="dim must be positive"):
        AttentionPooling(0)


@pytest.mark.parametrize("num_layers", [0, 1, 2])
def test_classifier_shapes_masks_and_padding_invariance(num_layers):
    torch.manual_seed(2)
    config = PoolingClassifierConfig(vocab_size=12, num_layers=num_layers, max_len=10)
    model = AttentionPoolingClassifier(config).eval()
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    lengths = torch.tensor([4, 2])
    with torch.no_grad():
        logits, w = model(ids, lengths, need_weights=True)
        assert logits.shape == (2, 2) and w.shape == (2, 4)
        assert torch.all(w[1, 2:] == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(2))
        alone = model(ids[1:, :2], lengths[1:])                          # no padding at all
        torch.testing.assert_close(alone, logits[1:])
        other_pad = ids.clone()
        other_pad[1, 2:] = 9                                             # padding content
        torch.testing.assert_close(model(other_pad, lengths), logits)
        states, real, maps = model.encode(ids, lengths, need_weights=True)
        assert states.shape == (2, 4, 32) and real.tolist() == [[True] * 4, [True, True,
                                                                           False, False]]
        assert len(maps) == num_layers
        assert all(m.shape == (2, 2, 4, 4) and torch.all(m[1, :, :, 2:] == 0) for m in maps)
        assert model.encode(ids, lengths)[2] == []


def test_classifier_errors_are_clear():
    model = AttentionPoolingClassifier(PoolingClassifierConfig(vocab_size=10, max_len=4))
    ids = torch.tensor([[3, 4, 5]])
    with pytest.raises(ValueError, match=r"lengths must be \(B,\) = \(1,\)"):
        model(ids, torch.tensor([3, 3]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, T=3\]"):
        model(ids, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"outside \[0, 10\)"):
        model(torch.tensor([[3, 12]]), torch.tensor([2]))
    with pytest.raises(ValueError, match="exceed max_len=4"):
        model(torch.tensor([[3, 4, 5, 6, 7]]), torch.tensor([5]))
    with pytest.raises(ValueError, match=r"ids must be a \(B, T\) tensor"):
        model(torch.tensor([3, 4]), torch.tensor([2]))
    with pytest.raises(ValueError, match="multiple of num_heads"):
        AttentionPoolingClassifier(PoolingClassifierConfig(vocab_size=10, dim=30, num_heads=4))


def test_bag_of_words_counts_words_and_not_padding():
    ids = torch.tensor([[1, 2, 1, 0, 0], [3, 3, 3, 3, 4]])
    want = torch.tensor([[0.0, 2, 1, 0, 0], [0, 0, 0, 4, 1]])
    torch.testing.assert_close(bag_of_words(ids, 5), want)
    with_pad = bag_of_words(ids, 5, pad_id=None)
    assert with_pad[0, 0] == 2 and torch.equal(with_pad.sum(-1), torch.tensor([5.0, 5.0]))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 9, (6, 11), generator=g)
    naive = torch.zeros(6, 9)
    for b in range(6):
        for i in ids[b].tolist():
            if i != 0:
                naive[b, i] += 1
    torch.testing.assert_close(bag_of_words(ids, 9), naive)
    with pytest.raises(ValueError, match=r"outside \[0, 5\)"):
        bag_of_words(torch.tensor([[5]]), 5)
    with pytest.raises(ValueError, match="integer token ids"):
        bag_of_words(torch.tensor([[1.0]]), 5)


def test_bag_of_words_classifier_cannot_tell_twins_or_read_not():
    task = reviews_task(10, 10, seed=0)
    vocab = task.vocab
    model = BagOfWordsClassifier(vocab.vocab_size)
    torch.nn.init.normal_(model.linear.weight)
    a, _ = vocab.batch(["the plot was good but the cast was weak"])
    b, _ = vocab.batch(["the cast was weak but the plot was good"])
    torch.testing.assert_close(model(a), model(b))          # twins: the same output
    # "not" is an exclusive or with the sentiment word: the optimum of logistic regression on
    # the four phrases gives each the probability 1/2
    x, _ = vocab.batch(["good", "not good", "bad", "not bad"])
    y = torch.tensor([1, 0, 0, 1])
    model = BagOfWordsClassifier(vocab.vocab_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(500):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        torch.testing.assert_close(model(x).softmax(-1)[:, 1], torch.full((4,), 0.5),
                                   atol=1e-3, rtol=0)


def test_the_attention_classifier_learns_negation_and_contrast():
    torch.manual_seed(0)
    task = reviews_task(2000, 400, seed=3)
    ids, lengths, labels = task.tensors("train")

    def batch_fn(step, gen):
        rows = torch.randint(0, ids.shape[0], (64,), generator=gen)
        return ids[rows], lengths[rows], labels[rows]

    def loss_fn(model, batch):
        return F.cross_entropy(model(batch[0], batch[1]), batch[2])

    model = AttentionPoolingClassifier(PoolingClassifierConfig(task.vocab.vocab_size))
    fit(model, batch_fn, loss_fn, TrainConfig(steps=300, lr=3e-3, warmup=30, device="cpu",
                                              progress=False))
    t_ids, t_lengths, t_labels = task.tensors("test")
    with torch.no_grad():
        scores = subset_accuracy(model(t_ids, t_lengths).argmax(-1), t_labels,
                                 task.kind_masks("test"))
    assert scores["all"] > 0.9 and scores["negated"] > 0.85 and scores["contrast"] > 0.85


def test_attention_mass_and_subset_accuracy_on_hand_made_cases():
    w = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]])
    sel = torch.tensor([[False, True, True, True], [True, False, False, False]])
    torch.testing.assert_close(attention_mass(w, sel), torch.tensor([0.5, 0.25]))
    torch.testing.assert_close(attention_mass(w, torch.zeros(2, 4, dtype=torch.bool)),
                               torch.zeros(2))
    with pytest.raises(ValueError, match=r"selected must be a bool tensor shaped like"):
        attention_mass(w, sel.float())
    with pytest.raises(ValueError, match=r"weights must be \(B, T\)"):
        attention_mass(w[0], sel[0])

    pred, labels = torch.tensor([1, 0, 1, 1, 0]), torch.tensor([1, 1, 1, 0, 0])
    subsets = {"a": torch.tensor([True, True, False, False, False]),
               "b": torch.tensor([False, False, True, True, True]),
               "none": torch.zeros(5, dtype=torch.bool)}
    got = subset_accuracy(pred, labels, subsets)
    assert got["all"] == pytest.approx(0.6) and got["a"] == 0.5
    assert got["b"] == pytest.approx(2 / 3) and math.isnan(got["none"])
    with pytest.raises(ValueError, match=r"must both be \(N,\)"):
        subset_accuracy(pred, labels[:4], {})
    with pytest.raises(ValueError, match="subset 'a' must be a bool mask"):
        subset_accuracy(pred, labels, {"a": torch.ones(5)})
