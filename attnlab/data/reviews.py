"""A synthetic review language whose sentiment needs context: negation and contrast.

Reviews are lower-case words, built from clauses such as ``"the plot was not very good"``.
Each clause has exactly one sentiment word; a ``"not"`` in the clause flips it; clauses are
joined by ``"and"`` (they agree) or by ``"but"`` (they disagree, and the clause after
``"but"`` decides). Neutral words (subjects, verbs, openers such as ``"honestly"``, closers
such as ``"at times"``) and intensifiers (``"very"``) vary the length and carry no sentiment.

The label of a review is computed by explicit rules (:func:`review_label`):

1. if the review contains ``"but"``, only the part after it counts;
2. that part is split into clauses at ``"and"``;
3. a clause's polarity is the sign of its sentiment word, flipped if the clause holds ``"not"``;
4. the label is the polarity the counting clauses share: 1 positive, 0 negative.

Each review is of one *kind* (:func:`review_kind`): ``"plain"`` (no ``"not"``, no ``"but"``),
``"negated"`` (a ``"not"``, no ``"but"``) or ``"contrast"`` (a ``"but"``). Plain reviews can
be classified by counting words; negated ones cannot be by a linear function of the counts
("not" acts as an exclusive or), and contrast ones by no function of the counts at all:
swapping the clauses around a ``"but"`` (:func:`swap_clauses`) keeps the bag of words and
flips the label.

Example:
    >>> review_label("the plot was not bad")
    1
    >>> review_label("the acting was great but the ending was awful")
    0
    >>> review_kind("the acting was great but the ending was awful")
    'contrast'
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from attnlab._validate import shape_str
from attnlab.data.tasks import _check_counts, _pick_split
from attnlab.masks import length_mask

__all__ = [
    "POSITIVE",
    "NEGATIVE",
    "INTENSIFIERS",
    "NEGATION",
    "CONTRAST",
    "CONJUNCTION",
    "KINDS",
    "word_polarity",
    "review_label",
    "review_kind",
    "make_review",
    "swap_clauses",
    "WordVocab",
    "Reviews",
    "ReviewsTask",
    "reviews_task",
    "positions_after",
]

POSITIVE = ("good", "great", "fine", "lovely", "superb", "brilliant", "enjoyable", "clever")
NEGATIVE = ("bad", "awful", "poor", "dull", "boring", "terrible", "weak", "clumsy")
INTENSIFIERS = ("very", "really", "quite", "truly", "so", "especially")
NEGATION, CONTRAST, CONJUNCTION = "not", "but", "and"
KINDS = ("plain", "negated", "contrast")

_SUBJECTS = ("the plot", "the acting", "the film", "the music", "the ending", "the cast",
             "the story", "the dialogue", "the pacing", "the script")
_VERBS = ("was", "is")
_OPENERS = ("honestly", "overall", "frankly", "to be fair", "i think", "for me")
_CLOSERS = ("at times", "in places", "throughout", "from start to finish", "for the most part")


def _words() -> list[str]:
    words: list[str] = []
    for group in (_SUBJECTS, _VERBS, _OPENERS, _CLOSERS, INTENSIFIERS, POSITIVE, NEGATIVE,
                  (NEGATION, CONTRAST, CONJUNCTION)):
        for phrase in group:
            for w in phrase.split():
                if w not in words:
                    words.append(w)
    return words


def word_polarity(word: str) -> int:
    """+1 for a positive sentiment word, -1 for a negative one, 0 for every other word.

    Example:
        >>> [word_polarity(w) for w in ("great", "dull", "very")]
        [1, -1, 0]
    """
    return 1 if word in POSITIVE else -1 if word in NEGATIVE else 0


def _clause_polarity(words: list[str], text: str) -> int:
    sentiment = [word_polarity(w) for w in words if word_polarity(w)]
    if len(sentiment) != 1:
        raise ValueError(f"each clause needs exactly one sentiment word; {' '.join(words)!r} "
                         f"in {text!r} has {len(sentiment)}")
    return -sentiment[0] if NEGATION in words else sentiment[0]


def review_label(text: str) -> int:
    """The sentiment of a review by the rules of the language: 1 positive, 0 negative.

    Only the part after ``"but"`` counts (when there is one); it is split into clauses at
    ``"and"``; a clause's polarity is its sentiment word's, flipped by a ``"not"``.

    Args:
        text: a review, words separated by single spaces.

    Returns:
        1 or 0.

    Raises:
        ValueError: the text is not a review of the language (a clause without exactly one
            sentiment word, more than one ``"but"``, clauses joined by ``"and"`` that disagree).

    Example:
        >>> review_label("honestly the film was really superb")
        1
        >>> review_label("the cast was not good and the script was weak")
        0
        >>> review_label("the plot was bad but the music was not dull")
        1
    """
    words = text.split()
    if words.count(CONTRAST) > 1:
        raise ValueError(f"a review has at most one {CONTRAST!r}: {text!r}")
    if CONTRAST in words:
        words = words[words.index(CONTRAST) + 1:]  # the clause after "but" decides
    clauses: list[list[str]] = [[]]
    for w in words:
        if w == CONJUNCTION:
            clauses.append([])
        else:
            clauses[-1].append(w)
    polarities = {_clause_polarity(c, text) for c in clauses}
    if len(polarities) != 1:
        raise ValueError(f"clauses joined by {CONJUNCTION!r} must agree: {text!r}")
    return int(polarities.pop() > 0)


def review_kind(text: str) -> str:
    """``"contrast"`` if the review holds ``"but"``, else ``"negated"`` if it holds ``"not"``,
    else ``"plain"``.

    Example:
        >>> review_kind("the plot was not bad"), review_kind("the plot was bad")
        ('negated', 'plain')
    """
    words = text.split()
    return "contrast" if CONTRAST in words else "negated" if NEGATION in words else "plain"


def _clause(rng: random.Random, polarity: int, negated: bool, subject: str) -> str:
    words = [rng.choice(_OPENERS)] if rng.random() < 0.25 else []
    words += [subject, rng.choice(_VERBS)]
    if negated:
        words.append(NEGATION)
    if rng.random() < 0.4:
        words.append(rng.choice(INTENSIFIERS))
    word_sign = -polarity if negated else polarity
    words.append(rng.choice(POSITIVE if word_sign > 0 else NEGATIVE))
    if rng.random() < 0.3:
        words.append(rng.choice(_CLOSERS))
    return " ".join(words)


def make_review(rng: random.Random, kind: str, label: int) -> str:
    """Draw one review of the given kind and label.

    - ``"plain"``: one or two clauses (joined by ``"and"``), none negated;
    - ``"negated"``: one or two clauses, at least one with ``"not"``;
    - ``"contrast"``: two clauses of opposite polarity joined by ``"but"``; the second has
      the label's polarity; each holds a ``"not"`` with probability 0.3.

    A clause starts with an opener (``"honestly"``) with probability 0.25, holds an
    intensifier with probability 0.4 and ends with a closer (``"at times"``) with
    probability 0.3. Both clauses of a review are drawn the same way, so a contrast review
    and its twin with the clauses swapped (:func:`swap_clauses`) are equally likely.

    Args:
        rng: the random number generator.
        kind: one of ``KINDS``.
        label: 1 (positive) or 0 (negative).

    Returns:
        The review, lower-case words separated by single spaces.

    Example:
        >>> text = make_review(random.Random(0), "contrast", 1)
        >>> review_label(text), review_kind(text)
        (1, 'contrast')
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    polarity = 1 if label else -1
    subjects = rng.sample(_SUBJECTS, 2)  # two clauses speak of different things
    if kind == "contrast":
        first = _clause(rng, -polarity, rng.random() < 0.3, subjects[0])
        second = _clause(rng, polarity, rng.random() < 0.3, subjects[1])
        return f"{first} {CONTRAST} {second}"
    n = rng.choice((1, 2))
    negated = [kind == "negated" and rng.random() < 0.5 for _ in range(n)]
    if kind == "negated" and not any(negated):
        negated[rng.randrange(n)] = True
    clauses = [_clause(rng, polarity, neg, subjects[i]) for i, neg in enumerate(negated)]
    return f" {CONJUNCTION} ".join(clauses)


