"""Tests of the exercise set '12_recommendation', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex12-05)
# TESTS
RANKS = """
import torch
def target_ranks(scores, targets):
    t = scores.gather(1, targets[:, None])
    return (scores >= t).sum(dim=1) - 1
"""
g = torch.Generator().manual_seed(12)
ties = torch.tensor([[0.5, 0.5, 0.2, 0.9],     # target 0 tied with a later item
                     [0.5, 0.5, 0.2, 0.9],     # target 1 tied with an earlier item
                     [0.3, 0.3, 0.3, 0.3]])    # everything tied
question(
    "q1", points=2, function="target_ranks", reference=RANKS,
    public=[
        case(torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.1, 0.9, 0.5, 0.3]]), torch.tensor([1, 3]),
             note="two users, no ties (ranks 0 and 2)"),
        case(ties, torch.tensor([0, 1, 2]), note="ties with the target"),
    ],
    hidden=[
        case(torch.randint(0, 5, (40, 30), generator=g).float(),
             torch.randint(0, 30, (40,), generator=g), note="40 users with many ties"),
        case(torch.tensor([[float("-inf"), 0.2, 0.7, 0.1], [float("-inf"), 0.2, 0.7, 0.1]]),
             torch.tensor([2, 3]), note="a candidate scored -inf"),
        case(torch.randn(8, 300, generator=g), torch.randint(1, 300, (8,), generator=g),
             note="300 candidates"),
    ],
    misconceptions=[
        misconception(
            "Ties counted for the target: a recommender that scores every item the same would "
            "rank it first. Count the other items that score at least as high (>=)",
            code="import torch\ndef target_ranks(scores, targets):\n"
                 "    t = scores.gather(1, targets[:, None])\n"
                 "    return (scores > t).sum(dim=1)"),
        misconception(
            "You counted the target itself: with scores >= its own score it is always "
            "included, so subtract 1 (the top item has rank 0)",
            code="import torch\ndef target_ranks(scores, targets):\n"
                 "    t = scores.gather(1, targets[:, None])\n"
                 "    return (scores >= t).sum(dim=1)"),
        misconception(
            "You ranked from the bottom: a higher score must give a smaller rank (rank 0 is "
            "the best-scored item)",
            code="import torch\ndef target_ranks(scores, targets):\n"
                 "    t = scores.gather(1, targets[:, None])\n"
                 "    return (scores <= t).sum(dim=1) - 1"),
        misconception(
            "You took the target's position in a sorted list: ties are then broken by item "
            "index, for the target when it comes first. Count the others scoring at least "
            "as high instead",
            code="import torch\ndef target_ranks(scores, targets):\n"
                 "    order = scores.argsort(dim=1, descending=True, stable=True)\n"
                 "    return (order == targets[:, None]).int().argmax(dim=1)"),
    ],
    hint="Per row, count the other candidates whose score is at least the target's "
         "(scores.gather(1, targets[:, None]) is each row's target score)",
)

# --- cell 10 (ex12-09)
# TESTS
NDCG = """
import torch
def ndcg_at_k(ranks, k):
    gain = 1.0 / torch.log2(ranks.double() + 2.0)
    return torch.where(ranks < k, gain, 0.0).float()
