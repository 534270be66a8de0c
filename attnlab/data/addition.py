"""Addition as a language for a decoder-only model: ``"123+45="`` then ``"168"``."""

from __future__ import annotations

import random

from attnlab.data.tasks import LanguageTask, TextPairs, _check_sizes
from attnlab.data.tokenizer import CharTokenizer

__all__ = ["addition_task"]


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
