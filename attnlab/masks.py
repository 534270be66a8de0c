"""Boolean attention masks. ``True`` means *may attend*, everywhere in attnlab.

A mask is combined with scores of shape (..., T, S): entry ``[i, j]`` says
whether query ``i`` may look at key ``j``. A mask is either 2-D (T, S), shared by
the whole batch, or has as many dimensions as the scores, with size-1
dimensions where it is shared. (PyTorch's ``nn.MultiheadAttention`` uses the
opposite convention for its bool masks: ``True`` there means *blocked*.)

Every mask of the package is built here:

- :func:`causal_mask` -- no look at the future (T, S);
- :func:`length_mask` -- the real (not padded) positions of each sequence (B, T);
- :func:`padding_mask` -- the same as a key mask that broadcasts over queries (B, 1, S);
- :func:`window_mask` -- a band of keys around each query (T, S);
- :func:`leave_one_out_mask` -- every key but the query's own position (S, S);
- :func:`topk_mask` -- each query's k highest scores (..., T, S).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "causal_mask",
    "length_mask",
    "padding_mask",
    "window_mask",
    "leave_one_out_mask",
    "topk_mask",
]


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


def _check_lengths(lengths: torch.Tensor | Sequence[int], n: int, letter: str,
                   caller: str) -> torch.Tensor:
    """``lengths`` as a (B,) integer tensor in ``[0, n]``, or a ValueError that says why not."""
    lens = lengths if isinstance(lengths, torch.Tensor) else torch.as_tensor(list(lengths))
    if lens.dim() != 1 or lens.numel() == 0:
        raise ValueError(
            f"lengths must be a non-empty 1-D sequence (B,), got shape {tuple(lens.shape)}"
        )
    if lens.dtype.is_floating_point or lens.dtype == torch.bool or lens.is_complex():
        raise ValueError(f"lengths must be integers, got dtype {lens.dtype}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{caller} needs a positive integer {letter}, got {n!r}")
    if bool((lens < 0).any()) or bool((lens > n).any()):
        raise ValueError(f"lengths must lie in [0, {letter}={n}], got {lens.tolist()}")
    return lens


def length_mask(
    lengths: torch.Tensor | Sequence[int],
    T: int,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Lengths to a mask: ``True`` on the first ``lengths[b]`` of ``T`` positions of row ``b``.

    The positions a padded batch really holds, for masking inputs, losses or
    pooled sums. As a key mask for attention use :func:`padding_mask`, which
    adds the query axis.

    ::

        length_mask([3, 1, 0], T=4)
        position ->  0 1 2 3
        seq 0        1 1 1 .
        seq 1        1 . . .
        seq 2        . . . .     (1 = True = real position)

    Args:
        lengths: the true length of each sequence, integers in ``[0, T]``.
        T: the padded length.
        device: where to build the mask (defaults to the device of ``lengths``).

    Shape:
        lengths (B,) -> bool tensor (B, T).

    Example:
        >>> length_mask([2, 3], 3).int()
        tensor([[1, 1, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    lens = _check_lengths(lengths, T, "T", "length_mask")
    device = lens.device if device is None else device
    lens = lens.to(device)
    positions = torch.arange(T, device=device)  # (T,)
    return positions[None, :] < lens[:, None]  # (B, T)


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
    _check_lengths(lengths, S, "S", "padding_mask")
    return length_mask(lengths, S, device=device)[:, None, :]  # (B, 1, S)


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


def leave_one_out_mask(S: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Leave-one-out mask: every position may attend every *other* position.

    Used when the queries are the keys themselves (fitting a pooling on its
    own training points): without it each point can simply look itself up.

    ::

        leave_one_out_mask(4)
        keys ->  0 1 2 3
        q 0      . 1 1 1
        q 1      1 . 1 1
        q 2      1 1 . 1
        q 3      1 1 1 .     (1 = True = may attend)

    Args:
        S: the number of positions (queries = keys); at least 2, so that every
            row has something to attend to.
        device: where to build the mask.

    Shape:
        Returns a bool tensor (S, S).

    Example:
        >>> leave_one_out_mask(3).int()
        tensor([[0, 1, 1],
                [1, 0, 1],
                [1, 1, 0]], dtype=torch.int32)
    """
    if not isinstance(S, int) or isinstance(S, bool) or S < 2:
        raise ValueError(
            f"leave_one_out_mask needs an integer S >= 2 (with S=1 the only key is the "
            f"query itself), got {S!r}"
        )
    return ~torch.eye(S, dtype=torch.bool, device=device)


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k mask: each query may attend only its ``k`` highest-scoring keys.

    Applied to attention scores or weights (the order is the same), it keeps
    the ``k`` keys each query relies on most: sparse attention, or a probe of
    how concentrated a trained attention map is. Ties are broken by
    ``torch.topk``.

    ::

        scores                     topk_mask(scores, 2)
        keys ->  0   1   2   3     keys ->  0 1 2 3
        q 0     .1  .5  .3  .1     q 0      . 1 1 .
        q 1     .7  .1  .1  .1     q 1      1 1 . .   (a tie: torch.topk picks)

    Args:
        scores: attention scores or weights, last dim over the S keys.
        k: keys kept per query, an integer in ``[1, S]``.

    Shape:
        scores (..., T, S) -> bool tensor (..., T, S).

    Example:
        >>> topk_mask(torch.tensor([[0.1, 0.5, 0.3, 0.1]]), 2).int()
        tensor([[0, 1, 1, 0]], dtype=torch.int32)
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() < 1:
        raise ValueError("topk_mask needs a tensor of scores (..., T, S)")
    S = scores.shape[-1]
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= S:
        raise ValueError(f"k must be an integer in [1, S={S}], got {k!r}")
    idx = scores.topk(k, dim=-1).indices  # (..., T, k)
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, idx, True)  # (..., T, S)
