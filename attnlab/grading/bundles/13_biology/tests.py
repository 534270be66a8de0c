"""Tests of the exercise set '13_biology', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex13-05)
# TESTS
ONE_HOT = """
import torch
from attnlab.data.dna import encode, one_hot
def one_hot_dna(seq):
    return one_hot(encode(seq)[None])[0]
"""
question(
    "q1", points=2, function="one_hot_dna", reference=ONE_HOT,
    public=[case("GAT", note='the sequence "GAT"')],
    hidden=[
        case("TGACGCATCA", note="the chapter's consensus TGACGCATCA"),
        case("ACGTTGCA", note="every base, forwards and backwards"),
        case("gattaca", note="a lower-case sequence"),
        case("C", note="a single base"),
    ],
    misconceptions=[
        misconception(
            "Your channels are not in the order A, C, G, T (you used A, T, C, G, the order of "
            "the base pairs): channel 0 is A, 1 is C, 2 is G, 3 is T",
            code=edited(ONE_HOT, ("return one_hot(encode(seq)[None])[0]",
                                  "return one_hot(encode(seq)[None])[0][:, [0, 3, 1, 2]]"))),
        misconception(
            "You returned (4, T), channels first: return one row per base, shape (T, 4) "
            "(transpose if you built it the other way)",
            code=edited(ONE_HOT, ("return one_hot(encode(seq)[None])[0]",
                                  "return one_hot(encode(seq)[None])[0].T"))),
    ],
    hint='Map each base to its index in "ACGT" (after .upper()), then compare the indices '
         "with torch.arange(4)",
)

# --- cell 10 (ex13-09)
# TESTS
POOL = """
import torch
from attnlab.functional import attention
def attention_pool(h, q, w_k, mask):
    B, T, C = h.shape
    z, alpha = attention(q.expand(B, 1, C), h @ w_k.T, h, mask[:, None, :], need_weights=True)
    return z[:, 0], alpha[:, 0]
"""
SOFTMAX_THEN = """
import math
import torch
def attention_pool(h, q, w_k, mask):
    scores = (h @ w_k.T) @ q / math.sqrt(h.shape[-1])
    alpha = {alpha}
    return (alpha[..., None] * h).sum(1), alpha
"""
g = torch.Generator().manual_seed(13)


def pool_case(B, T, C, lengths, note, scale=1.0, gen=None):
    gen = g if gen is None else gen
    h = torch.randn(B, T, C, generator=gen) * scale
    q = torch.randn(C, generator=gen)
    w_k = torch.randn(C, C, generator=gen)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return case(h, q, w_k, mask, note=note)


question(
    "q2", points=3, function="attention_pool", reference=POOL,
    public=[pool_case(2, 5, 4, [5, 3], note="two sequences of 5 and 3 bases, padded to T=5"),
            pool_case(3, 4, 4, [2, 0, 4], gen=torch.Generator().manual_seed(14),
                      note="three sequences, the second with no real base (zero weights, "
                           "z = 0)")],
    hidden=[
        pool_case(3, 7, 8, [7, 7, 7], note="three unpadded sequences, C=8"),
        pool_case(2, 6, 4, [6, 0], note="a sequence with no real base"),
        pool_case(4, 9, 6, [9, 2, 5, 1], note="four sequences of different lengths"),
        pool_case(1, 4, 16, [3], note="C=16, where the √C scaling matters"),
    ],
    misconceptions=[
        misconception(
            "You did not divide the scores by √C: scale q·k_t by 1/sqrt(C) before the softmax",
            code=edited(POOL, ("h @ w_k.T, h, mask", "h @ w_k.T * h.shape[-1] ** 0.5, h, mask"))),
        misconception(
            "Your mask convention is inverted: True marks a real base, which MAY be attended",
            code=edited(POOL, ("mask[:, None, :]", "~mask[:, None, :]"))),
        misconception(
            "You computed the keys as h @ w_k; k_t = W_k h_t is h @ w_k.T",
            code=edited(POOL, ("h @ w_k.T", "h @ w_k"))),
        misconception(
            "You applied the mask after the softmax: remove the padded positions before "
            "normalising (fill their scores with -inf), so that the real ones sum to 1",
            code=SOFTMAX_THEN.format(alpha="torch.softmax(scores, -1) * mask")),
        misconception(
            "A sequence with no real base gave NaN (a softmax of all -inf): it must get zero "
            "weights and z = 0",
            code=SOFTMAX_THEN.format(
                alpha="torch.softmax(scores.masked_fill(~mask, float('-inf')), -1)")),
    ],
    hint="scores = (h @ w_k.T) @ q / sqrt(C), -inf where mask is False, softmax over T, "
         "NaN -> 0, then z = sum over t of alpha_t h_t",
)

# --- cell 14 (ex13-13)
# TESTS
BEST = """
import torch
from attnlab.data.dna import ALPHABET, decode, window_distances
def best_site(ids, motif):
    return window_distances(ids, decode(motif)).argmin(dim=-1)
