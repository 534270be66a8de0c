"""Tests of the exercise set '02_attention_as_lookup', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex02-05)
# TESTS
def edited(reference, old, new):
    # A misconception's code: the reference with one line changed.
    assert old in reference, old
    return reference.replace(old, new)


SCORES = """
import torch
def gaussian_scores(queries, keys, h):
    diff = queries[:, None] - keys[None, :]
    return -(diff ** 2) / (2 * h ** 2)
"""
SCORES_REF = """
from attnlab.pooling import gaussian_kernel_scores
def gaussian_scores(queries, keys, h):
    return gaussian_kernel_scores(queries[:, None], keys[:, None], h)   # (T, 1), (S, 1) -> (T, S)
"""
g = torch.Generator().manual_seed(21)
question(
    "q1", points=2, function="gaussian_scores", reference=SCORES_REF,
    public=[
        case(torch.tensor([0.0, 1.0, 2.5]), torch.tensor([0.0, 1.0, 2.0, 4.0]), 0.7,
             note="3 queries, 4 keys, h = 0.7"),
    ],
    hidden=[
        case(torch.randn(5, generator=g, dtype=torch.float64),
             torch.randn(2, generator=g, dtype=torch.float64), 1.5,
             note="5 queries, 2 keys, h = 1.5"),
        case(torch.tensor([0.3, 2.0]), torch.tensor([0.0, 0.25, 3.0]), 0.05,
             note="a narrow kernel (h = 0.05): very negative scores"),
        case(5 * torch.rand(4, generator=g), 5 * torch.rand(6, generator=g), 3.0,
             note="a wide kernel (h = 3)"),
    ],
    misconceptions=[
        misconception(
            "You forgot to square the difference: the score is -(q_i - k_j)^2 / (2h^2), so a "
            "key at the same distance on either side of the query scores the same",
            code=edited(SCORES, "-(diff ** 2)", "-diff")),
        misconception(
            "You left out the 2: divide the squared distance by 2h^2, not by h^2",
            code=edited(SCORES, "(2 * h ** 2)", "(h ** 2)")),
        misconception(
            "You divided by 2h instead of 2h^2: the width enters squared",
            code=edited(SCORES, "(2 * h ** 2)", "(2 * h)")),
        misconception(
            "Your scores have the wrong sign, so the farthest key would win: the score is "
            "MINUS the squared distance, 0 for a key equal to the query and negative otherwise",
            code=edited(SCORES, "-(diff ** 2)", "(diff ** 2)")),
        misconception(
            "Your scores are (S, T): the rows must be the queries and the columns the keys "
            "(queries[:, None] - keys[None, :])",
            code=edited(SCORES, "queries[:, None] - keys[None, :]",
                       "keys[:, None] - queries[None, :]")),
    ],
    hint="Broadcast queries[:, None] against keys[None, :], square, divide by 2 * h**2, negate",
)

# --- cell 10 (ex02-09)
# TESTS
NW = """
import torch
def nw_predict(queries, keys, values, h):
    scores = -((queries[:, None] - keys[None, :]) ** 2) / (2 * h ** 2)
    weights = torch.softmax(scores, dim=-1)
    return weights @ values
"""
NW_REF = """
from attnlab.pooling import nadaraya_watson
def nw_predict(queries, keys, values, h):
    return nadaraya_watson(queries[:, None], keys[:, None], values[:, None], h)[:, 0]   # (T,)
