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
