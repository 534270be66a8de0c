"""Key/value caches for incremental decoding: the whole prefix, or a rolling window."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from attnlab.masks import causal_mask, window_mask

__all__ = ["KVCache", "RollingKVCache"]


@dataclass
class KVCache:
    """Keys and values of the positions seen so far, for incremental decoding.

    Each self-attention layer keeps one. ``append`` adds the new positions'
    keys and values and returns everything cached. With grouped-query
    attention it holds the G = H_kv key/value heads, not the H query heads.

    Shape:
        k, v: (B, G, S, D), S growing by T with each ``append``.

    Example:
        >>> cache = KVCache()
        >>> k, v = cache.append(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))
        >>> k, v = cache.append(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 4))
        >>> cache.length, cache.position, tuple(k.shape)
        (4, 4, (1, 2, 4, 4))
    """

    k: torch.Tensor | None = field(default=None, repr=False)
    v: torch.Tensor | None = field(default=None, repr=False)

    @property
    def length(self) -> int:
        """How many positions are cached."""
        return 0 if self.k is None else self.k.shape[-2]

    @property
    def position(self) -> int:
        """The number of positions seen so far, which is the position of the next one."""
        return self.length

    @property
    def nbytes(self) -> int:
        """Memory held by the cached keys and values, in bytes."""
        return sum(t.numel() * t.element_size() for t in (self.k, self.v) if t is not None)

    def causal_mask(self, T: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The (T, S) mask of the last ``append``'s T queries over the keys it returned."""
        return causal_mask(T, self.length, offset=self.length - T, device=device)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add (B, H, T, D) keys and values; return all of them, (B, H, S + T, D)."""
        if self.k is None or self.v is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=-2)  # (B, H, S + T, D)
            self.v = torch.cat([self.v, v], dim=-2)
        return self.k, self.v


class RollingKVCache(KVCache):
    r"""A KV cache of fixed size for sliding-window attention.

    It keeps the keys and values of the last ``window`` positions only:
    with them, the next query sees exactly the keys
    :func:`attnlab.masks.window_mask` (``causal=True``) allows, its own
    position and the ``window`` before it. However long the sequence, the
    cache holds at most ``window`` positions, so its memory stays flat.

    ::

        positions seen  0 1 2 3 4 5 6      window = 3
        cached                  4 5 6      (the next query, 7, adds itself)

    Args:
        window: how many earlier positions a query may attend, >= 1.

    Shape:
        k, v: (B, G, S, D) with S <= window between calls; ``append`` returns
        the cached and the new positions, (B, G, S + T, D).

    Example:
        >>> cache = RollingKVCache(window=3)
        >>> for t in range(7):
        ...     k, v = cache.append(torch.zeros(1, 2, 1, 4), torch.zeros(1, 2, 1, 4))
        >>> cache.length, cache.position, tuple(k.shape)
        (3, 7, (1, 2, 4, 4))
    """

    def __init__(self, window: int) -> None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        super().__init__()
        self.window = window
        self._seen = 0  # positions appended so far
        self._returned = 0  # keys the last append returned

    @property
    def position(self) -> int:
        """How many positions have been seen (more than are kept)."""
        return self._seen

    def causal_mask(self, T: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The (T, S) sliding-window mask of the last ``append``'s queries over its keys."""
        S = self._returned
        return window_mask(T, S, self.window, causal=True, offset=S - T, device=device)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add (B, G, T, D) keys and values; return the kept and the new ones, (B, G, S + T, D).

        Afterwards only the last ``window`` positions stay in the cache.
        """
        k_all, v_all = super().append(k, v)  # (B, G, S + T, D)
        self._seen += k.shape[-2]
        self._returned = k_all.shape[-2]
        self.k = k_all[..., -self.window :, :].clone()  # (B, G, <= window, D): a copy, so
        self.v = v_all[..., -self.window :, :].clone()  # the longer tensor can be freed
        return k_all, v_all
