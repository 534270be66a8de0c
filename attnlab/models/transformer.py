"""The encoder-decoder Transformer of Vaswani et al. (2017), pre-norm by default."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab._validate import check_ids
from attnlab.layers import (
    DecoderBlock,
    KVCache,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from attnlab.masks import padding_mask

__all__ = ["TransformerConfig", "Transformer"]


@dataclass
class TransformerConfig:
    """Sizes of the encoder-decoder Transformer."""

    src_vocab: int  # V of the source
    tgt_vocab: int  # V of the target
    dim: int = 64  # C; small tasks need little width
    num_heads: int = 4  # H; D = C / H = 16
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    ff_dim: int = 128  # the feed-forward hidden width, 2 C (4 C is usual at scale)
    dropout: float = 0.0
    max_len: int = 64  # longest source or target
    norm_first: bool = True  # pre-norm trains without warm-up tricks at this size
    bos_id: int = 1
    eos_id: int = 2


class Transformer(nn.Module):
    """The encoder-decoder Transformer of Vaswani et al. (2017), pre-norm by default.

    Shape:
        src (B, S) ids, src_lengths (B,), tgt_in (B, T) ids -> logits (B, T, V).
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.src_embed = nn.Embedding(c.src_vocab, c.dim)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.dim)
        self.position = SinusoidalPositionalEncoding(c.dim, c.max_len)
        self.encoder = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.ff_dim, c.dropout, c.norm_first)
            for _ in range(c.num_encoder_layers))
        self.decoder = nn.ModuleList(
            DecoderBlock(c.dim, c.num_heads, c.ff_dim, c.dropout, c.norm_first)
            for _ in range(c.num_decoder_layers))
        self.enc_norm = nn.LayerNorm(c.dim) if c.norm_first else nn.Identity()
        self.dec_norm = nn.LayerNorm(c.dim) if c.norm_first else nn.Identity()
        self.out = nn.Linear(c.dim, c.tgt_vocab)
        self.scale = c.dim**0.5

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory (B, S, C) and its padding mask (B, 1, S)."""
        check_ids(src, "src", self.config.src_vocab, layout="(B, L)")
        mask = padding_mask(src_lengths, src.shape[1], device=src.device)  # (B, 1, S)
        x = self.position(self.src_embed(src) * self.scale)  # (B, S, C)
        enc_mask = mask.expand(-1, src.shape[1], -1)  # (B, S, S): queries ignore padded keys
        for block in self.encoder:
            x = block(x, mask=enc_mask)
        return self.enc_norm(x), mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor,
               caches: list[KVCache] | None = None, offset: int = 0) -> torch.Tensor:
        """Logits (B, T, V) for target inputs (B, T) given the memory."""
        check_ids(tgt_in, "tgt_in", self.config.tgt_vocab, layout="(B, L)")
        y = self.position(self.tgt_embed(tgt_in) * self.scale, offset=offset)  # (B, T, C)
        for i, block in enumerate(self.decoder):
            y = block(y, memory, memory_mask=mask, cache=None if caches is None else caches[i])
        return self.out(self.dec_norm(y))  # (B, T, V)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
                ) -> torch.Tensor:
        memory, mask = self.encode(src, src_lengths)
        return self.decode(tgt_in, memory, mask)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int
                      ) -> torch.Tensor:
        """Greedy decoding with a key/value cache; ids (B, L) without ``<bos>``."""
        memory, mask = self.encode(src, src_lengths)
        caches = [KVCache() for _ in self.decoder]
        token = torch.full((src.shape[0], 1), self.config.bos_id, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        out = []
        for step in range(max_len):
            logits = self.decode(token, memory, mask, caches, offset=step)  # (B, 1, V)
            token = logits[:, -1:].argmax(-1).masked_fill(done[:, None], 0)  # (B, 1)
            out.append(token)
            done |= token[:, 0] == self.config.eos_id
            if bool(done.all()):
                break
        return torch.cat(out, dim=1)
