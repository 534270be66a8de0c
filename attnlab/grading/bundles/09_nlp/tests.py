"""Tests of the exercise set '09_nlp', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex09-05)
# TESTS
import torch

from attnlab.data.reviews import reviews_task

POOL = """
import torch
def attention_pool(h, lengths, q, w_k):
    S, C = h.shape[1], h.shape[2]
    real = torch.arange(S)[None, :] < lengths[:, None]
    scores = (h @ w_k.T) @ q / C**0.5
    scores = scores.masked_fill(~real, float("-inf"))
    alpha = torch.softmax(scores, dim=-1)
    return (alpha[:, :, None] * h).sum(dim=1), alpha
"""
POOL_REF = """
from attnlab.functional import attention
from attnlab.masks import padding_mask
def attention_pool(h, lengths, q, w_k):
    B, S, C = h.shape
    z, alpha = attention(q.expand(B, 1, C), h @ w_k.T, h, padding_mask(lengths, S),
                         need_weights=True)                       # (B, 1, C), (B, 1, S)
    return z[:, 0], alpha[:, 0]
"""


def _pool_case(g, lengths, S, C, scale=1.0, dtype=torch.float32, note=""):
    def r(*shape):
        return scale * torch.randn(*shape, generator=g, dtype=dtype)
    return case(r(len(lengths), S, C), torch.tensor(lengths), r(C), r(C, C), note=note)


g = torch.Generator().manual_seed(91)
question(
    "q1", points=3, function="attention_pool", reference=POOL_REF,
    public=[_pool_case(g, [5, 3], 5, 4, note="B = 2 reviews of 5 and 3 words, S = 5, C = 4")],
    hidden=[
        _pool_case(g, [1, 6, 4], 6, 8, note="three reviews, one of a single word"),
        _pool_case(g, [7], 7, 6, note="one review without padding"),
        _pool_case(g, [2, 9, 5, 3], 9, 4, scale=5.0, note="large states"),
        _pool_case(g, [3, 2], 4, 2, dtype=torch.float64, note="C = 2, float64"),
    ],
    misconceptions=[
        misconception(
            "You did not mask the padding: positions from lengths[b] on must get weight exactly "
            "0 (fill their scores with -inf before the softmax)",
            code=edited(POOL, ('    scores = scores.masked_fill(~real, float("-inf"))\n', ""))),
        misconception(
            "Off by one: you also let position lengths[b] be attended (<= instead of <); the "
            "real positions are 0 .. lengths[b] - 1",
            code=edited(POOL, ("< lengths[:, None]", "<= lengths[:, None]"))),
        misconception(
            "You did not scale the scores: divide q · W_k h_t by sqrt(C)",
            code=edited(POOL, (" / C**0.5", ""))),
        misconception(
            "You divided the scores by C: divide by sqrt(C)",
            code=edited(POOL, (" / C**0.5", " / C"))),
        misconception(
            "You computed the keys as h @ w_k: w_k is laid out like nn.Linear.weight, so the "
            "keys are h @ w_k.T",
            code=edited(POOL, ("(h @ w_k.T)", "(h @ w_k)"))),
        misconception(
            "You averaged the keys: z is the weighted sum of the states h, not of h @ w_k.T",
            code=edited(POOL, ("(alpha[:, :, None] * h)", "(alpha[:, :, None] * (h @ w_k.T))"))),
        misconception(
            "You took the softmax over the batch (dim 0): each review's weights must sum to 1 "
            "over its positions, the last dim",
            code=edited(POOL, ("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=0)"))),
    ],
    hint="Build the mask torch.arange(S)[None, :] < lengths[:, None], score (h @ w_k.T) @ q "
         "/ sqrt(C), fill the masked scores with -inf, softmax over the last dim, then sum "
         "alpha[:, :, None] * h over the positions",
)

# --- cell 10 (ex09-09)
# TESTS
BOW = """
import torch
def bag_of_words(ids, V):
    counts = torch.nn.functional.one_hot(ids, V).sum(dim=1).float()
    counts[:, 0] = 0.0
    return counts
"""
BOW_REF = """
from attnlab.models.pooling_classifier import bag_of_words as _bag
def bag_of_words(ids, V):
    return _bag(ids, V, pad_id=0)
