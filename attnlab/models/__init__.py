"""Models of the book: RNN encoder-decoders, the Transformer, and a GPT.

The application chapters' models live in modules of this package
(``attnlab.models.<name>``) and are importable from here too.

Each model is configured by a typed dataclass whose defaults are a small
preset that trains in well under a minute on a laptop CPU.

- :class:`Seq2Seq` -- a GRU encoder-decoder whose decoder sees one fixed
  summary of the source (the model before attention);
- :class:`AttentionSeq2Seq` -- the same with additive attention over every
  encoder state;
- :class:`Transformer` -- the encoder-decoder Transformer;
- :class:`GPT` -- a decoder-only Transformer with a key/value cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnlab.decoding import top_k_filter, top_p_filter
from attnlab.layers import (
    AdditiveAttention,
    DecoderBlock,
    KVCache,
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from attnlab.masks import padding_mask

__all__ = [
    "Seq2SeqConfig",
    "Seq2Seq",
    "AttentionSeq2Seq",
    "TransformerConfig",
    "Transformer",
    "GPTConfig",
    "GPT",
    "count_parameters",
]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _check_ids(ids: torch.Tensor, name: str, vocab_size: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"{name} must be a (B, L) tensor of token ids, got {shape}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(
            f"{name} has ids outside [0, {vocab_size}): min {int(ids.min())}, "
            f"max {int(ids.max())}"
        )


# ---------------------------------------------------------------------------- seq2seq


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
        _check_ids(src, "src", self.config.src_vocab)
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
        _check_ids(tgt_in, "tgt_in", self.config.tgt_vocab)
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


# ------------------------------------------------------------------------ Transformer


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
        _check_ids(src, "src", self.config.src_vocab)
        mask = padding_mask(src_lengths, src.shape[1], device=src.device)  # (B, 1, S)
        x = self.position(self.src_embed(src) * self.scale)  # (B, S, C)
        enc_mask = mask.expand(-1, src.shape[1], -1)  # (B, S, S): queries ignore padded keys
        for block in self.encoder:
            x = block(x, mask=enc_mask)
        return self.enc_norm(x), mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor,
               caches: list[KVCache] | None = None, offset: int = 0) -> torch.Tensor:
        """Logits (B, T, V) for target inputs (B, T) given the memory."""
        _check_ids(tgt_in, "tgt_in", self.config.tgt_vocab)
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


# -------------------------------------------------------------------------------- GPT


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
        _check_ids(idx, "idx", self.config.vocab_size)
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


# The application chapters' models (modules of this package), importable from here too.
from attnlab.models.pooling_classifier import (  # noqa: E402
    AttentionPooling,
    AttentionPoolingClassifier,
    BagOfWordsClassifier,
    PoolingClassifierConfig,
    attention_mass,
    bag_of_words,
    subset_accuracy,
)
from attnlab.models.sasrec import (  # noqa: E402
    MarkovRecommender,
    PopularityRecommender,
    SASRec,
    SASRecConfig,
    next_item_loss,
)
from attnlab.models.vit import CNNConfig, SmallCNN, ViT, ViTConfig  # noqa: E402

__all__ += ["ViT", "ViTConfig", "SmallCNN", "CNNConfig", "SASRec", "SASRecConfig",
            "next_item_loss", "PopularityRecommender", "MarkovRecommender", "AttentionPooling",
            "PoolingClassifierConfig", "AttentionPoolingClassifier", "bag_of_words",
            "BagOfWordsClassifier", "attention_mass", "subset_accuracy"]
from attnlab.models.listener import Listener, ListenerConfig  # noqa: E402

__all__ += ["Listener", "ListenerConfig"]
from attnlab.models.forecaster import (  # noqa: E402
    Forecaster,
    ForecasterConfig,
    LinearForecaster,
    naive_forecast,
    seasonal_naive_forecast,
)

__all__ += ["Forecaster", "ForecasterConfig", "LinearForecaster", "naive_forecast",
            "seasonal_naive_forecast"]
from attnlab.models.motif import (  # noqa: E402
    MotifAttention,
    MotifAttentionConfig,
    MotifCNN,
    MotifCNNConfig,
    peak_in_mask,
)

__all__ += ["MotifAttentionConfig", "MotifAttention", "MotifCNNConfig", "MotifCNN",
            "peak_in_mask"]
from attnlab.models.vqa import (  # noqa: E402
    CrossAttentionBlock,
    CrossAttentionVQA,
    FusionVQA,
    QuestionOnlyVQA,
    VQAConfig,
)

__all__ += ["VQAConfig", "CrossAttentionBlock", "CrossAttentionVQA", "FusionVQA",
            "QuestionOnlyVQA"]
