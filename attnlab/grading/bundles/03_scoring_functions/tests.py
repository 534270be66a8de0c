"""Tests of the exercise set '03_scoring_functions', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex03-05)
# TESTS
def edited(reference, old, new):
    # A misconception's code: the reference with one line changed.
    assert old in reference, old
    return reference.replace(old, new)


ATTN = """
import math
import torch
def attention(q, k, v, mask=None, causal=False):
    T, S = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = torch.ones(T, S, dtype=torch.bool)
    if causal:
        allowed = allowed & torch.ones(T, S, dtype=torch.bool).tril()
    if mask is not None:
        allowed = allowed & mask
    weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
    weights = torch.nan_to_num(weights, nan=0.0)
    return weights @ v, weights
"""
ATTN_REF = """
from attnlab.functional import attention as _attention
def attention(q, k, v, mask=None, causal=False):
    return _attention(q, k, v, mask, causal=causal, need_weights=True)   # (out, weights)
"""
from attnlab.masks import padding_mask

g = torch.Generator().manual_seed(31)


def _qkv(B, T, S, D, Dv, size=1.0, gen=None):
    gen = g if gen is None else gen
    return (size * torch.randn(B, T, D, generator=gen),
            size * torch.randn(B, S, D, generator=gen), torch.randn(B, S, Dv, generator=gen))


g_public = torch.Generator().manual_seed(32)   # the last public cases; g stays as it was


_left_padded = torch.tensor([[False, False, True, True, True], [True] * 5])[:, None]   # (B, 1, S)
question(
    "q1", points=3, function="attention", reference=ATTN_REF,
    forbidden=("torch.nn.functional.scaled_dot_product_attention",
               "attnlab.functional.attention"),
    public=[
        case(*_qkv(2, 3, 4, 8, 5), note="B = 2, T = 3, S = 4, no mask"),
        case(*_qkv(2, 3, 4, 8, 5),
             torch.tensor([[True, False, True, True], [True, True, False, False],
                           [False, True, True, False]]),
             note="a (T, S) mask"),
        case(*_qkv(2, 4, 4, 4, 3), causal=True, note="causal, T = S = 4"),
        case(*_qkv(2, 4, 4, 8, 3, gen=g_public),
             torch.tensor([[True, False, True, True], [True, True, False, True],
                           [False, True, True, True], [True, True, True, False]]),
             causal=True, note="causal=True together with a (T, S) mask: a key must be "
                               "allowed by both"),
        case(*_qkv(1, 2, 3, 4, 2, gen=g_public),
             torch.tensor([[True, True, False], [False, False, False]]),
             note="a (T, S) mask whose last row allows no key: that query's weights and "
                  "output must be zeros"),
    ],
    hidden=[
        case(*_qkv(2, 3, 5, 6, 2),
             torch.tensor([[True, False, True, False, True], [False] * 5,
                           [False, True, True, True, False]]),
             note="a (T, S) mask whose second row allows no key"),
        case(*_qkv(2, 5, 5, 8, 4), _left_padded, causal=True,
             note="causal and a left-padding (B, 1, S) mask: the first queries of the "
                  "first sequence may attend nothing"),
        case(*_qkv(3, 2, 4, 8, 3), padding_mask([4, 0, 2], 4),
             note="a (B, 1, S) padding mask with an empty sequence"),
        case(*_qkv(2, 4, 6, 16, 3, size=10.0), torch.rand(2, 4, 6, generator=g) > 0.3,
             note="large scores and a (B, T, S) mask"),
        case(*_qkv(3, 6, 6, 4, 2), causal=True, note="causal, B = 3, T = S = 6"),
        case(*_qkv(1, 1, 6, 2, 4), note="one query, six keys"),
    ],
    misconceptions=[
        misconception(
            "You divided the scores by D instead of sqrt(D): the scale is 1 / math.sqrt(D)",
            code=edited(ATTN, "/ math.sqrt(q.shape[-1])", "/ q.shape[-1]")),
        misconception(
            "You did not scale the scores: divide q @ k^T by sqrt(D)",
            code=edited(ATTN, "/ math.sqrt(q.shape[-1])", "")),
        misconception(
            "You applied the mask after the softmax, so the allowed weights no longer sum to "
            "1: give the disallowed scores -inf BEFORE the softmax",
            code=edited(ATTN, 'torch.softmax(scores.masked_fill(~allowed, float("-inf")), '
                             'dim=-1)',
                       "torch.softmax(scores, dim=-1) * allowed")),
        misconception(
            "Your mask is inverted: True means the query MAY attend the key, so blank out the "
            "scores where the mask is False",
            code=edited(ATTN, "allowed & mask", "allowed & ~mask")),
        misconception(
            "Your causal mask lets query i see the keys j >= i, the future: keep the lower "
            "triangle (tril), keys j <= i",
            code=edited(ATTN, ".tril()", ".triu()")),
        misconception(
            "Your causal mask lets each query see one key too many, the next one: tril(1) "
            "keeps j <= i + 1; use tril() for j <= i",
            code=edited(ATTN, ".tril()", ".tril(1)")),
        misconception(
            "When both mask and causal are given you used only the mask: a key must be "
            "allowed by both (combine them with &)",
            code=edited(ATTN, "if causal:", "if causal and mask is None:")),
        misconception(
            "A query with no allowed key gave NaN (the softmax of a row of -inf is 0 / 0): "
            "its weights and output must be zeros",
            code=edited(ATTN, "    weights = torch.nan_to_num(weights, nan=0.0)\n", "")),
        misconception(
            "Filling disallowed scores with -1e9 makes a row with no allowed key uniform, so "
            "it attends to every key after all: use -inf and turn such rows into zeros",
            code=edited(ATTN, 'float("-inf")', "-1e9")),
    ],
    hint="Scores / sqrt(D); one bool 'allowed' tensor from the mask and the causal triangle; "
         "masked_fill(~allowed, -inf); softmax; zeros for rows with nothing allowed",
)

# --- cell 10 (ex03-09)
# TESTS
DECODER = """
import torch
def causal_padding_mask(lengths, T):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    n = torch.as_tensor(lengths)[:, None, None]
    return (j <= i) & (j < n)
