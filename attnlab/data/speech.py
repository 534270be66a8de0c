"""Spoken digit strings synthesised offline with eSpeak NG, in many voices, rates and rooms.

The audio comes from **eSpeak NG** (https://github.com/espeak-ng/espeak-ng), a
formant synthesiser: it builds each sound from a few resonances driven by a
pulse train and noise, so its voices are clear but robotic, and they are *not*
recordings of people. The pinned wheel ``espeakng-loader`` (``pip install
espeakng-loader``) ships the compiled library, ``libespeak-ng``, and its voice
data, so nothing is downloaded: this module calls the library through
``ctypes`` and collects the samples in memory.

Licence: eSpeak NG is free software under the GNU General Public License,
version 3 or later (GPL-3.0-or-later). This module does not link it into
attnlab's code (it loads the library at run time, as any program may run a
GPL program); the GPL covers the program, not the speech it produces, so the
generated audio carries no licence condition from eSpeak NG. Whoever
*redistributes* the library (e.g. in a bundle with attnlab) must follow the
GPL for it. Cite it as ``espeakng`` in ``book/references.bib``: Dunn, R. H.,
Duddington, J. et al., *eSpeak NG text-to-speech*, version 1.52.

- :data:`DIGIT_WORDS`, :data:`ENGLISH_VOICES`, :data:`VARIANTS` -- what is said, by whom;
- :func:`speak` -- texts to waves, one voice, rate (words per minute) and pitch each;
- :func:`add_noise`, :func:`reverberate`, :func:`change_speed` -- augmentations;
- :class:`SpeechConfig`, :func:`spoken_digits_task` -- digit strings ("3 1 4" spoken
  as "three one four", target ``"314"``), split by sequence *and* by voice variant:
  the test set's speakers are never heard in training.

Shapes: N utterances, L samples (zero after each length).
"""

from __future__ import annotations

import _ctypes
import ctypes
import ctypes.util
import functools
import math
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from attnlab.data.tasks import _check_counts, _distinct_strings
from attnlab.data.tokenizer import CharTokenizer

__all__ = [
    "DIGIT_WORDS",
    "ENGLISH_VOICES",
    "VARIANTS",
    "ESPEAK_SAMPLE_RATE",
    "speak",
    "add_noise",
    "reverberate",
    "change_speed",
    "Utterances",
    "SpeechConfig",
    "SpeechTask",
    "spoken_digits_task",
]

DIGIT_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven",
                                "eight", "nine")  #: how each digit is said
#: eSpeak NG's English voices, one accent each -- British, American, Caribbean,
#: Scottish, received pronunciation, Lancastrian, West Midlands, New York City
ENGLISH_VOICES: tuple[str, ...] = ("en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-rp",
                                   "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")
#: eSpeak NG's voice variants, one formant set each -- seven male, five female
VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7",
                             "f1", "f2", "f3", "f4", "f5")
ESPEAK_SAMPLE_RATE = 22050  #: the rate eSpeak NG synthesises at (Hz)

_LOCK = threading.Lock()  # the library keeps global state: one synthesis at a time
# speak_lib.h: AUDIO_OUTPUT_SYNCHRONOUS, espeakINITIALIZE_DONT_EXIT, espeakRATE, espeakPITCH,
# POS_CHARACTER, espeakCHARS_UTF8
_SYNCHRONOUS, _DONT_EXIT, _RATE, _PITCH, _POS_CHARACTER, _UTF8 = 2, 0x8000, 1, 3, 1, 1
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


def _check_voice(voice: str) -> None:
    name, _, variant = voice.partition("+")
    if name not in ENGLISH_VOICES or (variant and variant not in VARIANTS):
        raise ValueError(f"unknown voice {voice!r}: use one of {ENGLISH_VOICES}, optionally "
                         f"with '+' and a variant of {VARIANTS}, e.g. 'en-us+f2'")


