"""Compare a student's outputs with the reference, and name the mistake when one is known.

This module runs in the grader's trusted process (and, for feedback only, in a
student's notebook). It receives the student's outputs as plain data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attnlab.grading.codec import decode, encode
from attnlab.grading.spec import Case, Misconception, Question, define

__all__ = ["CallResult", "QuestionResult", "call_case", "differs", "score_question",
           "reference_outputs", "forbidden_feedback"]


@dataclass
class CallResult:
    """What one call of the student's function (or one read of a value) gave."""

    value: Any = None
    error: str | None = None  # "ValueError: ..." when it raised


@dataclass
class QuestionResult:
    """The score and the feedback of one question."""

    name: str
    score: float
    max_score: float
    feedback: str
    passed: list[bool] = field(default_factory=list)  # per case (public first)


def _is_array(x: Any) -> bool:
    import torch

    return isinstance(x, (np.ndarray, torch.Tensor))


def _as_array(x: Any) -> np.ndarray:
    import torch

    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _shape(x: Any) -> str:
    return "(" + ", ".join(str(s) for s in _as_array(x).shape) + ")"


def differs(got: Any, want: Any, atol: float, rtol: float) -> str | None:
    """None when ``got`` equals ``want`` within tolerance, else what is different."""
    if got is Ellipsis and want is not Ellipsis:
        return "is `...`: replace it with your code"
    if got is None and want is not None:
        return "is None: is the `...` still there, or a `return` missing?"
    if _is_array(want):
        if not _is_array(got) and not isinstance(got, (int, float, list, tuple)):
            return f"returned a {type(got).__name__}, expected an array of shape {_shape(want)}"
        g, w = _as_array(got), _as_array(want)
        if g.shape != w.shape:
            return f"has shape {_shape(g)}, expected {_shape(w)}"
        if g.dtype == object:
            return "is not an array of numbers"
        if w.dtype == bool or g.dtype == bool:
            return None if np.array_equal(g, w) else "has the wrong True/False entries"
        g, w = g.astype(np.float64), w.astype(np.float64)
        if np.isnan(g).any() and not np.isnan(w).any():
            return "contains NaN"
        if np.isinf(g).any() and not np.isinf(w).any():
            return "contains infinite values"
        if not np.allclose(g, w, atol=atol, rtol=rtol, equal_nan=True):
            finite = np.isfinite(g) & np.isfinite(w)
            if np.isnan(g).sum() != np.isnan(w).sum() or not finite.any():
                return "has NaN in other places than expected"
            gap = float(np.abs(g - w)[finite].max())
            return f"has wrong values (largest difference {gap:.3g})"
        return None
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"returned a {type(got).__name__}, expected {len(want)} values"
        if len(got) != len(want):
            return f"returned {len(got)} values, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            d = differs(g, w, atol, rtol)
            if d:
                return f"value {i + 1} {d}" if len(want) > 1 else d
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"expected a dict with keys {sorted(want)}"
        for k in want:
            d = differs(got[k], want[k], atol, rtol)
            if d:
                return f"[{k!r}] {d}"
        return None
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return None if got == want and type(got) is type(want) else f"is {got!r}"
    if isinstance(want, (int, float)):
        if _is_array(got) and _as_array(got).size == 1:
            got = _as_array(got).item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"is {got!r}, expected a number"
        if math.isnan(got):
            return "is NaN"
        return None if math.isclose(got, want, rel_tol=rtol, abs_tol=atol) else f"is {got!r}"
    return None if got == want else f"is {got!r}"


def call_case(fn: Any, case: Case) -> CallResult:
    arrays: dict[str, np.ndarray] = {}
    data = encode((case.args, case.kwargs), arrays)
    args, kwargs = decode(data, arrays)  # fresh copies: a mutating function changes nothing
    try:
        return CallResult(value=fn(*args, **kwargs))
    except Exception as err:  # noqa: BLE001 - reported as feedback
        return CallResult(error=f"{type(err).__name__}: {err}")


def reference_outputs(q: Question, code: str | None = None) -> list[CallResult]:
    """The outputs of trusted ``code`` (default: the reference) on every case of ``q``."""
    assert q.function is not None
    fn = define(code if code is not None else q.reference or "", q.function)
    return [call_case(fn, c) for c, _ in q.cases]


