"""Tests of the exercise set '06_transformer', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex06-05)
# TESTS
PAIRS = """
def next_token_pairs(ids):
    return ids[:, :-1], ids[:, 1:]
"""
g = torch.Generator().manual_seed(6)
question(
    "q1", points=2, function="next_token_pairs", reference=PAIRS,
    public=[case(torch.tensor([[1, 5, 6, 7, 2]]), note="one sequence")],
    hidden=[case(torch.randint(0, 12, (4, 9), generator=g), note="a batch of 4"),
            case(torch.tensor([[1, 3], [1, 4]]), note="sequences of two tokens")],
    misconceptions=[
        misconception("The targets are the inputs shifted the wrong way: position t predicts "
                      "token t + 1, so targets = ids[:, 1:]",
                      code="def next_token_pairs(ids):\n    return ids[:, 1:], ids[:, :-1]"),
        misconception("You shifted along the batch, not along the sequence",
                      code="def next_token_pairs(ids):\n    return ids[:-1], ids[1:]"),
    ],
)

# --- cell 10 (ex06-09)
# TESTS
LN = """
import torch
def layer_norm(x, weight, bias, eps=1e-5):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], weight, bias, eps)
"""
g = torch.Generator().manual_seed(7)
question(
    "q2", points=2, function="layer_norm", reference=LN,
    public=[case(torch.randn(2, 3, 4, generator=g), torch.ones(4), torch.zeros(4),
                 note="unit weight, zero bias"),
            case(torch.tensor([[2.0, 2.0, 2.0, 2.0], [0.0, 0.1, 0.2, 0.3]]), torch.ones(4),
                 torch.zeros(4), eps=0.1,
                 note="a constant row (variance 0) and eps = 0.1")],
    hidden=[case(torch.randn(3, 5, 8, generator=g) * 10 + 3, torch.randn(8, generator=g),
                 torch.randn(8, generator=g), note="scaled and shifted features"),
            case(torch.randn(2, 2, 6, generator=g), torch.ones(6), torch.zeros(6), eps=0.5,
                 note="a large eps")],
    misconceptions=[
        misconception("You normalised over the positions (dim 1), not over the features of "
                      "each position (the last dim)",
                      code="import torch\ndef layer_norm(x, weight, bias, eps=1e-5):\n"
                           "    m = x.mean(dim=1, keepdim=True)\n"
                           "    v = x.var(dim=1, unbiased=False, keepdim=True)\n"
                           "    return (x - m) / torch.sqrt(v + eps) * weight + bias"),
        misconception("You used the unbiased variance (dividing by C - 1): layer norm divides "
                      "by C",
                      code="import torch\ndef layer_norm(x, weight, bias, eps=1e-5):\n"
                           "    m = x.mean(dim=-1, keepdim=True)\n"
                           "    v = x.var(dim=-1, keepdim=True)\n"
                           "    return (x - m) / torch.sqrt(v + eps) * weight + bias"),
        misconception("You left out eps: it goes inside the square root",
                      code="import torch\ndef layer_norm(x, weight, bias, eps=1e-5):\n"
                           "    m = x.mean(dim=-1, keepdim=True)\n"
                           "    v = x.var(dim=-1, unbiased=False, keepdim=True)\n"
                           "    return (x - m) / torch.sqrt(v) * weight + bias"),
    ],
)

# --- cell 14 (ex06-13)
# TESTS
GREEDY = """
import torch
def greedy_generate(model, prompt, n):
    return model.generate(prompt, n, temperature=0.0, use_cache=False)