def _synthesize(texts: tuple[str, ...], voices: tuple[str, ...], rates: tuple[int, ...],
                pitches: tuple[int, ...]) -> list[np.ndarray]:
    """eSpeak NG's int16 samples at 22,050 Hz, from a freshly loaded library.

    The synthesiser keeps state from one utterance to the next (pitch flutter,
    gain control, echo buffer) and draws breath noise from libc's ``rand()``; a
    fresh copy of the library, seeded, makes the same call give the same samples.
    """
    import espeakng_loader  # the wheel that ships libespeak-ng and its voices

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    collected: list[np.ndarray] = []

    @_CALLBACK
    def keep(wav, n, _events):  # the C callback: n int16 samples at wav
        if n > 0 and wav:
            collected.append(np.ctypeslib.as_array(wav, (n,)).copy())
        return 0  # 0: go on

    with _LOCK:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        try:
            rate = lib.espeak_Initialize(_SYNCHRONOUS, 0,
                                         espeakng_loader.get_data_path().encode(),
                                         _DONT_EXIT)
            if rate != ESPEAK_SAMPLE_RATE:
                raise RuntimeError(f"eSpeak NG did not start (it answered {rate})")
            lib.espeak_SetSynthCallback(keep)
            libc.srand(0)
            lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
            out = []
            for text, voice, wpm, pitch in zip(texts, voices, rates, pitches):
                if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ValueError(f"eSpeak NG has no voice {voice!r}")
                lib.espeak_SetParameter(_RATE, int(wpm), 0)
                lib.espeak_SetParameter(_PITCH, int(pitch), 0)
                data = text.encode()
                collected.clear()
                err = lib.espeak_Synth(ctypes.c_char_p(data), ctypes.c_size_t(len(data) + 1),
                                       0, _POS_CHARACTER, 0, _UTF8, None, None)
                if err != 0:
                    raise RuntimeError(f"eSpeak NG failed on {text!r} (error {err})")
                out.append(np.concatenate(collected) if collected else np.zeros(0, np.int16))
            lib.espeak_Terminate()
        finally:
            handle = lib._handle
            del lib
            unload = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary  # POSIX, Windows
            unload(handle)  # the next call starts from a fresh state
    return out


@functools.lru_cache(maxsize=8)
def _speak_cached(texts: tuple[str, ...], voices: tuple[str, ...], rates: tuple[int, ...],
                  pitches: tuple[int, ...], sample_rate: int) -> tuple[np.ndarray, ...]:
    from scipy.signal import resample_poly

    raw = _synthesize(texts, voices, rates, pitches)
    g = math.gcd(sample_rate, ESPEAK_SAMPLE_RATE)
    out = []
    for x in raw:
        y = x.astype(np.float32) / 32768.0
        if sample_rate != ESPEAK_SAMPLE_RATE:
            y = resample_poly(y, sample_rate // g, ESPEAK_SAMPLE_RATE // g).astype(np.float32)
        y.setflags(write=False)
        out.append(y)
    return tuple(out)


def speak(texts: Sequence[str], voices: Sequence[str], rates: Sequence[int] | None = None,
          pitches: Sequence[int] | None = None, *, sample_rate: int = 11025) -> list[np.ndarray]:
    """Say each text with eSpeak NG (offline), and resample it to ``sample_rate``.

    The same call gives the same samples: each call synthesises from a freshly
    loaded library, in the order given, and calls are cached (a repeated call
    returns copies of the same samples without synthesising again).

    Args:
        texts: N English texts (non-empty), e.g. ``"three one four"``.
        voices: N voices, ``"accent"`` or ``"accent+variant"``, from
            :data:`ENGLISH_VOICES` and :data:`VARIANTS`.
        rates: N speaking rates in words per minute, 80 to 450 (default 175).
        pitches: N base pitches, 0 to 99 (default 50).
        sample_rate: Hz; 22050 keeps eSpeak's rate, anything lower is resampled
            with a polyphase low-pass filter (11025, half the rate, is the
            cheapest).

    Shape:
        Returns N float32 arrays (L_i,) in [-1, 1].

    Example:
        >>> a, b = speak(["seven", "seven"], ["en-us", "en-us+f2"])
        >>> 0.2 < len(a) / 11025 < 1.5, a.dtype, bool(abs(a).max() > 0.05)
        (True, dtype('float32'), True)
        >>> len(a) == len(b) and bool((a == b).all())   # another speaker
        False
    """
    if isinstance(texts, str) or isinstance(voices, str):
        raise ValueError("texts and voices must be lists of strings, not one string")
    n = len(texts)
    rates = [175] * n if rates is None else list(rates)
    pitches = [50] * n if pitches is None else list(pitches)
    if n == 0 or not len(voices) == len(rates) == len(pitches) == n:
        raise ValueError(f"need N >= 1 texts with as many voices, rates and pitches; got "
                         f"{n}, {len(voices)}, {len(rates)}, {len(pitches)}")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"every text must be a non-empty string, got {text!r}")
    for voice in voices:
        _check_voice(voice)
    if not all(80 <= r <= 450 for r in rates) or not all(0 <= p <= 99 for p in pitches):
        raise ValueError(f"rates must lie in [80, 450] words per minute and pitches in "
                         f"[0, 99]; got {rates} and {pitches}")
    if not 4000 <= sample_rate <= ESPEAK_SAMPLE_RATE:
        raise ValueError(f"sample_rate must lie in [4000, 22050] Hz, got {sample_rate}")
    cached = _speak_cached(tuple(texts), tuple(voices), tuple(int(r) for r in rates),
                           tuple(int(p) for p in pitches), sample_rate)
    return [x.copy() for x in cached]  # the caller may write to its copy


