"""Dates written in many human formats, to translate into ISO ``2026-11-24``."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from attnlab.data.tasks import Seq2SeqTask, TextPairs, _check_sizes
from attnlab.data.tokenizer import CharTokenizer

__all__ = ["DATE_FORMATS", "format_date", "dates_task"]


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
    """Write ``date`` in one of the :data:`~attnlab.data.dates.DATE_FORMATS`, named by its example.

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


def dates_task(n_train: int = 20_000, n_test: int = 2_000, seed: int = 0) -> Seq2SeqTask:
    """Translate human-written dates into ISO format.

    Each example is a date between 1950 and 2049 written in one of
    :data:`~attnlab.data.dates.DATE_FORMATS`, chosen at random, and its ISO form ``YYYY-MM-DD``.
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