"""
_task = reviews_task(n_train=20, n_test=10, seed=5)
_vocab = _task.vocab


def _ids(texts):
    return _vocab.batch(texts)[0]


question(
    "q2", points=2, function="bag_of_words", reference=BOW_REF,
    public=[case(_ids(["the plot was not bad", "the film was good"]), _vocab.vocab_size,
                 note="two reviews, the second padded"),
            case(_ids(["the music was great and the acting was great", "the film was bad"]),
                 _vocab.vocab_size, note="a review in which words occur twice")],
    hidden=[
        case(_ids(_task.test.texts[:4]), _vocab.vocab_size, note="four test reviews"),
        case(_ids(["the plot was good and the cast was good", "the music was dull"]),
             _vocab.vocab_size, note="words that occur twice in a review"),
        case(_ids(["good"]), _vocab.vocab_size, note="one review of one word"),
        case(torch.tensor([[3, 3, 3, 1], [2, 1, 0, 0]]), 5, note="V = 5, hand-made ids"),
    ],
    misconceptions=[
        misconception(
            "You counted the padding: column 0 (<pad>) must be 0",
            code=edited(BOW, ("    counts[:, 0] = 0.0\n", ""))),
        misconception(
            "You recorded whether a word occurs (0 or 1), not how often: a word that occurs "
            "twice counts 2",
            code=edited(BOW, (".sum(dim=1).float()", ".amax(dim=1).float()"))),
        misconception(
            "You summed the one-hot vectors over the vocabulary (the last dim): sum them over "
            "the positions (dim 1), which leaves one count per word, (B, V)",
            code=edited(BOW, (".sum(dim=1).float()\n    counts[:, 0] = 0.0",
                             ".sum(dim=-1).float()"))),
    ],
    hint="one_hot(ids, V) is (B, S, V); sum it over the positions, then zero column 0",
)

# --- cell 15 (ex09-14)
# TESTS
LABEL = """
from attnlab.data.reviews import CONJUNCTION, CONTRAST, NEGATION, POSITIVE
def review_label(text):
    words = text.split()
    if CONTRAST in words:
        words = words[words.index(CONTRAST) + 1:]
    clause = words[: words.index(CONJUNCTION)] if CONJUNCTION in words else words
    polarity = 1 if any(w in POSITIVE for w in clause) else -1
    if NEGATION in clause:
        polarity = -polarity
    return int(polarity > 0)
