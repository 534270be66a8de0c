"""Batches over a data set: shuffled index batches, and random rows for a training loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

__all__ = ["batches", "random_rows"]


def batches(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Index tensors that cover ``range(n)`` in batches, shuffled with ``generator``.

    Example:
        >>> [b.tolist() for b in batches(5, 2, shuffle=False)]
        [[0, 1], [2, 3], [4]]
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def random_rows(*tensors: torch.Tensor, batch_size: int, padded: int | None = None,
                lengths: int | None = None
                ) -> Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]:
    """A ``batch_fn`` for :func:`attnlab.train.fit`: the same random rows of every tensor.

    Each call draws ``batch_size`` row indices uniformly, with replacement, from
    the loop's generator (``torch.randint(0, N, (batch_size,), generator=gen)``)
    and returns those rows of each tensor, so that inputs and targets stay
    paired and a seeded run draws the same batches everywhere.

    With ``padded`` and ``lengths``, tensor ``padded`` holds right-padded
    sequences (N, L) and tensor ``lengths`` their lengths (N,); each batch of
    the padded tensor is cut to its longest sequence, ``(batch_size, max
    length in the batch)``, so that no step computes on columns that are all
    padding.

    Args:
        tensors: one or more tensors with the same first dimension N.
        batch_size: rows per batch, at least 1.
        padded: the index in ``tensors`` of the padded sequences (N, L, ...), or None.
        lengths: the index in ``tensors`` of their lengths (N,); given with ``padded``.

    Shape:
        each tensor (N, ...) -> a batch of it (batch_size, ...); the padded one
        (batch_size, L', ...) with L' the batch's longest length.

    Example:
        >>> x, y = torch.arange(10.0).reshape(5, 2), torch.arange(5)
        >>> batch_fn = random_rows(x, y, batch_size=3)
        >>> bx, by = batch_fn(0, torch.Generator().manual_seed(0))
        >>> bx.shape, bool((bx[:, 0] == 2 * by).all())
        (torch.Size([3, 2]), True)
        >>> ids, n = torch.tensor([[5, 6, 0], [7, 0, 0]]), torch.tensor([2, 1])   # (N, L), (N,)
        >>> batch_fn = random_rows(ids, n, batch_size=2, padded=0, lengths=1)
        >>> batch_fn(0, torch.Generator().manual_seed(0))[0].tolist()   # rows 0, 1: longest 2
        [[5, 6], [7, 0]]
        >>> batch_fn(0, torch.Generator().manual_seed(1))[0].tolist()   # rows 1, 1: longest 1
        [[7], [7]]
    """
    if not tensors or not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in tensors):
        raise ValueError("random_rows needs one or more tensors with a first dimension (N, ...)")
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors) or n == 0:
        raise ValueError(f"the tensors must share a non-empty first dimension N, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if (padded is None) != (lengths is None):
        raise ValueError(f"give padded and lengths together (the indices of the padded "
                         f"sequences and of their lengths), got padded={padded!r}, "
                         f"lengths={lengths!r}")
    if padded is not None:
        for name, i in (("padded", padded), ("lengths", lengths)):
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(tensors):
                raise ValueError(f"{name} must index one of the {len(tensors)} tensors, "
                                 f"got {i!r}")
        if padded == lengths or tensors[padded].dim() < 2 or tensors[lengths].dim() != 1:
            raise ValueError(f"padded must name sequences (N, L, ...) and lengths their "
                             f"lengths (N,), got {tuple(tensors[padded].shape)} and "
                             f"{tuple(tensors[lengths].shape)}")

    def batch_fn(step: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        rows = torch.randint(0, n, (batch_size,), generator=gen)  # (batch_size,)
        batch = [t[rows] for t in tensors]
        if padded is not None:
            longest = int(batch[lengths].max())
            batch[padded] = batch[padded][:, :longest]  # (batch_size, L')
        return tuple(batch)

    return batch_fn
