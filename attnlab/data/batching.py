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


def random_rows(*tensors: torch.Tensor, batch_size: int
                ) -> Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]:
    """A ``batch_fn`` for :func:`attnlab.train.fit`: the same random rows of every tensor.

    Each call draws ``batch_size`` row indices uniformly, with replacement, from
    the loop's generator (``torch.randint(0, N, (batch_size,), generator=gen)``)
    and returns those rows of each tensor, so that inputs and targets stay
    paired and a seeded run draws the same batches everywhere.

    Args:
        tensors: one or more tensors with the same first dimension N.
        batch_size: rows per batch, at least 1.

    Shape:
        each tensor (N, ...) -> a batch of it (batch_size, ...).

    Example:
        >>> x, y = torch.arange(10.0).reshape(5, 2), torch.arange(5)
        >>> batch_fn = random_rows(x, y, batch_size=3)
        >>> bx, by = batch_fn(0, torch.Generator().manual_seed(0))
        >>> bx.shape, bool((bx[:, 0] == 2 * by).all())
        (torch.Size([3, 2]), True)
    """
    if not tensors or not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in tensors):
        raise ValueError("random_rows needs one or more tensors with a first dimension (N, ...)")
    n = tensors[0].shape[0]
    if any(t.shape[0] != n for t in tensors) or n == 0:
        raise ValueError(f"the tensors must share a non-empty first dimension N, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")

    def batch_fn(step: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        rows = torch.randint(0, n, (batch_size,), generator=gen)  # (batch_size,)
        return tuple(t[rows] for t in tensors)

    return batch_fn
