"""Tests of the exercise set '01_softmax', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex01-05)
# TESTS
SOFTMAX = """
import torch
def stable_softmax(x, dim=-1):
    e = torch.exp(x - x.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)
"""
g = torch.Generator().manual_seed(1)
question(
    "q1", points=2, function="stable_softmax", reference=SOFTMAX,
    forbidden=("torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax",
               "attnlab.functional.softmax"),
    public=[
        case(torch.tensor([1.0, 2.0, 3.0]), note="scores [1, 2, 3]"),
        case(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), note="a (2, 3) batch of rows"),
        case(torch.tensor([[100.0, 99.0, 101.0], [-100.0, -101.0, -99.0]]),
             note="a row of scores near 100 (e^100 overflows float32) and one near -100"),
    ],
    hidden=[
        case(torch.tensor([1000.0, 999.0, 1000.0]), note="scores near 1000"),
        case(torch.randn(2, 3, 4, generator=g), dim=1, note="a 3-D tensor along dim=1"),
        case(torch.tensor([[-1000.0, -999.0], [1000.0, 0.0]]),
             note="rows of very different sizes"),
        case(torch.randn(5, 7, generator=g) * 100, note="large random scores"),
    ],
    misconceptions=[
        misconception(
            "You did not subtract the maximum: e^x overflows to inf for large scores, "
            "and inf / inf is NaN",
            code="import torch\ndef stable_softmax(x, dim=-1):\n"
                 "    e = torch.exp(x)\n    return e / e.sum(dim=dim, keepdim=True)"),
        misconception(
            "You took the softmax over the wrong axis: the weights along `dim` must sum to 1",
            code="import torch\ndef stable_softmax(x, dim=-1):\n"
                 "    e = torch.exp(x - x.amax(dim=0, keepdim=True))\n"
                 "    return e / e.sum(dim=0, keepdim=True)"),
        misconception(
            "You subtracted the maximum of the whole tensor, not of each slice along `dim`: "
            "a row far below it underflows to 0 / 0",
            code="import torch\ndef stable_softmax(x, dim=-1):\n"
                 "    e = torch.exp(x - x.max())\n    return e / e.sum(dim=dim, keepdim=True)"),
    ],
    hint="Subtract x.amax(dim=dim, keepdim=True), exponentiate, divide by the sum along dim",
)

# --- cell 10 (ex01-09)
# TESTS
MASKED = """
import torch
def masked_softmax(scores, mask):
    x = scores.masked_fill(~mask, float("-inf"))
    m = x.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(x - m)
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))
"""
g = torch.Generator().manual_seed(2)
question(
    "q2", points=2, function="masked_softmax", reference=MASKED,
    public=[
        case(torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]),
             torch.tensor([[True, True, False], [False, True, True]]),
             note="two rows with one masked key each"),
        case(torch.tensor([[2.0, 0.5, 1.0], [0.0, 1.0, 2.0]]),
             torch.tensor([[False, True, True], [False, False, False]]),
             note="a second row in which nothing may be attended (it must give zeros)"),
    ],
    hidden=[
        case(torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]),
             torch.tensor([[True, False, True], [False, False, False]]),
             note="a row in which nothing may be attended"),
        case(torch.randn(2, 4, 5, generator=g), torch.rand(4, 5, generator=g) > 0.4,
             note="a batch with a shared (T, S) mask"),
        case(torch.tensor([[500.0, 1000.0, 0.0]]), torch.tensor([[True, False, True]]),
             note="large scores"),
    ],
    misconceptions=[
        misconception(
            "You applied the mask after the softmax: masked positions must be removed "
            "before normalising, so that the allowed weights sum to 1",
            code="import torch\ndef masked_softmax(scores, mask):\n"
                 "    return torch.softmax(scores, dim=-1) * mask"),
        misconception(
            "Your mask convention is inverted: True means the key MAY be attended",
            code="import torch\ndef masked_softmax(scores, mask):\n"
                 "    w = torch.softmax(scores.masked_fill(mask, float('-inf')), dim=-1)\n"
                 "    return torch.nan_to_num(w, nan=0.0)"),
        misconception(
            "A row where nothing may be attended gave NaN (a softmax of all -inf): it must "
            "give zeros",
            code="import torch\ndef masked_softmax(scores, mask):\n"
                 "    return torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=-1)"),
        misconception(
            "Filling masked scores with -1e9 makes a row where nothing may be attended "
            "uniform: it must give zeros",
            code="import torch\ndef masked_softmax(scores, mask):\n"
                 "    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)"),
    ],
)

# --- cell 14 (ex01-13)
# TESTS
question(
    "q3", points=1, variable="q3_largest_position", expected=5,
    misconceptions=[
        misconception("Position 3 is the article's conclusion, and it is wrong: the softmax "
                      "keeps the order of the scores", value=3),
        misconception("Position 4 has the largest of the article's printed weights, but "
                      "those numbers are wrong (they sum to 1.04)", value=4),
    ],
    hint="The softmax keeps the order of the scores",
)

# --- cell 18 (ex01-17)
# TESTS
TEMPERATURE = """
import torch
def softmax_with_temperature(x, tau):
    return torch.softmax(x / tau, dim=-1)
