"""Symbol tasks: reverse or sort a random string of symbols."""

from __future__ import annotations

import random
from collections.abc import Callable

from attnlab.data.tasks import Seq2SeqTask, TextPairs, _check_counts, _distinct_strings
from attnlab.data.tokenizer import CharTokenizer

__all__ = ["reversal_task", "sorting_task"]


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
    _check_counts(n_train=n_train, n_test=n_test)
    texts = _distinct_strings(n_train + n_test, alphabet, min_len, max_len, random.Random(seed),
                              counts="n_train + n_test",
                              hint="lengthen the sequences or enlarge the alphabet")
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