"""
g = torch.Generator().manual_seed(13)
question(
    "q2", points=2, function="ndcg_at_k", reference=NDCG,
    public=[case(torch.tensor([0, 1, 2, 9, 10, 40]), 10, note="ranks 0, 1, 2, 9, 10, 40 at k=10")],
    hidden=[
        case(torch.randint(0, 20, (50,), generator=g), 5, note="random ranks at k=5"),
        case(torch.tensor([0, 1, 2, 3]), 1, note="k=1"),
        case(torch.tensor([299, 3, 150]), 300, note="k equal to the number of items"),
    ],
    misconceptions=[
        misconception(
            "You used log2(r + 1): with 0-based ranks the top item (r = 0) then divides by "
            "log2(1) = 0. The discount is 1 / log2(r + 2)",
            code="import torch\ndef ndcg_at_k(ranks, k):\n"
                 "    gain = 1.0 / torch.log2(ranks.double() + 1.0)\n"
                 "    return torch.where(ranks < k, gain, 0.0).float()"),
        misconception(
            "You used the natural logarithm: the discount is 1 / log2(r + 2), so that the "
            "top item gets exactly 1",
            code="import torch\ndef ndcg_at_k(ranks, k):\n"
                 "    gain = 1.0 / torch.log(ranks.double() + 2.0)\n"
                 "    return torch.where(ranks < k, gain, 0.0).float()"),
        misconception(
            "You included the target at rank k: only ranks 0 .. k-1 are in the top k (r < k)",
            code="import torch\ndef ndcg_at_k(ranks, k):\n"
                 "    gain = 1.0 / torch.log2(ranks.double() + 2.0)\n"
                 "    return torch.where(ranks <= k, gain, 0.0).float()"),
        misconception(
            "You forgot the cut-off: a target ranked k or lower in the list must give 0",
            code="import torch\ndef ndcg_at_k(ranks, k):\n"
                 "    return (1.0 / torch.log2(ranks.double() + 2.0)).float()"),
    ],
)

# --- cell 14 (ex12-13)
# TESTS
MASK = """
import torch
def history_mask(ids):
    T = ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    return causal & (ids != 0)[:, None, :]
