"""How an exercise set's tests are written: questions, cases and named misconceptions.

A set's tests are Python code in the ``# TESTS`` cells of its source notebook.
They run only in the grader's trusted process, never beside a student's code.
Each test cell calls :func:`question` once::

    question(
        "q1", points=2, function="stable_softmax",
        reference=REFERENCE,                    # trusted code defining the function
        public=[case(np.array([1.0, 2.0, 3.0]))],
        hidden=[case(np.array([1000.0, 1000.0]), note="very large scores")],
        misconceptions=[
            misconception("you subtracted nothing: exp overflows at large scores",
                          code="def stable_softmax(x, dim=-1): ..."),
        ],
    )

A *function* question calls the student's function on every case and compares
the result with the reference's. A *value* question (``variable=...``) reads
one name from the student's notebook and compares it with ``expected``. A
misconception is wrong code (or a wrong value) whose output the grader
computes for the same inputs: when the student's output matches it, the
feedback names the mistake. :func:`edited` writes such code as a change of the
reference (``edited(REFERENCE, ("dim=-1", "dim=0"))``), and fails loudly when the
reference no longer contains the text it changes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Case",
    "Model",
    "Misconception",
    "Question",
    "ExerciseSet",
    "case",
    "misconception",
    "question",
    "load_set",
    "collect",
    "define",
    "edited",
    "DEFAULT_CAP",
]


@dataclass(frozen=True)
class Model:
    """An object built in both processes from trusted code: ``factory(**kwargs)`` after seeding.

    Use it as an argument of a case when a question's function takes a model
    (e.g. greedy decoding). ``factory`` is a dotted path such as
    ``"attnlab.models.GPT"``; nested ``Model`` values in ``kwargs`` are built first.
    """

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class Case:
    """One call of the student's function: positional and keyword arguments."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    note: str = ""  # how the feedback describes this input, e.g. "scores of 1000"


DEFAULT_CAP = 0.5  # a submission that matches a misconception earns at most this share


@dataclass(frozen=True)
class Misconception:
    """A named mistake: wrong code defining the question's function, or a wrong value.

    A submission whose results match it earns at most ``cap`` of the question's
    points (default ``DEFAULT_CAP``, 0.5), whatever share of the cases it passes:
    proportional credit must not pay for a conceptual error. Another cap needs its
    ``reason`` written beside it.
    """

    message: str  # student-facing: "you applied the mask after the softmax"
    code: str | None = None  # defines the function the wrong way (function questions)
    value: Any = None  # the wrong value (value questions)
    cap: float = DEFAULT_CAP
    reason: str = ""  # why this misconception has another cap


@dataclass
class Question:
    """One graded question of a set."""

    name: str
    points: float
    function: str | None = None  # the name of the student's function
    variable: str | None = None  # or the name of the student's value
    reference: str | None = None  # trusted code that defines ``function``
    expected: Any = None  # the right value of ``variable``
    public: list[Case] = field(default_factory=list)
    hidden: list[Case] = field(default_factory=list)
    misconceptions: list[Misconception] = field(default_factory=list)
    atol: float = 1e-5
    rtol: float = 1e-4
    hint: str = ""  # said when the answer is wrong and no misconception matches
    # calls the student's function must not make (the question is to write them), as
    # dotted names: "torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax"
    forbidden: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.function is None) == (self.variable is None):
            raise ValueError(f"question {self.name!r}: give exactly one of function= or variable=")
        if self.function is not None and self.reference is None:
            raise ValueError(f"question {self.name!r}: a function question needs reference= code")
        if self.function is not None and not (self.public or self.hidden):
            raise ValueError(f"question {self.name!r}: a function question needs test cases")
        if self.points <= 0:
            raise ValueError(f"question {self.name!r}: points must be positive")
        self.forbidden = tuple(self.forbidden)
        if self.forbidden and self.function is None:
            raise ValueError(f"question {self.name!r}: forbidden= needs a function question")
        for name in self.forbidden:
            if not isinstance(name, str) or "." not in name:
                raise ValueError(f"question {self.name!r}: forbidden calls are dotted names "
                                 f"such as 'torch.softmax', got {name!r}")

    @property
    def cases(self) -> list[tuple[Case, bool]]:
        """Every case with whether it is hidden; public ones first."""
        return [(c, False) for c in self.public] + [(c, True) for c in self.hidden]