"""
question(
    "q4", points=1, function="softmax_with_temperature", reference=TEMPERATURE,
    public=[case(torch.tensor([0.06, 0.14, 0.24, 0.36, 0.5]), 0.1, note="τ = 0.1")],
    hidden=[case(torch.tensor([0.06, 0.14, 0.24, 0.36, 0.5]), 10.0, note="τ = 10"),
            case(torch.tensor([[1.0, 5.0], [2.0, -2.0]]), 0.5, note="a batch at τ = 0.5")],
    misconceptions=[
        misconception("You multiplied the scores by τ: divide by it, so that a small τ "
                      "sharpens the weights",
                      code="import torch\ndef softmax_with_temperature(x, tau):\n"
                           "    return torch.softmax(x * tau, dim=-1)"),
    ],
)

# --- cell 22 (ex01-21)
# TESTS
LSE = """
import torch
def logsumexp(x, dim=-1):
    return torch.logsumexp(x, dim=dim)
"""
g = torch.Generator().manual_seed(5)
question(
    "q5", points=2, function="logsumexp", reference=LSE,
    public=[case(torch.tensor([0.06, 0.14, 0.24, 0.36, 0.5]), note="the article's scores"),
            case(torch.tensor([200.0, 199.0, 201.0]),
                 note="scores near 200 (e^200 overflows float32)")],
    hidden=[case(torch.tensor([1000.0, 1000.0]), note="scores of 1000"),
            case(torch.randn(3, 4, generator=g) * 50, dim=0, note="a matrix along dim=0"),
            case(torch.tensor([[-1000.0, -1001.0]]), note="very negative scores")],
    misconceptions=[
        misconception("log(sum(exp(x))) overflows for large scores: take the maximum out first",
                      code="import torch\ndef logsumexp(x, dim=-1):\n"
                           "    return torch.log(torch.exp(x).sum(dim=dim))"),
        misconception("You dropped the maximum: log Σ e^(x - m) needs m added back",
                      code="import torch\ndef logsumexp(x, dim=-1):\n"
                           "    m = x.amax(dim=dim, keepdim=True)\n"
                           "    return torch.log(torch.exp(x - m).sum(dim=dim))"),
    ],
)

# --- cell 26 (ex01-25)
# TESTS
def _smallest_tau(within=0.01):
    s = torch.tensor([0.06, 0.14, 0.24, 0.36, 0.5], dtype=torch.float64)
    for tau in torch.arange(0.01, 5.0, 0.01, dtype=torch.float64):
        if torch.all((torch.softmax(s / tau, -1) - 0.2).abs() <= within):
            return float(tau)


question(
    "q6", points=2, variable="q6_smallest_tau", expected=_smallest_tau(), atol=0.006, rtol=0.0,
    misconceptions=[
        misconception("With the scores multiplied by τ instead of divided, the first τ of the "
                      "grid already gives near-uniform weights: divide by τ", value=0.01),
    ],
    hint="Scan the grid upwards and stop at the first τ where every |w - 0.2| <= 0.01",
)