def swap_clauses(text: str) -> str:
    """Swap the two clauses around ``"but"``: the same words, and so the same bag of words.

    The swapped review has the opposite label, because the other clause now decides.

    Example:
        >>> swap_clauses("the plot was good but honestly the cast was weak")
        'honestly the cast was weak but the plot was good'
        >>> review_label("the plot was good but the cast was weak"), review_label(
        ...     swap_clauses("the plot was good but the cast was weak"))
        (0, 1)
    """
    words = text.split()
    if words.count(CONTRAST) != 1:
        raise ValueError(f"swap_clauses needs a review with exactly one {CONTRAST!r}: {text!r}")
    i = words.index(CONTRAST)
    return " ".join(words[i + 1:] + [CONTRAST] + words[:i])


class WordVocab:
    """Words to integer ids and back; id 0 is ``<pad>``.

    Args:
        words: the words the vocabulary knows, each once, in id order from 1.

    Example:
        >>> vocab = WordVocab(["good", "not"])
        >>> vocab.encode("not good")
        [2, 1]
        >>> ids, lengths = vocab.batch(["good", "not good"])
        >>> ids
        tensor([[1, 0],
                [2, 1]])
        >>> vocab.decode(ids[0])
        'good'
    """

    PAD = "<pad>"
    pad_id = 0

    def __init__(self, words: Sequence[str]) -> None:
        if not words:
            raise ValueError("a vocabulary needs at least one word")
        if len(set(words)) != len(words):
            dupes = sorted({w for w in words if list(words).count(w) > 1})
            raise ValueError(f"words are repeated: {dupes}")
        bad = [w for w in words if not w or " " in w or w == self.PAD]
        if bad:
            raise ValueError(f"words must be non-empty, without spaces, not {self.PAD!r}: {bad}")
        self.tokens: list[str] = [self.PAD, *words]
        self._ids = {w: i for i, w in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        """V, the number of ids, ``<pad>`` included."""
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"WordVocab({self.vocab_size - 1} words)"

    def __getitem__(self, word: str) -> int:
        """The id of one word."""
        if word not in self._ids or word == self.PAD:
            raise ValueError(f"{word!r} is not in the vocabulary")
        return self._ids[word]

    def encode(self, text: str) -> list[int]:
        """Ids of the words of ``text`` (split at spaces)."""
        ids = []
        for pos, w in enumerate(text.split()):
            if w not in self._ids or w == self.PAD:
                raise ValueError(f"word {w!r} at position {pos} of {text!r} is not in the "
                                 "vocabulary")
            ids.append(self._ids[w])
        return ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of ``ids``, ``<pad>`` skipped."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one sequence (T,), got shape {shape_str(ids)}")
            ids = ids.tolist()
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is outside the vocabulary of size {self.vocab_size}")
        return " ".join(self.tokens[i] for i in ids if i != self.pad_id)

    def batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode texts and right-pad them to the longest.

        Shape:
            Returns ids (B, T) int64, padded with ``pad_id``, and lengths (B,).
        """
        if len(texts) == 0:
            raise ValueError("batch needs at least one text")
        encoded = [self.encode(t) for t in texts]
        if any(len(e) == 0 for e in encoded):
            raise ValueError("every text needs at least one word")
        ids = torch.full((len(texts), max(len(e) for e in encoded)), self.pad_id,
                         dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
        return ids, torch.tensor([len(e) for e in encoded], dtype=torch.long)

    def encode_batch(self, texts: Sequence[str], length: int | None = None) -> torch.Tensor:
        """Ids of texts, right-padded with ``pad_id`` to ``length`` (default: the longest).

        Shape:
            Returns ids (B, T) int64, T = ``length``.

        Example:
            >>> WordVocab(["is", "it", "a", "3"]).encode_batch(["is it a 3", "is it"], length=5)
            tensor([[1, 2, 3, 4, 0],
                    [1, 2, 0, 0, 0]])
        """
        ids, lengths = self.batch(texts)
        if length is None:
            return ids
        if int(lengths.max()) > length:
            raise ValueError(f"a text has {int(lengths.max())} words, more than length={length}")
        return torch.nn.functional.pad(ids, (0, length - ids.shape[1]), value=self.pad_id)


@dataclass(frozen=True)
class Reviews:
    """One split: the reviews, their labels (1 positive, 0 negative) and kinds."""

    texts: list[str]
    labels: list[int]
    kinds: list[str]

    def __post_init__(self) -> None:
        if not len(self.texts) == len(self.labels) == len(self.kinds):
            raise ValueError(f"{len(self.texts)} texts, {len(self.labels)} labels and "
                             f"{len(self.kinds)} kinds in a split")

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class ReviewsTask:
    """The review language: a vocabulary and disjoint train / test splits."""

    vocab: WordVocab
    train: Reviews
    test: Reviews

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids, lengths and labels of one split.

        Args:
            split: ``"train"`` or ``"test"``.

        Shape:
            Returns ids (N, T) padded with 0, lengths (N,) and labels (N,), all int64.
        """
        reviews = _pick_split(split, self.train, self.test)
        ids, lengths = self.vocab.batch(reviews.texts)
        return ids, lengths, torch.tensor(reviews.labels, dtype=torch.long)

    def kind_masks(self, split: str) -> dict[str, torch.Tensor]:
        """For each kind, a bool tensor (N,) that is True at the reviews of that kind."""
        kinds = _pick_split(split, self.train, self.test).kinds
        return {k: torch.tensor([x == k for x in kinds]) for k in KINDS}


