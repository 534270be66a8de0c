"""The containers every text task returns: parallel strings, a seq2seq task, a language.

Each task of this package is generated from a seed, and its test split never shares an
item with its training split (a date, a pair of numbers, a sequence), so that test
accuracy measures generalisation, not memory. The private helpers at the end are the
generators' shared steps: checking the sizes asked for, drawing distinct strings, and
picking a split by name.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TypeVar

import torch

from attnlab.data.tokenizer import CharTokenizer

__all__ = ["TextPairs", "Seq2SeqTask", "LanguageTask"]

_Split = TypeVar("_Split")


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
        pairs = _pick_split(split, self.train, self.test)
        src, src_lengths = self.src_tokenizer.batch(pairs.sources)
        tgt, _ = self.tgt_tokenizer.batch(pairs.targets, bos=True, eos=True)
        return src, src_lengths, tgt


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
        pairs = _pick_split(split, self.train, self.test)
        texts = [p + a for p, a in zip(pairs.sources, pairs.targets)]
        ids, lengths = self.tokenizer.batch(texts, bos=True, eos=True)
        positions = torch.arange(ids.shape[1] - 1)  # position t predicts ids[:, t + 1]
        starts = torch.tensor([len(p) for p in pairs.sources])  # bos + prompt ends here
        answer_mask = (positions[None, :] >= starts[:, None]) & (
            positions[None, :] < (lengths - 1)[:, None]
        )
        return ids, answer_mask


def _pick_split(split: str, train: _Split, test: _Split) -> _Split:
    """``train`` or ``test``, as ``split`` names it; any other name is an error."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return train if split == "train" else test


def _check_counts(**counts: int) -> None:
    """Require each named count (``n_train=...``, ``n_test=...``) to be a positive integer."""
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")


def _check_sizes(n_train: int, n_test: int, available: int, what: str) -> None:
    _check_counts(n_train=n_train, n_test=n_test)
    if n_train + n_test > available:
        raise ValueError(
            f"n_train + n_test = {n_train + n_test} exceeds the {available} distinct {what} "
            "this task can generate without repeating one across the splits"
        )


def _distinct_strings(n: int, symbols: str, min_len: int, max_len: int, rng: random.Random,
                      *, counts: str, hint: str) -> list[str]:
    """``n`` different strings of ``min_len`` to ``max_len`` symbols, drawn with ``rng``.

    Each string draws its length, then its symbols; a string drawn before is drawn
    again. ``n`` may be at most half of the possible strings, so that the redraws
    stay few (and the loop ends); ``counts`` names ``n`` in that error (e.g.
    ``"n_train + n_test"``) and ``hint`` says how to allow more. (With no symbols,
    or ``min_len > max_len``, there is no string to draw: any ``n`` is too many.)
    """
    available = sum(len(symbols) ** k for k in range(min_len, max_len + 1))
    if n > available // 2:
        raise ValueError(f"{counts} = {n} is more than half of the {available} possible "
                         f"sequences; {hint}")
    seen: set[str] = set()
    drawn: list[str] = []
    while len(drawn) < n:
        s = "".join(rng.choice(symbols) for _ in range(rng.randint(min_len, max_len)))
        if s not in seen:
            seen.add(s)
            drawn.append(s)
    return drawn
