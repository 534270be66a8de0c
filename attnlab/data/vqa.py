"""Visual questions about handwritten digits: "is it even?", "is it larger than 4?", yes or no.

Each example pairs an 8x8 digit of :mod:`attnlab.data.digits` with a short
question from a small language, and the answer (1 = yes, 0 = no) that a rule
computes from the question and the digit's label. The questions::

    is it even          is it odd
    is it larger than n   (n = 0..8)      is it smaller than n   (n = 1..9)
    is it a k             (k = 0..9)

30 questions in all, written with 18 words. A question is tokenised word by
word (:class:`~attnlab.data.reviews.WordVocab`) and padded to T = 5 tokens.

- :func:`all_questions` -- the 30 :class:`Question` s;
- :class:`~attnlab.data.reviews.WordVocab` -- words to ids and back, id 0 = ``<pad>``;
- :func:`vqa_task` -- a :class:`VQATask` with train and test splits built on
  :func:`attnlab.data.digits.digits_task`, so that **no test image appears in
  training**; with ``balanced=True`` (the default) every question is asked of
  as many images whose answer is yes as no;
- :func:`question_prior_accuracy` -- the best a model that sees only the
  question can do: answer each question with its majority answer in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from attnlab._validate import shape_str
from attnlab.data.digits import DigitsSplit, digits_task
from attnlab.data.reviews import WordVocab  # the review language's vocabulary, reused

__all__ = [
    "QUESTION_KINDS",
    "Question",
    "all_questions",
    "question_vocab",
    "VQASplit",
    "VQATask",
    "vqa_task",
    "question_prior_accuracy",
]

QUESTION_KINDS = ("even", "odd", "larger", "smaller", "is")
_NUMBERS = {"larger": range(0, 9), "smaller": range(1, 10), "is": range(0, 10)}


@dataclass(frozen=True)
class Question:
    """One question of the language: its kind and, for three kinds, a number.

    Example:
        >>> q = Question("larger", 4)
        >>> q.text, q.answer(torch.tensor([3, 4, 5])).tolist()
        ('is it larger than 4', [0, 0, 1])
    """

    kind: str  # one of QUESTION_KINDS
    number: int | None = None  # n of "larger than n" / "smaller than n", k of "is it a k"

    def __post_init__(self) -> None:
        if self.kind not in QUESTION_KINDS:
            raise ValueError(f"kind must be one of {QUESTION_KINDS}, got {self.kind!r}")
        if self.kind in _NUMBERS:
            if self.number not in _NUMBERS[self.kind]:
                r = _NUMBERS[self.kind]
                raise ValueError(f"a {self.kind!r} question needs a number in {r.start}..."
                                 f"{r.stop - 1}, got {self.number!r}")
        elif self.number is not None:
            raise ValueError(f"a {self.kind!r} question takes no number, got {self.number!r}")

    @property
    def text(self) -> str:
        """The question as words, e.g. ``"is it smaller than 7"``."""
        if self.kind in ("even", "odd"):
            return f"is it {self.kind}"
        if self.kind == "is":
            return f"is it a {self.number}"
        return f"is it {self.kind} than {self.number}"

    def answer(self, labels: torch.Tensor) -> torch.Tensor:
        """The answers (1 = yes, 0 = no, int64) for digits with these labels, same shape."""
        n = self.number
        rule = {"even": labels % 2 == 0, "odd": labels % 2 == 1,
                "larger": labels > (n if n is not None else 0),
                "smaller": labels < (n if n is not None else 0), "is": labels == n}[self.kind]
        return rule.long()


@lru_cache(maxsize=1)
def _questions() -> tuple[Question, ...]:
    out = [Question("even"), Question("odd")]
    for kind in ("larger", "smaller", "is"):
        out += [Question(kind, n) for n in _NUMBERS[kind]]
    return tuple(out)


def all_questions() -> list[Question]:
    """The 30 questions, in a fixed order: even, odd, larger 0..8, smaller 1..9, is 0..9.

    Example:
        >>> qs = all_questions()
        >>> len(qs), qs[0].text, qs[-1].text
        (30, 'is it even', 'is it a 9')
    """
    return list(_questions())


def question_vocab() -> WordVocab:
    """The 18 words of the question language (V = 19 with ``<pad>``).

    Example:
        >>> vocab = question_vocab()
        >>> vocab.vocab_size, vocab.encode("is it larger than 4")
        (19, [1, 2, 5, 7, 13])
    """
    return WordVocab(["is", "it", "even", "odd", "larger", "smaller", "than", "a",
                      *[str(d) for d in range(10)]])


@dataclass(frozen=True)
class VQASplit:
    """Questions about the images of one digits split.

    Example k asks question ``question_ids[k]`` (its words: ``tokens[k]``) about
    image ``image_rows[k]`` of ``digits``; its answer is ``answers[k]``.

    Shape:
        image_rows, question_ids, answers (K,) int64; tokens (K, T) int64,
        padded with 0.
    """

    digits: DigitsSplit
    image_rows: torch.Tensor
    question_ids: torch.Tensor
    tokens: torch.Tensor
    answers: torch.Tensor

    def __post_init__(self) -> None:
        K = self.image_rows.shape[0]
        for name in ("image_rows", "question_ids", "answers"):
            if getattr(self, name).shape != (K,):
                raise ValueError(f"{name} must be (K,) = ({K},), got "
                                 f"{shape_str(getattr(self, name))}")
        if self.tokens.dim() != 2 or self.tokens.shape[0] != K:
            raise ValueError(f"tokens must be (K, T) with K={K}, got {shape_str(self.tokens)}")

    def __len__(self) -> int:
        return int(self.image_rows.shape[0])

    @property
    def images(self) -> torch.Tensor:
        """The image of every example, (K, 8, 8)."""
        return self.digits.images[self.image_rows]

    @property
    def labels(self) -> torch.Tensor:
        """The digit shown in every example, (K,)."""
        return self.digits.labels[self.image_rows]

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Examples ``rows`` (B,) as (images (B, 8, 8), tokens (B, T), answers (B,))."""
        return self.digits.images[self.image_rows[rows]], self.tokens[rows], self.answers[rows]