"""
DECODER_REF = """
from attnlab.masks import causal_mask, padding_mask
def causal_padding_mask(lengths, T):
    return causal_mask(T) & padding_mask(lengths, T)   # (T, T) & (B, 1, T) -> (B, T, T)
"""
question(
    "q2", points=2, function="causal_padding_mask", reference=DECODER_REF,
    forbidden=("attnlab.masks.causal_mask", "attnlab.masks.padding_mask"),
    public=[case(torch.tensor([4, 2]), 4, note="lengths [4, 2], T = 4")],
    hidden=[
        case(torch.tensor([5, 3, 1]), 5, note="lengths [5, 3, 1], T = 5"),
        case(torch.tensor([0, 3]), 3, note="an empty sequence"),
        case(torch.tensor([6]), 6, note="one sequence without padding"),
        case(torch.tensor([2, 6, 4]), 6, note="lengths [2, 6, 4], T = 6"),
    ],
    misconceptions=[
        misconception(
            "You hid the padded QUERIES (rows): padding hides keys (columns), j < lengths[b]. "
            "A padded query still attends the real keys; the loss ignores its output",
            code=edited(DECODER, "(j < n)", "(i < n)")),
        misconception(
            "You combined the two conditions with `or`: a key must pass both, so use &",
            code=edited(DECODER, "(j <= i) & (j < n)", "(j <= i) | (j < n)")),
        misconception(
            "Your mask is inverted: True must mean MAY attend",
            code=edited(DECODER, "return (j <= i) & (j < n)", "return ~((j <= i) & (j < n))")),
        misconception(
            "Your causal part lets query i see the keys j >= i, the future: keep j <= i",
            code=edited(DECODER, "(j <= i)", "(j >= i)")),
        misconception(
            "Your causal part lets each query see the next key too: use j <= i, not j <= i + 1",
            code=edited(DECODER, "(j <= i)", "(j <= i + 1)")),
        misconception(
            "Off by one: a sequence of length n has the real keys 0 ... n - 1, so use j < n, "
            "not j <= n",
            code=edited(DECODER, "(j < n)", "(j <= n)")),
    ],
    hint="Compare torch.arange(T) with itself for the triangle and with lengths[:, None, None] "
         "for the padding, then combine with &",
)

# --- cell 14 (ex03-13)
# TESTS
ADDITIVE = """
import torch
def additive_scores(q, k, w_q, w_k, w_v):
    qa = q @ w_q.T
    ka = k @ w_k.T
    hidden = torch.tanh(qa[:, :, None, :] + ka[:, None, :, :])
    return hidden @ w_v
"""
ADDITIVE_REF = """
from attnlab.functional import additive_scores as _additive_scores
def additive_scores(q, k, w_q, w_k, w_v):
    return _additive_scores(q, k, w_q, w_k, w_v)   # (B, T, S)