"""
g = torch.Generator().manual_seed(3)


def planted(B, T, motif, starts, mutate=0):
    ids = torch.randint(0, 4, (B, T), generator=g)
    for b, s in enumerate(starts):
        site = motif.clone()
        site[:mutate] = (site[:mutate] + 1) % 4
        ids[b, s:s + len(motif)] = site
    return ids


M10 = torch.tensor([3, 2, 0, 1, 2, 1, 0, 3, 1, 0])    # TGACGCATCA
question(
    "q3", points=2, function="best_site", reference=BEST,
    public=[case(torch.tensor([[3, 0, 1, 2, 3, 0, 1, 2]]), torch.tensor([2, 3, 0]),
                 note="TACGTACG and the motif GTA"),
            case(torch.tensor([[0, 1, 2, 3, 1, 0, 2, 3, 2]]), torch.tensor([2, 3, 2]),
                 note="ACGTCAGTG and the motif GTG, found in the last window"),
            case(torch.tensor([[2, 3, 2, 3, 2, 3]]), torch.tensor([2, 3]),
                 note="GTGTGT and the motif GT: ties, the first window wins")],
    hidden=[
        case(planted(4, 40, M10, [0, 7, 30, 19]), M10, note="exact sites, one at the start "
             "and one in the last window"),
        case(planted(3, 60, M10, [50, 50, 12], mutate=2), M10,
             note="sites with 2 mutations, two in the last window"),
        case(torch.tensor([[0, 1, 0, 1, 0, 1]]), torch.tensor([0, 1]),
             note="ACACAC and AC: ties, the first window wins"),
    ],
    misconceptions=[
        misconception(
            "You missed the last window: a sequence of T bases has T - L + 1 windows of L, "
            "the last starting at T - L",
            code=edited(BEST, ("window_distances(ids, decode(motif))",
                               "window_distances(ids, decode(motif))[:, :-1]"))),
        misconception(
            "You took the window with the most mismatches: the best hit has the fewest "
            "(argmin of the Hamming distances, or argmax of the matches)",
            code=edited(BEST, ("argmin", "argmax"))),
        misconception(
            "On ties you returned the last window: return the first",
            code=edited(BEST, ("return window_distances(ids, decode(motif)).argmin(dim=-1)",
                               "d = window_distances(ids, decode(motif)).flip(-1)\n"
                               "    return d.shape[-1] - 1 - d.argmin(dim=-1)"))),
    ],
    hint="Cut the windows with ids.unfold(1, L, 1), count (windows != motif) over the last "
         "axis, take the argmin",
)

# --- cell 18 (ex13-17)
# TESTS
question(
    "q4", points=1, variable="q4_mass", expected=12 / 200, atol=1e-4, rtol=0.0,
    misconceptions=[
        misconception("That is the weight of one base, 1/200: the site has 12 of them",
                      value=1 / 200),
        misconception("You divided by the number of windows, T - L + 1 = 189: the weights are "
                      "spread over the T = 200 bases", value=12 / 189),
        misconception("1/12 is the share of each base *within* the site; the question asks for "
                      "the site's share of the whole sequence", value=1 / 12),
    ],
    hint="Each of the 200 bases gets 1/200; add up the site's bases",
)

# --- cell 22 (ex13-21)
# TESTS
PWM = """
import torch
import torch.nn.functional as F
def pwm_scores(x, pwm, background):
    log_odds = torch.log(pwm / background)                                  # (L, 4)
    per_base = x.transpose(1, 2)                                            # (B, 4, T)
    return F.conv1d(per_base.double(), log_odds.T[None].double()).squeeze(1).to(x.dtype)