"""
g = torch.Generator().manual_seed(22)
HOURS = torch.tensor([6.0, 9.0, 12.0, 15.0, 18.0], dtype=torch.float64)
TEMPS = torch.tensor([11.0, 15.0, 21.0, 23.0, 18.0], dtype=torch.float64)
question(
    "q2", points=2, function="nw_predict", reference=NW_REF,
    public=[
        case(torch.tensor([7.0, 13.0, 16.5], dtype=torch.float64), HOURS, TEMPS, 1.5,
             note="the chapter's readings, 3 queries, h = 1.5"),
        case(torch.tensor([1.4, 3.3]), torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0]),
             torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0]), 0.02,
             note="a narrow kernel (h = 0.02), where every e^score underflows to 0: the "
                  "nearest key must get all the weight"),
    ],
    hidden=[
        case(5 * torch.rand(7, generator=g, dtype=torch.float64),
             5 * torch.rand(20, generator=g, dtype=torch.float64),
             torch.randn(20, generator=g, dtype=torch.float64), 0.3,
             note="7 queries, 20 random keys, h = 0.3"),
        case(torch.tensor([0.4, 2.6, 1.1]), torch.tensor([0.0, 1.0, 2.0, 3.0]),
             torch.tensor([5.0, -1.0, 2.0, 7.0]), 0.01,
             note="a narrow kernel (h = 0.01), where every e^score underflows to 0"),
        case(torch.tensor([1.0, 14.0], dtype=torch.float64), HOURS, TEMPS, 1e4,
             note="a very wide kernel (h = 10000)"),
        case(torch.tensor([2.0]), torch.tensor([0.0, 1.0, 3.0, 4.0, 9.0]),
             torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), 1.2, note="a single query"),
    ],
    misconceptions=[
        misconception(
            "Your weights sum to 1 over the queries (dim 0): each query's weights must sum to "
            "1 over the keys, the last dim",
            code=edited(NW, "dim=-1", "dim=0")),
        misconception(
            "You did not normalise the kernel weights: a prediction is a weighted AVERAGE, so "
            "divide e^score by its sum over the keys (that is the softmax)",
            code=edited(NW, "torch.softmax(scores, dim=-1)", "torch.exp(scores)")),
        misconception(
            "Your scores have the wrong sign, so the farthest keys get the largest weights: "
            "the score is minus the squared distance",
            code=edited(NW, "-((queries", "((queries")),
        misconception(
            "For a narrow kernel every e^score underflows to 0, and 0 / 0 is NaN: use a stable "
            "softmax (torch.softmax subtracts the largest score first), which gives the "
            "nearest key all the weight",
            code=edited(NW, "torch.softmax(scores, dim=-1)",
                       "torch.exp(scores) / torch.exp(scores).sum(dim=-1, keepdim=True)")),
    ],
    hint="Scores as in question 1, torch.softmax over the keys (dim=-1), then weights @ values",
)

# --- cell 14 (ex02-13)
# TESTS
LOO = """
import torch
def loo_predict(x, y, h):
    S = x.shape[0]
    scores = -((x[:, None] - x[None, :]) ** 2) / (2 * h ** 2)
    may_attend = ~torch.eye(S, dtype=torch.bool)
    weights = torch.softmax(scores.masked_fill(~may_attend, float("-inf")), dim=-1)
    return weights @ y
"""
LOO_REF = """
from attnlab.pooling import leave_one_out_mask, nadaraya_watson
def loo_predict(x, y, h):
    mask = leave_one_out_mask(x.shape[0])                                  # (S, S)
    return nadaraya_watson(x[:, None], x[:, None], y[:, None], h, mask)[:, 0]   # (S,)
