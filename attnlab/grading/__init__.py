"""Graded exercises: a student's ``check`` cells, and the instructor's grader.

In an exercise notebook::

    from attnlab.grading import checker
    check = checker("01_softmax")
    ...
    check("q1")   # runs the public tests of question q1 and says what is wrong

The grade itself comes from ``attnlab grade`` (:mod:`attnlab.grading.grade`),
which runs each submission in a sandboxed process and compares its results in
another: nothing a notebook does changes how it is scored.
"""

from __future__ import annotations

from attnlab.grading.check import checker

__all__ = ["checker"]
