"""Tests of the exercise set '19_modern_attention', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex19-05)
# TESTS
INDEX = """
import torch
def kv_head_index(num_heads, num_kv_heads):
    return torch.arange(num_heads) // (num_heads // num_kv_heads)
"""
INDEX_REF = """
import torch
def kv_head_index(num_heads, num_kv_heads):
    heads = torch.arange(num_kv_heads)[:, None, None, None]        # (G, 1, 1, 1)
    k = heads.expand(num_kv_heads, 1, 1, 1).float()
    q = torch.zeros(num_heads, 1, 1)                                # (H, T=1, D=1)
    ones = torch.ones(num_kv_heads, 1, 1)
    out = torch.nn.functional.scaled_dot_product_attention(
        q[None], ones[None], k[:, 0][None], enable_gqa=True)       # (1, H, 1, 1)
    return out.flatten().round().long()
"""
question(
    "q1", points=1, function="kv_head_index", reference=INDEX_REF,
    public=[case(8, 2, note="H = 8, G = 2")],
    hidden=[
        case(4, 4, note="G = H: ordinary multi-head attention"),
        case(6, 1, note="G = 1: multi-query attention"),
        case(32, 8, note="H = 32, G = 8 (a 7B-class model)"),
        case(12, 3, note="H = 12, G = 3"),
    ],
    misconceptions=[
        misconception(
            "You went round the key/value heads (h % G), as k.repeat(...) does: the groups are "
            "consecutive, so query heads 0 .. H/G - 1 all read head 0 (h // (H/G))",
            code=edited(INDEX, ("torch.arange(num_heads) // (num_heads // num_kv_heads)",
                               "torch.arange(num_heads) % num_kv_heads"))),
        misconception(
            "You divided h by G, the number of key/value heads: divide by the group size "
            "H / G, the number of query heads that share one key/value head",
            code=edited(INDEX, ("// (num_heads // num_kv_heads)", "// num_kv_heads"))),
    ],
    hint="With H = 8 and G = 2 the answer is [0, 0, 0, 0, 1, 1, 1, 1]",
)

# --- cell 10 (ex19-09)
# TESTS
GQA = """
import torch
def gqa_attention(q, k, v, causal=False):
    H, G = q.shape[1], k.shape[1]
    k = k.repeat_interleave(H // G, dim=1)
    v = v.repeat_interleave(H // G, dim=1)
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if causal:
        T, S = scores.shape[-2:]
        scores = scores.masked_fill(~torch.ones(T, S, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
"""
GQA_REF = """
from attnlab.functional import attention
def gqa_attention(q, k, v, causal=False):
    return attention(q, k, v, causal=causal)       # (B, H, T, D)
"""


def _gqa_case(seed, B, H, G, T, D, causal=False, dtype=torch.float32, note=""):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T, D, generator=gen, dtype=dtype)
    k, v = (torch.randn(B, G, T, D, generator=gen, dtype=dtype) for _ in range(2))
    return case(q, k, v, causal=causal, note=note)


question(
    "q2", points=3, function="gqa_attention", reference=GQA_REF,
    public=[
        _gqa_case(1, 2, 4, 2, 5, 8, note="B = 2, H = 4, G = 2, T = 5, D = 8"),
        _gqa_case(2, 1, 6, 3, 4, 4, causal=True, note="causal, H = 6, G = 3"),
    ],
    hidden=[
        _gqa_case(3, 1, 8, 1, 6, 4, causal=True, note="multi-query: G = 1, causal"),
        _gqa_case(4, 2, 4, 4, 3, 8, note="G = H: multi-head attention"),
        _gqa_case(5, 3, 8, 2, 7, 16, causal=True, dtype=torch.float64,
                  note="H = 8, G = 2, causal, float64"),
        _gqa_case(6, 1, 4, 2, 1, 8, causal=True, note="a single position (T = 1)"),
    ],
    misconceptions=[
        misconception(
            "You repeated the block of key/value heads (k.repeat) instead of each head "
            "(k.repeat_interleave): query head 1 then reads key/value head 1, but it "
            "belongs to the group of head 0",
            code=edited(GQA, ("k.repeat_interleave(H // G, dim=1)", "k.repeat(1, H // G, 1, 1)"),
                        ("v.repeat_interleave(H // G, dim=1)", "v.repeat(1, H // G, 1, 1)"))),
        misconception(
            "You let every query head average over all the key/value heads: each query head "
            "reads exactly one key/value head, that of its group",
            code=edited(GQA, ("k = k.repeat_interleave(H // G, dim=1)",
                              "k = k.mean(1, keepdim=True).expand(-1, H, -1, -1)"),
                        ("v = v.repeat_interleave(H // G, dim=1)",
                         "v = v.mean(1, keepdim=True).expand(-1, H, -1, -1)"))),
        misconception(
            "Your causal mask lets each query see the FUTURE (triu instead of tril): the "
            "query at t may attend the keys s <= t",
            code=edited(GQA, (".tril()", ".triu()"))),
    ],
    hint="Make one key/value head per query head with repeat_interleave(H // G, dim=1), then "
         "it is ordinary multi-head attention",
)

# --- cell 14 (ex19-13)
# TESTS
ROLL = """
import torch
def rolling_update(cache, new, window):
    everything = torch.cat([cache, new], dim=-2)
    return everything[..., -window:, :]
"""
ROLL_REF = """
import torch
from attnlab.layers import RollingKVCache
def rolling_update(cache, new, window):
    rolling = RollingKVCache(window)
    if cache.shape[-2]:
        rolling.append(cache, cache)
    rolling.append(new, new)
    return rolling.k                           # (B, G, <= window, D)
"""


def _roll_case(seed, B, G, S, T, D, window, note=""):
    gen = torch.Generator().manual_seed(seed)
    return case(torch.randn(B, G, S, D, generator=gen), torch.randn(B, G, T, D, generator=gen),
                window, note=note)


question(
    "q3", points=2, function="rolling_update", reference=ROLL_REF,
    public=[
        _roll_case(1, 1, 2, 4, 1, 3, 4, note="a full cache of 4, one new position"),
        _roll_case(2, 1, 1, 2, 1, 2, 4, note="a cache of 2 that is not full yet"),
    ],
    hidden=[
        _roll_case(3, 2, 2, 0, 6, 4, 3, note="an empty cache and a prefill of 6, window 3"),
        _roll_case(4, 1, 1, 3, 3, 2, 3, note="three new positions replace all three"),
        _roll_case(5, 2, 1, 5, 2, 8, 5, note="window 5, two new positions"),
        _roll_case(6, 1, 4, 1, 1, 2, 1, note="window 1: only the newest stays"),
    ],
    misconceptions=[
        misconception(
            "You kept the FIRST positions: a rolling cache drops the oldest, so keep the last "
            "`window` of cat([cache, new])",
            code=edited(ROLL, ("everything[..., -window:, :]", "everything[..., :window, :]"))),
        misconception(
            "You put the new keys in front of the old ones: the cache stays in order, oldest "
            "first, new keys appended at the end",
            code=edited(ROLL, ("torch.cat([cache, new], dim=-2)", "torch.cat([new, cache], dim=-2)"),
                        ("everything[..., -window:, :]", "everything[..., :window, :]"))),
        misconception(
            "You kept window + 1 positions: the cache holds `window` positions (the next query "
            "adds its own key to them)",
            code=edited(ROLL, ("everything[..., -window:, :]", "everything[..., -window - 1:, :]"))),
    ],
    hint="torch.cat along the positions (dim=-2), then slice off the last `window`",
)

# --- cell 18 (ex19-17)
# TESTS
RMS = """
import torch
def rms_norm(x, weight, eps=1e-6):
    mean_square = x.pow(2).mean(dim=-1, keepdim=True)
    return x / torch.sqrt(mean_square + eps) * weight
"""
RMS_REF = """
import torch
def rms_norm(x, weight, eps=1e-6):
    norm = torch.nn.RMSNorm(x.shape[-1], eps=eps).to(x.dtype)
    with torch.no_grad():
        norm.weight.copy_(weight)
        return norm(x)                      # (..., C)
"""


def _rms_case(seed, shape, shift=0.0, scale=1.0, eps=None, dtype=torch.float32, note=""):
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(*shape, generator=gen, dtype=dtype) + shift
    w = torch.rand(shape[-1], generator=gen, dtype=dtype) + 0.5
    kwargs = {} if eps is None else {"eps": eps}
    return case(x, w, note=note, **kwargs)


question(
    "q4", points=2, function="rms_norm", reference=RMS_REF, atol=1e-5,
    public=[_rms_case(1, (2, 3, 8), shift=1.0, note="x (2, 3, 8) with mean about 1"),
            _rms_case(6, (2, 8), scale=0.05, eps=1e-2, note="small inputs, eps = 0.01")],
    hidden=[
        _rms_case(2, (4, 16), shift=-2.0, note="a negative mean"),
        _rms_case(3, (1, 5, 32), scale=1e-3, eps=1e-2, note="tiny inputs, eps = 0.01"),
        _rms_case(4, (2, 2, 2, 6), dtype=torch.float64, note="four dimensions, float64"),
        _rms_case(5, (3, 1), shift=3.0, note="C = 1"),
    ],
    misconceptions=[
        misconception(
            "You subtracted the mean first (that is LayerNorm): RMSNorm divides x itself by "
            "its root mean square",
            code=edited(RMS, ("mean_square = x.pow(2)", "x = x - x.mean(-1, keepdim=True)\n"
                                                        "    mean_square = x.pow(2)"))),
        misconception(
            "You divided by the Euclidean norm (a sum of squares): RMSNorm takes the MEAN of "
            "the squares, so the result is sqrt(C) times larger than x / ||x||",
            code=edited(RMS, ("x.pow(2).mean(dim=-1, keepdim=True)",
                              "x.pow(2).sum(dim=-1, keepdim=True)"))),
        misconception(
            "You added eps outside the square root: it goes under it, "
            "sqrt(mean(x^2) + eps)",
            code=edited(RMS, ("torch.sqrt(mean_square + eps)", "(torch.sqrt(mean_square) + eps)"))),
    ],
    hint="mean of x**2 over the last axis (keepdim=True), plus eps, square root; divide, then "
         "multiply by weight",
)

# --- cell 22 (ex19-21)
# TESTS
TOP_P = """
import torch
def top_p_keep(logits, p):
    probs = torch.softmax(logits, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs
    keep_sorted = before < p
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
"""
TOP_P_REF = """
import torch
def top_p_keep(logits, p):
    # token by token: keep the most probable until their mass reaches p
    probs = torch.softmax(logits.double(), dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    keep = torch.zeros(flat.shape, dtype=torch.bool)
    for row in range(flat.shape[0]):
        total = 0.0
        for i in flat[row].argsort(descending=True).tolist():
            keep[row, i] = True
            total += float(flat[row, i])
            if total >= p:
                break
    return keep.reshape(probs.shape)
"""


def _logits(seed, *shape, scale=2.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


question(
    "q5", points=2, function="top_p_keep", reference=TOP_P_REF,
    public=[
        case(torch.log(torch.tensor([0.5, 0.05, 0.3, 0.15])), 0.7,
             note="probabilities [0.5, 0.05, 0.3, 0.15], p = 0.7: keep 0.5 and 0.3"),
        case(_logits(1, 3, 10), 0.9, note="3 rows of 10 tokens, p = 0.9"),
    ],
    hidden=[
        case(_logits(2, 2, 4, 50), 0.5, note="(2, 4, 50), p = 0.5"),
        case(_logits(3, 1, 20, scale=6.0), 0.3, note="one token holds most of the mass, p = 0.3"),
        case(_logits(4, 5, 8, scale=0.1), 0.95, note="nearly uniform rows, p = 0.95"),
        case(_logits(5, 2, 30), 1e-6, note="p close to 0: only the most probable token"),
    ],
    misconceptions=[
        misconception(
            "You dropped the token that takes the total to p: keep every token whose "
            "more-probable predecessors add up to LESS than p (cumsum - prob < p), so the "
            "nucleus reaches p",
            code=edited(TOP_P, ("before = sorted_probs.cumsum(dim=-1) - sorted_probs",
                                "before = sorted_probs.cumsum(dim=-1)"))),
        misconception(
            "You sorted in ascending order: the nucleus is made of the MOST probable tokens",
            code=edited(TOP_P, ("descending=True", "descending=False"))),
        misconception(
            "You added up the logits instead of the probabilities: apply the softmax first",
            code=edited(TOP_P, ("probs = torch.softmax(logits, dim=-1)", "probs = logits"))),
        misconception(
            "Your keep mask is in sorted order: put it back at the tokens' own positions "
            "(scatter with the sorting order)",
            code=edited(TOP_P, ("torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)",
                                "keep_sorted"))),
    ],
    hint="Sort the probabilities in descending order; a token is kept when the mass of the "
         "tokens before it is still below p; scatter the result back",
)