def reviews_task(
    n_train: int = 4000,
    n_test: int = 1000,
    *,
    mix: Sequence[float] = (0.4, 0.3, 0.3),
    seed: int = 0,
) -> ReviewsTask:
    """Draw reviews of the language, labelled by :func:`review_label`, in disjoint splits.

    Each review's kind is drawn with the probabilities ``mix`` (plain, negated, contrast)
    and its label is 0 or 1 with equal probability. No review appears twice, so the test
    split shares no sentence with the training split.

    Args:
        n_train: number of training reviews.
        n_test: number of test reviews.
        mix: the probabilities of the kinds ``("plain", "negated", "contrast")``.
        seed: the seed of the generator.

    Returns:
        A :class:`ReviewsTask`.

    Example:
        >>> task = reviews_task(20, 10, seed=0)
        >>> len(task.train), len(task.test), task.vocab.vocab_size
        (20, 10, 59)
        >>> set(task.train.texts) & set(task.test.texts)
        set()
        >>> all(review_label(t) == y for t, y in zip(task.test.texts, task.test.labels))
        True
    """
    _check_counts(n_train=n_train, n_test=n_test)
    if n_train + n_test > 200_000:
        raise ValueError(f"n_train + n_test = {n_train + n_test} is more than this generator "
                         "draws without many repeats; ask for at most 200000 reviews")
    weights = [float(w) for w in mix]
    if len(weights) != len(KINDS) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"mix must be {len(KINDS)} non-negative probabilities for {KINDS}, "
                         f"got {tuple(mix)}")
    rng = random.Random(seed)
    seen: set[str] = set()
    texts: list[str] = []
    labels: list[int] = []
    kinds: list[str] = []
    while len(texts) < n_train + n_test:
        kind = rng.choices(KINDS, weights=weights)[0]
        label = rng.randrange(2)
        text = make_review(rng, kind, label)
        if text in seen:
            continue
        seen.add(text)
        texts.append(text)
        labels.append(label)
        kinds.append(kind)

    def split(lo: int, hi: int) -> Reviews:
        return Reviews(texts[lo:hi], labels[lo:hi], kinds[lo:hi])

    return ReviewsTask(WordVocab(_words()), split(0, n_train),
                       split(n_train, n_train + n_test))


