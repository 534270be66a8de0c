r"""Sequence classification: attention pooling with a learned query, and a bag-of-words baseline.

:class:`AttentionPoolingClassifier` reads a sentence with token embeddings, learned
positions and a small Transformer encoder, then pools the encoder's states into one vector
with :class:`AttentionPooling` -- attention with a single learned query,

.. math::

    \alpha_j = \operatorname{softmax}_j\!\left(\frac{q \cdot W_k h_j}{\sqrt{C}}\right),
    \qquad z = \sum_{j=1}^{S} \alpha_j h_j ,

and classifies :math:`z` with a linear layer. The weights :math:`\alpha_j` say which
positions the classification reads. (The pooling is attention with T = 1 query; the S
positions of the sentence are its keys and values.)

:class:`BagOfWordsClassifier` is logistic regression on word counts
(:func:`bag_of_words`): it sees which words occur and how often, never in which order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from attnlab._validate import check_ids, check_weights_and_positions, shape_str
from attnlab.layers import (
    AttentionPooling,
    LearnedPositionalEmbedding,
    TransformerBlock,
    run_blocks,
)
from attnlab.masks import padding_mask

__all__ = [
    "AttentionPooling",
    "PoolingClassifierConfig",
    "AttentionPoolingClassifier",
    "bag_of_words",
    "BagOfWordsClassifier",
    "attention_mass",
    "subset_accuracy",
]


def _check_ids(ids: torch.Tensor, lengths: torch.Tensor | None, vocab_size: int) -> None:
    check_ids(ids, "ids", vocab_size)
    if lengths is not None:
        if not isinstance(lengths, torch.Tensor) or lengths.shape != ids.shape[:1]:
            shape = shape_str(lengths) if isinstance(lengths, torch.Tensor) else "no tensor"
            raise ValueError(f"lengths must be (B,) = ({ids.shape[0]},) for ids "
                             f"{shape_str(ids)}, got {shape}")
        if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > ids.shape[1]):
            raise ValueError(f"lengths must lie in [1, T={ids.shape[1]}], got "
                             f"{lengths.tolist()}")


@dataclass
class PoolingClassifierConfig:
    """Sizes of :class:`AttentionPoolingClassifier`; the defaults suit short synthetic text."""

    vocab_size: int  # V
    num_classes: int = 2  # K
    dim: int = 32  # C: a vocabulary of ~60 words needs little width
    num_heads: int = 2  # H; D = C / H = 16
    num_layers: int = 1  # one block lets each word read its clause ("not", "but")
    ff_dim: int = 64  # the feed-forward hidden width, 2 C
    max_len: int = 32  # the longest sentence, in tokens
    dropout: float = 0.0  # the synthetic language does not overfit at this size
    pad_id: int = 0  # the id of <pad>


class AttentionPoolingClassifier(nn.Module):
    """Embeddings + learned positions + Transformer encoder + attention pooling + linear layer.

    The encoder lets each word's state take in its context (a ``"not"`` before it, a
    ``"but"`` somewhere before it); the pooling then chooses which states to read.
    Padded positions are masked in the encoder's keys and in the pooling.

    Shape:
        ids (B, T), lengths (B,) -> logits (B, K); with ``need_weights`` also the pooling
        weights (B, T).

    Example:
        >>> model = AttentionPoolingClassifier(PoolingClassifierConfig(vocab_size=10))
        >>> ids = torch.tensor([[3, 4, 5], [6, 7, 0]])
        >>> logits, w = model(ids, torch.tensor([3, 2]), need_weights=True)
        >>> logits.shape, w.shape, bool(w[1, 2] == 0)
        (torch.Size([2, 2]), torch.Size([2, 3]), True)
    """

    def __init__(self, config: PoolingClassifierConfig) -> None:
        super().__init__()
        c = config
        if c.dim % c.num_heads:
            raise ValueError(f"dim={c.dim} must be a multiple of num_heads={c.num_heads}")
        self.config = c
        self.embed = nn.Embedding(c.vocab_size, c.dim, padding_idx=c.pad_id)
        self.position = LearnedPositionalEmbedding(c.max_len, c.dim)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.ff_dim, c.dropout, norm_first=True)
            for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.dim)
        self.pool = AttentionPooling(c.dim)
        self.head = nn.Linear(c.dim, c.num_classes)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, need_weights: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The states (B, T, C), the padding mask (B, T) and, with ``need_weights``, each
        block's self-attention weights (B, H, T, T) (else an empty list)."""
        _check_ids(ids, lengths, self.config.vocab_size)
        if ids.shape[1] > self.config.max_len:
            raise ValueError(f"sequences of length {ids.shape[1]} exceed "
                             f"max_len={self.config.max_len}")
        real = padding_mask(lengths, ids.shape[1], device=ids.device)  # (B, 1, T)
        x = self.position(self.embed(ids))  # (B, T, C)
        keys = real.expand(-1, ids.shape[1], -1)  # (B, T, T): every query, the real keys
        x, maps = run_blocks(self.blocks, x, keys, need_weights)  # maps: (B, H, T, T) each
        return self.norm(x), real[:, 0], maps

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Class logits (B, K); with ``need_weights`` also the pooling weights (B, T)."""
        states, real, _ = self.encode(ids, lengths)  # (B, T, C), (B, T)
        pooled, weights = self.pool(states, real)  # (B, C), (B, T)
        logits = self.head(pooled)  # (B, K)
        return (logits, weights) if need_weights else logits


# ------------------------------------------------------------------------ bag of words


def bag_of_words(ids: torch.Tensor, vocab_size: int, pad_id: int | None = 0) -> torch.Tensor:
    """How often each word of the vocabulary occurs in each sequence; padding is not counted.

    Args:
        ids: token ids (B, T).
        vocab_size: V.
        pad_id: the id whose occurrences are not counted (None: count every id).

    Shape:
        ids (B, T) -> counts (B, V), float32.

    Example:
        >>> bag_of_words(torch.tensor([[1, 2, 1, 0], [3, 0, 0, 0]]), 4)
        tensor([[0., 2., 1., 0.],
                [0., 0., 0., 1.]])
    """
    _check_ids(ids, None, vocab_size)
    counts = torch.zeros(ids.shape[0], vocab_size, device=ids.device)
    counts.scatter_add_(1, ids.long(), torch.ones(ids.shape, device=ids.device))  # (B, V)
    if pad_id is not None:
        counts[:, pad_id] = 0.0
    return counts


class BagOfWordsClassifier(nn.Module):
    """Logistic regression on word counts: ``logits = counts @ W.T + b``.

    Any model of the bag alone gives the same output for two sentences with the same words
    in a different order.

    Args:
        vocab_size: V.
        num_classes: K.
        pad_id: the padding id, not counted.

    Shape:
        ids (B, T), lengths (B,) (unused: padding is recognised by its id) -> logits (B, K).

    Example:
        >>> model = BagOfWordsClassifier(5)
        >>> a, b = torch.tensor([[1, 2, 3]]), torch.tensor([[3, 1, 2]])
        >>> torch.equal(model(a), model(b))
        True
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, pad_id: int | None = 0) -> None:
        super().__init__()
        self.vocab_size, self.pad_id = vocab_size, pad_id
        self.linear = nn.Linear(vocab_size, num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        _check_ids(ids, lengths, self.vocab_size)
        return self.linear(bag_of_words(ids, self.vocab_size, self.pad_id))  # (B, K)


# ----------------------------------------------------------------------------- metrics


def attention_mass(weights: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """The share of each sequence's attention weight that falls on the selected positions.

    Args:
        weights: pooling weights (B, T), each row summing to 1.
        selected: bool (B, T), True at the positions to count.

    Shape:
        weights (B, T), selected (B, T) -> (B,).

    Example:
        >>> attention_mass(torch.tensor([[0.5, 0.3, 0.2]]), torch.tensor([[False, True, True]]))
        tensor([0.5000])
    """
    check_weights_and_positions(weights, selected, "selected")
    return (weights * selected).sum(dim=-1)  # (B,)


def subset_accuracy(predictions: torch.Tensor, labels: torch.Tensor,
                    subsets: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Accuracy overall (``"all"``) and on each named subset.

    Args:
        predictions: predicted classes (N,).
        labels: true classes (N,).
        subsets: names to bool masks (N,), e.g. ``{"negated": ...}``; an empty subset gets NaN.

    Returns:
        ``{"all": ..., name: ...}`` with accuracies in [0, 1].

    Example:
        >>> subset_accuracy(torch.tensor([1, 0, 1, 1]), torch.tensor([1, 1, 1, 0]),
        ...                 {"first two": torch.tensor([True, True, False, False])})
        {'all': 0.5, 'first two': 0.5}
    """
    if predictions.shape != labels.shape or predictions.dim() != 1:
        raise ValueError(f"predictions {shape_str(predictions)} and labels "
                         f"{shape_str(labels)} must both be (N,)")
    right = (predictions == labels).float()  # (N,)
    out = {"all": float(right.mean())}
    for name, mask in subsets.items():
        if mask.shape != labels.shape or mask.dtype != torch.bool:
            raise ValueError(f"subset {name!r} must be a bool mask (N,) = "
                             f"({labels.shape[0]},), got {shape_str(mask)} {mask.dtype}")
        out[name] = float(right[mask].mean()) if bool(mask.any()) else float("nan")
    return out
