"""Telephone keypad tones: synthesis, log-magnitude spectrograms, splits and a classic decoder.

A push-button telephone signals a key with two sines at once (dual-tone
multi-frequency, DTMF, standardised in ITU-T Recommendation Q.23): one of four
*low-group* frequencies picks the key's row, one of four *high-group*
frequencies its column::

              1209 Hz  1336 Hz  1477 Hz  1633 Hz
    697 Hz       1        2        3        A
    770 Hz       4        5        6        B
    852 Hz       7        8        9        C
    941 Hz       *        0        #        D

The fourth column (A-D) is rarely on a telephone; the default alphabet is the
twelve keys of a phone, and ``KeypadConfig(keys=...)`` chooses others.

- :func:`key_frequencies` -- the (low, high) pair of a key;
- :class:`KeypadConfig` -- sample rate, key and gap durations, noise (SNR), level;
- :func:`synthesize` -- recordings of key sequences: waves, lengths, key spans;
- :func:`keypad_task` -- a :class:`KeypadTask`: key sequences split disjointly into
  train, validation and test; validation and test recorded once, training on demand;
- :func:`log_spectrogram`, :func:`frame_count`, :func:`span_mask` -- ``torch.stft``
  features, and which frames fall inside each key;
- ``dtmf_frame_keys``, ``collapse_runs``, :func:`peak_decode` -- a decoder
  without learning: the strongest row and column frequency per frame, then runs;
- :func:`edit_distance`, :func:`key_error_rate`, :func:`exact_match` -- metrics.

Shapes: N recordings (a batch, B, when they go into a model), L samples, S
spectrogram frames, F = n_fft / 2 + 1 frequency bins, K keys of one recording.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from attnlab._validate import shape_str
from attnlab.data.speech_features import checked_stft
from attnlab.data.tasks import _check_counts, _distinct_strings
from attnlab.data.tokenizer import CharTokenizer
from attnlab.masks import length_mask
from attnlab.metrics import edit_distance, exact_match  # re-exported: they lived here

__all__ = [
    "LOW_HZ",
    "HIGH_HZ",
    "KEYPAD",
    "PHONE_KEYS",
    "key_frequencies",
    "KeypadConfig",
    "Recordings",
    "synthesize",
    "KeypadTask",
    "keypad_task",
    "frame_count",
    "log_spectrogram",
    "span_mask",
    "dtmf_frame_keys",
    "collapse_runs",
    "peak_decode",
    "edit_distance",
    "key_error_rate",
    "exact_match",
]

LOW_HZ: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)  #: the rows' frequencies (low group)
HIGH_HZ: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)  #: the columns' (high group)
KEYPAD: tuple[str, ...] = ("123A", "456B", "789C", "*0#D")  #: the keys, row by row
PHONE_KEYS = "0123456789*#"  #: the twelve keys of a telephone


def key_frequencies(key: str) -> tuple[float, float]:
    """The (low, high) frequency pair, in Hz, of one key.

    Example:
        >>> key_frequencies("5")
        (770.0, 1336.0)
        >>> key_frequencies("#")
        (941.0, 1477.0)
    """
    for row, keys in enumerate(KEYPAD):
        if isinstance(key, str) and len(key) == 1 and key in keys:
            return LOW_HZ[row], HIGH_HZ[keys.index(key)]
    raise ValueError(f"{key!r} is not a keypad key; the keys are {''.join(KEYPAD)!r}")


# ---------------------------------------------------------------------------- synthesis


@dataclass(frozen=True)
class KeypadConfig:
    """How key sequences sound: timing, level and noise; the defaults are the book's task.

    Durations are drawn uniformly from their (low, high) ranges, independently
    for every key and gap.
    """

    sample_rate: int = 8000  # Hz: the telephone band; every DTMF frequency is below 4 kHz
    keys: str = PHONE_KEYS  # the alphabet of the sequences
    min_keys: int = 3  # keys per sequence, drawn uniformly from min_keys..max_keys
    max_keys: int = 6
    tone_ms: tuple[float, float] = (40.0, 100.0)  # how long a key sounds
    gap_ms: tuple[float, float] = (40.0, 80.0)  # silence between two keys
    edge_ms: tuple[float, float] = (20.0, 100.0)  # silence before the first key and after the last
    snr_db: float = -5.0  # tone power over noise power (dB): the noise is the louder
    level_db: tuple[float, float] = (-20.0, 0.0)  # power of a tone pair, relative to 1 (dB)
    twist_db: float = 3.0  # the high tone is louder than the low one by U(-twist, twist) dB
    detune: float = 0.015  # each tone is off its nominal frequency by up to this fraction

    def __post_init__(self) -> None:
        if self.sample_rate < 2 * HIGH_HZ[-1] * 1.1:
            raise ValueError(f"sample_rate={self.sample_rate} is too low for a {HIGH_HZ[-1]} Hz "
                             "tone: it needs more than twice the highest frequency")
        for key in self.keys:
            key_frequencies(key)  # raises for a character that is not a key
        if not self.keys or len(set(self.keys)) != len(self.keys):
            raise ValueError(f"keys must be distinct keypad keys, got {self.keys!r}")
        if not 1 <= self.min_keys <= self.max_keys:
            raise ValueError(f"need 1 <= min_keys <= max_keys, got {self.min_keys}, "
                             f"{self.max_keys}")
        for name in ("tone_ms", "gap_ms", "edge_ms", "level_db"):
            low, high = getattr(self, name)
            if low > high or (name != "level_db" and low < 0):
                raise ValueError(f"{name}={getattr(self, name)} must be a (low, high) range"
                                 + (" of non-negative durations" if name != "level_db" else ""))
        if self.tone_ms[0] <= 0:
            raise ValueError(f"tones must last a positive time, got tone_ms={self.tone_ms}")
        if self.twist_db < 0 or not 0 <= self.detune < 0.05:
            raise ValueError(f"need twist_db >= 0 and 0 <= detune < 0.05, got {self.twist_db}, "
                             f"{self.detune}")

    def samples(self, ms: torch.Tensor) -> torch.Tensor:
        """Milliseconds to a whole number of samples."""
        return (ms * self.sample_rate / 1000).round().long()


@dataclass(frozen=True)
class Recordings:
    """Recordings of key sequences, padded with zeros to the longest.

    Attributes:
        waves: (N, L) float32 samples; zero after each recording's length.
        lengths: (N,) int64, the number of real samples of each.
        keys: N strings, the keys pressed.
        spans: per recording, one ``(start, stop)`` sample range per key, in order.
        sample_rate: samples per second.
    """

    waves: torch.Tensor
    lengths: torch.Tensor
    keys: list[str]
    spans: list[list[tuple[int, int]]]
    sample_rate: int

    def __len__(self) -> int:
        return len(self.keys)


def _uniform(low: float, high: float, shape: tuple[int, ...], g: torch.Generator
             ) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float64)


def synthesize(sequences: Sequence[str], config: KeypadConfig | None = None,
               generator: torch.Generator | None = None) -> Recordings:
    r"""Record key sequences: two sines per key, silences between, white noise everywhere.

    Key :math:`k` sounds from sample :math:`t_k` to :math:`u_k` as

    .. math::

        x(t) = a_{lo} \sin(2\pi f_{lo} t / r + \phi_{lo}) + a_{hi} \sin(2\pi f_{hi} t / r
        + \phi_{hi}),

    with random phases, frequencies detuned by up to ``config.detune``, a level
    drawn from ``config.level_db`` and a twist :math:`a_{hi}/a_{lo}` from
    ``config.twist_db``. Gaussian noise of power
    :math:`(a_{lo}^2 + a_{hi}^2) / 2 \cdot 10^{-\text{SNR}/10}` is added to the
    whole recording, silences included.

    Args:
        sequences: N strings of keys from ``config.keys`` (any length >= 1).
        config: the :class:`KeypadConfig` (default: the book's).
        generator: the random source (durations, phases, levels, noise).

    Shape:
        Returns waves (N, L), lengths (N,).

    Returns:
        :class:`Recordings`.

    Example:
        >>> rec = synthesize(["12", "5"], generator=torch.Generator().manual_seed(0))
        >>> rec.waves.shape[0], rec.keys, [len(spans) for spans in rec.spans]
        (2, ['12', '5'], [2, 1])
        >>> all(0 < a < b < int(n) for spans, n in zip(rec.spans, rec.lengths) for a, b in spans)
        True
    """
    c = config if config is not None else KeypadConfig()
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    if isinstance(sequences, str) or len(sequences) == 0:
        raise ValueError("sequences must be a non-empty list of key strings, e.g. ['123', '9']")
    for s in sequences:
        bad = [k for k in s if k not in c.keys]
        if not s or bad:
            raise ValueError(f"sequence {s!r} must be non-empty and use only the keys "
                             f"{c.keys!r}")
    N, K = len(sequences), max(len(s) for s in sequences)
    n_keys = torch.tensor([len(s) for s in sequences])  # (N,)
    present = length_mask(n_keys, K)  # (N, K)
    tone = c.samples(_uniform(*c.tone_ms, (N, K), g)).clamp_min(1) * present  # (N, K)
    gap = c.samples(_uniform(*c.gap_ms, (N, K), g))  # gap[:, k] precedes key k + 1
    gap = gap * length_mask(n_keys - 1, K)  # no gap after the last key
    lead, trail = c.samples(_uniform(*c.edge_ms, (2, N), g))  # (N,) each
    starts = lead[:, None] + torch.cumsum(tone + gap, dim=1) - tone - gap  # (N, K)
    stops = starts + tone  # (N, K)
    lengths = stops.gather(1, (n_keys - 1)[:, None])[:, 0] + trail  # (N,)

    rows = torch.tensor([[LOW_HZ.index(key_frequencies(k)[0]) for k in s.ljust(K, s[0])]
                         for s in sequences])  # (N, K)
    cols = torch.tensor([[HIGH_HZ.index(key_frequencies(k)[1]) for k in s.ljust(K, s[0])]
                         for s in sequences])  # (N, K)
    detune = 1 + _uniform(-c.detune, c.detune, (2, N, K), g)  # (2, N, K)
    f_lo = torch.tensor(LOW_HZ, dtype=torch.float64)[rows] * detune[0]  # (N, K)
    f_hi = torch.tensor(HIGH_HZ, dtype=torch.float64)[cols] * detune[1]  # (N, K)
    phase = _uniform(0, 2 * math.pi, (2, N, K), g)  # (2, N, K)
    power = 10 ** (_uniform(*c.level_db, (N, 1), g) / 10)  # (N, 1): (a_lo^2 + a_hi^2) / 2
    twist = 10 ** (_uniform(-c.twist_db, c.twist_db, (N, K), g) / 20)  # a_hi / a_lo
    a_lo = torch.sqrt(2 * power / (1 + twist**2))  # (N, K)
    a_hi = a_lo * twist

    L = int(lengths.max())
    noise_std = torch.sqrt(power * 10 ** (-c.snr_db / 10)).float()  # (N, 1)
    wave = noise_std * torch.randn((N, L), generator=g)  # (N, L): noise everywhere
    wave.masked_fill_(~length_mask(lengths, L), 0.0)  # zero after the end
    samples = wave.numpy()  # the same memory as wave
    omega = (2 * math.pi / c.sample_rate) * np.arange(L)  # (L,): radians per Hz at each sample
    spans: list[list[tuple[int, int]]] = []
    per_key = (starts, stops, f_lo, f_hi, phase[0], phase[1], a_lo, a_hi)  # each (N, K)
    for i, (keys, *params) in enumerate(zip(sequences, *(x.tolist() for x in per_key))):
        spans.append([])
        for start, stop, fl, fh, pl, ph, al, ah in itertools.islice(zip(*params), len(keys)):
            w = omega[start:stop]
            samples[i, start:stop] += al * np.sin(fl * w + pl) + ah * np.sin(fh * w + ph)
            spans[-1].append((start, stop))
    return Recordings(wave, lengths, list(sequences), spans, c.sample_rate)


# -------------------------------------------------------------------------------- task


@dataclass(frozen=True)
class KeypadTask:
    """Key sequences split into train, validation and test, and how they sound.

    The splits are disjoint by *sequence*: no key string is in two of them.
    The validation and test recordings are rendered once, from the task's
    seed; training recordings are rendered afresh by :meth:`train_batch`, so
    every step hears new durations, levels, phases and noise.

    Attributes:
        config: how the sequences sound.
        tokenizer: a :class:`~attnlab.data.CharTokenizer` over ``config.keys``.
        train_keys: the training sequences.
        val: the validation recordings (their ``keys`` are the validation sequences).
        test: the test recordings.
    """

    config: KeypadConfig
    tokenizer: CharTokenizer
    train_keys: list[str]
    val: Recordings
    test: Recordings

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Recordings:
        """``batch_size`` training sequences drawn at random, freshly recorded."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        rows = torch.randint(0, len(self.train_keys), (batch_size,), generator=generator)
        return synthesize([self.train_keys[i] for i in rows.tolist()], self.config, generator)

    def record(self, sequences: Sequence[str], seed: int,
               config: KeypadConfig | None = None) -> Recordings:
        """Record ``sequences`` reproducibly from ``seed`` (e.g. the test keys at another SNR)."""
        return synthesize(sequences, config or self.config, torch.Generator().manual_seed(seed))


def keypad_task(n_train: int = 20_000, n_test: int = 1_000, *, n_val: int = 500,
                config: KeypadConfig | None = None, seed: int = 0) -> KeypadTask:
    """Random key sequences, split disjointly, with recorded validation and test sequences.

    Each sequence has a length drawn uniformly from ``config.min_keys`` to
    ``config.max_keys`` and keys drawn uniformly from ``config.keys``; no
    sequence is drawn twice, so the splits share none.

    Args:
        n_train: number of training sequences.
        n_test: number of test sequences (recorded once, from ``seed``).
        n_val: number of validation sequences (recorded once, after the test ones).
        config: the :class:`KeypadConfig`.
        seed: seeds the sequences and the recordings.

    Example:
        >>> task = keypad_task(50, 10, n_val=5, seed=0)
        >>> len(task.train_keys), len(task.val), len(task.test), task.tokenizer.vocab_size
        (50, 5, 10, 15)
        >>> set(task.train_keys).isdisjoint(task.test.keys + task.val.keys)
        True
    """
    c = config if config is not None else KeypadConfig()
    _check_counts(n_train=n_train, n_test=n_test, n_val=n_val)
    drawn = _distinct_strings(n_train + n_val + n_test, c.keys, c.min_keys, c.max_keys,
                              random.Random(seed), counts="n_train + n_val + n_test",
                              hint="allow more keys per sequence")
    g = torch.Generator().manual_seed(seed)
    test = synthesize(drawn[n_train + n_val:], c, g)  # first: the same for any n_val
    val = synthesize(drawn[n_train : n_train + n_val], c, g)
    return KeypadTask(c, CharTokenizer(c.keys), drawn[:n_train], val, test)


# ------------------------------------------------------------------------ spectrograms


def frame_count(n_samples: int | torch.Tensor, hop_length: int) -> int | torch.Tensor:
    """Frames of :func:`log_spectrogram` (``torch.stft`` with ``center=True``): 1 + L // hop.

    Example:
        >>> frame_count(8000, 128)
        63
    """
    return 1 + n_samples // hop_length


def log_spectrogram(waves: torch.Tensor, lengths: torch.Tensor | None = None, *,
                    n_fft: int = 256, hop_length: int = 128, eps: float = 1e-5
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Log-magnitude spectrograms, :math:`\log(|X_{s,f}| + \epsilon)`, frame by frame.

    ``torch.stft`` with a Hann window of ``n_fft`` samples, moved by
    ``hop_length``; frames are centred on samples ``0, hop, 2 hop, ...`` (the
    signal is padded with zeros at both ends, so a recording gives the same
    frames alone as in a zero-padded batch).

    Args:
        waves: (N, L) samples, zero after each length.
        lengths: (N,) real samples per recording (default: all L).
        n_fft: window and FFT length; the frequency resolution is
            ``sample_rate / n_fft`` Hz per bin.
        hop_length: samples between the centres of two frames.
        eps: added to the magnitude before the logarithm.

    Shape:
        waves (N, L) -> spectrogram (N, S, F) with S = 1 + L // hop_length and
        F = n_fft // 2 + 1, and frame lengths (N,) = 1 + lengths // hop_length.

    Example:
        >>> spec, frames = log_spectrogram(torch.zeros(2, 1000), torch.tensor([1000, 500]))
        >>> tuple(spec.shape), frames.tolist()
        ((2, 8, 129), [8, 4])
    """
    X, lengths = checked_stft(waves, lengths, n_fft, hop_length)  # (N, F, S), (N,)
    spec = torch.log(X.abs() + eps).transpose(1, 2)  # (N, S, F)
    return spec.contiguous(), frame_count(lengths.to(waves.device), hop_length)


def span_mask(spans: Sequence[tuple[int, int]], n_steps: int, hop_length: int,
              stride: int = 1) -> torch.Tensor:
    """Which time steps lie inside each key: a step's centre sample falls in the key's span.

    Step ``j`` of a sequence that keeps every ``stride``-th spectrogram frame is
    centred on sample ``stride * j * hop_length``.

    Args:
        spans: K ``(start, stop)`` sample ranges (one recording's ``spans``).
        n_steps: S, the number of time steps.
        hop_length: samples between two spectrogram frames.
        stride: spectrogram frames per step (e.g. a model's time reduction).

    Shape:
        Returns (K, S) bool.

    Example:
        >>> span_mask([(100, 400), (600, 700)], n_steps=6, hop_length=128).int()
        tensor([[0, 1, 1, 1, 0, 0],
                [0, 0, 0, 0, 0, 1]], dtype=torch.int32)
    """
    if n_steps < 1 or hop_length < 1 or stride < 1:
        raise ValueError(f"need n_steps, hop_length, stride >= 1, got {n_steps}, {hop_length}, "
                         f"{stride}")
    bounds = torch.tensor(list(spans), dtype=torch.long).reshape(-1, 2)  # (K, 2)
    centre = torch.arange(n_steps) * stride * hop_length  # (S,)
    return (centre[None, :] >= bounds[:, :1]) & (centre[None, :] < bounds[:, 1:])  # (K, S)


# ------------------------------------------------------------- a decoder without learning


def dtmf_frame_keys(spec: torch.Tensor, *, sample_rate: int = 8000, n_fft: int = 256,
                    keys: str = PHONE_KEYS, threshold_db: float = 10.0) -> torch.Tensor:
    """Per frame, the key whose row and column frequencies are strongest, or -1 for silence.

    For each of the eight DTMF frequencies the frame's magnitude is read at the
    nearest bin (the larger of it and its two neighbours, for detuned tones).
    The strongest row and the strongest column make the key; the frame counts
    as a key only if both stand ``threshold_db`` above the frame's median bin,
    an estimate of the noise floor.

    Args:
        spec: log-magnitude spectrograms from :func:`log_spectrogram`.
        sample_rate, n_fft: those of the spectrogram.
        keys: the alphabet; a row-column pair outside it counts as silence.
        threshold_db: how far above the noise floor both tones must be.

    Shape:
        spec (N, S, F) -> (N, S) int64: indices into ``keys``, -1 for silence.

    Example:
        >>> rec = synthesize(["5"], KeypadConfig(snr_db=20.0), torch.Generator().manual_seed(0))
        >>> spec, n = log_spectrogram(rec.waves, rec.lengths)
        >>> frames = dtmf_frame_keys(spec)[0, : int(n[0])]
        >>> sorted(set(frames.tolist()))     # silence and the key "5"
        [-1, 5]
    """
    if not isinstance(spec, torch.Tensor) or spec.dim() != 3 or spec.shape[-1] != n_fft // 2 + 1:
        got = shape_str(spec) if isinstance(spec, torch.Tensor) else type(spec).__name__
        raise ValueError(f"spec must be (N, S, F) with F = n_fft // 2 + 1 = {n_fft // 2 + 1}, "
                         f"got {got}")
    F = spec.shape[-1]
    bins = torch.tensor([round(f * n_fft / sample_rate) for f in LOW_HZ + HIGH_HZ])  # (8,)
    near = (bins[:, None] + torch.tensor([-1, 0, 1])).clamp(0, F - 1)  # (8, 3)
    level = spec[..., near].amax(-1)  # (N, S, 8): log-magnitude of each DTMF frequency
    floor = spec.median(dim=-1, keepdim=True).values  # (N, S, 1)
    above = (level - floor) * (20 / math.log(10))  # (N, S, 8) in dB
    row_db, row = above[..., :4].max(-1)  # (N, S)
    col_db, col = above[..., 4:].max(-1)  # (N, S)
    table = torch.full((4, 4), -1, dtype=torch.long)  # (row, column) -> index in keys
    for i, key in enumerate(keys):
        lo, hi = key_frequencies(key)
        table[LOW_HZ.index(lo), HIGH_HZ.index(hi)] = i
    frame_keys = table[row, col]  # (N, S)
    return frame_keys.masked_fill(torch.minimum(row_db, col_db) < threshold_db, -1)


def collapse_runs(labels: Sequence[int] | torch.Tensor, min_tone: int = 1, min_gap: int = 1,
                  silence: int = -1) -> list[int]:
    """Frame labels to the keys pressed: runs of a key, separated by silence.

    Runs of a key shorter than ``min_tone`` frames (a noise blip) and runs of
    silence shorter than ``min_gap`` frames (a dropout inside a tone) are
    deleted first; then each remaining run of a key is one press. A key held
    across a deleted dropout is one press; the same key twice needs a gap of
    at least ``min_gap`` frames between.

    Args:
        labels: (S,) frame labels; ``silence`` marks frames without a key.
        min_tone: the shortest run of a key that counts.
        min_gap: the shortest silence that separates two presses.
        silence: the label of silence.

    Returns:
        The labels of the presses, in order.

    Example:
        >>> collapse_runs([-1, 5, 5, 5, -1, -1, 5, 5, -1])
        [5, 5]
        >>> collapse_runs([-1, 5, 5, -1, 5, 5, 3, -1, -1], min_tone=2, min_gap=2)
        [5]
    """
    if isinstance(labels, torch.Tensor):
        if labels.dim() != 1:
            raise ValueError(f"labels must be one sequence (S,), got {shape_str(labels)}")
        labels = labels.tolist()
    if min_tone < 1 or min_gap < 1:
        raise ValueError(f"min_tone and min_gap must be >= 1, got {min_tone}, {min_gap}")
    runs = [(label, len(list(group))) for label, group in itertools.groupby(labels)]
    kept = [label for label, n in runs if n >= (min_gap if label == silence else min_tone)]
    return [label for label, _ in itertools.groupby(kept) if label != silence]


def peak_decode(spec: torch.Tensor, frame_lengths: torch.Tensor, *, keys: str = PHONE_KEYS,
                threshold_db: float = 10.0, min_tone: int = 2, min_gap: int = 1,
                sample_rate: int = 8000, n_fft: int = 256) -> list[str]:
    """Decode recordings without learning: ``dtmf_frame_keys``, then ``collapse_runs``.

    The defaults suit clean recordings; at a low SNR, tune ``threshold_db``,
    ``min_tone`` and ``min_gap`` on training recordings. (A frame that
    straddles the end of a tone can show a wrong key for one frame, hence
    ``min_tone=2``.)

    Shape:
        spec (N, S, F), frame_lengths (N,) -> N strings.

    Example:
        >>> rec = synthesize(["505", "12"], KeypadConfig(snr_db=20.0),
        ...                  torch.Generator().manual_seed(0))
        >>> peak_decode(*log_spectrogram(rec.waves, rec.lengths))
        ['505', '12']
    """
    if frame_lengths.shape != spec.shape[:1]:
        raise ValueError(f"frame_lengths {shape_str(frame_lengths)} must be (N,) for spec "
                         f"{shape_str(spec)}")
    frames = dtmf_frame_keys(spec, sample_rate=sample_rate, n_fft=n_fft, keys=keys,
                             threshold_db=threshold_db)  # (N, S)
    return ["".join(keys[i] for i in collapse_runs(row[: int(n)], min_tone, min_gap))
            for row, n in zip(frames, frame_lengths)]


# ------------------------------------------------------------------------------ metrics


def _check_pairs(predictions: Sequence[str], targets: Sequence[str]) -> None:
    if len(predictions) != len(targets) or len(targets) == 0:
        raise ValueError(f"need as many predictions as targets, and at least one; got "
                         f"{len(predictions)} and {len(targets)}")


def key_error_rate(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Edit distance summed over the pairs, per key of the targets (speech's word error rate).

    Example:
        >>> key_error_rate(["123", "55"], ["123", "555"])   # one deletion in 6 keys
        0.16666666666666666
    """
    _check_pairs(predictions, targets)
    errors = sum(edit_distance(p, t) for p, t in zip(predictions, targets))
    return errors / max(1, sum(len(t) for t in targets))
