"""Tests of the exercise set '17_architecture_search', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex17-05)
# TESTS
FRONT = """
import torch
from attnlab.nas import pareto_front as _front
def pareto_front(points):
    return _front(points.tolist(), (True, False))
"""
LOOP = """
import torch
def pareto_front(points):
    pts = points.tolist()
    def dominates(a, b):
        return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])
    return [i for i, p in enumerate(pts) if not any(dominates(q, p) for q in pts)]
"""
g = torch.Generator().manual_seed(17)
question(
    "q1", points=3, function="pareto_front", reference=FRONT,
    public=[
        case(torch.tensor([[0.9, 100.0], [0.8, 50.0], [0.85, 120.0], [0.95, 300.0],
                           [0.5, 10.0]]), note="five designs, one dominated"),
        case(torch.tensor([[0.9, 100.0], [0.9, 80.0], [0.7, 80.0]]),
             note="designs tied on accuracy or on parameters"),
        case(torch.tensor([[0.7, 40.0], [0.6, 30.0], [0.7, 40.0]]),
             note="two identical designs (both on the front)"),
    ],
    hidden=[
        case(torch.tensor([[0.9, 100.0], [0.9, 100.0], [0.8, 200.0]]),
             note="two identical designs on the front"),
        case(torch.tensor([[0.5, 10.0]]), note="a single design"),
        case(torch.randint(0, 5, (30, 2), generator=g).float(),
             note="30 designs with many ties and duplicates"),
        case(torch.tensor([[0.99, 68491.0], [0.99, 17867.0], [0.98, 4843.0], [0.86, 2619.0],
                           [0.18, 2619.0]]), note="the chapter's front"),
    ],
    misconceptions=[
        misconception(
            "You kept designs that are dominated through a tie: a design with the same "
            "accuracy and fewer parameters (or the same parameters and higher accuracy) "
            "dominates too. Require 'at least as good on both, strictly better on one'",
            code=edited(LOOP, ("a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])",
                               "a[0] > b[0] and a[1] < b[1]"))),
        misconception(
            "Identical designs removed each other: 'at least as good on both' is not enough "
            "to dominate, one objective must be strictly better",
            code=edited(LOOP, (" and (a[0] > b[0] or a[1] < b[1])", ""),
                        ("for q in pts)", "for j, q in enumerate(pts) if j != i)"))),
        misconception(
            "You maximised the number of parameters: fewer parameters is better, so a "
            "dominating design has at most as many",
            code=edited(LOOP, ("a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])",
                               "a[1] >= b[1] and (a[0] > b[0] or a[1] > b[1])"))),
    ],
    hint="For each design, look for another that is >= in accuracy, <= in parameters and "
         "strictly better in one of them",
)

# --- cell 10 (ex17-09)
# TESTS
BLOCK = """
from attnlab.layers import TransformerBlock
def block_parameters(C, H, F):
    return sum(p.numel() for p in TransformerBlock(C, H, F).parameters())
"""
FORMULA = """
def block_parameters(C, H, F):
    attention = 4 * C * C + 4 * C
    feed_forward = C * F + F + F * C + C
    norms = 2 * 2 * C
    return attention + feed_forward + norms
