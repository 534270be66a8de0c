"""Boolean attention masks. ``True`` means *may attend*, everywhere in attnlab.

A mask is combined with scores of shape (..., T, S): entry ``[i, j]`` says
whether query ``i`` may look at key ``j``. A mask is either 2-D (T, S), shared by
the whole batch, or has as many dimensions as the scores, with size-1
dimensions where it is shared. (PyTorch's ``nn.MultiheadAttention`` uses the
opposite convention for its bool masks: ``True`` there means *blocked*.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def causal_mask(
    T: int,
    S: int | None = None,
    *,
    offset: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Causal mask: query ``i`` may attend key ``j`` when ``j <= i + offset``.

    With the default ``offset=0`` the mask is aligned to the top left, exactly
    like ``scaled_dot_product_attention(..., is_causal=True)``. For a query
    block that continues a cached prefix (the last ``T`` of ``S`` positions)
    use ``offset=S - T``, which aligns it to the bottom right.

    ::

        causal_mask(4)            causal_mask(2, 4, offset=2)
        keys ->  0 1 2 3          keys ->  0 1 2 3
        q 0      1 . . .          q 0      1 1 1 .
        q 1      1 1 . .          q 1      1 1 1 1
        q 2      1 1 1 .
        q 3      1 1 1 1          (1 = True = may attend)

    Args:
        T: number of queries.
        S: number of keys; defaults to ``T``.
        offset: how many keys beyond the diagonal each query may see.
        device: where to build the mask.

    Shape:
        Returns a bool tensor (T, S).

    Example:
        >>> causal_mask(3).int()
        tensor([[1, 0, 0],
                [1, 1, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    S = T if S is None else S
    for name, n in (("T", T), ("S", S)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"causal_mask needs a positive integer {name}, got {n!r}")
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ValueError(f"causal_mask needs an integer offset, got {offset!r}")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=offset)


def padding_mask(
    lengths: torch.Tensor | Sequence[int],
    S: int,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Key-padding mask: in sequence ``b`` only the first ``lengths[b]`` keys are real.

    ::

        padding_mask([3, 1], S=4)[:, 0]
        keys ->   0 1 2 3
        seq 0     1 1 1 .
        seq 1     1 . . .        (1 = True = may attend)

    The result has shape (B, 1, S), which broadcasts over the queries of scores
    (B, T, S). For per-head scores (B, H, T, S) add a head axis:
    ``padding_mask(lengths, S)[:, None]`` is (B, 1, 1, S).

    Args:
        lengths: the true length of each sequence, integers in ``[0, S]``.
        S: the padded key length.
        device: where to build the mask (defaults to the device of ``lengths``).

    Shape:
        lengths (B,) -> bool tensor (B, 1, S).

    Example:
        >>> padding_mask([2, 3], 3).int()
        tensor([[[1, 1, 0]],
        <BLANKLINE>
                [[1, 1, 1]]], dtype=torch.int32)
    """
    if isinstance(lengths, torch.Tensor):
        lens = lengths
    else:
        lens = torch.as_tensor(list(lengths))
    if lens.dim() != 1 or lens.numel() == 0:
        raise ValueError(
            f"lengths must be a non-empty 1-D sequence (B,), got shape {tuple(lens.shape)}"
        )
    if lens.dtype.is_floating_point or lens.dtype == torch.bool or lens.is_complex():
        raise ValueError(f"lengths must be integers, got dtype {lens.dtype}")
    if not isinstance(S, int) or isinstance(S, bool) or S < 1:
        raise ValueError(f"padding_mask needs a positive integer S, got {S!r}")
    if bool((lens < 0).any()) or bool((lens > S).any()):
        raise ValueError(f"lengths must lie in [0, S={S}], got {lens.tolist()}")
    device = lens.device if device is None else device
    lens = lens.to(device)
    positions = torch.arange(S, device=device)  # (S,)
    return (positions[None, :] < lens[:, None])[:, None, :]  # (B, 1, S)


def window_mask(
    T: int,
    S: int | None = None,
    window: int = 64,
    *,
    causal: bool = False,
    offset: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sliding-window mask: query ``i`` may attend key ``j`` if ``abs(i + offset - j) <= window``.

    With ``causal``, only the ``window`` keys before the query and the query's
    own position: ``i + offset - window <= j <= i + offset``. As in
    :func:`attnlab.masks.causal_mask`, ``offset`` shifts the queries to the right, e.g.
    ``offset=S - T`` for the last ``T`` of ``S`` positions (a KV cache).

    ::

        window_mask(5, window=1)       window_mask(5, window=2, causal=True)
        keys ->  0 1 2 3 4             keys ->  0 1 2 3 4
        q 0      1 1 . . .             q 0      1 . . . .
        q 1      1 1 1 . .             q 1      1 1 . . .
        q 2      . 1 1 1 .             q 2      1 1 1 . .
        q 3      . . 1 1 1             q 3      . 1 1 1 .
        q 4      . . . 1 1             q 4      . . 1 1 1
                                       (1 = True = may attend)

    Args:
        T: number of queries.
        S: number of keys; defaults to ``T``.
        window: how far (in positions) a query may look, an integer >= 0.
        causal: look only backwards.
        offset: the position of the first query among the keys.
        device: where to build the mask.

    Shape:
        Returns a bool tensor (T, S).

    Example:
        >>> window_mask(4, window=1).int()
        tensor([[1, 1, 0, 0],
                [1, 1, 1, 0],
                [0, 1, 1, 1],
                [0, 0, 1, 1]], dtype=torch.int32)
        >>> window_mask(2, 4, window=1, causal=True, offset=2).int()
        tensor([[0, 1, 1, 0],
                [0, 0, 1, 1]], dtype=torch.int32)
    """
    S = T if S is None else S
    for name, n in (("T", T), ("S", S)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"window_mask needs a positive integer {name}, got {n!r}")
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        raise ValueError(f"window must be an integer >= 0, got {window!r}")
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ValueError(f"window_mask needs an integer offset, got {offset!r}")
    i = torch.arange(offset, offset + T, device=device)[:, None]  # (T, 1) query positions
    j = torch.arange(S, device=device)[None, :]  # (1, S) key positions
    allowed = (j - i).abs() <= window  # (T, S)
    return allowed & (j <= i) if causal else allowed
