"""The ``check`` cells of an exercise notebook: public tests and feedback, never a score.

``checker()`` loads one exercise set from the tests folder (``$ATTNLAB_TESTS``,
default the bundles shipped in :mod:`attnlab.grading`) and returns the ``check``
function a notebook calls.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["checker"]


def _tests_folder() -> Path:
    custom = os.environ.get("ATTNLAB_TESTS")
    return Path(custom) if custom else Path(__file__).parent / "bundles"


def checker(set_name: str) -> Callable[[str], None]:
    """A ``check(question)`` function for one exercise set.

    ``check("q1")`` runs question q1's public tests on the names defined in
    the notebook and prints what is right or wrong. It is feedback only: the
    hidden tests count too, and the score comes from the grader.

    Args:
        set_name: the exercise set, e.g. ``"01_softmax"``: a folder of the tests
            folder (``$ATTNLAB_TESTS`` when set, else the bundles of this package).

    Returns:
        ``check(question)``, which reads the answer from its caller's globals and
        prints the feedback (nothing while ``ATTNLAB_GRADING=1``).

    Example:
        >>> check = checker("01_softmax")
        >>> def stable_softmax(x, dim=-1):
        ...     e = (x - x.amax(dim=dim, keepdim=True)).exp()
        ...     return e / e.sum(dim=dim, keepdim=True)
        >>> check("q1")
        q1: passed 3 public tests. Hidden tests also count toward your score.
    """
    from attnlab.grading.spec import load_set

    exercise_set = load_set(_tests_folder() / set_name)

    def check(name: str) -> None:
        if os.environ.get("ATTNLAB_GRADING") == "1":
            return  # while grading, checks are not run
        from attnlab.grading.compare import CallResult, score_question

        q = exercise_set.question(name)
        frame = inspect.currentframe()
        namespace: dict[str, Any] = frame.f_back.f_globals if frame and frame.f_back else {}
        if q.variable is not None:
            value = namespace.get(q.variable, NotImplemented)
            if value is NotImplemented:
                got = [CallResult(error=f"NameError: {q.variable!r} is not defined")]
            elif value is Ellipsis:
                got = [CallResult(error=f"{q.variable} is still `...`: replace it with your "
                                        "answer")]
            else:
                got = [CallResult(value=value)]
        else:
            from attnlab.grading.compare import call_case

            fn = namespace.get(q.function or "")
            public = [c for c, hidden in q.cases if not hidden]
            if not callable(fn):
                got = [CallResult(error=f"NameError: no function {q.function!r} is defined")
                       for _ in public]
            else:
                got = [call_case(fn, c) for c in public]
            if callable(fn) and q.forbidden:
                from attnlab.grading.compare import forbidden_feedback
                from attnlab.grading.runner import forbidden_calls

                used = forbidden_calls(fn, list(q.forbidden))
                if used:
                    print(f"{name}: not yet. {forbidden_feedback(q, used)}")
                    return
        result = score_question(q, got, only_public=True)
        n = len(got)
        if result.feedback == "correct":
            print(f"{name}: passed {n} public test{'s' * (n != 1)}. "
                  "Hidden tests also count toward your score.")
        else:
            print(f"{name}: not yet. {result.feedback}\n"
                  "(Hidden tests also count toward your score.)")

    return check
