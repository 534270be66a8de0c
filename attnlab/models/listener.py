"""An attention encoder-decoder that listens to a spectrogram and writes out what it heard.

:class:`Listener` is :class:`~attnlab.models.AttentionSeq2Seq` with a source
of spectrogram frames instead of token ids, in the spirit of *Listen, Attend
and Spell* (Chan et al. 2016): a small convolutional front end turns the
log-magnitude spectrogram into one vector per ``stride`` frames (shortening the
sequence the attention has to search), a GRU reads them, and the inherited
decoder (a GRU whose state queries an additive attention over the encoder's
states, in Luong's arrangement) writes the output tokens. Teacher-forced
training, greedy decoding and the attention weights are the parent class's.

The config's defaults suit the keypad task of :mod:`attnlab.data.keypad`:
129 frequency bins (``n_fft=256``), 12 keys, about 0.22 M parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnlab._validate import shape_str
from attnlab.masks import length_mask
from attnlab.models.seq2seq import AttentionSeq2Seq, Seq2SeqConfig

__all__ = ["ListenerConfig", "Listener", "CTCListener"]


@dataclass
class ListenerConfig(Seq2SeqConfig):
    """Sizes of the :class:`Listener`: a :class:`~attnlab.models.Seq2SeqConfig` with a front end.

    ``embed_dim`` is the width of a frame after the front end (the encoder's
    input), and of a target token's embedding.
    """

    src_vocab: int = 1  # not used: the source is spectrogram frames, not ids
    tgt_vocab: int = 15  # V: 12 keys and <pad>, <bos>, <eos>
    n_freqs: int = 129  # F, the spectrogram's bins (n_fft // 2 + 1)
    stride: int = 2  # spectrogram frames per encoder step (time reduction)
    embed_dim: int = 64  # E, a frame after the front end, and a token's embedding
    hidden_dim: int = 128  # C, the width of the encoder's and the decoder's GRU states
    attention_dim: int = 64  # A, the hidden width of the additive scorer

    def __post_init__(self) -> None:
        if self.n_freqs < 1 or self.stride < 1:
            raise ValueError(f"need n_freqs >= 1 and stride >= 1, got {self.n_freqs}, "
                             f"{self.stride}")


class Listener(AttentionSeq2Seq):
    r"""Spectrogram frames in, tokens out: :class:`~attnlab.models.AttentionSeq2Seq` that listens.

    The front end normalises each frame over its F bins (a layer norm, which
    removes the recording's level), then two 1-D convolutions over time, each
    reading three neighbouring positions, map the frames to E features; the
    second keeps every ``stride``-th position:

    .. math::

        u = \operatorname{GELU}(W_1 * \operatorname{LN}(x)), \qquad
        z_j = \operatorname{GELU}\big((W_2 * u)_{sj}\big), \qquad
        j = 0, \dots, S' - 1, \quad S' = \lceil S / s \rceil .

    Encoder step j is centred on frame ``stride * j``. Positions past a
    recording's length are zeroed before each convolution, so a recording
    gives the same outputs alone and in a padded batch.

    The encoder GRU reads **forwards only**, unlike the parent's bidirectional
    one: its state at step j has heard nothing after step j, so a key can be
    recognised only at or after the moment its tone begins, and the decoder's
    attention has to look there. (A bidirectional encoder can announce a key
    in the silence before its tone, and its attention weights need not point
    at the tone at all.) The decoder starts from the encoder's last state.

    Args:
        config: a :class:`ListenerConfig`.

    Shape:
        spec (B, S, F) log-magnitudes, lengths (B,) frames, tgt_in (B, T) ids
        (starting with ``<bos>``) -> logits (B, T, V) and attention weights
        (B, T, S') over the encoder steps.

    Example:
        >>> model = Listener(ListenerConfig())
        >>> spec, lengths = torch.randn(2, 9, 129), torch.tensor([9, 5])
        >>> logits, weights = model(spec, lengths, torch.tensor([[1, 3], [1, 4]]))
        >>> tuple(logits.shape), tuple(weights.shape), model.step_lengths(lengths).tolist()
        ((2, 2, 15), (2, 2, 5), [5, 3])
        >>> ids, w = model.greedy_decode(spec, lengths, max_len=4)
        >>> ids.shape[0], w.shape[-1]
        (2, 5)
    """

    config: ListenerConfig

    def __init__(self, config: ListenerConfig) -> None:
        super().__init__(config)
        c = config
        self.src_embed = None  # frames need no embedding: the front end takes its place
        self.norm = nn.LayerNorm(c.n_freqs)
        self.conv1 = nn.Conv1d(c.n_freqs, c.embed_dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(c.embed_dim, c.embed_dim, kernel_size=3, stride=c.stride,
                               padding=1)
        self.encoder = nn.GRU(c.embed_dim, c.hidden_dim, batch_first=True)  # forwards only

    def step_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Encoder steps of recordings of ``lengths`` frames: ceil(lengths / stride)."""
        return (lengths - 1) // self.config.stride + 1

    def features(self, spec: torch.Tensor, lengths: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """The front end: frames (B, S, F) -> encoder inputs (B, S', E) and their lengths (B,)."""
        n_freqs = self.config.n_freqs
        if not isinstance(spec, torch.Tensor) or spec.dim() != 3 or spec.shape[-1] != n_freqs:
            got = shape_str(spec) if isinstance(spec, torch.Tensor) else type(spec).__name__
            raise ValueError(f"spec must be (B, S, F) with F={n_freqs} frequency bins, got {got}")
        if not spec.is_floating_point():
            raise ValueError(f"spec must be floating point, got dtype {spec.dtype}")
        if not isinstance(lengths, torch.Tensor) or lengths.shape != spec.shape[:1]:
            got = shape_str(lengths) if isinstance(lengths, torch.Tensor) else lengths
            raise ValueError(f"lengths {got} must be a (B,) tensor for spec {shape_str(spec)}")
        if int(lengths.min()) < 1 or int(lengths.max()) > spec.shape[1]:
            raise ValueError(f"lengths must lie in [1, S={spec.shape[1]}], got "
                             f"{lengths.tolist()}")
        padded = ~length_mask(lengths, spec.shape[1])  # (B, S): True after each end
        x = self.norm(spec).masked_fill(padded[..., None], 0.0).transpose(1, 2)  # (B, F, S)
        u = F.gelu(self.conv1(x)).masked_fill(padded[:, None, :], 0.0)  # (B, E, S)
        z = F.gelu(self.conv2(u))  # (B, E, S')
        return z.transpose(1, 2), self.step_lengths(lengths)  # (B, S', E), (B,)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """States (B, S', C) of the front end's features (B, S', E), and the last state (B, C)."""
        x = self.dropout(src)  # (B, S', E)
        packed = pack_padded_sequence(x, src_lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        states, last = self.encoder(packed)  # last (1, B, C): each recording's last real step
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=src.shape[1])
        return states, last[0]  # (B, S', C), (B, C)

    def forward(self, spec: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits (B, T, V) and attention weights (B, T, S')."""
        logits, weights = super().forward(*self.features(spec, lengths), tgt_in)
        assert weights is not None
        return logits, weights

    @torch.no_grad()
    def greedy_decode(self, spec: torch.Tensor, lengths: torch.Tensor, max_len: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: ids (B, L) without ``<bos>``, and the weights (B, L, S')."""
        ids, weights = super().greedy_decode(*self.features(spec, lengths), max_len)
        assert weights is not None
        return ids, weights


class CTCListener(nn.Module):
    r""":class:`Listener`'s front end and encoder with a classifier per step, trained with CTC.

    Connectionist temporal classification (Graves et al. 2006) needs no
    decoder and no attention: each encoder step j predicts a distribution over
    the V tokens plus a *blank* (id 0, the tokenizer's ``<pad>``), and the loss
    sums the probability of every path that collapses to the target (merge
    repeats, then drop blanks). The front end and the GRU are the very same
    code as :class:`Listener`'s, so the two models differ only in how they
    decode.

    Args:
        config: a :class:`ListenerConfig` (``tgt_vocab`` counts the blank as id 0).

    Shape:
        spec (B, S, F), lengths (B,) -> log-probabilities (B, S', V) and step lengths (B,).

    Example:
        >>> model = CTCListener(ListenerConfig(n_freqs=40, tgt_vocab=13))
        >>> logp, steps = model(torch.randn(2, 9, 40), torch.tensor([9, 5]))
        >>> tuple(logp.shape), steps.tolist()
        ((2, 5, 13), [5, 3])
        >>> loss = model.loss(torch.randn(2, 9, 40), torch.tensor([9, 5]),
        ...                   torch.tensor([[3, 4], [5, 0]]), torch.tensor([2, 1]))
        >>> bool(loss > 0)
        True
    """

    blank_id = 0

    def __init__(self, config: ListenerConfig) -> None:
        super().__init__()
        c = self.config = config
        self.dropout = nn.Dropout(c.dropout)
        self.norm = nn.LayerNorm(c.n_freqs)
        self.conv1 = nn.Conv1d(c.n_freqs, c.embed_dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(c.embed_dim, c.embed_dim, kernel_size=3, stride=c.stride,
                               padding=1)
        self.encoder = nn.GRU(c.embed_dim, c.hidden_dim, batch_first=True)  # forwards only
        self.head = nn.Linear(c.hidden_dim, c.tgt_vocab)

    # the same code as Listener's: one front end and one encoder for both models
    step_lengths = Listener.step_lengths
    features = Listener.features
    encode = Listener.encode

    def forward(self, spec: torch.Tensor, lengths: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities (B, S', V) per encoder step, and the step lengths (B,)."""
        states, _ = self.encode(*self.features(spec, lengths))  # (B, S', C)
        return F.log_softmax(self.head(states), dim=-1), self.step_lengths(lengths)

    def loss(self, spec: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
             target_lengths: torch.Tensor) -> torch.Tensor:
        """The CTC loss, averaged over the batch (each sequence's divided by its length).

        ``targets`` (B, T) are token ids without ``<bos>``/``<eos>``, padded with 0.
        """
        logp, steps = self(spec, lengths)  # (B, S', V), (B,)
        return F.ctc_loss(logp.transpose(0, 1), targets, steps, target_lengths,
                          blank=self.blank_id, zero_infinity=True)

    @torch.no_grad()
    def greedy_decode(self, spec: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """The best token per step, repeats merged and blanks dropped: B lists of ids."""
        logp, steps = self(spec, lengths)
        best = logp.argmax(-1)  # (B, S')
        out = []
        for row, n in zip(best.tolist(), steps.tolist()):
            ids, previous = [], self.blank_id
            for k in row[:n]:
                if k != previous and k != self.blank_id:
                    ids.append(k)
                previous = k
            out.append(ids)
        return out