@dataclass
class ExerciseSet:
    """A set's questions, as loaded from its tests bundle."""

    name: str
    title: str
    questions: list[Question]
    path: Path | None = None

    @property
    def max_score(self) -> float:
        return float(sum(q.points for q in self.questions))

    def question(self, name: str) -> Question:
        for q in self.questions:
            if q.name == name:
                return q
        raise KeyError(f"set {self.name!r} has no question {name!r}; it has "
                       f"{[q.name for q in self.questions]}")


def case(*args: Any, note: str = "", **kwargs: Any) -> Case:
    """A test case: the arguments of one call."""
    return Case(args=args, kwargs=kwargs, note=note)


def misconception(message: str, *, code: str | None = None, value: Any = None,
                  cap: float = DEFAULT_CAP, reason: str = "") -> Misconception:
    """A named mistake, given as wrong code or a wrong value.

    Args:
        message: what the student is told.
        code: wrong code defining the question's function (function questions).
        value: the wrong value (value questions).
        cap: the largest share of the question's points a matching submission earns.
        reason: why, when ``cap`` is not the default of 0.5.
    """
    if (code is None) == (value is None):
        raise ValueError(f"misconception {message!r}: give exactly one of code= or value=")
    if not 0 <= cap <= 1:
        raise ValueError(f"misconception {message!r}: cap must be between 0 and 1")
    if cap != DEFAULT_CAP and not reason.strip():
        raise ValueError(f"misconception {message!r}: a cap other than {DEFAULT_CAP} needs "
                         "its reason= written beside it")
    return Misconception(message=message, code=code, value=value, cap=cap, reason=reason)


_COLLECTING: list[Question] | None = None
_LOCK = threading.Lock()


def edited(code: str, *changes: tuple[str, str]) -> str:
    """``code`` with each ``(old, new)`` replaced: a misconception written as a change.

    Raises:
        ValueError: when an ``old`` text is not in the code (the reference was edited
            and the misconception no longer says what it meant to).

    Example:
        >>> edited("y = x + 1", ("+ 1", "- 1"), ("y", "z"))
        'z = x - 1'
    """
    for old, new in changes:
        if old not in code:
            raise ValueError(f"edited(): {old!r} is not in the code")
        code = code.replace(old, new)
    return code


def question(name: str, points: float, **kwargs: Any) -> Question:
    """Declare a question (called from a set's ``# TESTS`` cells)."""
    q = Question(name=name, points=points, **kwargs)
    if _COLLECTING is not None:
        if any(other.name == name for other in _COLLECTING):
            raise ValueError(f"question {name!r} is declared twice")
        _COLLECTING.append(q)
    return q


def define(code: str, name: str) -> Callable[..., Any]:
    """Execute trusted ``code`` in a fresh namespace and return its ``name``."""
    namespace: dict[str, Any] = {}
    exec(compile(code, f"<{name}>", "exec"), namespace)  # noqa: S102 - trusted test code
    if name not in namespace or not callable(namespace[name]):
        raise ValueError(f"the code does not define a function {name!r}")
    return namespace[name]


def collect(code: str, filename: str) -> list[Question]:
    """Run trusted tests ``code`` and return the questions it declares, in order."""
    global _COLLECTING
    with _LOCK:  # one collection at a time: the grader loads sets from several threads
        _COLLECTING = []
        try:
            exec(compile(code, filename, "exec"), {"__name__": "attnlab_tests"})  # noqa: S102
            return _COLLECTING
        finally:
            _COLLECTING = None


def load_set(bundle: str | Path) -> ExerciseSet:
    """Load a tests bundle: a folder with ``set.json`` and ``tests.py``.

    Raises:
        FileNotFoundError: the folder or one of its files is missing.
        ValueError: the bundle is malformed.
    """
    bundle = Path(bundle)
    meta_path, tests_path = bundle / "set.json", bundle / "tests.py"
    for p in (meta_path, tests_path):
        if not p.is_file():
            raise FileNotFoundError(f"tests bundle {bundle} has no {p.name}")
    meta = json.loads(meta_path.read_text())
    questions = collect(tests_path.read_text(encoding="utf-8"), str(tests_path))
    names = [q.name for q in questions]
    if names != meta["questions"]:
        raise ValueError(f"bundle {bundle}: set.json lists {meta['questions']} but tests.py "
                         f"declares {names}")
    return ExerciseSet(name=meta["name"], title=meta.get("title", meta["name"]),
                       questions=questions, path=bundle)
