"""Tests of the exercise set '16_attention_analysis', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex16-05)
# TESTS
ENTROPY = """
import torch
def head_entropy(weights):
    logs = torch.log(torch.where(weights > 0, weights, torch.ones_like(weights)))
    per_query = -(weights * logs).sum(dim=-1)
    return per_query.mean(dim=(0, 2))
"""


def _causal_weights(B, H, T, seed):
    gen = torch.Generator().manual_seed(seed)
    scores = 2 * torch.randn(B, H, T, T, generator=gen, dtype=torch.float64)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)


def _weights(B, H, T, S, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(B, H, T, S, generator=gen, dtype=torch.float64), -1)


one_hot_and_uniform = torch.stack([torch.eye(4), torch.full((4, 4), 0.25)])[None]  # (1, 2, 4, 4)
question(
    "q1", points=2, function="head_entropy", reference=ENTROPY,
    public=[
        case(one_hot_and_uniform, note="head 1 one-hot, head 2 uniform over 4 keys"),
        case(_causal_weights(2, 3, 5, seed=1), note="causal weights, 2 examples, 3 heads"),
        case(_weights(2, 2, 3, 5, seed=5), note="T = 3 queries, S = 5 keys"),
    ],
    hidden=[
        case(_weights(3, 4, 2, 7, seed=2), note="T = 2 queries, S = 7 keys"),
        case(_causal_weights(1, 1, 9, seed=3), note="one causal head over 9 tokens"),
        case(_weights(2, 2, 6, 3, seed=4), note="T = 6 queries, S = 3 keys"),
    ],
    misconceptions=[
        misconception(
            "You got NaN: a masked key has weight 0, and 0 * log(0) is 0 * -inf = nan in "
            "floating point; count 0 log 0 as 0 (take the log only where the weight is > 0)",
            code=edited(ENTROPY, (
                "torch.log(torch.where(weights > 0, weights, torch.ones_like(weights)))",
                "torch.log(weights)"))),
        misconception(
            "You summed over the queries (dim=-2): a query's entropy sums over the keys, "
            "the last axis, along which its weights sum to 1",
            code=edited(ENTROPY, ("sum(dim=-1)", "sum(dim=-2)"))),
        misconception(
            "Your entropy is in bits (log base 2): use the natural logarithm, nats",
            code=edited(ENTROPY, ("return per_query.mean(dim=(0, 2))",
                                  "return per_query.mean(dim=(0, 2)) / math.log(2)"),
                        ("import torch", "import math\nimport torch"))),
        misconception(
            "You averaged over the heads: average over the examples (dim 0) and the queries "
            "(dim 2), and keep one number per head, shape (H,)",
            code=edited(ENTROPY, ("mean(dim=(0, 2))", "mean(dim=(0, 1))"))),
    ],
    hint="log only where the weight is > 0, sum over the last axis, mean over dims 0 and 2",
)

# --- cell 10 (ex16-09)
# TESTS
import math

question(
    "q2", points=1, variable="q2_bits",
    expected=sum(math.log2(n) for n in range(1, 5)) / 4, atol=1e-3, rtol=0.0,
    misconceptions=[
        misconception("2 bits is a query that sees all 4 keys: with the causal mask, query t "
                      "sees only t keys, so its entropy is log2(t)", value=2.0),
        misconception("That is the answer in nats: use log base 2 for bits",
                      value=sum(math.log(n) for n in range(1, 5)) / 4),
        misconception("That is the sum over the queries: average it over the 4 queries",
                      value=sum(math.log2(n) for n in range(1, 5))),
    ],
    hint="Query t spreads its weight over t keys: its entropy is log2(t) bits",
)

# --- cell 14 (ex16-13)
# TESTS
ROLLOUT = """
import torch
def rollout_with_residual(weights, r):
    T = weights.shape[-1]
    eye = torch.eye(T, dtype=weights.dtype)
    result = eye
    for a in weights:
        mixed = r * eye + (1 - r) * a
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed @ result
    return result
