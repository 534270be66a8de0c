"""A decoder-only Transformer (GPT) with a key/value cache and sampling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from attnlab._validate import check_ids
from attnlab.decoding import top_k_filter, top_p_filter
from attnlab.layers import (
    KVCache,
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    TransformerBlock,
)

__all__ = ["GPTConfig", "GPT"]


@dataclass
class GPTConfig:
    """Sizes of the decoder-only GPT; the defaults train on the addition task in seconds."""

    vocab_size: int  # V
    block_size: int = 32  # the longest context T
    n_layer: int = 2  # depth: two layers suffice for 3-digit addition
    n_head: int = 4  # H
    n_embd: int = 128  # C; D = C / H = 32
    dropout: float = 0.0  # the task does not overfit at this size
    bias: bool = True  # biases in linear layers and layer norms
    positional: Literal["learned", "rotary"] = "learned"  # GPT-2's learned table, or RoPE


class GPT(nn.Module):
    """A decoder-only Transformer (Radford et al. 2019), pre-norm, with tied embeddings.

    Shape:
        idx (B, T) ids -> logits (B, T, V).

    Example:
        >>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_embd=16, n_head=2))
        >>> model(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 10])
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        c = config
        if c.positional not in ("learned", "rotary"):
            raise ValueError(f"positional must be 'learned' or 'rotary', got {c.positional!r}")
        self.config = c
        self.tok_embed = nn.Embedding(c.vocab_size, c.n_embd)
        rope = None
        if c.positional == "learned":
            self.pos_embed: nn.Module = LearnedPositionalEmbedding(c.block_size, c.n_embd)
        else:
            self.pos_embed = nn.Identity()
            rope = RotaryEmbedding(c.n_embd // c.n_head, c.block_size)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.n_embd, c.n_head, 4 * c.n_embd, c.dropout, norm_first=True,
                             bias=c.bias, rope=rope)
            for _ in range(c.n_layer))
        self.norm = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.head.weight = self.tok_embed.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init)
        for name, p in self.named_parameters():  # scaled init of residual projections (GPT-2)
            if name.endswith(("out_proj.weight", "linear2.weight")):
                nn.init.normal_(p, std=0.02 / (2 * c.n_layer) ** 0.5)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Next-token logits (B, T, V); with ``caches``, idx holds only the new tokens."""
        check_ids(idx, "idx", self.config.vocab_size, layout="(B, L)")
        offset = 0 if caches is None else caches[0].length
        if offset + idx.shape[1] > self.config.block_size:
            raise ValueError(f"sequence of length {offset + idx.shape[1]} exceeds "
                             f"block_size={self.config.block_size}")
        x = self.tok_embed(idx)  # (B, T, C)
        if isinstance(self.pos_embed, LearnedPositionalEmbedding):
            x = self.pos_embed(x, offset=offset)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, cache=None if caches is None else caches[i])
        return self.head(self.norm(x))  # (B, T, V)

    def flops_per_token(self, T: int | None = None) -> float:
        """Training FLOPs per token: ``6 N + 12 L C T`` (Chowdhery et al. 2022, appendix B).

        ``6 N`` for the weight matrices (2 N forward, 4 N backward), where N
        counts every parameter that takes part in a matrix product: the token
        embedding once, as the tied output layer; a learned position table is
        a lookup and is left out. ``12 L C T`` for the attention scores and
        their weighted sums. Divided by a step's seconds per token and the
        device's peak FLOP/s, it gives the MFU (:mod:`attnlab.perf`).

        Args:
            T: the sequence length trained on (default: ``block_size``).

        Example:
            >>> m = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_embd=16, n_head=2))
            >>> n = sum(p.numel() for p in m.parameters()) - 8 * 16   # less the position table
            >>> m.flops_per_token() == 6 * n + 12 * 1 * 16 * 8
            True
        """
        c = self.config
        T = c.block_size if T is None else T
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be a positive integer, got {T!r}")
        n = sum(p.numel() for p in self.parameters())
        if c.positional == "learned":
            n -= c.block_size * c.n_embd
        return 6.0 * n + 12.0 * c.n_layer * c.n_embd * T

    def new_caches(self) -> list[KVCache]:
        """One empty key/value cache per layer."""
        return [KVCache() for _ in self.blocks]

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 0.0,
                 top_k: int | None = None, top_p: float | None = None,
                 use_cache: bool = True, generator: torch.Generator | None = None,
                 stop_id: int | None = None) -> torch.Tensor:
        """Continue each prompt by ``max_new_tokens`` tokens.

        ``temperature=0`` is greedy decoding; a positive temperature samples
        from the softmax of logits / temperature, optionally restricted to the
        ``top_k`` most likely tokens (:func:`attnlab.decoding.top_k_filter`)
        and then to the nucleus of mass ``top_p``
        (:func:`attnlab.decoding.top_p_filter`). Both filters keep the most
        likely token, so they leave greedy decoding unchanged. With
        ``use_cache`` each step feeds only
        the newest token and reuses the cached keys and values; the result is
        the same as recomputing the whole sequence.

        Args:
            idx: prompts (B, T0), all of the same length.
            max_new_tokens: how many tokens to add.
            temperature: 0 for greedy, else the sampling temperature.
            top_k: sample among the k most likely tokens only.
            top_p: sample among the smallest set of most likely tokens whose
                probability (after the temperature) reaches top_p, in (0, 1].
            use_cache: use a key/value cache.
            generator: random numbers for sampling.
            stop_id: stop early once every sequence has produced this token.

        Shape:
            idx (B, T0) -> (B, T0 + L), L <= max_new_tokens.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_p is not None:  # checked even where greedy decoding ignores it
            top_p_filter(torch.zeros(1), top_p)
        caches = self.new_caches() if use_cache else None
        seq = idx
        step_input = idx
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            logits = self(step_input if use_cache else seq, caches)[:, -1]  # (B, V)
            if temperature == 0:
                nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    logits = top_k_filter(logits, top_k)
                if top_p is not None:
                    logits = top_p_filter(logits, top_p)
                nxt = torch.multinomial(F.softmax(logits, -1), 1, generator=generator)
            seq = torch.cat([seq, nxt], dim=1)
            step_input = nxt
            if stop_id is not None:
                done |= nxt[:, 0] == stop_id
                if bool(done.all()):
                    break
        return seq