"""
g = torch.Generator().manual_seed(33)


def _additive_case(B, T, S, Dq, Dk, A, size=1.0, note=""):
    return case(size * torch.randn(B, T, Dq, generator=g), size * torch.randn(B, S, Dk, generator=g),
                torch.randn(A, Dq, generator=g), torch.randn(A, Dk, generator=g),
                torch.randn(A, generator=g), note=note)


question(
    "q3", points=2, function="additive_scores", reference=ADDITIVE_REF,
    forbidden=("attnlab.functional.additive_scores",),
    public=[_additive_case(2, 3, 4, 5, 6, 7, note="B = 2, T = 3, S = 4, Dq = 5, Dk = 6, A = 7")],
    hidden=[
        _additive_case(1, 2, 5, 4, 4, 4, note="Dq = Dk = A = 4"),
        _additive_case(3, 1, 3, 2, 8, 5, note="one query, Dq = 2, Dk = 8"),
        _additive_case(2, 3, 3, 3, 3, 6, size=20.0, note="large inputs (tanh saturates)"),
    ],
    misconceptions=[
        misconception(
            "You left out the tanh: without it the score is linear, w_v.(W_q q) + w_v.(W_k k), "
            "a query term plus a key term, and each query ranks the keys the same way",
            code=edited(ADDITIVE, "torch.tanh(qa[:, :, None, :] + ka[:, None, :, :])",
                       "qa[:, :, None, :] + ka[:, None, :, :]")),
        misconception(
            "You applied the tanh after w_v: the score is w_v . tanh(W_q q + W_k k), not "
            "tanh(w_v . (W_q q + W_k k))",
            code=edited(ADDITIVE, "hidden = torch.tanh(qa[:, :, None, :] + ka[:, None, :, :])\n"
                                 "    return hidden @ w_v",
                       "return torch.tanh((qa[:, :, None, :] + ka[:, None, :, :]) @ w_v)")),
        misconception(
            "w_q is (A, Dq) and w_k is (A, Dk), laid out like nn.Linear.weight: project with "
            "q @ w_q.T and k @ w_k.T",
            code=edited(edited(ADDITIVE, "q @ w_q.T", "q @ w_q"), "k @ w_k.T", "k @ w_k")),
        misconception(
            "Your scores are (B, S, T): put the query axis before the key axis, "
            "qa[:, :, None, :] + ka[:, None, :, :] is (B, T, S, A)",
            code=edited(ADDITIVE, "qa[:, :, None, :] + ka[:, None, :, :]",
                       "qa[:, None, :, :] + ka[:, :, None, :]")),
    ],
    hint="Project q and k to width A, broadcast to (B, T, S, A), tanh, then contract with w_v",
)

# --- cell 18 (ex03-17)
# TESTS
question(
    "q4", points=1, variable="q4_scores_shape", expected=(2, 4, 5, 7),
    misconceptions=[
        misconception("That is (B, H, S, T): the rows of the scores are the queries, so T "
                      "comes before S", value=(2, 4, 7, 5)),
        misconception("(B, H, T, D) is the shape of the output weights @ v (with Dv = D), "
                      "not of the scores: the scores have one column per key",
                      value=(2, 4, 5, 16)),
        misconception("(D, D) would come from contracting over the positions; q @ k^T "
                      "contracts over D and leaves (T, S)", value=(2, 4, 16, 16)),
        misconception("The batch and head dims stay: @ multiplies the last two dims and "
                      "keeps the leading ones", value=(5, 7)),
        misconception("The heads stay a dimension of their own: (B, H, T, S), not (B * H, T, S)",
                      value=(8, 5, 7)),
    ],
    hint="@ keeps the leading dims (B, H) and multiplies (T, D) by (D, S)",
)

# --- cell 22 (ex03-21)
# TESTS
question(
    "q5", points=1, variable="q5_variance", expected=64, rtol=0.0,
    misconceptions=[
        misconception("8 = sqrt(D) is the standard deviation of q . k; the variance is its "
                      "square", value=8),
        misconception("1 is the variance of the SCALED score q . k / sqrt(D); the unscaled "
                      "one adds the variances of D products of variance 1", value=1),
        misconception("Each product q_d k_d has variance 1, and independent variances add: "
                      "D terms give D, not D^2", value=4096),
        misconception("0 is the mean of q . k, not its variance", value=0),
    ],
    hint="Var(q_d k_d) = E[q_d^2] E[k_d^2] = 1, and the D independent terms add",
)

# --- cell 27 (ex03-26)
# TESTS
# The data cell, as the student has it:
D, N, S = 128, 500, 32
gen = torch.Generator().manual_seed(2024)
q = torch.randn(N, D, generator=gen)       # (N, D): N queries
k = torch.randn(N, S, D, generator=gen)    # (N, S, D): S keys for each query


def _mean_max_weight(scores, dim=-1):
    # The mean over the queries of the largest softmax weight (softmax along `dim`).
    return float(torch.softmax(scores, dim=dim).amax(dim=-1).mean())


_scores = (k.double() @ q.double()[:, :, None])[:, :, 0]   # (N, S)
question(
    "q6", points=2, variable="q6_mean_max_weight", expected=_mean_max_weight(_scores),
    atol=1e-4, rtol=0.0,
    misconceptions=[
        misconception("You scaled the scores by 1 / sqrt(D): this experiment asks for the "
                      "UNSCALED q . k, to see the softmax saturate",
                      value=_mean_max_weight(_scores / D ** 0.5)),
        misconception("You divided the scores by D: this experiment asks for the unscaled q . k",
                      value=_mean_max_weight(_scores / D)),
        misconception("Your softmax ran over the queries (dim 0): each query's weights must "
                      "sum to 1 over its S keys, the last dim",
                      value=_mean_max_weight(_scores, dim=0)),
    ],
    hint="scores (N, S) = (k @ q[:, :, None])[:, :, 0]; softmax over dim -1; amax; mean",
)