"""
def _gpt(seed):
    return Model("attnlab.models.GPT", {"config": Model("attnlab.models.GPTConfig", {
        "vocab_size": 12, "block_size": 24, "n_layer": 2, "n_head": 4, "n_embd": 32})},
        seed=seed)


g = torch.Generator().manual_seed(8)
question(
    "q3", points=3, function="greedy_generate", reference=GREEDY,
    public=[case(_gpt(0), torch.tensor([[1, 4, 5]]), 5, note="one prompt, 5 tokens"),
            case(_gpt(2), torch.tensor([[1, 4, 5]]), 8,
                 note="another model (seed 2), 8 tokens: its next token depends on the "
                      "tokens generated so far")],
    hidden=[case(_gpt(1), torch.randint(0, 12, (3, 6), generator=g), 8,
                 note="a batch of 3 prompts"),
            case(_gpt(2), torch.tensor([[1]]), 12, note="a prompt of one token")],
    misconceptions=[
        misconception("You took the arg-max at the first position: the next token comes from "
                      "the logits at the last position",
                      code="import torch\ndef greedy_generate(model, prompt, n):\n"
                           "    ids = prompt\n    with torch.no_grad():\n"
                           "        for _ in range(n):\n"
                           "            nxt = model(ids)[:, 0].argmax(-1, keepdim=True)\n"
                           "            ids = torch.cat([ids, nxt], dim=1)\n    return ids"),
        misconception("You fed the prompt alone at every step: each new token must be appended "
                      "and read at the next step",
                      code="import torch\ndef greedy_generate(model, prompt, n):\n"
                           "    with torch.no_grad():\n"
                           "        nxt = model(prompt)[:, -1].argmax(-1, keepdim=True)\n"
                           "    return torch.cat([prompt] + [nxt] * n, dim=1)"),
    ],
)

# --- cell 18 (ex06-17)
# TESTS
question(
    "q4", points=1, variable="q4_positions",
    expected=(sum(range(9, 9 + 4)), 9 + 3),
    misconceptions=[
        misconception("Swapped: the cache is what saves work", value=(12, 42)),
        misconception("You counted five steps: 4 new tokens take 4 steps, which read 9, 10, "
                      "11 and 12 positions without a cache and 9, 1, 1 and 1 with one",
                      value=(9 + 10 + 11 + 12 + 13, 13)),
    ],
)

# --- cell 22 (ex06-21)
# TESTS
def _norm_params():
    from attnlab.layers import TransformerBlock

    block = TransformerBlock(64, 4, 256)
    return sum(p.numel() for n in ("norm1", "norm2")
               for p in getattr(block, n).parameters())


question(
    "q5", points=1, variable="q5_norm_parameters", expected=_norm_params(),
    misconceptions=[
        misconception("Each layer norm has a weight AND a bias of C entries", value=128),
        misconception("A layer norm has one weight and one bias per feature, not a C x C "
                      "matrix", value=2 * 64 * 64),
    ],
)

# --- cell 26 (ex06-n03)
# TESTS
CROSS = """
import torch
def cross_attention(attn, x, memory, memory_ok):
    with torch.no_grad():
        return attn(x, memory, memory, mask=memory_ok[:, None, :])
"""


def _mha(seed, C=8, H=2):
    return Model("attnlab.layers.MultiHeadAttention", {"embed_dim": C, "num_heads": H},
                 seed=seed)


g = torch.Generator().manual_seed(16)
question(
    "q6", points=3, function="cross_attention", reference=CROSS,
    public=[case(_mha(0), torch.randn(2, 3, 8, generator=g), torch.randn(2, 5, 8, generator=g),
                 torch.tensor([[True] * 5, [True, True, False, False, False]]),
                 note="T = 3 queries, S = 5 memory positions, the second source padded "
                      "after 2 tokens")],
    hidden=[case(_mha(1, 16, 4), torch.randn(3, 4, 16, generator=g),
                 torch.randn(3, 6, 16, generator=g),
                 torch.arange(6) < torch.tensor([[6], [3], [1]]),
                 note="H = 4 heads, three sources of lengths 6, 3 and 1"),
            case(_mha(2), torch.randn(1, 6, 8, generator=g), torch.randn(1, 2, 8, generator=g),
                 torch.tensor([[True, True]]), note="more queries than memory positions")],
    misconceptions=[
        misconception("The queries come from the decoder (x) and the keys and values from the "
                      "memory, not the other way round",
                      code="import torch\ndef cross_attention(attn, x, memory, memory_ok):\n"
                           "    with torch.no_grad():\n        return attn(memory, x, x)"),
        misconception("That is self-attention over x: in cross-attention the keys and values "
                      "come from the memory",
                      code="import torch\ndef cross_attention(attn, x, memory, memory_ok):\n"
                           "    with torch.no_grad():\n        return attn(x)"),
        misconception("You ignored the memory's padding: a query must not look at padded "
                      "source positions",
                      code=edited(CROSS, (", mask=memory_ok[:, None, :]", ""))),
        misconception("Your mask is the wrong way round: memory_ok is True where a query MAY "
                      "look (nn.MultiheadAttention's key_padding_mask is the opposite)",
                      code=edited(CROSS, ("mask=memory_ok", "mask=~memory_ok"))),
    ],
)

# --- cell 30 (ex06-n07)
# TESTS
CACHED = """
import torch
def cached_step(q, k, v, k_cache, v_cache):
    T, S, D = q.shape[-2], k_cache.shape[-2], q.shape[-1]
    k_all = torch.cat([k_cache, k], dim=-2)
    v_all = torch.cat([v_cache, v], dim=-2)
    mask = torch.ones(T, S + T, dtype=torch.bool).tril(diagonal=S)
    scores = q @ k_all.transpose(-2, -1) / D**0.5
    weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
    return weights @ v_all, mask
