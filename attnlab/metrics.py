r"""Ranking metrics for recommendation: the rank of the held-out item, HR@k and NDCG@k.

And :func:`exact_match`, the fraction of output strings that equal their targets (a
translation, a transcription, a sum); :func:`accuracy`, the fraction of predicted labels
that equal their targets, and :func:`model_accuracy`, the same for a model's outputs.

A recommender scores every candidate item; the evaluation holds out one item
per user (the *target*) and asks where it lands in the ranking. With the
target's 0-based rank :math:`r` (0 = ranked first),

.. math::

    \mathrm{HR@}k = [\, r < k \,], \qquad
    \mathrm{NDCG@}k = \frac{[\, r < k \,]}{\log_2(r + 2)} ,

averaged over users. With one relevant item the ideal DCG is 1, so NDCG@k is
the discounted gain of the target alone (Järvelin and Kekäläinen 2002): 1 at
rank 0, 0.63 at rank 1, 0.5 at rank 2, ... and 0 from rank k on.

**Ties count against the target**: its rank is the number of *other*
candidates that score at least as high. A recommender that gives every item
the same score therefore ranks the target last, rather than first.
Candidates that must not be recommended (e.g. the padding id) get the score
``-inf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from attnlab._validate import shape_str

__all__ = ["target_ranks", "hit_rate_at_k", "ndcg_at_k", "exact_match", "edit_distance",
           "word_error_rate", "char_error_rate", "accuracy", "model_accuracy"]

Reduction = Literal["mean", "none"]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _reduce(values: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The 0-based rank of each target among all candidates; ties count against it.

    Args:
        scores: (B, V) a score for every candidate item (higher is better).
        targets: (B,) the index of the held-out item in each row.

    Shape:
        scores (B, V), targets (B,) -> ranks (B,) int64 in [0, V - 1].

    Returns:
        For each row, the number of other candidates whose score is at least
        the target's.

    Example:
        >>> scores = torch.tensor([[0.1, 0.9, 0.5], [1.0, 1.0, 1.0]])
        >>> target_ranks(scores, torch.tensor([2, 0])).tolist()  # 2nd; a tie with two others
        [1, 2]
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2 or scores.shape[1] == 0:
        got = shape_str(scores) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores must be (B, V) with V >= 1 candidates, got {got}")
    if not scores.is_floating_point():
        raise ValueError(f"scores must be floating point, got dtype {scores.dtype}")
    if not isinstance(targets, torch.Tensor) or targets.shape != scores.shape[:1]:
        got = shape_str(targets) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be (B,) = ({scores.shape[0]},) for scores "
                         f"{shape_str(scores)}, got {got}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must hold integer indices, got dtype {targets.dtype}")
    V = scores.shape[1]
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= V):
        raise ValueError(f"targets must lie in [0, V={V}), got min {int(targets.min())}, "
                         f"max {int(targets.max())}")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN: a rank is not defined")
    target_scores = scores.gather(1, targets[:, None].long())  # (B, 1)
    return (scores >= target_scores).sum(dim=1) - 1  # (B,): the target itself is not counted


def hit_rate_at_k(scores: torch.Tensor, targets: torch.Tensor, k: int = 10,
                  reduction: Reduction = "mean") -> torch.Tensor:
    """HR@k: the share of rows whose target is among the k highest-scored candidates.

    Args:
        scores: (B, V) scores of every candidate.
        targets: (B,) the held-out item of each row.
        k: the length of the recommended list.
        reduction: ``"mean"`` (a 0-dim tensor) or ``"none"`` (one value per row).

    Shape:
        scores (B, V), targets (B,) -> () or (B,).

    Returns:
        The mean hit rate (a 0-dim float tensor), or 1.0 / 0.0 per row.

    Example:
        >>> scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
        >>> hit_rate_at_k(scores, torch.tensor([2, 2]), k=2)  # rank 1 (hit), rank 2 (miss)
        tensor(0.5000)
    """
    _check_k(k)
    ranks = target_ranks(scores, targets)
    return _reduce((ranks < k).float(), reduction)


def ndcg_at_k(scores: torch.Tensor, targets: torch.Tensor, k: int = 10,
              reduction: Reduction = "mean") -> torch.Tensor:
    """NDCG@k with one relevant item per row: 1 / log2(rank + 2) if rank < k, else 0.

    Args:
        scores: (B, V) scores of every candidate.
        targets: (B,) the held-out item of each row.
        k: the length of the recommended list.
        reduction: ``"mean"`` (a 0-dim tensor) or ``"none"`` (one value per row).

    Shape:
        scores (B, V), targets (B,) -> () or (B,).

    Returns:
        The mean NDCG@k (a 0-dim float tensor), or one value in [0, 1] per row.

    Example:
        >>> scores = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
        >>> ndcg_at_k(scores, torch.tensor([1, 1]), k=2, reduction="none")  # ranks 0 and 1
        tensor([1.0000, 0.6309])
    """
    _check_k(k)
    ranks = target_ranks(scores, targets)
    gain = 1.0 / torch.log2(ranks.double() + 2.0)  # (B,)
    return _reduce(torch.where(ranks < k, gain, 0.0).float(), reduction)


def exact_match(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """The fraction of predicted sequences that equal their targets exactly.

    Args:
        predictions: the model's outputs, e.g. decoded strings.
        targets: the references, as many as ``predictions`` and at least one.

    Example:
        >>> exact_match(["123", "55"], ["123", "555"])
        0.5
    """
    if len(predictions) != len(targets) or len(targets) == 0:
        raise ValueError(f"need as many predictions as targets, and at least one; got "
                         f"{len(predictions)} and {len(targets)}")
    return sum(p == t for p, t in zip(predictions, targets)) / len(targets)


def accuracy(predictions: torch.Tensor, targets: torch.Tensor, *,
             ignore_index: int | None = None) -> float:
    """The fraction of predictions that equal their targets: labels, or the argmax of scores.

    ``predictions`` holds either one label per target (the same shape as
    ``targets``) or a score for each of K classes (one more dimension, last);
    scores are turned into labels with ``argmax(-1)``, the first of tied
    maxima. Targets equal to ``ignore_index`` (e.g. padding) are left out.

    Args:
        predictions: labels (...) or scores (..., K).
        targets: integer labels (...).
        ignore_index: a target value that is not counted, or None.

    Shape:
        predictions (...) or (..., K), targets (...) -> a Python float in [0, 1].

    Example:
        >>> scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])  # (4, K=2)
        >>> accuracy(scores, torch.tensor([1, 1, 1, 0]))             # labels 1, 0, 1, 0
        0.75
        >>> accuracy(torch.tensor([[3, 1, 0]]), torch.tensor([[3, 2, -100]]), ignore_index=-100)
        0.5
    """
    for name, t in (("predictions", predictions), ("targets", targets)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise ValueError(f"targets must hold integer labels, got dtype {targets.dtype}")
    if predictions.dim() == targets.dim() + 1 and predictions.shape[:-1] == targets.shape:
        if predictions.shape[-1] == 0:
            raise ValueError(f"scores {shape_str(predictions)} have no class to choose")
        predictions = predictions.argmax(-1)  # (...)
    elif predictions.shape != targets.shape:
        scores = "(" + "".join(f"{n}, " for n in targets.shape) + "K)"
        raise ValueError(f"predictions must be labels {shape_str(targets)} or scores {scores} "
                         f"for targets {shape_str(targets)}, got {shape_str(predictions)}")
    elif predictions.is_floating_point():
        raise ValueError(f"predictions of the targets' shape must be integer labels, got dtype "
                         f"{predictions.dtype} (scores need a last dimension of K classes)")
    if ignore_index is not None:
        kept = targets != ignore_index
        predictions, targets = predictions[kept], targets[kept]  # (N,): the counted ones
    if targets.numel() == 0:
        raise ValueError("accuracy needs at least one target"
                         + ("" if ignore_index is None else f" not equal to {ignore_index}"))
    return (predictions == targets).float().mean().item()


def model_accuracy(model: nn.Module, inputs: torch.Tensor | Sequence[torch.Tensor],
                   targets: torch.Tensor, *, ignore_index: int | None = None) -> float:
    """The :func:`accuracy` of ``model(*inputs)``, computed without gradients.

    The model is called once on the whole set, in whatever mode it is in
    (call ``model.eval()`` first if dropout should be off); its output holds a
    score for each class, last.

    Args:
        model: maps ``inputs`` to scores (..., K).
        inputs: one tensor, or a tuple of tensors passed as ``model(*inputs)``.
        targets: integer labels (...).
        ignore_index: a target value that is not counted, or None.

    Shape:
        ``model(*inputs)`` (..., K), targets (...) -> a Python float in [0, 1].

    Example:
        >>> model = nn.Linear(2, 2)
        >>> _ = model.weight.data.copy_(torch.eye(2)), model.bias.data.zero_()
        >>> model_accuracy(model, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        0.5
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    args = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    with torch.no_grad():
        scores = model(*args)
    return accuracy(scores, targets, ignore_index=ignore_index)


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions from a to b.

    Example:
        >>> edit_distance("1234", "124"), edit_distance("55", "555"), edit_distance("12", "21")
        (1, 1, 2)
    """
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _error_rate(predictions: Sequence[str], targets: Sequence[str], split: bool) -> float:
    if isinstance(predictions, str) or isinstance(targets, str):
        raise ValueError("predictions and targets must be lists of strings, not one string")
    if len(predictions) != len(targets) or len(targets) == 0:
        raise ValueError(f"need as many predictions as targets, and at least one; got "
                         f"{len(predictions)} and {len(targets)}")
    units = [(p.split(), t.split()) if split else (p, t) for p, t in zip(predictions, targets)]
    total = sum(len(t) for _, t in units)
    if total == 0:
        raise ValueError("the targets are empty: an error rate divides by their length")
    return sum(edit_distance(p, t) for p, t in units) / total


def word_error_rate(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """WER: word-level edit distance (insertions + deletions + substitutions) per target word.

    Words are split on whitespace; the sums run over the whole list (a corpus
    WER, not a mean of sentence WERs). It can exceed 1 (many insertions).

    Example:
        >>> word_error_rate(["three one four", "two"], ["three one five", "two two"])
        0.4
    """
    return _error_rate(predictions, targets, split=True)


def char_error_rate(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """CER: character-level edit distance per target character (spaces count).

    Example:
        >>> round(char_error_rate(["three one four"], ["three one five"]), 4)  # 3 of 14
        0.2143
    """
    return _error_rate(predictions, targets, split=False)