"""
g = torch.Generator().manual_seed(14)
lengths = torch.tensor([1, 3, 6, 8, 8])
padded = torch.randint(1, 50, (5, 8), generator=g)
padded = padded * (torch.arange(8)[None, :] >= 8 - lengths[:, None])   # left padding
question(
    "q3", points=2, function="history_mask", reference=MASK,
    public=[case(torch.tensor([[0, 0, 12, 40, 7, 31]]), note="one history, two padded positions")],
    hidden=[
        case(padded, note="five histories of lengths 1, 3, 6, 8, 8"),
        case(torch.tensor([[5, 6, 7]]), note="a history without padding"),
        case(torch.tensor([[0, 0, 0, 9], [0, 3, 4, 5]]), note="histories of length 1 and 3"),
    ],
    misconceptions=[
        misconception(
            "Your mask is causal but lets real positions attend to the padding: also require "
            "ids[b, s] != 0 for the key s",
            code="import torch\ndef history_mask(ids):\n"
                 "    B, T = ids.shape\n"
                 "    return torch.ones(T, T, dtype=torch.bool).tril().expand(B, T, T)"),
        misconception(
            "Your mask convention is inverted: True means the query MAY attend the key",
            code="import torch\ndef history_mask(ids):\n"
                 "    T = ids.shape[1]\n"
                 "    causal = torch.ones(T, T, dtype=torch.bool).tril()\n"
                 "    return ~(causal & (ids != 0)[:, None, :])"),
        misconception(
            "Your mask lets queries see the future (s > t): a causal mask is lower "
            "triangular, s <= t",
            code="import torch\ndef history_mask(ids):\n"
                 "    T = ids.shape[1]\n"
                 "    causal = torch.ones(T, T, dtype=torch.bool).triu()\n"
                 "    return causal & (ids != 0)[:, None, :]"),
        misconception(
            "You masked padded queries (rows) instead of padded keys (columns): it is the key "
            "s that must not be padding, mask[b, t, s] needs ids[b, s] != 0",
            code="import torch\ndef history_mask(ids):\n"
                 "    T = ids.shape[1]\n"
                 "    causal = torch.ones(T, T, dtype=torch.bool).tril()\n"
                 "    return causal & (ids != 0)[:, :, None]"),
    ],
)

# --- cell 18 (ex12-17)
# TESTS
question(
    "q4", points=1, variable="q4_random_hr", expected=(10 / 300, 10 / 101), atol=1e-5,
    rtol=1e-4,
    misconceptions=[
        misconception("With 100 sampled negatives there are 101 candidates, the target among "
                      "them: the chance to be in the top 10 is 10 / 101", value=(10 / 300, 0.1)),
        misconception("The padding id is not a candidate: there are 300 items to rank",
                      value=(10 / 301, 10 / 101)),
        misconception("HR@10 of a random ranking is not 10%: it depends on how many "
                      "candidates the target is ranked among", value=(0.1, 0.1)),
    ],
    hint="With random scores the target is equally likely to land at any position of the "
         "ranked candidates",
)

# --- cell 22 (ex12-21)
# TESTS
def _markov_hr(fit_on: str = "train", k: int = 10) -> tuple[float, float]:
    from attnlab.data.sessions import PARTNER, leave_last_out, sessions_task
    from attnlab.metrics import hit_rate_at_k
    from attnlab.models.sasrec import MarkovRecommender

    task = sessions_task(n_train=2000, n_valid=0, n_test=1000, seed=1)
    markov = MarkovRecommender(300).fit(getattr(task, fit_on).items)
    history, targets, kinds = leave_last_out(task.test, max_len=24)
    scores = markov.score(history)
    partner = kinds == PARTNER
    return (float(hit_rate_at_k(scores, targets, k=k)),
            float(hit_rate_at_k(scores[partner], targets[partner], k=k)))


question(
    "q5", points=2, variable="q5_markov_hr", expected=_markov_hr(), atol=1e-4, rtol=0.0,
    misconceptions=[
        misconception("You fitted the chain on the test sessions, which hold the very targets "
                      "it is tested on: fit it on task.train.items", value=_markov_hr("test")),
        misconception("You computed HR@1 or another k: the question asks for HR@10",
                      value=_markov_hr(k=1)),
    ],
    hint="Fit on task.train.items, score leave_last_out(task.test, max_len=24)'s histories, "
         "and select the partner targets with kinds == PARTNER",
)

# --- cell 28 (ex12-28)
# TESTS
def _popularity_hr():
    from attnlab.data.sessions import leave_last_out, sessions_task
    from attnlab.metrics import hit_rate_at_k
    from attnlab.models.sasrec import PopularityRecommender

    task = sessions_task(n_train=2000, n_valid=0, n_test=1000, seed=1)
    history, targets, _ = leave_last_out(task.test, max_len=24)
    scores = PopularityRecommender(300).fit(task.train.items).score(history)
    rows = torch.arange(len(targets))
    draw = torch.rand(scores.shape, generator=torch.Generator().manual_seed(0))
    draw[:, 0] = draw[rows, targets] = 2.0
    sampled = torch.cat([scores[rows, targets][:, None],
                         scores.gather(1, draw.argsort(dim=1)[:, :100])], dim=1)
    return (float(hit_rate_at_k(scores, targets, k=10)),
            float(hit_rate_at_k(sampled, torch.zeros_like(targets), k=10)), len(targets))


_hr_all, _hr_sampled, _users = _popularity_hr()
# B is what the measurement shows: one recommender, a far larger HR@10 on the easier test,
# with 1000 test users (a binomial standard error of at most 0.016).
assert _hr_sampled > 1.5 * _hr_all and _users == 1000, (_hr_all, _hr_sampled)
question(
    "q6", points=1, variable="q6_answer", expected="B",
    misconceptions=[
        misconception("The recommender is the same in both rows and recommends the same items "
                      "to everyone: only the test changed. With 100 random negatives, most of "
                      "them unpopular, a popular target lands in the top 10 far more easily",
                      value="A"),
        misconception("With 1000 test users an HR@10 has a standard error below 0.02, far less "
                      "than the gap: the gap is systematic, the test with sampled negatives is "
                      "easier", value="C"),
        misconception("Sampled negatives are drawn at random, not chosen as items the user "
                      "could not want: they make the test easier, not more honest, and change "
                      "how models compare", value="D"),
    ],
    hint="What changed between the two numbers: the recommender, or the test?",
)
