"""The shift task: at every position, output the token ``shift`` places back.

A sequence of random tokens ``x`` (B, T) has the target ``y[:, t] = x[:, t - shift]``.
No token's identity says where it stands, so a model can only solve the task if it knows
positions: the task the book uses to compare positional encodings (none, sinusoidal,
learned, rotary) and to test them on sequences longer than those seen in training.

The first ``shift`` positions have no token ``shift`` places back (their target wraps
around to the end of the sequence); ``shift_loss`` and ``shift_accuracy`` leave
them out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.metrics import accuracy

__all__ = ["SHIFT", "SHIFT_VOCAB", "shift_task", "shift_loss", "shift_accuracy"]

SHIFT = 2          # how many places back the target is
SHIFT_VOCAB = 16   # tokens 0..15: small enough that a bag of tokens cannot guess the answer


def _check_shift(shift: int, T: int | None = None) -> None:
    if isinstance(shift, bool) or not isinstance(shift, int) or shift < 1:
        raise ValueError(f"shift must be a positive integer, got {shift!r}")
    if T is not None and T <= shift:
        raise ValueError(f"sequences of length T={T} have no position with a token "
                         f"shift={shift} places back; need T > shift")


def shift_task(n: int, T: int, gen: torch.Generator, *, vocab: int = SHIFT_VOCAB,
               shift: int = SHIFT) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random sequences of ``T`` tokens and their targets, the tokens ``shift`` back.

    Args:
        n: number of sequences, at least 1.
        T: sequence length, more than ``shift``.
        gen: the generator the tokens are drawn from (a seeded run is the same everywhere).
        vocab: tokens are drawn uniformly from ``0 .. vocab - 1``.
        shift: how many places back the target is.

    Shape:
        -> x (n, T), y (n, T) int64, with ``y[:, t] = x[:, t - shift]`` for ``t >= shift``.

    Example:
        >>> x, y = shift_task(3, 8, torch.Generator().manual_seed(0))
        >>> x.shape, bool((y[:, SHIFT:] == x[:, :-SHIFT]).all())
        (torch.Size([3, 8]), True)
    """
    for name, value in (("n", n), ("T", T), ("vocab", vocab)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    _check_shift(shift, T)
    x = torch.randint(0, vocab, (n, T), generator=gen)  # (n, T) token ids
    return x, x.roll(shift, dims=1)                     # target at t: x[t - shift]


def shift_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *,
               shift: int = SHIFT) -> torch.Tensor:
    """Cross-entropy of ``model(x)`` against ``y`` at the positions from ``shift`` on.

    A ``loss_fn`` for :func:`attnlab.train.fit` with a ``batch_fn`` that returns
    :func:`shift_task`'s ``(x, y)``.

    Args:
        model: maps token ids (B, T) to scores (B, T, V).
        batch: the token ids ``x`` (B, T) and the targets ``y`` (B, T).
        shift: the first ``shift`` positions, which have no answer, are left out.

    Shape:
        x (B, T), y (B, T) -> a 0-dim loss.

    Example:
        >>> x, y = shift_task(4, 8, torch.Generator().manual_seed(0))
        >>> guess = nn.Embedding(SHIFT_VOCAB, SHIFT_VOCAB)
        >>> _ = nn.init.zeros_(guess.weight)           # the same scores for every token
        >>> round(float(shift_loss(guess, (x, y)).detach()), 4)   # log 16: a uniform guess
        2.7726
    """
    _check_shift(shift)
    x, y = batch
    scores = model(x)[:, shift:]                                       # (B, T - shift, V)
    return F.cross_entropy(scores.flatten(0, 1), y[:, shift:].flatten())


def shift_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   mask: torch.Tensor | None = None, *, shift: int = SHIFT) -> float:
    """The share of positions from ``shift`` on where ``model``'s top token is the target.

    Computed without gradients, with :func:`attnlab.metrics.accuracy`.

    Args:
        model: maps token ids (B, T) (and an attention ``mask``, if one is given) to scores
            (B, T, V).
        x: token ids (B, T).
        y: targets (B, T).
        mask: passed on as ``model(x, mask)``; None calls ``model(x)``.
        shift: the first ``shift`` positions, which have no answer, are left out.

    Shape:
        x (B, T), y (B, T) -> a Python float in [0, 1].

    Example:
        >>> x, y = shift_task(4, 8, torch.Generator().manual_seed(0))
        >>> class Oracle(nn.Module):                          # reads the answer off x itself
        ...     def forward(self, ids):
        ...         return nn.functional.one_hot(ids.roll(SHIFT, dims=1), SHIFT_VOCAB).float()
        >>> shift_accuracy(Oracle(), x, y)
        1.0
    """
    _check_shift(shift, x.shape[-1] if isinstance(x, torch.Tensor) and x.dim() else None)
    with torch.no_grad():
        scores = model(x) if mask is None else model(x, mask)           # (B, T, V)
    return accuracy(scores[:, shift:], y[:, shift:])