@dataclass(frozen=True)
class VQATask:
    """Visual questions with disjoint train and test images."""

    train: VQASplit
    test: VQASplit
    questions: tuple[Question, ...]
    vocab: WordVocab


def _ask(split: DigitsSplit, questions: tuple[Question, ...], per_answer: int | None,
         balanced: bool, rng: np.random.Generator
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows, qids, answers = [], [], []
    everyone = np.arange(len(split))
    for qid, q in enumerate(questions):
        yes = q.answer(split.labels).numpy().astype(bool)
        pools = (np.flatnonzero(yes), np.flatnonzero(~yes))
        n = min(len(p) for p in pools) if per_answer is None else per_answer
        if balanced:
            for pool in pools:
                if len(pool) < n:
                    raise ValueError(f"{q.text!r} has only {len(pool)} images with one of its "
                                     f"answers; per_answer={n} asks for more")
                rows.append(rng.choice(pool, size=n, replace=False))
        else:  # the images a question is asked of are drawn regardless of the answer
            rows.append(rng.choice(everyone, size=2 * n, replace=False))
        qids.append(np.full(2 * n, qid))
    image_rows = torch.from_numpy(np.concatenate(rows))
    question_ids = torch.from_numpy(np.concatenate(qids))
    for qid, q in enumerate(questions):
        sel = question_ids == qid
        answers.append(q.answer(split.labels[image_rows[sel]]))
    return image_rows, question_ids, torch.cat(answers)


def vqa_task(per_answer_train: int | None = None, per_answer_test: int | None = 30,
             balanced: bool = True,
             test_fraction: float = 0.2, seed: int = 0) -> VQATask:
    """Yes/no questions about digits; the test images are never seen in training.

    The images are split by :func:`~attnlab.data.digits.digits_task` (stratified,
    disjoint). Then each of the 30 questions is asked of ``2 * per_answer``
    distinct images of a split: with ``balanced=True``, ``per_answer`` whose
    answer is yes and ``per_answer`` whose answer is no, so that the question
    alone says nothing about the answer; with ``balanced=False``, images drawn
    at random, so that the answers follow the digits (``"is it a 3"`` is then
    answered no about 90 % of the time).

    Args:
        per_answer_train, per_answer_test: images per question and answer (the
            smallest digit class has 139 training and 35 test images).
        balanced: balance the answers of every question.
        test_fraction: the share of each digit held out (as in ``digits_task``).
        seed: seeds the image split and the choice of images per question.

    Shape:
        train: K = 30 * 2 * per_answer_train examples; test likewise; tokens (K, 5).

    Returns:
        A :class:`VQATask`; examples are ordered by question.

    Example:
        >>> task = vqa_task(per_answer_train=20, per_answer_test=5)
        >>> len(task.train), len(task.test), tuple(task.test.tokens.shape)
        (1200, 300, (300, 5))
        >>> float(task.train.answers.float().mean())
        0.5
        >>> set(task.train.digits.index.tolist()) & set(task.test.digits.index.tolist())
        set()
    """
    for name, n in (("per_answer_train", per_answer_train), ("per_answer_test", per_answer_test)):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {n!r}")
    digits = digits_task(test_fraction=test_fraction, seed=seed)
    questions = _questions()
    vocab = question_vocab()
    tokens = vocab.encode_batch([q.text for q in questions])  # (30, T)
    rng = np.random.default_rng([seed, 15])
    splits = []
    for split, n in ((digits.train, per_answer_train), (digits.test, per_answer_test)):
        rows, qids, answers = _ask(split, questions, n, balanced, rng)
        splits.append(VQASplit(split, rows, qids, tokens[qids], answers))
    return VQATask(splits[0], splits[1], questions, vocab)


def question_prior_accuracy(train: VQASplit, test: VQASplit) -> float:
    """Test accuracy of answering each question with its majority answer in training.

    This is the best any model that sees the question but not the image can
    expect: on balanced data 0.5, on unbalanced data much more. Ties answer yes.

    Example:
        >>> balanced = vqa_task(20, 5)
        >>> question_prior_accuracy(balanced.train, balanced.test)
        0.5
    """
    correct = 0
    for qid in torch.unique(test.question_ids).tolist():
        seen = train.answers[train.question_ids == qid]
        majority = int(seen.float().mean() >= 0.5) if len(seen) else 1
        correct += int((test.answers[test.question_ids == qid] == majority).sum())
    return correct / len(test)
