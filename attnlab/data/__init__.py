"""Synthetic tasks for the chapters, with character tokenizers and seeded, disjoint splits.

The core tasks are defined here; the application chapters' data generators live in
modules of this package (``attnlab.data.<name>``).

Every task is generated from a seed, so the same call gives the same data on every machine, and
its test split never shares an item with its training split (a date, a pair of numbers, a
sequence), so that test accuracy measures generalisation, not memory.

Tasks:

- :func:`dates_task` -- dates written in many human formats -> ISO ``2026-11-24``;
- :func:`reversal_task`, :func:`sorting_task` -- reverse or sort a string of symbols;
- :func:`addition_task` -- ``"123+45=168"``, a language for a decoder-only model.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "CharTokenizer",
    "TextPairs",
    "Seq2SeqTask",
    "LanguageTask",
    "DATE_FORMATS",
    "format_date",
    "dates_task",
    "reversal_task",
    "sorting_task",
    "addition_task",
    "batches",
]


class CharTokenizer:
    """Characters to integer ids and back, with padding, begin and end tokens.

    Ids 0, 1 and 2 are ``<pad>``, ``<bos>`` and ``<eos>``; the characters of
    ``alphabet`` follow in the order given.

    Args:
        alphabet: the characters the tokenizer knows, each once.

    Example:
        >>> tok = CharTokenizer("ab")
        >>> tok.encode("ba", eos=True)
        [4, 3, 2]
        >>> tok.decode([1, 4, 3, 2, 0])
        'ba'
        >>> tok.vocab_size
        5
    """

    PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, alphabet: str) -> None:
        if not alphabet:
            raise ValueError("a tokenizer needs a non-empty alphabet")
        if len(set(alphabet)) != len(alphabet):
            dupes = sorted({c for c in alphabet if alphabet.count(c) > 1})
            raise ValueError(f"alphabet has repeated characters: {dupes}")
        self.alphabet = alphabet
        self.tokens: list[str] = [self.PAD, self.BOS, self.EOS, *alphabet]
        self._ids = {c: i for i, c in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        """V, the number of ids, special tokens included."""
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"CharTokenizer({self.alphabet!r})"

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of the characters of ``text``, optionally framed by ``<bos>`` / ``<eos>``."""
        ids = []
        for pos, ch in enumerate(text):
            if ch not in self._ids or ch in (self.PAD, self.BOS, self.EOS):
                raise ValueError(
                    f"character {ch!r} at position {pos} of {text!r} is not in the alphabet "
                    f"{self.alphabet!r}"
                )
            ids.append(self._ids[ch])
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """The text of ``ids``: stops at the first ``<eos>``, skips ``<pad>`` and ``<bos>``."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one sequence (L,), got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is outside the vocabulary of size {self.vocab_size}")
            if i == self.eos_id:
                break
            if i > self.eos_id:
                out.append(self.tokens[i])
        return "".join(out)

    def batch(
        self,
        texts: Sequence[str],
        *,
        bos: bool = False,
        eos: bool = False,
        length: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode and right-pad a batch of texts.

        Args:
            texts: B strings.
            bos, eos: frame each text with ``<bos>`` / ``<eos>``.
            length: pad to this length (default: the longest encoded text).

        Shape:
            Returns ids (B, L) int64, padded with ``pad_id``, and lengths (B,).

        Example:
            >>> ids, lengths = CharTokenizer("ab").batch(["a", "abb"])
            >>> ids
            tensor([[3, 0, 0],
                    [3, 4, 4]])
            >>> lengths
            tensor([1, 3])
        """
        if len(texts) == 0:
            raise ValueError("batch needs at least one text")
        encoded = [self.encode(t, bos=bos, eos=eos) for t in texts]
        longest = max(len(e) for e in encoded)
        length = longest if length is None else length
        if length < longest:
            raise ValueError(f"length={length} is shorter than the longest text ({longest} ids)")
        ids = torch.full((len(texts), max(length, 1)), self.pad_id, dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
        return ids, torch.tensor([len(e) for e in encoded], dtype=torch.long)


@dataclass(frozen=True)
class TextPairs:
    """Parallel lists of source and target strings (one split of a task)."""

    sources: list[str]
    targets: list[str]

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.targets):
            raise ValueError(
                f"{len(self.sources)} sources but {len(self.targets)} targets in a split"
            )

    def __len__(self) -> int:
        return len(self.sources)


