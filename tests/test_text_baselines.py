"""attnlab.models.text_baselines: mean pooling, the BiGRU and the n-gram logistic regression."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.data.reviews import reviews_task
from attnlab.models.pooling_classifier import AttentionPoolingClassifier, PoolingClassifierConfig
from attnlab.models.text_baselines import (
    BiGRUClassifier,
    GRUClassifierConfig,
    MeanPooling,
    MeanPoolingClassifier,
    NgramLogisticRegression,
)
from attnlab.train import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_thread")  # from conftest


def test_mean_pooling_is_the_mean_of_the_real_positions():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4)
    lengths = torch.tensor([5, 2, 1])
    mask = torch.arange(5)[None, :] < lengths[:, None]                 # (B, S)
    z, w = MeanPooling()(x, mask)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(z[b], x[b, :n].mean(0))             # a plain loop
        torch.testing.assert_close(w[b, :n], torch.full((n,), 1 / n))
    assert torch.all(w[~mask] == 0)
    x2 = x.clone()
    x2[~mask] = 1e3                                                    # padding only
    torch.testing.assert_close(MeanPooling()(x2, mask)[0], z)
    torch.testing.assert_close(MeanPooling()(x)[0], x.mean(1))         # no mask: all real


def test_mean_pooling_errors_are_clear():
    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"x must be \(B, S, C\)"):
        MeanPooling()(x[0])
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        MeanPooling()(x, torch.ones(2, 3))
    with pytest.raises(ValueError, match="at least one real position"):
        MeanPooling()(x, torch.tensor([[True, False, False], [False, False, False]]))


def test_mean_pooling_classifier_shares_everything_but_the_pooling():
    config = PoolingClassifierConfig(vocab_size=12)
    torch.manual_seed(3)
    attn = AttentionPoolingClassifier(config)
    torch.manual_seed(3)
    mean = MeanPoolingClassifier(config)
    attn_state, mean_state = attn.state_dict(), mean.state_dict()
    assert set(attn_state) - set(mean_state) == {"pool.query", "pool.key.weight"}
    assert set(mean_state) <= set(attn_state)
    for name, value in mean_state.items():                             # same start
        torch.testing.assert_close(value, attn_state[name])
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    lengths = torch.tensor([4, 2])
    with torch.no_grad():
        states, real, _ = mean.encode(ids, lengths)                    # (B, T, C), (B, T)
        by_hand = mean.head(torch.stack([states[0].mean(0), states[1, :2].mean(0)]))
        logits, w = mean(ids, lengths, need_weights=True)
        torch.testing.assert_close(logits, by_hand)
        torch.testing.assert_close(w[1], torch.tensor([0.5, 0.5, 0.0, 0.0]))
        padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], dim=1)
        torch.testing.assert_close(mean(padded, lengths), logits)      # padding ignored


def test_bigru_reads_each_sentence_alone_whatever_its_padding():
    torch.manual_seed(0)
    model = BiGRUClassifier(GRUClassifierConfig(vocab_size=9, dim=6, hidden=5))
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0], [7, 0, 0, 0]])
    lengths = torch.tensor([4, 2, 1])
    with torch.no_grad():
        logits = model(ids, lengths)                                   # (B, K)
        for b, n in enumerate(lengths.tolist()):
            x = model.embed(ids[b : b + 1, :n])                        # (1, n, C): no padding
            out, _ = model.gru(x)                                      # (1, n, 2 hidden)
            # forward state after the last word, backward state after the first
            h = torch.cat([out[0, -1, :5], out[0, 0, 5:]])
            torch.testing.assert_close(logits[b], model.head(h))
        padded = torch.cat([ids, torch.zeros(3, 5, dtype=torch.long)], dim=1)
        torch.testing.assert_close(model(padded, lengths), logits)
        swapped = torch.tensor([[4, 3, 2, 1]])                         # order matters
        assert not torch.allclose(model(swapped, lengths[:1]), logits[:1])


def test_bigru_errors_are_clear():
    model = BiGRUClassifier(GRUClassifierConfig(vocab_size=9))
    with pytest.raises(ValueError, match="ids has ids outside"):
        model(torch.tensor([[1, 9]]), torch.tensor([2]))
    with pytest.raises(ValueError, match="lengths must lie in"):
        model(torch.tensor([[1, 2]]), torch.tensor([3]))
    with pytest.raises(ValueError, match="dim and hidden must be positive"):
        BiGRUClassifier(GRUClassifierConfig(vocab_size=9, hidden=0))


def test_bigru_learns_negation_and_contrast():
    torch.manual_seed(0)
    task = reviews_task(1500, 300, seed=4)
    ids, lengths, labels = task.tensors("train")

    def batch_fn(step, gen):
        rows = torch.randint(0, ids.shape[0], (64,), generator=gen)
        return ids[rows], lengths[rows], labels[rows]

    model = BiGRUClassifier(GRUClassifierConfig(task.vocab.vocab_size))
    fit(model, batch_fn, lambda m, b: F.cross_entropy(m(b[0], b[1]), b[2]),
        TrainConfig(steps=150, lr=1e-2, warmup=15, device="cpu", progress=False))
    t_ids, t_lengths, t_labels = task.tensors("test")
    with torch.no_grad():
        right = model(t_ids, t_lengths).argmax(-1) == t_labels
    for kind, mask in task.kind_masks("test").items():
        assert right[mask].float().mean() > 0.9, kind


def test_ngram_logistic_regression_reads_not_with_bigrams_only():
    texts = ["good", "not good", "bad", "not bad"] * 5
    labels = [1, 0, 0, 1] * 5
    unigram = NgramLogisticRegression(n=1).fit(texts, labels, texts, labels)
    bigram = NgramLogisticRegression(n=2).fit(texts, labels, texts, labels)
    assert max(unigram.val_accuracy.values()) <= 0.75      # an exclusive or: at most 3 of 4
    assert bigram.predict(["good", "not good", "bad", "not bad"]).tolist() == [1, 0, 0, 1]
    assert bigram.num_features == 5 and unigram.num_features == 3
    assert bigram.predict(["not good"]).dtype == torch.long


def test_ngram_logistic_regression_chooses_c_on_validation():
    task = reviews_task(600, 10, seed=1)
    texts, labels = task.train.texts, torch.tensor(task.train.labels)
    model = NgramLogisticRegression(n=2, Cs=(1e-4, 1.0)).fit(
        texts[:400], labels[:400], texts[400:], labels[400:])
    assert set(model.val_accuracy) == {1e-4, 1.0}
    assert model.val_accuracy[model.C] == max(model.val_accuracy.values())
    right = model.predict(texts[400:]) == labels[400:]
    assert float(right.float().mean()) == pytest.approx(model.val_accuracy[model.C])


def test_ngram_logistic_regression_errors_are_clear():
    with pytest.raises(ValueError, match="n must be at least 1"):
        NgramLogisticRegression(n=0)
    with pytest.raises(ValueError, match="Cs must be"):
        NgramLogisticRegression(Cs=(1.0, -1.0))
    with pytest.raises(RuntimeError, match="call fit"):
        NgramLogisticRegression().predict(["good"])
    with pytest.raises(ValueError, match="one label per text"):
        NgramLogisticRegression().fit(["good", "bad"], [1], ["good"], [1])