"""
question(
    "q2", points=2, function="block_parameters", reference=BLOCK,
    public=[case(64, 4, 128, note="C=64, H=4, F=128 (the chapter's hand-picked block)")],
    hidden=[
        case(32, 2, 64, note="C=32, H=2, F=64"),
        case(16, 1, 32, note="one head"),
        case(48, 3, 192, note="C=48, H=3, F=4C"),
        case(8, 8, 8, note="eight heads of width 1"),
    ],
    misconceptions=[
        misconception(
            "The number of heads does not change the parameters: the H heads share the "
            "C×C projections, each using a slice of width D = C / H",
            code=edited(FORMULA, ("attention = 4 * C * C + 4 * C",
                                  "attention = H * (4 * C * C + 4 * C)"))),
        misconception(
            "You left out the biases: each of the four projections has C of them, the "
            "feed-forward layers F and C",
            code=edited(FORMULA, ("attention = 4 * C * C + 4 * C", "attention = 4 * C * C"),
                        ("C * F + F + F * C + C", "C * F + F * C"))),
        misconception(
            "You left out the two LayerNorms: each has a weight and a bias of width C",
            code=edited(FORMULA, ("norms = 2 * 2 * C", "norms = 0"))),
        misconception(
            "You counted three projections (Q, K, V): the output projection W^O is a "
            "fourth C×C matrix with its bias",
            code=edited(FORMULA, ("attention = 4 * C * C + 4 * C",
                                  "attention = 3 * C * C + 3 * C"))),
    ],
    hint="4C² + 4C for the projections, 2CF + F + C for the feed-forward layer, 4C for the norms",
)

# --- cell 14 (ex17-13)
# TESTS
import itertools


def _count(divisible=True, rotary=True):
    n = 0
    for H, C, _d, _a, p in itertools.product((1, 2, 3, 4), (12, 16, 24), (1, 2, 3), range(3),
                                             ("none", "sinusoidal", "learned", "rotary")):
        if divisible and C % H:
            continue
        if rotary and C % H == 0 and p == "rotary" and (C // H) % 2:
            continue
        n += 1
    return n


question(
    "q3", points=1, variable="q3_size", expected=_count(), atol=0, rtol=0,
    misconceptions=[
        misconception("You multiplied the numbers of choices: that counts the designs whose "
                      "width H does not divide, and rotary designs with an odd head "
                      "dimension, which are not valid", value=_count(False, False)),
        misconception("You dropped the widths that H does not divide, but kept rotary "
                      "positions where the head dimension D = C / H is odd (C = 12, H = 4)",
                      value=_count(True, False)),
    ],
    hint="Enumerate the combinations with itertools.product and keep the valid ones",
)

# --- cell 18 (ex17-17)
# TESTS
MUTATE = """
def mutate(arch, space, axis, k):
    others = [c for c in space[axis] if c != arch[axis]]
    child = dict(arch)
    child[axis] = others[k]
    return child
"""
SPACE = {"heads": [1, 2, 4], "depth": [1, 2, 3], "width": [16, 32, 64],
         "attention": ["softmax", "linear", "local"],
         "position": ["none", "sinusoidal", "learned", "rotary"]}
A = {"heads": 2, "depth": 1, "width": 32, "attention": "softmax", "position": "learned"}
B = {"heads": 4, "depth": 3, "width": 64, "attention": "local", "position": "none"}
question(
    "q4", points=2, function="mutate", reference=MUTATE,
    public=[case(A, SPACE, "width", 1, note="width 32, k=1")],
    hidden=[
        case(A, SPACE, "position", 2, note="position 'learned', k=2"),
        case(A, SPACE, "position", 0, note="position 'learned', k=0"),
        case(B, SPACE, "attention", 0, note="attention 'local', k=0"),
        case(B, SPACE, "heads", 1, note="heads 4 (the last choice), k=1"),
        case(A, {**SPACE, "depth": [1, 2]}, "depth", 0, note="an axis of two choices"),
    ],
    misconceptions=[
        misconception(
            "You took the k-th of all the axis's choices, which can be the current value: "
            "the child would equal its parent. Remove the current value first",
            code=edited(MUTATE, ("others = [c for c in space[axis] if c != arch[axis]]",
                                 "others = space[axis]"))),
        misconception(
            "You counted k + 1 steps on from the current value: take the k-th of the other "
            "values in the space's order",
            code=edited(MUTATE, ("others[k]",
                                 "space[axis][(space[axis].index(arch[axis]) + 1 + k) "
                                 "% len(space[axis])]"))),
        misconception(
            "You returned only the changed axis: the child keeps every other axis of its "
            "parent",
            code=edited(MUTATE, ("child = dict(arch)", "child = {}"))),
    ],
    hint="others = [c for c in space[axis] if c != arch[axis]]; copy arch and set others[k]",
)

# --- cell 22 (ex17-21)
# TESTS
AGING = """
def aging_step(accuracies, sample, child_accuracy):
    parent = sample[0]
    for i in sample[1:]:
        if accuracies[i] > accuracies[parent]:
            parent = i
    return parent, accuracies[1:] + [child_accuracy]
