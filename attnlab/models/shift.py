"""ShiftModel: a one-block Transformer that labels every token, with a choice of positions.

Token embedding, then positions -- none, sinusoidal (added), learned (added) or rotary
(inside attention) -- then one :class:`attnlab.layers.TransformerBlock` (optionally with a
sliding attention window) and a linear read-out at every position. It is the model the
book trains on ``attnlab.data.shift_task`` to compare positional encodings and
to test them on sequences longer than those it was trained on.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.layers import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from attnlab.masks import window_mask

__all__ = ["ShiftModel", "POSITIONS"]

POSITIONS = ("none", "sinusoidal", "learned", "rotary")


class ShiftModel(nn.Module):
    """Embedding + positions + one Transformer block + a read-out at every position.

    Args:
        positions: ``"none"``, ``"sinusoidal"``, ``"learned"`` or ``"rotary"``.
        window: if given, every query attends only keys at most ``window`` positions away
            (:func:`attnlab.masks.window_mask`); None attends everywhere.
        vocab: number of token ids V (inputs and outputs).
        C: model width.
        H: attention heads.
        max_len: the longest sequence: the rows of a learned table (it cannot run longer
            sequences), the length of the sinusoidal and rotary tables.

    Shape:
        ids (B, T) -> scores (B, T, V); T <= max_len.

    Example:
        >>> model = ShiftModel("rotary", window=4, max_len=32)
        >>> ids = torch.randint(0, 16, (2, 10))
        >>> model(ids).shape, model.attention(ids).shape           # (B, T, V), (B, H, T, S)
        (torch.Size([2, 10, 16]), torch.Size([2, 2, 10, 10]))
    """

    def __init__(self, positions: str, window: int | None = None, *, vocab: int = 16,
                 C: int = 32, H: int = 2, max_len: int = 256) -> None:
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 0):
            raise ValueError(f"window must be None or an integer >= 0, got {window!r}")
        # the order of construction fixes which random numbers initialise which weights
        self.embed = nn.Embedding(vocab, C)
        self.add_positions: nn.Module = nn.Identity()
        if positions == "sinusoidal":
            self.add_positions = SinusoidalPositionalEncoding(C, max_len=max_len)
        elif positions == "learned":
            self.add_positions = LearnedPositionalEmbedding(max_len, C)
        rope = RotaryEmbedding(C // H, max_len=max_len) if positions == "rotary" else None
        self.block = TransformerBlock(C, H, 2 * C, rope=rope)
        self.norm, self.head = nn.LayerNorm(C), nn.Linear(C, vocab)
        self.positions, self.window = positions, window

    def mask(self, T: int, extra: torch.Tensor | None = None) -> torch.Tensor | None:
        """The attention mask (T, S) for length T: the window's, and-ed with ``extra``."""
        m = None if self.window is None else window_mask(T, window=self.window)   # (T, S)
        return extra if m is None else m if extra is None else m & extra

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (B, T, V) for ids (B, T); a ``mask`` (True = may attend) narrows attention."""
        h = self.add_positions(self.embed(ids))                   # (B, T, C)
        h = self.block(h, mask=self.mask(ids.shape[1], mask))     # (B, T, C)
        return self.head(self.norm(h))                            # (B, T, V)

    def attention(self, ids: torch.Tensor) -> torch.Tensor:
        """The block's attention weights (B, H, T, S) for token ids (B, T)."""
        h = self.block.norm1(self.add_positions(self.embed(ids)))   # what attention sees
        return self.block.self_attn(h, mask=self.mask(ids.shape[1]), need_weights=True)[1]
