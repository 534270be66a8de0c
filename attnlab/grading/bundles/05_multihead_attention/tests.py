"""Tests of the exercise set '05_multihead_attention', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex05-05)
# TESTS
import math

import torch

from attnlab.layers import MultiHeadAttention as _MHA

SPLIT = """
import torch
def split_heads(x, num_heads):
    B, T, C = x.shape
    return x.view(B, T, num_heads, C // num_heads).transpose(1, 2)
"""
SPLIT_REF = """
import torch
from attnlab.layers import MultiHeadAttention
def split_heads(x, num_heads):
    with torch.random.fork_rng():        # the layer's random weights are not used
        layer = MultiHeadAttention(x.shape[-1], num_heads)
    return layer.split_heads(x)          # (B, T, C) -> (B, H, T, D)
"""
g = torch.Generator().manual_seed(51)
question(
    "q1", points=1, function="split_heads", reference=SPLIT_REF,
    public=[case(torch.arange(48.0).reshape(2, 3, 8), 2,
                 note="x = arange(48) as (B, T, C) = (2, 3, 8), H = 2")],
    hidden=[
        case(torch.randn(1, 5, 6, generator=g), 1, note="one head (H = 1)"),
        case(torch.randn(2, 4, 4, generator=g), 4, note="heads of width D = 1 (H = C = 4)"),
        case(torch.randn(3, 7, 12, generator=g), 3, note="B = 3, T = 7, C = 12, H = 3"),
        case(torch.randn(1, 1, 16, generator=g, dtype=torch.float64), 4,
             note="a single position, float64"),
    ],
    misconceptions=[
        misconception(
            "You reshaped straight to (B, H, T, D): that cuts the sequence of positions into "
            "heads, not the features. View as (B, T, H, D), then transpose(1, 2)",
            code=edited(SPLIT, ("x.view(B, T, num_heads, C // num_heads).transpose(1, 2)",
                               "x.view(B, num_heads, T, C // num_heads)"))),
        misconception(
            "Your heads take every H-th feature (interleaved): each head takes D CONSECUTIVE "
            "features, so view the last axis as (H, D), not (D, H)",
            code=edited(SPLIT, ("x.view(B, T, num_heads, C // num_heads).transpose(1, 2)",
                               "x.view(B, T, C // num_heads, num_heads).permute(0, 3, 1, 2)"))),
        misconception(
            "Your result is (B, T, H, D): move the head axis in front of the positions with "
            "transpose(1, 2)",
            code=edited(SPLIT, (".transpose(1, 2)", ""))),
    ],
    hint="x.view(B, T, H, D) gives every position its H blocks; then swap the T and H axes",
)

# --- cell 10 (ex05-09)
# TESTS
MHA = """
import math
import torch
def multihead_self_attention(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=False):
    B, T, C = x.shape
    H, D = num_heads, C // num_heads
    q, k, v = (x @ w_qkv.T + b_qkv).split(C, dim=-1)
    q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)
    if causal:
        may_attend = torch.ones(T, T, dtype=torch.bool).tril()
        scores = scores.masked_fill(~may_attend, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    merged = (weights @ v).transpose(1, 2).reshape(B, T, C)
    return merged @ w_o.T + b_o, weights
"""
MHA_REF = """
import torch
from attnlab.layers import MultiHeadAttention
def multihead_self_attention(x, w_qkv, b_qkv, w_o, b_o, num_heads, causal=False):
    with torch.random.fork_rng():
        layer = MultiHeadAttention(x.shape[-1], num_heads).to(x.dtype)
    with torch.no_grad():
        layer.in_proj.weight.copy_(w_qkv)
        layer.in_proj.bias.copy_(b_qkv)
        layer.out_proj.weight.copy_(w_o)
        layer.out_proj.bias.copy_(b_o)
        return layer(x, causal=causal, need_weights=True)      # (B, T, C), (B, H, T, T)
"""


def _mha_case(g, B, T, C, H, causal, dtype=torch.float32, note=""):
    def r(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=dtype)
    return case(r(B, T, C), r(3 * C, C, scale=C ** -0.5), r(3 * C, scale=0.1),
                r(C, C, scale=C ** -0.5), r(C, scale=0.1), H, causal=causal, note=note)


g = torch.Generator().manual_seed(52)
question(
    "q2", points=3, function="multihead_self_attention", reference=MHA_REF,
    forbidden=("torch.nn.MultiheadAttention", "torch.nn.functional.multi_head_attention_forward",
               "torch.nn.functional.scaled_dot_product_attention",
               "attnlab.layers.MultiHeadAttention", "attnlab.functional.attention"),
    public=[
        _mha_case(g, 2, 5, 12, 3, False, note="B = 2, T = 5, C = 12, H = 3"),
        _mha_case(g, 1, 4, 8, 2, True, note="a causal mask, T = 4, C = 8, H = 2"),
    ],
    hidden=[
        _mha_case(g, 1, 3, 6, 1, True, note="one head (H = 1), causal"),
        _mha_case(g, 2, 6, 4, 4, False, note="heads of width D = 1 (H = C = 4)"),
        _mha_case(g, 3, 7, 24, 6, True, dtype=torch.float64,
                  note="B = 3, T = 7, C = 24, H = 6, causal, float64"),
        _mha_case(g, 2, 1, 8, 2, True, note="a single position (T = 1)"),
        _mha_case(g, 1, 9, 20, 5, False, note="T = 9, C = 20, H = 5"),
    ],
    misconceptions=[
        misconception(
            "You scaled the scores by 1/sqrt(C): each head's dot products have D = C/H terms, "
            "so divide by sqrt(D)",
            code=edited(MHA, ("/ math.sqrt(D)", "/ math.sqrt(C)"))),
        misconception(
            "You divided the scores by D: divide by sqrt(D)",
            code=edited(MHA, ("/ math.sqrt(D)", "/ D"))),
        misconception(
            "With causal=True the future leaked: give the scores of the keys s > t the value "
            "-inf before the softmax",
            code=edited(MHA, ("    if causal:\n", "    if False:\n"))),
        misconception(
            "Your causal mask is upside down: the query at t must see the keys s <= t (on "
            "and below the diagonal, tril), not s >= t",
            code=edited(MHA, (".tril()", ".triu()"))),
        misconception(
            "You merged the heads without transposing back: (B, H, T, D) must become "
            "(B, T, H, D) with transpose(1, 2) BEFORE the reshape to (B, T, C), or positions "
            "and heads get mixed",
            code=edited(MHA, ("(weights @ v).transpose(1, 2).reshape(B, T, C)",
                             "(weights @ v).reshape(B, T, C)"))),
        misconception(
            "You split the heads with view(B, H, T, D) (and merged them back with a plain "
            "reshape): that cuts the positions, not the features, into heads. Use "
            "view(B, T, H, D).transpose(1, 2), and transpose back before merging",
            code=edited(MHA, ("t.view(B, T, H, D).transpose(1, 2)", "t.view(B, H, T, D)"),
                       ("(weights @ v).transpose(1, 2).reshape(B, T, C)",
                        "(weights @ v).reshape(B, T, C)"))),
        misconception(
            "You returned the merged heads without the output projection: "
            "out = merged @ w_o.T + b_o",
            code=edited(MHA, ("return merged @ w_o.T + b_o, weights", "return merged, weights"))),
    ],
    hint="Project, split into (B, H, T, D), scores / sqrt(D), mask, softmax over the keys, "
         "weights @ v, transpose(1, 2) and reshape to (B, T, C), then the output projection",
)

# --- cell 14 (ex05-13)
# TESTS
SINES = """
import torch
def sinusoidal_table(T, C):
    t = torch.arange(T, dtype=torch.float32)[:, None]
    omega = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float32) / C)
    pe = torch.empty(T, C)
    pe[:, 0::2] = torch.sin(t * omega)
    pe[:, 1::2] = torch.cos(t * omega)
    return pe