"""
g = torch.Generator().manual_seed(23)
question(
    "q3", points=2, function="loo_predict", reference=LOO_REF,
    public=[
        case(torch.tensor([0.0, 1.0, 2.0, 4.0, 5.0]), torch.tensor([1.0, 3.0, 2.0, 0.0, 4.0]),
             0.8, note="5 points, h = 0.8"),
    ],
    hidden=[
        case(5 * torch.rand(30, generator=g, dtype=torch.float64),
             torch.randn(30, generator=g, dtype=torch.float64), 0.01,
             note="30 points and a narrow kernel (h = 0.01)"),
        case(torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 5.0]), 0.5,
             note="two points: each is predicted by the other"),
        case(torch.tensor([0.5, 0.5, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0, 4.0]), 0.4,
             note="two points with the same x"),
        case(5 * torch.rand(12, generator=g), torch.randn(12, generator=g), 2.0,
             note="12 points, h = 2"),
    ],
    misconceptions=[
        misconception(
            "Each point attended to itself: mask the diagonal, so that point i is predicted "
            "from the others only (filling the masked scores with 0 instead of -inf changes "
            "nothing: 0 is already a point's score against itself, the largest there is)",
            code=edited(LOO, 'scores.masked_fill(~may_attend, float("-inf"))', "scores")),
        misconception(
            "Your mask is inverted: each point attended ONLY to itself, so every prediction "
            "is its own target. True means may attend: ~torch.eye(S, dtype=torch.bool)",
            code=edited(LOO, "~may_attend", "may_attend")),
        misconception(
            "You zeroed the diagonal after the softmax, so the other weights no longer sum to "
            "1: give the masked scores -inf BEFORE the softmax",
            code=edited(LOO, 'torch.softmax(scores.masked_fill(~may_attend, float("-inf")), '
                            'dim=-1)',
                       "torch.softmax(scores, dim=-1) * may_attend")),
    ],
    hint="scores.masked_fill(torch.eye(S, dtype=torch.bool), float('-inf')), then the softmax",
)

# --- cell 18 (ex02-17)
# TESTS
question(
    "q4", points=1, variable="q4_wide", expected=float(TEMPS.mean()),
    misconceptions=[
        misconception("As h grows every score tends to 0 and every weight to 1/S, not to 1: "
                      "the prediction is the mean of the values, not their sum",
                      value=float(TEMPS.sum())),
        misconception("23 is the limit h -> 0 (all weight on the nearest key, 15): a wide "
                      "kernel gives every key the same weight", value=23.0),
        misconception("The weights do not vanish as h grows: they always sum to 1, and they "
                      "tend to 1/S each", value=0.0),
        misconception("12 is the mean of the keys (the hours): the prediction averages the "
                      "values (the temperatures)", value=float(HOURS.mean())),
    ],
    hint="As h grows, what do all the scores tend to, and so what do the softmax weights become?",
)

# --- cell 21 (ex02-20)
# TESTS
question(
    "q5", points=1, variable="q5_narrow", expected=23.0,
    misconceptions=[
        misconception("A dict would fail here (no key equals 14), but the softmax weights "
                      "always sum to 1: as h -> 0 all of the weight goes to the nearest key",
                      value=0.0),
        misconception("17.6, the mean, is the limit h -> infinity: a narrow kernel keeps only "
                      "the nearest key", value=float(TEMPS.mean())),
        misconception("Attention does not interpolate between the two neighbours as h -> 0: "
                      "the nearest key (15, one hour away) takes all the weight", value=22.0),
        misconception("The nearest key to 14 is 15 (one hour away), not 12 (two hours away)",
                      value=21.0),
    ],
    hint="As h -> 0 the softmax becomes an arg-max of the scores: which key scores highest?",
)

# --- cell 26 (ex02-25)
# TESTS
# The data cell, as the student has it:
def f(x: torch.Tensor) -> torch.Tensor:
    # The function the data come from, as in the chapter.
    return 2 * torch.sin(x) + torch.sin(3 * x) * torch.exp(-x / 2)


gen = torch.Generator().manual_seed(1)
x_train = 5 * torch.rand(60, generator=gen, dtype=torch.float64)                   # (S,) keys
y_train = f(x_train) + 0.3 * torch.randn(60, generator=gen, dtype=torch.float64)   # (S,) values
x_val = 5 * torch.rand(200, generator=gen, dtype=torch.float64)                    # (T,) queries
y_val = f(x_val) + 0.3 * torch.randn(200, generator=gen, dtype=torch.float64)      # (T,) targets
widths = [0.02, 0.05, 0.1, 0.2, 0.5, 1.0]


def _mse_by_width(queries, targets):
    # The error of Gaussian-kernel pooling (keys x_train, values y_train) for each width.
    d2 = (queries[:, None] - x_train[None, :]) ** 2                        # (T, S)
    return [float(((torch.softmax(-d2 / (2 * h**2), dim=-1) @ y_train - targets) ** 2).mean())
            for h in widths]


_val = _mse_by_width(x_val, y_val)
_train = _mse_by_width(x_train, y_train)
_best = widths[_val.index(min(_val))]
assert sorted(_val)[1] > 1.05 * min(_val)   # a clear winner, not a near tie
question(
    "q6", points=2, variable="q6_best_width", expected=_best,
    misconceptions=[
        misconception("You measured the error on the training points, where each point finds "
                      "itself as a key: there the narrowest width always wins. Use x_val as "
                      "the queries and y_val as the targets",
                      value=widths[_train.index(min(_train))]),
        misconception("You stored the position of the best width in the list: store the width "
                      "itself, widths[i]", value=_val.index(min(_val))),
        misconception("You picked the width with the HIGHEST validation error: take the lowest",
                      value=widths[_val.index(max(_val))]),
    ],
    hint="One validation MSE per width: queries x_val, keys x_train, values y_train, "
         "then the width whose MSE is smallest",
)
