"""Layers of the book's models, one module per idea, all importable from here.

All layers are batch-first. Inside multi-head attention tensors are laid out
(B, H, T, D); at the boundaries they are (B, T, C) with C = H * D. Masks are
bool with ``True`` = *may attend* (the opposite of ``nn.MultiheadAttention``'s
bool masks).

- :mod:`attnlab.layers.attention` -- :class:`AdditiveAttention`, :class:`MultiHeadAttention`;
- :mod:`attnlab.layers.cache` -- :class:`KVCache`, :class:`RollingKVCache`;
- :mod:`attnlab.layers.positions` -- sinusoidal, learned and rotary positions;
- :mod:`attnlab.layers.blocks` -- :class:`FeedForward`, :class:`RMSNorm`, :class:`SwiGLU`,
  :class:`TransformerBlock`, :class:`DecoderBlock`;
- :mod:`attnlab.layers.attention_pooling` -- :class:`AttentionPooling`, a learned query;
- :mod:`attnlab.layers.patches` -- :func:`patchify`, :func:`unpatchify`, :func:`patch_count`:
  images to sequences of patches, as a Vision Transformer reads them.
"""

from attnlab.layers.attention import AdditiveAttention, MultiHeadAttention
from attnlab.layers.attention_pooling import AttentionPooling
from attnlab.layers.blocks import (
    DecoderBlock,
    FeedForward,
    RMSNorm,
    SwiGLU,
    TransformerBlock,
    run_blocks,
)
from attnlab.layers.cache import KVCache, RollingKVCache
from attnlab.layers.patches import patch_count, patchify, unpatchify
from attnlab.layers.positions import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_encoding,
)

__all__ = [
    "run_blocks",
    "AdditiveAttention",
    "KVCache",
    "RollingKVCache",
    "MultiHeadAttention",
    "sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEmbedding",
    "RotaryEmbedding",
    "FeedForward",
    "RMSNorm",
    "SwiGLU",
    "TransformerBlock",
    "DecoderBlock",
    "AttentionPooling",
    "patchify",
    "unpatchify",
    "patch_count",
]