"""


def _maps(L, T, seed, padded=()):
    gen = torch.Generator().manual_seed(seed)
    w = torch.softmax(2 * torch.randn(L, T, T, generator=gen, dtype=torch.float64), dim=-1)
    for t in padded:
        w[:, t] = 0.0                                   # a query that attended nothing
    return w


question(
    "q3", points=2, function="rollout_with_residual", reference=ROLLOUT,
    public=[
        case(_maps(2, 3, seed=1, padded=[2]), 0.3, note="two layers, query 3 a padding query, r = 0.3"),
    ],
    hidden=[
        case(_maps(3, 5, seed=2), 0.5, note="three layers, every row sums to 1, r = 0.5"),
        case(_maps(4, 6, seed=3, padded=[0, 4]), 0.2, note="four layers, two padding queries, r = 0.2"),
        case(_maps(2, 4, seed=4, padded=[1]), 0.7, note="two layers, r = 0.7"),
    ],
    misconceptions=[
        misconception(
            "You left out the identity: the residual connection carries each token forward, "
            "so mix r I into every layer's map before chaining",
            code=edited(ROLLOUT, ("mixed = r * eye + (1 - r) * a", "mixed = a"))),
        misconception(
            "You did not renormalise: a row that sums to less than 1 (a padding query) must be "
            "divided by its sum after adding r I",
            code=edited(ROLLOUT, ("        mixed = mixed / mixed.sum(dim=-1, keepdim=True)\n", ""))),
        misconception(
            "You multiplied in the wrong order: the latest layer goes on the left, "
            "R = M_L ... M_1 (layer 2's tokens read layer 1's tokens, which read the inputs)",
            code=edited(ROLLOUT, ("result = mixed @ result", "result = result @ mixed"))),
        misconception(
            "You swapped the weights: the identity gets r and the attention 1 - r",
            code=edited(ROLLOUT, ("r * eye + (1 - r) * a", "(1 - r) * eye + r * a"))),
    ],
)

# --- cell 18 (ex16-17)
# TESTS
ORDER = """
import torch
def prune_order(base_acc, masked_acc):
    importance = base_acc - masked_acc
    H = masked_acc.shape[1]
    flat = torch.argsort(importance.flatten(), stable=True)
    return torch.stack([flat // H, flat % H], dim=1)
"""


def _accuracies(L, H, seed, base=0.97):
    gen = torch.Generator().manual_seed(seed)
    drops = torch.randperm(L * H, generator=gen).reshape(L, H).double() / 100   # distinct
    return base - drops


question(
    "q4", points=2, function="prune_order", reference=ORDER,
    public=[
        case(0.9, torch.tensor([[0.80, 0.89, 0.60], [0.88, 0.20, 0.85]], dtype=torch.float64),
             note="2 layers of 3 heads"),
    ],
    hidden=[
        case(0.97, _accuracies(3, 2, seed=1), note="3 layers of 2 heads"),
        case(0.97, _accuracies(4, 4, seed=2), note="4 layers of 4 heads"),
        case(0.5, torch.tensor([[0.55, 0.40, 0.49, 0.10, 0.52]], dtype=torch.float64),
             note="one layer; masking some heads helps"),
    ],
    misconceptions=[
        misconception(
            "Your order starts with the most important head: prune the heads whose removal "
            "costs least first (sort the importance ascending)",
            code=edited(ORDER, ("torch.argsort(importance.flatten(), stable=True)",
                                "torch.argsort(importance.flatten(), descending=True, "
                                "stable=True)"))),
        misconception(
            "You unravelled the flat index with the number of layers: the heads are read row "
            "by row, so index i is layer i // H, head i % H",
            code=edited(ORDER, ("H = masked_acc.shape[1]", "H = masked_acc.shape[0]"))),
        misconception(
            "Your rows are (head, layer): each row must be (layer, head)",
            code=edited(ORDER, ("[flat // H, flat % H]", "[flat % H, flat // H]"))),
    ],
    hint="importance = base_acc - masked_acc; argsort its flattened values ascending; "
         "row i of the flat order is (i // H, i % H)",
)

# --- cell 22 (ex16-21)
# TESTS
OCCLUSION = """
import torch
def occlusion_scores(model, ids, lengths, blank_id):
    with torch.no_grad():
        logp = model(ids, lengths).log_softmax(-1)
        pred = logp.argmax(-1)
        rows = torch.arange(ids.shape[0])
        base = logp[rows, pred]
        scores = torch.zeros(ids.shape, dtype=logp.dtype)
        for t in range(ids.shape[1]):
            occluded = ids.clone()
            occluded[:, t] = blank_id
            scores[:, t] = base - model(occluded, lengths).log_softmax(-1)[rows, pred]
    return scores
"""


def _classifier(seed, classes=3):
    config = Model("attnlab.models.pooling_classifier.PoolingClassifierConfig",
                   {"vocab_size": 12, "num_classes": classes})
    return Model("attnlab.models.pooling_classifier.AttentionPoolingClassifier",
                 {"config": config}, seed=seed)


g = torch.Generator().manual_seed(5)
ids_public = torch.randint(2, 12, (4, 6), generator=g)
ids_long = torch.randint(2, 12, (6, 10), generator=g)
ids_short = torch.randint(2, 12, (3, 3), generator=g)
question(
    "q5", points=3, function="occlusion_scores", reference=OCCLUSION,
    public=[case(_classifier(0), ids_public, torch.full((4,), 6), 1,
                 note="4 sequences of 6 tokens, 3 classes")],
    hidden=[
        case(_classifier(1), ids_long, torch.full((6,), 10), 1,
             note="6 sequences of 10 tokens"),
        case(_classifier(2, classes=5), ids_short, torch.full((3,), 3), 1,
             note="3 sequences of 3 tokens, 5 classes"),
    ],
    misconceptions=[
        misconception(
            "Your scores have the wrong sign: a token the prediction needs must get a positive "
            "score, log p(original) - log p(occluded)",
            code=edited(OCCLUSION, (
                "scores[:, t] = base - model(occluded, lengths).log_softmax(-1)[rows, pred]",
                "scores[:, t] = model(occluded, lengths).log_softmax(-1)[rows, pred] - base"))),
        misconception(
            "You scored the occluded sequence's own best class: keep the class predicted for "
            "the original sequence, and measure its log-probability after occlusion",
            code=edited(OCCLUSION, (
                "model(occluded, lengths).log_softmax(-1)[rows, pred]",
                "model(occluded, lengths).log_softmax(-1).amax(-1)"))),
        misconception(
            "You compared logits, not log-probabilities: apply log_softmax to the logits first",
            code=edited(OCCLUSION, (".log_softmax(-1)", ""))),
        misconception(
            "You replaced tokens in `ids` itself, so the blanks piled up from one position to "
            "the next (and the caller's ids changed): occlude a copy, ids.clone()",
            code=edited(OCCLUSION, ("occluded = ids.clone()", "occluded = ids"))),
    ],
)

# --- cell 28 (ex16-28)
# TESTS
def _untrained_entropies():
    from attnlab.analysis import attention_entropy, record_attention
    from attnlab.models import GPT, GPTConfig

    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=20, block_size=16)).eval()
    tokens = torch.randint(0, 20, (8, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), record_attention(gpt) as recorded:
        gpt(tokens)
    uniform = float(torch.log(torch.arange(1, 17, dtype=torch.float64)).mean())
    return torch.stack([attention_entropy(w).mean(dim=(0, 2)) for w in recorded]), uniform


_ent, _uniform = _untrained_entropies()
# A is what the measurement shows: every head within 5 % of the uniform maximum, none above.
assert bool((_ent > 0.95 * _uniform).all() and (_ent <= _uniform + 1e-6).all()), (_ent, _uniform)
question(
    "q6", points=1, variable="q6_answer", expected="A",
    misconceptions=[
        misconception("A head that focuses on one key has an entropy near 0; these are close "
                      "to the uniform maximum, the most spread out a head can be", value="B"),
        misconception("Every head's entropy is within a few percent of the uniform maximum: "
                      "at initialisation the heads are alike, all diffuse, none sharp",
                      value="C"),
        misconception("No head exceeds the printed maximum: they stay just below it, as "
                      "evenly spread causal heads do", value="D"),
    ],
    hint="Compare each printed entropy with the uniform maximum on the first line",
)