# ------------------------------------------------------------------------ augmentation


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    r"""Add white Gaussian noise at a signal-to-noise ratio over the whole wave.

    The noise power is :math:`P_x \cdot 10^{-\mathrm{SNR}/10}`, with
    :math:`P_x` the mean power of ``wave`` (its pauses included).

    Example:
        >>> x = np.sin(np.arange(8000) / 3).astype(np.float32)
        >>> y = add_noise(x, 10.0, np.random.default_rng(0))
        >>> round(float(10 * np.log10((x**2).mean() / ((y - x)**2).mean())), 1)
        10.0
    """
    power = float(np.mean(np.square(wave, dtype=np.float64)))
    if power == 0:
        raise ValueError("the wave is silent: an SNR needs signal power")
    noise = rng.standard_normal(len(wave))
    noise *= math.sqrt(power * 10 ** (-snr_db / 10) / np.mean(noise**2))
    return (wave + noise).astype(np.float32)


def reverberate(wave: np.ndarray, rt60: float, sample_rate: int,
                rng: np.random.Generator) -> np.ndarray:
    r"""Convolve with a synthetic room: exponentially decaying noise, :math:`T_{60}` seconds.

    The impulse response is :math:`h[n] = \epsilon_n\, 10^{-3 n / (T_{60} r)}`
    (60 dB down after :math:`T_{60}` seconds), with a direct path
    :math:`h[0] = 1`, scaled to unit energy; the output keeps the input's
    length plus the tail. A crude room, but it smears each sound over the
    next ones as a real one does.

    Example:
        >>> y = reverberate(np.ones(100, np.float32), 0.1, 8000, np.random.default_rng(0))
        >>> len(y)
        899
    """
    if not 0 < rt60 <= 2:
        raise ValueError(f"rt60 must lie in (0, 2] seconds, got {rt60}")
    n = max(2, int(rt60 * sample_rate))
    h = rng.standard_normal(n) * 10 ** (-3 * np.arange(n) / n)
    h[0] = 1.0
    h /= np.sqrt(np.sum(h**2))
    from scipy.signal import fftconvolve

    return fftconvolve(wave, h).astype(np.float32)


