"""GRU encoder-decoders, without attention and with additive attention.

- :class:`Seq2Seq` -- a GRU encoder-decoder whose decoder sees one fixed
  summary of the source (the model before attention);
- :class:`AttentionSeq2Seq` -- the same with additive attention over every
  encoder state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnlab._validate import check_ids
from attnlab.layers import (
    AdditiveAttention,
)
from attnlab.masks import padding_mask

__all__ = ["Seq2SeqConfig", "Seq2Seq", "AttentionSeq2Seq"]


@dataclass
class Seq2SeqConfig:
    """Sizes of the GRU encoder-decoders."""

    src_vocab: int  # V of the source tokenizer
    tgt_vocab: int  # V of the target tokenizer
    embed_dim: int = 32  # characters need few dimensions
    hidden_dim: int = 128  # decoder state; each encoder direction has half of it
    attention_dim: int = 64  # A, the hidden width of the additive scorer
    dropout: float = 0.0  # the synthetic tasks do not overfit at these sizes
    bos_id: int = 1  # first input of the decoder (CharTokenizer's <bos>)
    eos_id: int = 2  # decoding stops when every sequence has produced it


class Seq2Seq(nn.Module):
    """A GRU encoder-decoder without attention (Cho et al. 2014; Sutskever et al. 2014).

    A bidirectional GRU reads the source; its final states, joined, are the
    one fixed-size summary that the decoder sees: as its initial state and,
    at every step, beside its own state when it predicts the next token.

    Shape:
        src (B, S) ids, src_lengths (B,), tgt_in (B, T) ids (starting with
        ``<bos>``) -> logits (B, T, V) and attention weights (B, T, S), which
        are None for this model.
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = config
        if c.hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even (two directions), got {c.hidden_dim}")
        self.config = c
        self.src_embed = nn.Embedding(c.src_vocab, c.embed_dim, padding_idx=0)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.embed_dim, padding_idx=0)
        self.encoder = nn.GRU(c.embed_dim, c.hidden_dim // 2, batch_first=True,
                              bidirectional=True)
        self.bridge = nn.Linear(c.hidden_dim, c.hidden_dim)
        self.decoder = nn.GRU(c.embed_dim, c.hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(2 * c.hidden_dim, c.tgt_vocab)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states (B, S, Hd) and the summary (B, Hd) of the source."""
        check_ids(src, "src", self.config.src_vocab, layout="(B, L)")
        if src_lengths.shape != src.shape[:1]:
            raise ValueError(f"src_lengths {tuple(src_lengths.shape)} must be (B,) for "
                             f"src {tuple(src.shape)}")
        if int(src_lengths.min()) < 1 or int(src_lengths.max()) > src.shape[1]:
            raise ValueError(f"src_lengths must lie in [1, S={src.shape[1]}]")
        x = self.dropout(self.src_embed(src))  # (B, S, E)
        packed = pack_padded_sequence(x, src_lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, last = self.encoder(packed)  # last (2, B, Hd/2)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
        summary = torch.cat([last[0], last[1]], dim=-1)  # (B, Hd)
        return states, summary  # (B, S, Hd), (B, Hd)

    def _context(self, dec: torch.Tensor, states: torch.Tensor, summary: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the decoder sees of the source at each step: here, the summary."""
        return summary[:, None, :].expand_as(dec), None  # (B, T, Hd)

    def _step(self, tokens: torch.Tensor, hidden: torch.Tensor, states: torch.Tensor,
              summary: torch.Tensor, mask: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        dec, hidden = self.decoder(self.dropout(self.tgt_embed(tokens)), hidden)  # (B, T, Hd)
        context, weights = self._context(dec, states, summary, mask)  # (B, T, Hd)
        logits = self.out(self.dropout(torch.cat([dec, context], dim=-1)))  # (B, T, V)
        return logits, hidden, weights

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced logits for every target position, and the attention weights."""
        check_ids(tgt_in, "tgt_in", self.config.tgt_vocab, layout="(B, L)")
        states, summary = self.encode(src, src_lengths)
        mask = padding_mask(src_lengths, src.shape[1], device=src.device)  # (B, 1, S)
        hidden = torch.tanh(self.bridge(summary))[None]  # (1, B, Hd)
        logits, _, weights = self._step(tgt_in, hidden, states, summary, mask)
        return logits, weights

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decode by always taking the most likely next token.

        Returns:
            ids (B, L) without the leading ``<bos>`` (positions after an
            ``<eos>`` are padding), and the weights (B, L, S) or None.
        """
        states, summary = self.encode(src, src_lengths)
        mask = padding_mask(src_lengths, src.shape[1], device=src.device)
        hidden = torch.tanh(self.bridge(summary))[None]
        token = torch.full((src.shape[0], 1), self.config.bos_id, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        out, all_weights = [], []
        for _ in range(max_len):
            logits, hidden, weights = self._step(token, hidden, states, summary, mask)
            token = logits.argmax(-1)  # (B, 1)
            token = token.masked_fill(done[:, None], 0)
            out.append(token)
            if weights is not None:
                all_weights.append(weights)
            done |= token[:, 0] == self.config.eos_id
            if bool(done.all()):
                break
        ids = torch.cat(out, dim=1)  # (B, L)
        return ids, torch.cat(all_weights, dim=1) if all_weights else None


class AttentionSeq2Seq(Seq2Seq):
    """The GRU encoder-decoder with additive attention (Bahdanau et al. 2015).

    At each step the decoder's state is the query of an additive attention
    over all encoder states; the context it returns joins the state to
    predict the next token. The attention follows the decoder's GRU step
    (the arrangement of Luong et al. 2015) rather than preceding it, so that
    with teacher forcing all steps are computed in parallel.
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__(config)
        self.attention = AdditiveAttention(config.hidden_dim, config.hidden_dim,
                                           config.attention_dim)

    def _context(self, dec: torch.Tensor, states: torch.Tensor, summary: torch.Tensor,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.attention(dec, states, states, mask=mask, need_weights=True)
