"""Tests of the exercise set '08_efficient_attention', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex08-05)
# TESTS
ONLINE = """
import torch
def online_update(m_i, l_i, acc, s, v):
    m_new = torch.maximum(m_i, s.amax(dim=-1, keepdim=True))
    p = torch.exp(s - m_new)
    alpha = torch.exp(m_i - m_new)
    return m_new, alpha * l_i + p.sum(dim=-1, keepdim=True), alpha * acc + p @ v
"""
g = torch.Generator().manual_seed(1)
INF = float("inf")


def state(T, Dv, *lead, first=False):
    if first:
        return (torch.full((*lead, T, 1), -INF), torch.zeros(*lead, T, 1),
                torch.zeros(*lead, T, Dv))
    m = torch.randn(*lead, T, 1, generator=g)
    return m, 1 + torch.rand(*lead, T, 1, generator=g), torch.randn(*lead, T, Dv, generator=g)


def block(T, Bk, Dv, *lead, scale=2.0):
    return (scale * torch.randn(*lead, T, Bk, generator=g),
            torch.randn(*lead, Bk, Dv, generator=g))


question(
    "q1", points=3, function="online_update", reference=ONLINE, atol=1e-5, rtol=1e-4,
    public=[
        case(torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [1.5]]),
             torch.tensor([[1.0, 0.0], [0.5, 0.5]]),
             torch.tensor([[1.0, -1.0, 0.5], [0.0, 1.0, -2.0]]),
             torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
             note="T = 2, a block of 3 keys that raises the maximum of row 1"),
    ],
    hidden=[
        case(*state(4, 3, first=True), *block(4, 5, 3), note="the first block (m = -inf)"),
        case(*state(3, 2, 2), *block(3, 4, 2, 2), note="a batch of 2"),
        case(*state(5, 4), *block(5, 6, 4, scale=300.0), note="scores near ±1000"),
        case(torch.tensor([[3.0]]), torch.tensor([[2.0]]), torch.tensor([[1.0, -1.0]]),
             torch.tensor([[-INF, -INF]]), torch.ones(2, 2),
             note="a block whose keys are all masked"),
        case(*state(6, 3, 2, 2), *block(6, 7, 3, 2, 2), note="(B, H, T, ...) with H = 2"),
    ],
    misconceptions=[
        misconception(
            "You did not rescale acc: when the maximum grows, the old sum of weighted values "
            "is relative to the old maximum; multiply it by exp(m - m_new)",
            code=edited(ONLINE, ("alpha * acc + p @ v", "acc + p @ v"))),
        misconception(
            "You did not rescale l: the old sum of exponentials is relative to the old "
            "maximum; multiply it by exp(m - m_new) before adding the block's sum",
            code=edited(ONLINE, ("alpha * l_i + p.sum", "l_i + p.sum"))),
        misconception(
            "You used the block's own maximum instead of the running maximum: m_new must be "
            "the larger of m_i and the block's maximum",
            code=edited(ONLINE, ("m_new = torch.maximum(m_i, s.amax(dim=-1, keepdim=True))",
                                 "m_new = s.amax(dim=-1, keepdim=True)"))),
    ],
    hint="m_new = max(m_i, s.amax(-1)); then scale l_i and acc by exp(m_i - m_new) and add "
         "exp(s - m_new) summed, and exp(s - m_new) @ v",
)

# --- cell 10 (ex08-09)
# TESTS
question(
    "q2", points=1, variable="q2_bytes", expected=4 * 8 * 2048 * 2048 * 2, atol=0, rtol=0,
    misconceptions=[
        misconception("You counted 4 bytes per element: bf16 takes 2 bytes",
                      value=4 * 8 * 2048 * 2048 * 4),
        misconception("You counted bits, not bytes: bf16 takes 16 bits = 2 bytes",
                      value=4 * 8 * 2048 * 2048 * 16),
        misconception("You left out the heads: each of the H = 8 heads has its own scores",
                      value=4 * 2048 * 2048 * 2),
        misconception("You left out the batch: each of the B = 4 sequences has its own scores",
                      value=8 * 2048 * 2048 * 2),
        misconception("The scores are (T, S) per head and sequence: T times S, not T",
                      value=4 * 8 * 2048 * 2),
    ],
    hint="B * H * T * S elements, times the bytes of one bf16 number",
)

# --- cell 14 (ex08-13)
# TESTS
WINDOW = """
import torch
def sliding_window_mask(T, window, causal=False):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = (i - j).abs() <= window
    return allowed & (j <= i) if causal else allowed