"""
question(
    "q5", points=2, function="aging_step", reference=AGING,
    public=[case([0.5, 0.9, 0.3, 0.7], [2, 3], 0.8, note="a population of 4, sample [2, 3]"),
            case([0.3, 0.7, 0.2, 0.7], [1, 3], 0.4, note="a tie in the sample [1, 3]")],
    hidden=[
        case([0.95, 0.2, 0.6, 0.4, 0.1], [1, 3, 4], 0.5,
             note="the oldest is the best; the sample does not contain it"),
        case([0.9, 0.8, 0.8, 0.2], [2, 1], 0.1, note="a tie in the sample"),
        case([0.6, 0.4], [0, 1], 0.9, note="a population of two"),
        case([0.1, 0.9, 0.5], [2], 0.5, note="a sample of one"),
    ],
    misconceptions=[
        misconception(
            "You removed the worst member, not the oldest: aging evolution lets every member "
            "die after a fixed number of cycles, however good its (noisy) score",
            code=edited(AGING, ("return parent, accuracies[1:] + [child_accuracy]",
                                "worst = accuracies.index(min(accuracies))\n"
                                "    rest = accuracies[:worst] + accuracies[worst + 1:]\n"
                                "    return parent, rest + [child_accuracy]"))),
        misconception(
            "You took the best of the whole population as the parent: the parent is the best "
            "of the sample only",
            code=edited(AGING, ("for i in sample[1:]:", "for i in range(len(accuracies)):"),
                        ("parent = sample[0]", "parent = 0"))),
        misconception(
            "You put the child first, as the oldest member: it is the youngest, so it goes "
            "last",
            code=edited(AGING, ("accuracies[1:] + [child_accuracy]",
                                "[child_accuracy] + accuracies[1:]"))),
        misconception(
            "On a tie you took the member that comes last in the sample: keep the first "
            "(use > rather than >=)",
            code=edited(AGING, ("if accuracies[i] > accuracies[parent]:",
                                "if accuracies[i] >= accuracies[parent]:"))),
    ],
    hint="parent: the sampled index with the highest accuracy; population: drop index 0, "
         "append the child",
)

# --- cell 28 (ex17-28)
# TESTS
def _flops_crossing(strict=True, fewer="linear"):
    from attnlab.nas import Architecture, flops_per_example

    lengths = (4, 8, 16, 32, 64, 128, 256)
    flops = {kind: [flops_per_example(Architecture(2, 2, 32, kind, "learned"), T, 10)
                    for T in lengths] for kind in ("softmax", "linear")}
    cheaper, dearer = flops[fewer], flops["softmax" if fewer == "linear" else "linear"]
    return min(T for T, a, b in zip(lengths, cheaper, dearer) if a < b or (a == b
                                                                           and not strict))


_crossing = _flops_crossing()
assert _crossing > 4 and _flops_crossing(strict=False) < _crossing, _crossing
question(
    "q6", points=1, variable="q6_length", expected=_crossing, atol=0, rtol=0,
    misconceptions=[
        misconception(f"At T = {_flops_crossing(strict=False)} the two designs need the same "
                      "FLOPs (the ratio is 1, as T = D): the question asks where linear needs "
                      "strictly fewer", value=_flops_crossing(strict=False)),
        misconception("At T = 4 the SOFTMAX design is the cheaper one (the ratio linear / "
                      "softmax is above 1): at short lengths the T x T scores cost less than "
                      "linear attention's D x D state", value=4),
    ],
    hint="Find the first row whose ratio linear / softmax is below 1",
)