"""
SINES_REF = """
from attnlab.layers import sinusoidal_encoding
def sinusoidal_table(T, C):
    return sinusoidal_encoding(T, C)        # (T, C)
"""
question(
    "q3", points=2, function="sinusoidal_table", reference=SINES_REF, atol=1e-4,
    public=[case(6, 8, note="T = 6, C = 8")],
    hidden=[
        case(1, 2, note="one position, C = 2"),
        case(50, 64, note="T = 50, C = 64"),
        case(100, 10, note="T = 100, C = 10"),
        case(7, 128, note="T = 7, C = 128"),
    ],
    misconceptions=[
        misconception(
            "You swapped sine and cosine: the even features 2i are sines, the odd features "
            "2i + 1 cosines (position 0 is [0, 1, 0, 1, ...])",
            code=edited(SINES, ("torch.sin(t * omega)", "torch.SIN"),
                       ("torch.cos(t * omega)", "torch.sin(t * omega)"),
                       ("torch.SIN", "torch.cos(t * omega)"))),
        misconception(
            "Your frequencies use i where the formula has 2i: omega_i = 10000^(-2i/C), so "
            "the slowest pair turns at about 1/10000, not 1/100",
            code=edited(SINES, ("torch.arange(0, C, 2, dtype=torch.float32) / C",
                               "torch.arange(C // 2, dtype=torch.float32) / C"))),
        misconception(
            "You put all the sines in the first half and the cosines in the second: they "
            "alternate, sin in feature 2i and cos in feature 2i + 1",
            code=edited(SINES, ("pe[:, 0::2]", "pe[:, : C // 2]"),
                       ("pe[:, 1::2]", "pe[:, C // 2 :]"))),
        misconception(
            "Your positions start at 1: the first position is t = 0, whose row is "
            "[0, 1, 0, 1, ...]",
            code=edited(SINES, ("torch.arange(T, dtype=torch.float32)",
                               "torch.arange(1, T + 1, dtype=torch.float32)"))),
    ],
    hint="Row t = 0 is [0, 1, 0, 1, ...]; feature 2i is sin(t * 10000**(-2i/C)), feature "
         "2i + 1 the cosine of the same angle",
)

# --- cell 18 (ex05-17)
# TESTS
ROPE = """
import torch
def apply_rope(x):
    T, D = x.shape[-2:]
    theta = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * theta
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return rotated.flatten(-2)
"""
ROPE_HALVES = """
import torch
def apply_rope(x):
    T, D = x.shape[-2:]
    theta = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * theta
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    first, second = x[..., : D // 2], x[..., D // 2 :]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)
"""
ROPE_REF = """
from attnlab.layers import RotaryEmbedding
def apply_rope(x):
    T, D = x.shape[-2:]
    return RotaryEmbedding(D, max_len=T)(x)      # (..., T, D)
"""
g = torch.Generator().manual_seed(54)
question(
    "q4", points=2, function="apply_rope", reference=ROPE_REF, atol=1e-4,
    public=[case(torch.randn(2, 5, 4, generator=g), note="x (2, 5, 4): T = 5, D = 4")],
    hidden=[
        case(torch.randn(2, 3, 6, 8, generator=g), note="per-head queries (B, H, T, D)"),
        case(torch.randn(10, 2, generator=g), note="D = 2, T = 10"),
        case(torch.randn(3, 1, 6, generator=g), note="a single position (T = 1)"),
        case(torch.randn(1, 64, 16, generator=g), note="T = 64, D = 16"),
        case(torch.randn(3, 7, 6, generator=g, dtype=torch.float64), note="D = 6, float64"),
    ],
    misconceptions=[
        misconception(
            "You rotated by -t·θ_i (the transposed matrix): x'_2i = x_2i cos - x_2i+1 sin and "
            "x'_2i+1 = x_2i sin + x_2i+1 cos",
            code=edited(ROPE, ("even * cos - odd * sin, even * sin + odd * cos",
                              "even * cos + odd * sin, -even * sin + odd * cos"))),
        misconception(
            "You paired feature i with feature i + D/2 (the two halves, as some libraries "
            "do): this question, like RotaryEmbedding, pairs neighbours (x_2i, x_2i+1)",
            code=ROPE_HALVES),
        misconception(
            "You rotated the right pairs but wrote them back as two halves (all x'_2i, then "
            "all x'_2i+1): each rotated pair stays at features 2i and 2i + 1 (stack on a new "
            "last axis, then flatten)",
            code=edited(ROPE, ("torch.stack([even * cos - odd * sin, even * sin + odd * cos], "
                              "dim=-1)\n    return rotated.flatten(-2)",
                              "torch.cat([even * cos - odd * sin, even * sin + odd * cos], "
                              "dim=-1)\n    return rotated"))),
        misconception(
            "Your angles use i where the formula has 2i: θ_i = 10000^(-2i/D)",
            code=edited(ROPE, ("torch.arange(0, D, 2, dtype=torch.float64) / D",
                              "torch.arange(D // 2, dtype=torch.float64) / D"))),
        misconception(
            "Your positions start at 1: the first position is t = 0, and it is not rotated",
            code=edited(ROPE, ("torch.arange(T, dtype=torch.float64)",
                              "torch.arange(1, T + 1, dtype=torch.float64)"))),
    ],
    hint="even, odd = x[..., 0::2], x[..., 1::2]; rotate each pair by t * theta_i; "
         "torch.stack([...], dim=-1).flatten(-2) puts the pairs back in place",
)

# --- cell 22 (ex05-21)
# TESTS
def _n_params(C, H):
    with torch.random.fork_rng():
        return sum(p.numel() for p in _MHA(C, H).parameters())


_one, _twelve = _n_params(96, 1), _n_params(96, 12)
question(
    "q5", points=1, variable="q5_params", expected=(_one, _twelve),
    misconceptions=[
        misconception("More heads do not mean more parameters: the H heads of width C/H share "
                      "the same four (C, C) projections, whatever H", value=(_one, 12 * _one)),
        misconception("Each head's projections are (C, D), not (D, D): the twelve heads "
                      "together still map C features to C", value=(_one, 12 * _n_params(8, 1))),
        misconception("You left out the biases: 3C of the input projection and C of the "
                      "output projection", value=(4 * 96 * 96, 4 * 96 * 96)),
        misconception("You left out the output projection W_O (C, C) and its bias",
                      value=(3 * 96 * 96 + 3 * 96, 3 * 96 * 96 + 3 * 96)),
    ],
    hint="Count the (3C, C) input projection, the (C, C) output projection and their biases; "
         "does any of them depend on H?",
)

# --- cell 27 (ex05-26)
# TESTS
# The data cell, as the student has it:
C, T = 32, 24
x = torch.randn(1, T, C, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
head_counts = [1, 2, 4, 8, 16]


def _ranks():
    # The largest rank of a head's (T, T) scores, for each H.
    ranks = []
    with torch.random.fork_rng(), torch.no_grad():
        for H in head_counts:
            torch.manual_seed(0)
            layer = _MHA(C, H).double()
            q, k, _ = layer.in_proj(x).split(C, dim=-1)
            scores = layer.split_heads(q) @ layer.split_heads(k).transpose(-2, -1)
            scores = scores / math.sqrt(C // H)                     # (1, H, T, T)
            rank = min(T, C // H)
            sv = torch.linalg.svdvals(scores)                        # (1, H, T), descending
            assert float((sv[..., rank - 1] / sv[..., 0]).min()) > 1e-8    # clearly rank ...
            if rank < T:
                assert float((sv[..., rank] / sv[..., 0]).max()) < 1e-12   # ... and no more
            ranks.append(int(torch.linalg.matrix_rank(scores).max()))
    return ranks


_expected = _ranks()
assert _expected == [min(T, C // H) for H in head_counts]
question(
    "q6", points=2, variable="q6_ranks", expected=_expected,
    misconceptions=[
        misconception("Your ranks are all full (24): that is the rank of the softmax WEIGHTS "
                      "(the exponential does not keep the low rank) or of the full-width "
                      "Q K^T. Measure each head's scores q_h k_h^T, before the softmax",
                      value=[T] * len(head_counts)),
        misconception("A (T, T) matrix has rank at most T = 24: the rank is min(T, D), so one "
                      "head of width 32 cannot reach 32. Did you write D instead of measuring?",
                      value=[C // H for H in head_counts]),
    ],
    hint="For each H: in_proj, split into q and k, split_heads, scores = q_h @ k_h^T (1, H, T, T), "
         "torch.linalg.matrix_rank(scores) gives one rank per head; keep the largest",
)