"""
question(
    "q3", points=2, function="sliding_window_mask", reference=WINDOW,
    public=[case(5, 1, note="T = 5, window 1"),
            case(5, 1, True, note="T = 5, window 1, causal")],
    hidden=[case(7, 2, note="T = 7, window 2"), case(6, 0, note="window 0"),
            case(4, 10, causal=True, note="a window longer than the sequence, causal"),
            case(9, 3, causal=True, note="T = 9, window 3, causal")],
    misconceptions=[
        misconception("Your mask is inverted: True means the key MAY be attended",
                      code=edited(WINDOW, ("    return allowed & (j <= i) if causal else allowed",
                                           "    allowed = allowed & (j <= i) if causal else "
                                           "allowed\n    return ~allowed"))),
        misconception("Keys at exactly `window` positions away are inside the window: use <=",
                      code=edited(WINDOW, ("<= window", "< window"))),
        misconception("Your causal window looks into the future: a causal query sees keys "
                      "j <= i",
                      code=edited(WINDOW, ("(j <= i)", "(j >= i)"))),
    ],
)

# --- cell 18 (ex08-17)
# TESTS
LINEAR = """
import torch
import torch.nn.functional as F
def linear_attention(q, k, v):
    fq, fk = F.elu(q) + 1, F.elu(k) + 1
    kv = fk.transpose(-2, -1) @ v
    z = fk.sum(dim=-2, keepdim=True)
    return (fq @ kv) / (fq * z).sum(dim=-1, keepdim=True)
"""
g = torch.Generator().manual_seed(4)
question(
    "q4", points=2, function="linear_attention", reference=LINEAR, atol=1e-4, rtol=1e-4,
    public=[case(torch.randn(4, 3, generator=g), torch.randn(6, 3, generator=g),
                 torch.randn(6, 2, generator=g), note="T = 4, S = 6, D = 3, Dv = 2")],
    hidden=[case(torch.randn(2, 5, 4, generator=g), torch.randn(2, 7, 4, generator=g),
                 torch.randn(2, 7, 3, generator=g), note="a batch of 2, T != S"),
            case(torch.randn(2, 2, 3, 8, generator=g), torch.randn(2, 2, 9, 8, generator=g),
                 torch.randn(2, 2, 9, 1, generator=g), note="(B, H, T, D) inputs"),
            case(3 * torch.randn(1, 6, 2, generator=g), 3 * torch.randn(1, 6, 2, generator=g),
                 torch.randn(1, 6, 2, generator=g), note="larger queries and keys")],
    misconceptions=[
        misconception("You did not normalise: divide by φ(q_i) · Σ_j φ(k_j), so that the "
                      "weights of each query sum to 1",
                      code=edited(LINEAR, (" / (fq * z).sum(dim=-1, keepdim=True)", ""))),
        misconception("You used q and k without the feature map: φ(x) = elu(x) + 1 keeps the "
                      "weights positive",
                      code=edited(LINEAR, ("fq, fk = F.elu(q) + 1, F.elu(k) + 1",
                                           "fq, fk = q, k"))),
        misconception("You divided by the number of keys S: the normaliser is "
                      "φ(q_i) · Σ_j φ(k_j), different for each query",
                      code=edited(LINEAR, ("(fq * z).sum(dim=-1, keepdim=True)",
                                           "k.shape[-2]"))),
    ],
    hint="kv = φ(k)^T v is (D, Dv); z = Σ_j φ(k_j) is (1, D); out = φ(q) kv / (φ(q) · z)",
)

# --- cell 22 (ex08-21)
# TESTS
def _smallest_window():
    import math

    import torch
    import torch.nn.functional as F

    from attnlab.efficient import local_attention

    N, WIDTH = 512, 0.05
    g = torch.Generator().manual_seed(0)
    x_train = (5 * torch.rand(N, generator=g)).sort().values
    y_train = torch.sin(x_train) + 0.3 * torch.randn(N, generator=g)
    x_test = (5 * torch.rand(N, generator=g)).sort().values
    qx = math.sqrt(2) * torch.stack([x_test, torch.ones(N)], -1)[None]
    kx = torch.stack([x_train / WIDTH**2, -x_train**2 / (2 * WIDTH**2)], -1)[None]
    vy = y_train[:, None][None]
    exact = F.scaled_dot_product_attention(qx, kx, vy)
    for w in range(0, 512, 8):
        if (local_attention(qx, kx, vy, window=w) - exact).abs().max() <= 1e-3:
            return w


_W = _smallest_window()
question(
    "q5", points=2, variable="q5_window", expected=_W, atol=0, rtol=0,
    misconceptions=[
        misconception("That is the largest window that is still too small: report the first "
                      "window whose error is at most 1e-3", value=_W - 8),
        misconception("Window 0 lets each query see one key only: compare with exact "
                      "attention and keep going until the error is at most 1e-3", value=0),
    ],
    hint="Loop over range(0, 512, 8) and stop at the first w with max |local - exact| <= 1e-3",
)