"""
LABEL_REF = """
from attnlab.data.reviews import review_label
"""
_reviews = {
    "public": ["the plot was not bad", "the acting was great but the ending was awful",
               "honestly the film was really superb",
               "the film was great and the music was not bad"],
    "hidden": ["the cast was not good and the script was weak",
               "the plot was bad but the music was not dull",
               "to be fair the ending was not terrible but the cast was weak at times",
               "the story is not especially clever",
               "the pacing was dull and frankly the dialogue is not enjoyable",
               "the music was not awful in places and the plot was good",
               "for me the film was clumsy but overall the cast was quite lovely",
               "the dialogue was boring"],
}
question(
    "q3", points=2, function="review_label", reference=LABEL_REF,
    public=[case(t, note=repr(t)) for t in _reviews["public"]],
    hidden=[case(t, note=repr(t)) for t in _reviews["hidden"]],
    misconceptions=[
        misconception(
            "You ignored the negation: a \"not\" in a clause flips the clause's polarity",
            code=edited(LABEL, ("    if NEGATION in clause:\n        polarity = -polarity\n",
                               ""))),
        misconception(
            "The clause BEFORE \"but\" decided in your code: after a \"but\" only the words "
            "after it count",
            code=edited(LABEL, ("words[words.index(CONTRAST) + 1:]",
                               "words[: words.index(CONTRAST)]"))),
        misconception(
            "A \"not\" anywhere in the review flipped your label: it flips only the clause it "
            "stands in, and only the counting clauses matter",
            code=edited(LABEL, ("    if NEGATION in clause:", "    if NEGATION in text.split():"))),
    ],
    hint="Cut the words after \"but\", keep the first clause (up to \"and\"), take the sign of "
         "its sentiment word and flip it if the clause holds \"not\"",
)

# --- cell 19 (ex09-18)
# TESTS
_four = ["the plot was good", "the plot was good but the acting was awful",
         "the acting was awful but the plot was good", "the acting was awful"]
from attnlab.models.pooling_classifier import bag_of_words as _bag

_b = _bag(_vocab.batch(_four)[0], _vocab.vocab_size)
_labels = [1, 0, 1, 0]
_groups = {}
for _row, _y in zip(_b.tolist(), _labels):
    _groups.setdefault(tuple(_row), []).append(_y)
_most = sum(max(ys.count(0), ys.count(1)) for ys in _groups.values())
question(
    "q4", points=1, variable="q4_most_correct", expected=_most,
    misconceptions=[
        misconception("Reviews 2 and 3 have the same words, so every function of the counts "
                      "gives them the same answer, and one of them has the other label: no "
                      "model of the bag, however large, gets all four", value=4),
        misconception("Reviews 1 and 4 have different bags, and the twins 2 and 3 get one "
                      "answer, which is right for one of them: count that one too", value=2),
        misconception("A bag of words is not helpless: it gets the plain reviews 1 and 4 "
                      "right, and one of the twins", value=1),
    ],
    hint="Which reviews have exactly the same word counts? What must any function of the "
         "counts answer for them?",
)

# --- cell 24 (ex09-23)
# TESTS
from attnlab.data.reviews import NEGATIVE as _NEG
from attnlab.data.reviews import POSITIVE as _POS


def _lexicon(split, tie):
    t = reviews_task(n_train=100, n_test=600, seed=9)
    reviews = t.test if split == "test" else t.train
    right, total = {}, {}
    for text, label, kind in zip(reviews.texts, reviews.labels, reviews.kinds):
        words = text.split()
        score = sum(w in _POS for w in words) - sum(w in _NEG for w in words)
        prediction = int(score > 0 or (score == 0 and tie == 1))
        right[kind] = right.get(kind, 0) + (prediction == label)
        total[kind] = total.get(kind, 0) + 1
    return {k: right[k] / total[k] for k in ("plain", "negated", "contrast")}


_acc = _lexicon("test", tie=1)
assert _acc["plain"] == 1.0 and _acc["negated"] < 0.5
question(
    "q5", points=2, variable="q5_accuracy", expected=_acc, atol=1e-6, rtol=0.0,
    misconceptions=[
        misconception("A score of 0 (a tie, as in many contrast reviews) must predict 1: the "
                      "rule is score >= 0", value=_lexicon("test", tie=0)),
        misconception("You scored the training split: use task.test",
                      value=_lexicon("train", tie=1)),
        misconception("You stored error rates: store the share of reviews classified correctly",
                      value={k: 1 - v for k, v in _acc.items()}),
    ],
    hint="For each test review: score = (# words in POSITIVE) - (# words in NEGATIVE), "
         "prediction = int(score >= 0); average prediction == label within each kind",
)

# --- cell 31 (ex09-30)
# TESTS
from attnlab.data.reviews import CONJUNCTION as _AND
from attnlab.data.reviews import CONTRAST as _BUT
from attnlab.data.reviews import NEGATION as _NOT


def _clause_counter(text):
    score, clause = 0, []
    for word in text.split() + [_AND]:
        if word in (_BUT, _AND):
            polarity = 1 if any(w in _POS for w in clause) else -1
            score += -polarity if _NOT in clause else polarity
            clause = []
        else:
            clause.append(word)
    return score


_t = reviews_task(n_train=100, n_test=600, seed=9).test
_by_kind = {}
for _text, _y, _k in zip(_t.texts, _t.labels, _t.kinds):
    _by_kind.setdefault(_k, []).append((_clause_counter(_text), _y))
_acc6 = {k: sum(int(s >= 0) == y for s, y in v) / len(v) for k, v in _by_kind.items()}
_ties = {k: sum(s == 0 for s, _ in v) / len(v) for k, v in _by_kind.items()}
_positive = sum(y for _, y in _by_kind["contrast"]) / len(_by_kind["contrast"])
# B is what the measurement shows: "not" is read right (negated reviews are all right),
# every contrast review is a tie, and the accuracy there is the share of positive labels.
assert _acc6["negated"] == 1.0 and _ties["contrast"] == 1.0, (_acc6, _ties)
assert abs(_acc6["contrast"] - _positive) < 1e-12 and len(_by_kind["contrast"]) >= 100
question(
    "q6", points=1, variable="q6_answer", expected="B",
    misconceptions=[
        misconception("The counter reads \"not\" right: it is perfect on the negated reviews, "
                      "and every contrast review is a tie whatever its \"not\"s. The clauses "
                      "cancel; the negation is not the problem", value="A"),
        misconception("There are well over a hundred contrast reviews, and the share of ties "
                      "is exactly 1: the low accuracy is no noise but the tie rule answering 1 "
                      "for all of them", value="C"),
        misconception("The counter reads every word of a review however long it is; the "
                      "printed share of ties (1 for the contrast reviews) says what goes wrong: "
                      "the two clauses cancel", value="D"),
    ],
    hint="Compare the contrast reviews' share of ties and their accuracy with their share of "
         "positive labels",
)