@dataclass(frozen=True)
class Seq2SeqTask:
    """A sequence-to-sequence task: tokenizers and disjoint train / test splits."""

    name: str
    src_tokenizer: CharTokenizer
    tgt_tokenizer: CharTokenizer
    train: TextPairs
    test: TextPairs

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids of one split.

        Sources are padded ids with their lengths; targets are framed as
        ``<bos> ... <eos>`` so that a decoder reads ``tgt[:, :-1]`` and predicts
        ``tgt[:, 1:]``.

        Args:
            split: ``"train"`` or ``"test"``.

        Shape:
            Returns src (N, S), src_lengths (N,), tgt (N, T + 2).
        """
        pairs = self._split(split)
        src, src_lengths = self.src_tokenizer.batch(pairs.sources)
        tgt, _ = self.tgt_tokenizer.batch(pairs.targets, bos=True, eos=True)
        return src, src_lengths, tgt

    def _split(self, split: str) -> TextPairs:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return self.train if split == "train" else self.test


@dataclass(frozen=True)
class LanguageTask:
    """A language for a decoder-only model: each text is ``prompt + answer``.

    ``train`` and ``test`` hold the prompts (``sources``) and the answers
    (``targets``) separately, so that an evaluation can give the model the
    prompt and compare what it writes with the answer.
    """

    name: str
    tokenizer: CharTokenizer
    train: TextPairs
    test: TextPairs

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of whole texts and a mask of the answer positions.

        The ids are ``<bos> prompt answer <eos>``, padded; ``answer_mask[n, t]``
        is True where ``ids[n, t + 1]`` belongs to the answer (its ``<eos>``
        included), i.e. where a next-token loss should count.

        Args:
            split: ``"train"`` or ``"test"``.

        Shape:
            Returns ids (N, L) and answer_mask (N, L - 1) bool.
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        pairs = self.train if split == "train" else self.test
        texts = [p + a for p, a in zip(pairs.sources, pairs.targets)]
        ids, lengths = self.tokenizer.batch(texts, bos=True, eos=True)
        positions = torch.arange(ids.shape[1] - 1)  # position t predicts ids[:, t + 1]
        starts = torch.tensor([len(p) for p in pairs.sources])  # bos + prompt ends here
        answer_mask = (positions[None, :] >= starts[:, None]) & (
            positions[None, :] < (lengths - 1)[:, None]
        )
        return ids, answer_mask


# ------------------------------------------------------------------------------ dates

_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _month(d: dt.date) -> str:
    return _MONTHS[d.month - 1]


#: The date formats, each named by how it writes 24 November 2026. Each is unambiguous within
#: the years 1950-2049 (two-digit years: 50-99 -> 19xx, 00-49 -> 20xx); slashes are always
#: month/day (US), dots always day.month (European).
DATE_FORMATS: dict[str, Callable[[dt.date], str]] = {
    "24 Nov 2026": lambda d: f"{d.day} {_month(d)[:3].title()} {d.year}",
    "24 November 2026": lambda d: f"{d.day} {_month(d).title()} {d.year}",
    "november 24, 2026": lambda d: f"{_month(d)} {d.day}, {d.year}",
    "Nov 24, 2026": lambda d: f"{_month(d)[:3].title()} {d.day}, {d.year}",
    "NOV 24 2026": lambda d: f"{_month(d)[:3].upper()} {d.day:02d} {d.year}",
    "11/24/26": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",
    "11/24/2026": lambda d: f"{d.month}/{d.day}/{d.year}",
    "24.11.2026": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "24.11.26": lambda d: f"{d.day}.{d.month}.{d.year % 100:02d}",
    "24-Nov-2026": lambda d: f"{d.day:02d}-{_month(d)[:3].title()}-{d.year}",
    "Tuesday, November 24, 2026": lambda d: (
        f"{_WEEKDAYS[d.weekday()].title()}, {_month(d).title()} {d.day}, {d.year}"
    ),
    "tue 24 nov 2026": lambda d: f"{_WEEKDAYS[d.weekday()][:3]} {d.day} {_month(d)[:3]} {d.year}",
}
_DATE_ALPHABET = " ,-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FIRST_DAY, _LAST_DAY = dt.date(1950, 1, 1), dt.date(2049, 12, 31)


def format_date(date: dt.date, fmt: str) -> str:
    """Write ``date`` in one of the :data:`DATE_FORMATS`, named by its example.

    Example:
        >>> format_date(dt.date(2026, 11, 24), "november 24, 2026")
        'november 24, 2026'
        >>> format_date(dt.date(2026, 11, 24), "11/24/26")
        '11/24/26'
    """
    if fmt not in DATE_FORMATS:
        raise ValueError(f"unknown date format {fmt!r}; the formats are {list(DATE_FORMATS)}")
    if not _FIRST_DAY <= date <= _LAST_DAY:
        raise ValueError(f"{date} is outside {_FIRST_DAY} .. {_LAST_DAY}")
    return DATE_FORMATS[fmt](date)


def _check_sizes(n_train: int, n_test: int, available: int, what: str) -> None:
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    if n_train + n_test > available:
        raise ValueError(
            f"n_train + n_test = {n_train + n_test} exceeds the {available} distinct {what} "
            "this task can generate without repeating one across the splits"
        )


def dates_task(n_train: int = 20_000, n_test: int = 2_000, seed: int = 0) -> Seq2SeqTask:
    """Translate human-written dates into ISO format.

    Each example is a date between 1950 and 2049 written in one of
    :data:`DATE_FORMATS`, chosen at random, and its ISO form ``YYYY-MM-DD``.
    The splits are disjoint by *date*: a date in the test split appears in no
    format in the training split.

    Args:
        n_train: number of training examples (each a different date).
        n_test: number of test examples.
        seed: the seed of the generator.

    Example:
        >>> task = dates_task(n_train=3, n_test=2, seed=0)
        >>> len(task.train), len(task.test)
        (3, 2)
        >>> all(len(t) == 10 and t[4] == t[7] == "-" for t in task.train.targets)
        True
    """
    n_days = (_LAST_DAY - _FIRST_DAY).days + 1
    _check_sizes(n_train, n_test, n_days, "dates")
    rng = random.Random(seed)
    offsets = rng.sample(range(n_days), n_train + n_test)
    formats = list(DATE_FORMATS)

    def make(chunk: list[int]) -> TextPairs:
        dates = [_FIRST_DAY + dt.timedelta(days=o) for o in chunk]
        return TextPairs([format_date(d, rng.choice(formats)) for d in dates],
                         [d.isoformat() for d in dates])

    return Seq2SeqTask(
        name="dates",
        src_tokenizer=CharTokenizer(_DATE_ALPHABET),
        tgt_tokenizer=CharTokenizer("0123456789-"),
        train=make(offsets[:n_train]),
        test=make(offsets[n_train:]),
    )


# ------------------------------------------------------------------ reversal, sorting


def _symbol_task(
    name: str,
    transform: Callable[[str], str],
    n_train: int,
    n_test: int,
    min_len: int,
    max_len: int,
    alphabet: str,
    seed: int,
) -> Seq2SeqTask:
    if not 1 <= min_len <= max_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    available = sum(len(alphabet) ** n for n in range(min_len, max_len + 1))
    _check_sizes(n_train, n_test, available, "sequences")
    if n_train + n_test > available // 2:
        raise ValueError(
            f"n_train + n_test = {n_train + n_test} is more than half of the {available} possible "
            "sequences; lengthen the sequences or enlarge the alphabet"
        )
    rng = random.Random(seed)
    seen: set[str] = set()
    texts: list[str] = []
    while len(texts) < n_train + n_test:
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))
        if s not in seen:
            seen.add(s)
            texts.append(s)
    tok = CharTokenizer(alphabet)
    split = (texts[:n_train], texts[n_train:])
    train, test = (TextPairs(list(part), [transform(s) for s in part]) for part in split)
    return Seq2SeqTask(name, tok, tok, train, test)


def reversal_task(
    n_train: int = 10_000,
    n_test: int = 1_000,
    *,
    min_len: int = 4,
    max_len: int = 12,
    alphabet: str = "abcdefghijklmnop",
    seed: int = 0,
) -> Seq2SeqTask:
    """Reverse a random string: ``"abcd" -> "dcba"``. Splits share no string.

    Example:
        >>> task = reversal_task(4, 2, seed=1)
        >>> all(t == s[::-1] for s, t in zip(task.train.sources, task.train.targets))
        True
    """
    return _symbol_task("reversal", lambda s: s[::-1], n_train, n_test, min_len, max_len,
                        alphabet, seed)


def sorting_task(
    n_train: int = 10_000,
    n_test: int = 1_000,
    *,
    min_len: int = 4,
    max_len: int = 12,
    alphabet: str = "abcdefghijklmnop",
    seed: int = 0,
) -> Seq2SeqTask:
    """Sort the symbols of a random string: ``"dbca" -> "abcd"``. Splits share no string.

    Example:
        >>> task = sorting_task(4, 2, seed=1)
        >>> all(t == "".join(sorted(s)) for s, t in zip(task.test.sources, task.test.targets))
        True
    """
    return _symbol_task("sorting", lambda s: "".join(sorted(s)), n_train, n_test, min_len,
                        max_len, alphabet, seed)


# ------------------------------------------------------------------------- addition


def addition_task(
    n_train: int = 20_000,
    n_test: int = 2_000,
    *,
    n_digits: int = 3,
    pad: bool = False,
    reverse_answer: bool = False,
    seed: int = 0,
) -> LanguageTask:
    """Sums of two random numbers below ``10 ** n_digits``: prompt ``"123+45="``, answer ``"168"``.

    The splits are disjoint by the *unordered* pair of operands, so a test
    sum is never seen in training, not even as ``45+123``.

    Args:
        n_train, n_test: numbers of examples.
        n_digits: the largest operand has this many digits.
        pad: write the operands with leading zeros (``"123+045="``) and the
            answer with ``n_digits + 1`` digits (``"0168"``).
        reverse_answer: write the answer's digits least significant first
            (``"861"``), the order in which carries are computed.
        seed: the seed of the generator.

    Example:
        >>> task = addition_task(3, 2, n_digits=2, seed=0)
        >>> p, a = task.train.sources[0], task.train.targets[0]
        >>> x, y = p[:-1].split("+")
        >>> int(x) + int(y) == int(a)
        True
    """
    if isinstance(n_digits, bool) or not isinstance(n_digits, int) or n_digits < 1:
        raise ValueError(f"n_digits must be a positive integer, got {n_digits!r}")
    top = 10**n_digits
    _check_sizes(n_train, n_test, top * (top + 1) // 2, "pairs of operands")
    rng = random.Random(seed)
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    while len(pairs) < n_train + n_test:
        a, b = rng.randrange(top), rng.randrange(top)
        key = (min(a, b), max(a, b))
        if key not in seen:
            seen.add(key)
            pairs.append((a, b))

    def write(a: int, b: int) -> tuple[str, str]:
        if pad:
            prompt, answer = f"{a:0{n_digits}d}+{b:0{n_digits}d}=", f"{a + b:0{n_digits + 1}d}"
        else:
            prompt, answer = f"{a}+{b}=", str(a + b)
        return prompt, answer[::-1] if reverse_answer else answer

    def make(chunk: list[tuple[int, int]]) -> TextPairs:
        written = [write(a, b) for a, b in chunk]
        return TextPairs([p for p, _ in written], [a for _, a in written])

    return LanguageTask(
        name="addition",
        tokenizer=CharTokenizer("0123456789+="),
        train=make(pairs[:n_train]),
        test=make(pairs[n_train:]),
    )


# --------------------------------------------------------------------------- batches


def batches(
    n: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Index tensors that cover ``range(n)`` in batches, shuffled with ``generator``.

    Example:
        >>> [b.tolist() for b in batches(5, 2, shuffle=False)]
        [[0, 1], [2, 3], [4]]
    """
    if n < 1 or batch_size < 1:
        raise ValueError(f"need n >= 1 and batch_size >= 1, got n={n}, batch_size={batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


# The application chapters' data (modules of this package), importable from here too.
from attnlab.data.digits import (  # noqa: E402
    Digits,
    DigitsSplit,
    digits_task,
    load_digit_images,
    patchify,
    stratified_split,
    stratified_subset,
    unpatchify,
)
from attnlab.data.reviews import (  # noqa: E402
    Reviews,
    ReviewsTask,
    WordVocab,
    make_review,
    positions_after,
    review_kind,
    review_label,
    reviews_task,
    swap_clauses,
    word_polarity,
)
from attnlab.data.sessions import (  # noqa: E402
    Catalogue,
    SessionConfig,
    Sessions,
    SessionsTask,
    generate_sessions,
    leave_last_out,
    make_catalogue,
    next_item_batch,
    next_item_probs,
    sessions_task,
)

__all__ += ["Digits", "DigitsSplit", "digits_task", "load_digit_images", "stratified_split",
            "stratified_subset", "patchify", "unpatchify", "SessionConfig", "Catalogue",
            "Sessions", "SessionsTask", "make_catalogue", "generate_sessions", "sessions_task",
            "next_item_probs", "leave_last_out", "next_item_batch", "WordVocab", "Reviews",
            "ReviewsTask", "reviews_task", "review_label", "review_kind", "make_review",
            "swap_clauses", "positions_after", "word_polarity"]
from attnlab.data.keypad import (  # noqa: E402
    KeypadConfig,
    KeypadTask,
    Recordings,
    key_frequencies,
    keypad_task,
    log_spectrogram,
    peak_decode,
    span_mask,
    synthesize,
)

__all__ += ["KeypadConfig", "KeypadTask", "Recordings", "keypad_task", "synthesize",
            "log_spectrogram", "span_mask", "key_frequencies", "peak_decode"]
from attnlab.data.series import (  # noqa: E402
    ForecastTask,
    SeriesConfig,
    Standardizer,
    Windows,
    forecasting_task,
    generate_series,
    make_windows,
    time_splits,
)

__all__ += ["SeriesConfig", "generate_series", "time_splits", "Windows", "make_windows",
            "Standardizer", "ForecastTask", "forecasting_task"]
from attnlab.data.dna import (  # noqa: E402
    CONSENSUS,
    DECOY_KINDS,
    PARTNER,
    DNASplit,
    DNATask,
    GrammarSplit,
    GrammarTask,
    dna_task,
    grammar_task,
    motif_pwm,
    site_mask,
    window_distances,
)

__all__ += ["DNASplit", "DNATask", "dna_task", "GrammarSplit", "GrammarTask", "grammar_task",
            "motif_pwm", "window_distances", "site_mask", "CONSENSUS", "PARTNER", "DECOY_KINDS"]
from attnlab.data.vqa import (  # noqa: E402
    QUESTION_KINDS,
    Question,
    VQASplit,
    VQATask,
    all_questions,
    question_prior_accuracy,
    question_vocab,
    vqa_task,
)

__all__ += ["QUESTION_KINDS", "Question", "all_questions", "question_vocab", "VQASplit",
            "VQATask", "vqa_task", "question_prior_accuracy"]