def change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together), by linear resampling.

    Example:
        >>> len(change_speed(np.zeros(1000, np.float32), 1.25))
        800
    """
    if not 0.5 <= factor <= 2:
        raise ValueError(f"factor must lie in [0.5, 2], got {factor}")
    n = int(round(len(wave) / factor))
    return np.interp(np.arange(n) * factor, np.arange(len(wave)), wave).astype(np.float32)


# -------------------------------------------------------------------------------- task


@dataclass(frozen=True)
class Utterances:
    """Spoken digit strings, padded with zeros to the longest.

    Attributes:
        waves: (N, L) float32 samples.
        lengths: (N,) int64 real samples of each.
        digits: N target strings, e.g. ``"314"``.
        voices: N eSpeak NG voices, ``"accent+variant"``.
        sample_rate: Hz.
    """

    waves: torch.Tensor
    lengths: torch.Tensor
    digits: list[str]
    voices: list[str]
    sample_rate: int

    def __len__(self) -> int:
        return len(self.digits)


@dataclass(frozen=True)
class SpeechConfig:
    """Who speaks, how fast, in which room and noise; the defaults are the book's task.

    Every range is drawn uniformly per utterance. The variants of the three
    splits are disjoint: test speakers are never heard in training.
    """

    sample_rate: int = 11025  # Hz: half eSpeak's rate (a cheap resampling), up to 5.5 kHz
    min_digits: int = 2  # digits per string, drawn from min_digits..max_digits
    max_digits: int = 4
    voices: tuple[str, ...] = ENGLISH_VOICES  # accents, shared by the splits
    train_variants: tuple[str, ...] = ("m1", "m2", "m4", "m5", "m6", "f1", "f2", "f4")
    val_variants: tuple[str, ...] = ("m7", "f5")
    test_variants: tuple[str, ...] = ("m3", "f3")
    rate_wpm: tuple[int, int] = (140, 230)  # speaking rate, words per minute
    pitch: tuple[int, int] = (25, 75)  # eSpeak's base pitch, 0-99
    speed: tuple[float, float] = (0.9, 1.1)  # resampling after synthesis
    reverb_p: float = 0.5  # share of utterances put in a room
    rt60: tuple[float, float] = (0.1, 0.4)  # the room's reverberation time (s)
    snr_db: tuple[float, float] = (0.0, 20.0)  # white noise, over the whole utterance

    def __post_init__(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits:
            raise ValueError(f"need 1 <= min_digits <= max_digits, got {self.min_digits}, "
                             f"{self.max_digits}")
        splits = (self.train_variants, self.val_variants, self.test_variants)
        if any(not s for s in splits) or len(set().union(*splits)) != sum(map(len, splits)):
            raise ValueError("train, validation and test variants must be non-empty and "
                             "disjoint (a speaker in two splits is not held out)")
        for v in (*self.voices, *(f"en+{x}" for s in splits for x in s)):
            _check_voice(v)
        if not 0 <= self.reverb_p <= 1:
            raise ValueError(f"reverb_p must lie in [0, 1], got {self.reverb_p}")


@dataclass(frozen=True)
class SpeechTask:
    """Spoken digit strings split by sequence and by speaker; ``tokenizer`` knows the digits."""

    config: SpeechConfig
    tokenizer: CharTokenizer
    train: Utterances
    val: Utterances
    test: Utterances
    seed: int = 0  # the seed the task was made from

    def test_at_snr(self, snr_db: float) -> Utterances:
        """The test split again, the same strings, speakers and rooms, at one SNR (dB)."""
        return _render(self.test.digits, self.config.test_variants, self.config,
                       random.Random(self.seed + 1), np.random.default_rng(self.seed + 1),
                       snr_db)


def _render(digits: list[str], variants: Sequence[str], c: SpeechConfig, rng: random.Random,
            nrng: np.random.Generator, snr_db: float | None) -> Utterances:
    voices = [f"{rng.choice(c.voices)}+{rng.choice(variants)}" for _ in digits]
    rates = [rng.randint(*c.rate_wpm) for _ in digits]
    pitches = [rng.randint(*c.pitch) for _ in digits]
    texts = [" ".join(DIGIT_WORDS[int(d)] for d in s) for s in digits]
    waves = []
    for x in speak(texts, voices, rates, pitches, sample_rate=c.sample_rate):
        x = change_speed(x, rng.uniform(*c.speed))
        if rng.random() < c.reverb_p:
            x = reverberate(x, rng.uniform(*c.rt60), c.sample_rate, nrng)
        x = x / (np.abs(x).max() + 1e-9) * 0.5
        snr = rng.uniform(*c.snr_db)  # drawn always: the same speakers at any test_snr_db
        snr = snr if snr_db is None else snr_db
        waves.append(torch.from_numpy(add_noise(x, snr, nrng)))
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)  # (N, L)
    return Utterances(padded, lengths, digits, voices, c.sample_rate)


def spoken_digits_task(n_train: int = 2000, n_val: int = 200, n_test: int = 400, *,
                       config: SpeechConfig | None = None, seed: int = 0,
                       test_snr_db: float | None = None) -> SpeechTask:
    """Digit strings spoken by eSpeak NG, split by string and by speaker (voice variant).

    Each string has ``min_digits`` to ``max_digits`` digits, drawn uniformly,
    and no string is in two splits. Each utterance draws an accent, a variant
    of its split, a rate, a pitch, a speed change, maybe a room, and an SNR.

    Args:
        n_train, n_val, n_test: utterances per split.
        config: the :class:`SpeechConfig`.
        seed: seeds the strings, the speakers and the augmentation.
        test_snr_db: if given, every test utterance gets this SNR (a robustness
            test); the other splits are unchanged.

    Example:
        >>> task = spoken_digits_task(20, 4, 4, seed=0)
        >>> len(task.train), len(task.val), len(task.test), task.tokenizer.vocab_size
        (20, 4, 4, 13)
        >>> {v.split("+")[1] for v in task.test.voices} <= {"m3", "f3"}
        True
    """
    c = config if config is not None else SpeechConfig()
    _check_counts(n_train=n_train, n_val=n_val, n_test=n_test)
    rng = random.Random(seed)
    drawn = _distinct_strings(n_train + n_val + n_test, "0123456789", c.min_digits,
                              c.max_digits, rng, counts="n_train + n_val + n_test",
                              hint="allow more digits per string")
    nrng = np.random.default_rng(seed)
    test = _render(drawn[n_train + n_val:], c.test_variants, c, random.Random(seed + 1),
                   np.random.default_rng(seed + 1), test_snr_db)
    val = _render(drawn[n_train:n_train + n_val], c.val_variants, c, random.Random(seed + 2),
                  np.random.default_rng(seed + 2), None)
    train = _render(drawn[:n_train], c.train_variants, c, random.Random(seed + 3), nrng, None)
    return SpeechTask(c, CharTokenizer("0123456789"), train, val, test, seed)