"""
g = torch.Generator().manual_seed(5)


def dna(B, T):
    return torch.nn.functional.one_hot(torch.randint(0, 4, (B, T), generator=g), 4).float()


def random_pwm(L):
    return torch.softmax(2 * torch.randn(L, 4, generator=g), dim=-1)


GC41 = torch.tensor([0.295, 0.205, 0.205, 0.295])
question(
    "q5", points=2, function="pwm_scores", reference=PWM,
    public=[case(dna(1, 6), random_pwm(3), torch.full((4,), 0.25),
                 note="one sequence of 6 bases, L=3, uniform background")],
    hidden=[
        case(dna(3, 20), random_pwm(5), GC41, note="three sequences, L=5, GC 41 %"),
        case(dna(2, 10), random_pwm(10), GC41, note="L = T: a single window"),
        case(dna(2, 30), random_pwm(4), torch.tensor([0.1, 0.4, 0.4, 0.1]),
             note="a GC-rich background"),
    ],
    misconceptions=[
        misconception(
            "You left out the background: the log-odds is log(pwm / background), so a base "
            "as likely in the motif as outside scores 0",
            code=edited(PWM, ("torch.log(pwm / background)", "torch.log(pwm)"))),
        misconception(
            "You used log base 2 (bits): use the natural logarithm, torch.log",
            code=edited(PWM, ("torch.log(pwm / background)", "torch.log2(pwm / background)"))),
        misconception(
            "You missed the last window: T bases hold T - L + 1 windows of L",
            code=edited(PWM, (".squeeze(1).to(x.dtype)", ".squeeze(1)[:, :-1].to(x.dtype)"))),
        misconception(
            "You added up probabilities, not log-odds: take log(pwm / background) first",
            code=edited(PWM, ("torch.log(pwm / background)", "pwm"))),
    ],
    hint="log_odds = log(pwm / background) (L, 4); the score of window t adds "
         "log_odds[i, base at t + i] over i",
)

# --- cell 28 (ex13-28)
# TESTS
def _threshold_accuracy(k, over="all"):
    from attnlab.data.dna import dna_task, window_distances

    split = dna_task(n_train=10, n_test=1000, seed=3).test
    best = window_distances(split.ids).amin(dim=-1)
    right = (best <= k).long() == split.labels
    if over == "positives":
        right = right[split.labels == 1]
    return float(right.double().mean())


_acc1 = _threshold_accuracy(1)
assert _threshold_accuracy(2) == 1.0 and _acc1 < 1.0, _acc1
question(
    "q6", points=1, variable="q6_accuracy", expected=_acc1, atol=1e-6, rtol=0.0,
    misconceptions=[
        misconception("1.0 is the accuracy of the label rule, at most 2 mismatches: at most 1 "
                      "misses the positives whose best window has exactly 2", value=1.0),
        misconception("That is the share of the POSITIVES the rule finds; the accuracy counts "
                      "all 1000 sequences, and every negative (at least 3 mismatches) is "
                      "classified correctly", value=_threshold_accuracy(1, over="positives")),
        misconception("At most 1 mismatch includes the windows with exactly 1: you counted "
                      "only the perfect matches", value=_threshold_accuracy(0)),
        misconception("You computed the share of errors: the accuracy is the share classified "
                      "correctly", value=1 - _acc1),
    ],
    hint="Right: the positives with 0 or 1 mismatches, and every negative (at least 3). "
         "Divide by 1000",
)