def _describe(case: Case, hidden: bool, index: int) -> str:
    if case.note:
        return case.note
    return "a hidden test" if hidden else f"public test {index + 1}"


def score_question(q: Question, got: list[CallResult], only_public: bool = False,
                   references: list[CallResult] | None = None) -> QuestionResult:
    """Score one question from the student's results (one per case, or one value).

    Args:
        q: the question.
        got: the student's results: one per case in ``q.cases`` order (only the
            public ones when ``only_public``), or a single result for a value
            question.
        only_public: score the public cases only (feedback in the notebook).
        references: precomputed reference outputs (else computed here).
    """
    if q.variable is not None:
        result = got[0] if got else CallResult(error=f"NameError: {q.variable!r} is not defined")
        if result.error:
            return QuestionResult(q.name, 0.0, q.points, _error_feedback(q, result.error), [False])
        problem = differs(result.value, q.expected, q.atol, q.rtol)
        if problem is None:
            return QuestionResult(q.name, float(q.points), q.points, "correct", [True])
        for m in q.misconceptions:
            if m.value is not None and differs(result.value, m.value, q.atol, q.rtol) is None:
                return QuestionResult(q.name, 0.0, q.points, m.message, [False])
        return QuestionResult(q.name, 0.0, q.points, _with_hint(f"{q.variable} {problem}", q),
                              [False])

    cases = [(c, h) for c, h in q.cases if not (only_public and h)]
    refs = references if references is not None else reference_outputs(q)
    refs = refs[: len(cases)]
    if len(got) != len(cases):
        raise ValueError(f"{q.name}: {len(got)} results for {len(cases)} cases")
    problems: list[tuple[int, str]] = []
    for i, ((case, hidden), result, ref) in enumerate(zip(cases, got, refs)):
        if ref.error:
            raise RuntimeError(f"{q.name}: the reference raised {ref.error} on {case}")
        if result.error:
            problems.append((i, f"{_describe(case, hidden, i)}: {q.function} raised "
                                f"{result.error}"))
            continue
        d = differs(result.value, ref.value, q.atol, q.rtol)
        if d:
            problems.append((i, f"for {_describe(case, hidden, i)}, the result {d}"))
    passed = [all(i != j for j, _ in problems) for i in range(len(cases))]
    score = round(float(q.points) * sum(passed) / len(cases), 2)
    if not problems:
        return QuestionResult(q.name, score, q.points, "correct", passed)
    feedback, matched = _diagnose(q, cases, got, problems)
    if matched is not None:
        score = min(score, round(float(q.points) * matched.cap, 2))
    return QuestionResult(q.name, score, q.points, feedback, passed)


def _diagnose(q: Question, cases: list[tuple[Case, bool]], got: list[CallResult],
              problems: list[tuple[int, str]]) -> tuple[str, Misconception | None]:
    """The feedback, and the misconception the results match (if one does)."""
    failing = [i for i, _ in problems]
    for m in q.misconceptions:
        if m.code is None:
            continue
        try:
            wrong = define(m.code, q.function or "")
        except Exception:  # noqa: BLE001 - a broken misconception never hides the feedback
            continue
        matches = True
        for i in failing:
            w = call_case(wrong, cases[i][0])
            g = got[i]
            if w.error or g.error:
                matches = bool(w.error and g.error
                               and w.error.split(":")[0] == g.error.split(":")[0])
            else:
                matches = differs(g.value, w.value, q.atol, q.rtol) is None
            if not matches:
                break
        if matches:
            return f"{m.message} ({problems[0][1]})", m
    return _with_hint(problems[0][1], q), None


def forbidden_feedback(q: Question, used: list[str]) -> str:
    """What a student is told who called what the question asks them to write."""
    calls = ", ".join(f"`{u}`" for u in used)
    return (f"{q.function} calls {calls}, which this question asks you not to use: write the "
            "computation yourself (0 points for this question)")


def _with_hint(text: str, q: Question) -> str:
    if not q.hint:
        return text
    return text + ("" if text.endswith((".", "?", "!")) else ".") + " " + q.hint


def _error_feedback(q: Question, error: str) -> str:
    return _with_hint(error, q)
