"""Positional encodings: sinusoidal, learned, and rotary (RoPE)."""

from __future__ import annotations

import math

import torch
from torch import nn

from attnlab._validate import shape_str

__all__ = [
    "sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "RotaryEmbedding",
]


def sinusoidal_encoding(
    length: int, dim: int, base: float = 10_000.0, *, offset: int = 0
) -> torch.Tensor:
    r"""The sinusoidal position encoding of Vaswani et al. (2017).

    .. math::

        PE_{t, 2i} = \sin\!\left(t / \text{base}^{2i/C}\right), \qquad
        PE_{t, 2i+1} = \cos\!\left(t / \text{base}^{2i/C}\right)

    Args:
        length: number of positions T.
        dim: C, an even width.
        base: the longest wavelength is :math:`2\pi \cdot \text{base}`.
        offset: the first position (for continuing a sequence).

    Shape:
        Returns (T, C).

    Example:
        >>> pe = sinusoidal_encoding(3, 4)
        >>> pe[0]
        tensor([0., 1., 0., 1.])
    """
    if dim < 2 or dim % 2:
        raise ValueError(f"sinusoidal encodings need an even width, got dim={dim}")
    if length < 1:
        raise ValueError(f"length must be positive, got {length}")
    position = torch.arange(offset, offset + length, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angles = position * freq  # (T, C/2)
    pe = torch.empty(length, dim)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe


class SinusoidalPositionalEncoding(nn.Module):
    """Adds :func:`sinusoidal_encoding` to token embeddings (no parameters).

    Args:
        dim: C.
        max_len: the longest sequence.

    Shape:
        x (B, T, C) -> (B, T, C).
    """

    def __init__(self, dim: int, max_len: int = 1024, base: float = 10_000.0) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_len, dim, base), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if offset + T > self.pe.shape[0]:
            raise ValueError(f"positions up to {offset + T} exceed max_len={self.pe.shape[0]}")
        return x + self.pe[offset : offset + T].to(x.dtype)  # (B, T, C)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned vector per position (as in GPT and BERT).

    Shape:
        x (B, T, C) -> (B, T, C).
    """

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(max_len, dim)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if offset + T > self.embedding.num_embeddings:
            raise ValueError(
                f"positions up to {offset + T} exceed max_len={self.embedding.num_embeddings}"
            )
        positions = torch.arange(offset, offset + T, device=x.device)
        return x + self.embedding(positions)  # (B, T, C)


class RotaryEmbedding(nn.Module):
    r"""Rotary position embedding (RoPE, Su et al. 2021) for queries and keys.

    Each pair of features :math:`(x_{2i}, x_{2i+1})` at position t is rotated
    by the angle :math:`t\,\theta_i`, :math:`\theta_i = \text{base}^{-2i/D}`.
    The dot product of a rotated query at position t and a rotated key at
    position s then depends on the positions only through t - s.

    Args:
        dim: D, the (even) head dimension.
        max_len: the longest sequence.
        base: as in :func:`sinusoidal_encoding`.

    Shape:
        x (..., T, D) -> (..., T, D).

    Example:
        >>> rope = RotaryEmbedding(4)
        >>> q = torch.randn(1, 1, 4)
        >>> torch.allclose(rope(q).norm(), q.norm())   # a rotation keeps lengths
        True
    """

    def __init__(self, dim: int, max_len: int = 1024, base: float = 10_000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"rotary embeddings need an even width, got dim={dim}")
        self.dim = dim
        theta = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (D/2,)
        angles = torch.arange(max_len, dtype=torch.float32)[:, None] * theta  # (L, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        T = x.shape[-2]
        if x.shape[-1] != self.dim:
            raise ValueError(f"rotary embedding of width {self.dim} got x of shape {shape_str(x)}")
        if offset + T > self.cos.shape[0]:
            raise ValueError(f"positions up to {offset + T} exceed max_len={self.cos.shape[0]}")
        cos = self.cos[offset : offset + T].to(x.dtype)  # (T, D/2)
        sin = self.sin[offset : offset + T].to(x.dtype)
        even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, D/2) each
        out = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
        return out.flatten(-2)  # (..., T, D/2, 2) -> (..., T, D)