def positions_after(ids: torch.Tensor, token_id: int, lengths: torch.Tensor) -> torch.Tensor:
    """Which positions come after the first ``token_id`` of each sequence (and are real).

    ::

        ids      the plot was bad but the ending was good <pad>
        result     .    .   .   .   .   1    1     1    1    .

    A sequence without ``token_id`` has no such position.

    Args:
        ids: token ids (B, T).
        token_id: the marker, e.g. the id of ``"but"``.
        lengths: the true lengths (B,); later positions are padding.

    Shape:
        ids (B, T), lengths (B,) -> bool (B, T).

    Example:
        >>> positions_after(torch.tensor([[5, 7, 6, 6, 0], [5, 6, 6, 6, 6]]), 7,
        ...                 torch.tensor([4, 5])).int()
        tensor([[0, 0, 1, 1, 0],
                [0, 0, 0, 0, 0]], dtype=torch.int32)
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        shape = shape_str(ids) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"ids must be a (B, T) tensor of token ids, got {shape}")
    if not isinstance(lengths, torch.Tensor) or lengths.shape != ids.shape[:1]:
        shape = shape_str(lengths) if isinstance(lengths, torch.Tensor) else "no tensor"
        raise ValueError(f"lengths must be (B,) = ({ids.shape[0]},) for ids {shape_str(ids)}, "
                         f"got {shape}")
    T = ids.shape[1]
    marker = (ids == token_id).long()  # (B, T)
    after = marker.cumsum(dim=1) - marker > 0  # (B, T): a marker strictly before t
    real = length_mask(lengths, T, device=ids.device)  # (B, T)
    return after & real
