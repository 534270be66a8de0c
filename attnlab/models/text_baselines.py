r"""Baselines for sentence classification beside attention pooling.

The field's standard comparisons for a classifier that pools an encoder's states with
attention (:class:`~attnlab.models.pooling_classifier.AttentionPoolingClassifier`):

- :class:`MeanPoolingClassifier` -- the *same* encoder, pooled by the plain mean of the real
  positions, :math:`z = \frac{1}{S} \sum_{j=1}^{S} h_j`: attention pooling with every weight
  fixed at :math:`1/S`. It isolates what the learned pooling adds (the encoder, positions
  included, is shared);
- :class:`BiGRUClassifier` -- a bidirectional GRU whose last forward and first backward
  states, concatenated, are classified: word order without attention;
- :class:`NgramLogisticRegression` -- logistic regression on counts of words and of pairs of
  neighbouring words (bigrams), with the inverse regularisation strength ``C`` chosen on a
  validation split: a bag of n-grams sees short-range order, never a whole sentence.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from torch import nn

from attnlab._validate import shape_str
from attnlab.models.pooling_classifier import (
    AttentionPoolingClassifier,
    PoolingClassifierConfig,
    _check_ids,
)

__all__ = [
    "MeanPooling",
    "MeanPoolingClassifier",
    "GRUClassifierConfig",
    "BiGRUClassifier",
    "NgramLogisticRegression",
]


class MeanPooling(nn.Module):
    r"""The mean of the real positions, with the same interface as attention pooling.

    .. math::

        \alpha_j = \frac{[j \text{ real}]}{\sum_i [i \text{ real}]}, \qquad
        z = \sum_j \alpha_j h_j

    It has no parameters: every real position gets the same weight, whatever it holds.

    Shape:
        x (B, S, C), mask (B, S) bool (True = a real position) or None -> pooled (B, C),
        weights (B, S).

    Example:
        >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> z, w = MeanPooling()(x, torch.tensor([[True, True, False]]))
        >>> z, w
        (tensor([[2.]]), tensor([[0.5000, 0.5000, 0.0000]]))
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled vectors (B, C) and the (uniform) weights (B, S)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = shape_str(x) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be (B, S, C), got {shape}")
        B, S, _ = x.shape
        if mask is None:
            mask = torch.ones(B, S, dtype=torch.bool, device=x.device)
        if not isinstance(mask, torch.Tensor) or mask.shape != (B, S) or mask.dtype != torch.bool:
            shape = shape_str(mask) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor (B, S) = ({B}, {S}) for x "
                             f"{shape_str(x)} (True = a real position), got {shape}")
        if not bool(mask.any(dim=-1).all()):
            raise ValueError("every sequence needs at least one real position in mask")
        weights = mask.to(x.dtype)  # (B, S)
        weights = weights / weights.sum(dim=-1, keepdim=True)  # (B, S), rows sum to 1
        return (weights[:, :, None] * x).sum(dim=1), weights  # (B, C), (B, S)


class MeanPoolingClassifier(AttentionPoolingClassifier):
    """:class:`~attnlab.models.pooling_classifier.AttentionPoolingClassifier` with its attention
    pooling replaced by the mean.

    Embeddings, learned positions, the Transformer encoder, the final norm and the linear
    layer are the same modules, built in the same order, so under the same seed the two
    models start from the same encoder and classifier weights; only the pooling differs
    (:class:`MeanPooling` has no parameters).

    Args:
        config: the :class:`~attnlab.models.pooling_classifier.PoolingClassifierConfig` of the
            attention model to compare with.

    Shape:
        ids (B, T), lengths (B,) -> logits (B, K); with ``need_weights`` also the pooling
        weights (B, T), ``1 / length`` on each real position.

    Example:
        >>> model = MeanPoolingClassifier(PoolingClassifierConfig(vocab_size=10))
        >>> logits, w = model(torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2]),
        ...                   need_weights=True)
        >>> logits.shape, w[1]
        (torch.Size([2, 2]), tensor([0.5000, 0.5000, 0.0000]))
    """

    def __init__(self, config: PoolingClassifierConfig) -> None:
        super().__init__(config)
        self.pool = MeanPooling()


@dataclass
class GRUClassifierConfig:
    """Sizes of :class:`BiGRUClassifier`; the defaults match the attention model's width."""

    vocab_size: int  # V
    num_classes: int = 2  # K
    dim: int = 32  # C: the word vectors' width, as in PoolingClassifierConfig
    hidden: int = 32  # the GRU state in each direction; the classifier reads 2 * hidden
    pad_id: int = 0  # the id of <pad>