"""


def _step(B, H, T, S, D, g):
    return [torch.randn(B, H, L, D, generator=g) for L in (T, T, T, S, S)]


g = torch.Generator().manual_seed(17)
question(
    "q7", points=3, function="cached_step", reference=CACHED,
    public=[case(*_step(1, 2, 2, 3, 4, g), note="T = 2 new positions after S = 3 cached ones")],
    hidden=[case(*_step(2, 2, 1, 5, 4, g), note="one new token after 5 cached ones"),
            case(*_step(1, 1, 3, 0, 8, g), note="an empty cache (the prompt's step)"),
            case(*_step(2, 4, 4, 2, 4, g), note="T = 4 new positions after S = 2")],
    misconceptions=[
        misconception("Your causal mask is aligned to the top left: new position i is the "
                      "(S + i)-th of the sequence and sees the S cached keys and the new ones "
                      "up to itself, tril(diagonal=S)",
                      code=edited(CACHED, ("tril(diagonal=S)", "tril()"))),
        misconception("Without a mask, a new position sees the new positions after it: with "
                      "T > 1 new positions the step needs the causal mask",
                      code=edited(CACHED, (".tril(diagonal=S)", ""))),
        misconception("The cache holds the earlier positions: append the new keys and values "
                      "after it, not before",
                      code=edited(CACHED, ("[k_cache, k]", "[k, k_cache]"),
                                  ("[v_cache, v]", "[v, v_cache]"))),
    ],
)

# --- cell 34 (ex06-n11)
# TESTS
SAMPLE = """
import torch
from attnlab.decoding import top_k_filter
def sampling_probs(logits, temperature, k):
    return torch.softmax(top_k_filter(logits, k) / temperature, dim=-1)
"""
g = torch.Generator().manual_seed(18)
question(
    "q8", points=2, function="sampling_probs", reference=SAMPLE,
    public=[case(torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0], [0.1, 0.4, 0.3, 0.2, 0.9]]), 0.5, 3,
                 note="two rows of V = 5, temperature 0.5, k = 3")],
    hidden=[case(torch.randn(2, 3, 10, generator=g), 2.0, 4, note="temperature 2, k = 4"),
            case(torch.randn(4, 7, generator=g), 0.1, 1, note="k = 1 (greedy)"),
            case(torch.randn(3, 6, generator=g), 1.5, 6, note="k = V: nothing removed")],
    misconceptions=[
        misconception("You multiplied by the temperature: the logits are divided by it, so a "
                      "temperature below 1 sharpens the distribution",
                      code=edited(SAMPLE, ("/ temperature", "* temperature"))),
        misconception("You zeroed the probabilities outside the top k without renormalising: "
                      "the kept ones must sum to 1 (remove the logits before the softmax)",
                      code="import torch\ndef sampling_probs(logits, temperature, k):\n"
                           "    p = torch.softmax(logits / temperature, dim=-1)\n"
                           "    kth = p.topk(k, dim=-1).values[..., -1:]\n"
                           "    return p.masked_fill(p < kth, 0.0)"),
        misconception("You kept the k smallest logits: top-k keeps the k most likely tokens",
                      code="import torch\ndef sampling_probs(logits, temperature, k):\n"
                           "    kth = logits.topk(k, dim=-1, largest=False).values[..., -1:]\n"
                           "    kept = logits.masked_fill(logits > kth, float('-inf'))\n"
                           "    return torch.softmax(kept / temperature, dim=-1)"),
    ],
)

# --- cell 38 (ex06-n15)
# TESTS
ANSWER = """
from attnlab.train import sequence_loss
def answer_loss(logits, targets, answer_mask):
    return sequence_loss(logits, targets, answer_mask)
"""


def _loss_case(B, T, V, lengths, g):
    starts = [T - n for n in lengths]
    mask = torch.tensor([[t >= s for t in range(T)] for s in starts])
    return (torch.randn(B, T, V, generator=g), torch.randint(0, V, (B, T), generator=g), mask)


g = torch.Generator().manual_seed(19)
question(
    "q9", points=2, function="answer_loss", reference=ANSWER,
    public=[case(*_loss_case(2, 6, 5, [2, 4], g),
                 note="answers of 2 and 4 tokens at the end of 6 positions")],
    hidden=[case(*_loss_case(3, 8, 7, [1, 3, 5], g), note="answers of 1, 3 and 5 tokens"),
            case(*_loss_case(2, 5, 4, [5, 2], g), note="an answer filling its sequence")],
    misconceptions=[
        misconception("You took the loss at every position: the prompt's positions must not "
                      "count",
                      code="import torch.nn.functional as F\n"
                           "def answer_loss(logits, targets, answer_mask):\n"
                           "    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())"),
        misconception("You zeroed the prompt's losses but divided by every position: divide "
                      "by the number of answer positions",
                      code="import torch.nn.functional as F\n"
                           "def answer_loss(logits, targets, answer_mask):\n"
                           "    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(),"
                           "\n                             reduction='none')\n"
                           "    return (losses * answer_mask.flatten()).mean()"),
        misconception("You averaged each sequence's answer, then the sequences: every answer "
                      "token of the batch must weigh the same",
                      code="import torch.nn.functional as F\n"
                           "def answer_loss(logits, targets, answer_mask):\n"
                           "    losses = F.cross_entropy(logits.transpose(1, 2), targets,"
                           "\n                             reduction='none')\n"
                           "    per_seq = (losses * answer_mask).sum(1) / answer_mask.sum(1)\n"
                           "    return per_seq.mean()"),
    ],
)