class BiGRUClassifier(nn.Module):
    """Embeddings + a bidirectional GRU + a linear layer on its two final states.

    The forward GRU reads the words left to right and stops at each sentence's last real
    word; the backward GRU reads right to left from there to the first word (padding is
    skipped by packing, so a sentence's class does not depend on its batch). Their final
    states, concatenated, are classified.

    Args:
        config: a :class:`GRUClassifierConfig`.

    Shape:
        ids (B, T), lengths (B,) -> logits (B, K).

    Example:
        >>> model = BiGRUClassifier(GRUClassifierConfig(vocab_size=10))
        >>> ids, lengths = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2])
        >>> logits = model(ids, lengths)
        >>> logits.shape, torch.allclose(model(ids[1:, :2], lengths[1:]), logits[1:])
        (torch.Size([2, 2]), True)
    """

    def __init__(self, config: GRUClassifierConfig) -> None:
        super().__init__()
        c = config
        if c.dim < 1 or c.hidden < 1:
            raise ValueError(f"dim and hidden must be positive, got {c.dim} and {c.hidden}")
        self.config = c
        self.embed = nn.Embedding(c.vocab_size, c.dim, padding_idx=c.pad_id)
        self.gru = nn.GRU(c.dim, c.hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * c.hidden, c.num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class logits (B, K)."""
        _check_ids(ids, lengths, self.config.vocab_size)
        x = self.embed(ids)  # (B, T, C)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)  # (2, B, hidden): forward's last, backward's first word
        return self.head(torch.cat([h_n[0], h_n[1]], dim=-1))  # (B, 2 hidden) -> (B, K)


class NgramLogisticRegression:
    """Logistic regression on counts of n-grams (words, word pairs, ...), ``C`` chosen on
    validation.

    Texts are split at spaces; ``n=1`` is the bag of words, ``n=2`` adds every pair of
    neighbouring words ("not good", "but the"). For each ``C`` in ``Cs`` (the inverse of the
    L2 penalty) a model is fitted on the training texts; the one with the best validation
    accuracy is kept (the first of equals in the order of ``Cs``: with ``Cs`` ascending,
    the strongest penalty).

    Args:
        n: the longest n-gram counted (1: words only; 2: words and bigrams).
        Cs: the values of ``C`` to choose from.
        max_iter: L-BFGS iterations per fit.

    After :meth:`fit`, ``C`` holds the chosen value, ``val_accuracy`` the validation
    accuracy of each value tried, and ``num_features`` the number of distinct n-grams in
    the training texts.

    Example:
        >>> texts = ["good", "not good", "bad", "not bad"] * 3
        >>> labels = [1, 0, 0, 1] * 3
        >>> bigram = NgramLogisticRegression(n=2, Cs=(10.0,)).fit(texts, labels, texts, labels)
        >>> bigram.predict(["not good", "not bad"]).tolist(), bigram.num_features
        ([0, 1], 5)
    """

    def __init__(self, n: int = 2, Cs: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
                 max_iter: int = 2000) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if not Cs or any(c <= 0 for c in Cs):
            raise ValueError(f"Cs must be a non-empty sequence of positive numbers, got {Cs}")
        self.n, self.Cs, self.max_iter = n, tuple(float(c) for c in Cs), max_iter
        self.C: float | None = None  # the chosen value, after fit()
        self.val_accuracy: dict[float, float] = {}

    def fit(self, texts: Sequence[str], labels: Sequence[int] | torch.Tensor,
            val_texts: Sequence[str], val_labels: Sequence[int] | torch.Tensor
            ) -> "NgramLogisticRegression":
        """Fit one model per ``C`` on the training texts; keep the best on validation."""
        y, y_val = _labels(labels, len(texts), "labels"), _labels(val_labels, len(val_texts),
                                                                  "val_labels")
        self.vectorizer = CountVectorizer(ngram_range=(1, self.n), token_pattern=r"[^ ]+",
                                          lowercase=False)
        x = self.vectorizer.fit_transform(list(texts))  # (N, features), sparse
        x_val = self.vectorizer.transform(list(val_texts))
        self.num_features = x.shape[1]
        self.val_accuracy, best = {}, None
        for c in self.Cs:
            model = LogisticRegression(C=c, max_iter=self.max_iter).fit(x, y)
            self.val_accuracy[c] = float((model.predict(x_val) == y_val).mean())
            if best is None or self.val_accuracy[c] > self.val_accuracy[best[0]]:
                best = (c, model)
        self.C, self.model = best
        return self

    def predict(self, texts: Sequence[str]) -> torch.Tensor:
        """Predicted classes (N,) as a long tensor."""
        if self.C is None:
            raise RuntimeError("call fit() before predict()")
        x = self.vectorizer.transform(list(texts))  # (N, features), sparse
        return torch.as_tensor(self.model.predict(x), dtype=torch.long)  # (N,)


def _labels(labels: Sequence[int] | torch.Tensor, n: int, name: str) -> np.ndarray:
    y = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"{name} must hold one label per text ({n}), got shape {y.shape}")
    return y
