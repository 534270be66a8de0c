"""Tests of the exercise set '15_multimodal', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex15-05)
# TESTS
CROSS = """
import torch
def cross_attention(text, image, w_q, w_k, w_v, text_mask, image_mask):
    q, k, v = text @ w_q, image @ w_k, image @ w_v
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~image_mask[:, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights @ v) * text_mask[..., None]
"""


def _inputs(B, T, S, C, D, seed, text_lengths, image_lengths, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    text = torch.randn(B, T, C, generator=gen) * scale
    image = torch.randn(B, S, C, generator=gen) * scale
    ws = [torch.randn(C, D, generator=gen) for _ in range(3)]
    tm = torch.arange(T)[None, :] < torch.tensor(text_lengths)[:, None]
    im = torch.arange(S)[None, :] < torch.tensor(image_lengths)[:, None]
    return (text, image, *ws, tm, im)


question(
    "q1", points=3, function="cross_attention", reference=CROSS,
    public=[
        case(*_inputs(1, 3, 5, 4, 2, 1, [2], [3]),
             note="3 words (1 padded), 5 patches (2 padded)"),
        case(*_inputs(2, 4, 6, 8, 4, 2, [4, 3], [6, 2]), note="a batch of 2, T=4, S=6"),
    ],
    hidden=[
        case(*_inputs(3, 5, 16, 8, 4, 3, [5, 3, 4], [16, 9, 1]),
             note="16 patches, one image with a single real patch"),
        case(*_inputs(2, 6, 6, 4, 4, 4, [6, 2], [4, 5]), note="as many words as patches (T = S)"),
        case(*_inputs(2, 5, 7, 6, 3, 5, [5, 5], [3, 7], scale=4.0), note="large states"),
    ],
    misconceptions=[
        misconception(
            "You attended from the image to the text: the queries must come from the words "
            "(text @ w_q) and the keys and values from the patches, giving one output row per "
            "word, (B, T, D)",
            code=edited(CROSS, ("q, k, v = text @ w_q, image @ w_k, image @ w_v",
                                "q, k, v = image @ w_q, text @ w_k, text @ w_v"),
                        ("~image_mask[:, None, :]", "~text_mask[:, None, :]"),
                        ("text_mask[..., None]", "image_mask[..., None]"))),
        misconception(
            "You took the softmax over the words (dim=1): each word's weights must sum to 1 "
            "over the patches, the last axis of the (B, T, S) scores",
            code=edited(CROSS, ("torch.softmax(scores, dim=-1)", "torch.softmax(scores, dim=1)"))),
        misconception(
            "The words' weights reach the padded patches: you masked the wrong side, or nothing. "
            "The padded patches are the keys, so the mask goes on the columns of the (B, T, S) "
            "scores (-inf where image_mask[:, None, :] is False); padded words only need their "
            "output rows set to zero",
            code=edited(CROSS, (
                'scores = scores.masked_fill(~image_mask[:, None, :], float("-inf"))',
                'scores = scores.masked_fill(~text_mask[:, :, None], float("-inf"))'),
                ("weights = torch.softmax(scores, dim=-1)",
                 "weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)"))),
        misconception(
            "Your mask convention is inverted (PyTorch's key_padding_mask habit): here True "
            "means a real patch that MAY be attended",
            code=edited(CROSS, ("~image_mask[:, None, :]", "image_mask[:, None, :]"))),
        misconception(
            "You did not scale the scores: divide them by sqrt(D), D = w_q.shape[1]",
            code=edited(CROSS, (" / q.shape[-1] ** 0.5", ""))),
        misconception(
            "The rows of padded words must be zero: multiply the output by "
            "text_mask[..., None]",
            code=edited(CROSS, (" * text_mask[..., None]", ""))),
    ],
    hint="q = text @ w_q, k = image @ w_k, v = image @ w_v; scores (B, T, S) / sqrt(D); "
         "-inf where image_mask is False; softmax over the last axis; zero the padded words",
)

# --- cell 10 (ex15-09)
# TESTS
from attnlab.models.vqa import CrossAttentionVQA as _Model
from attnlab.models.vqa import VQAConfig as _Config

_model = _Model(_Config(cross_layers=2, num_heads=4))
with torch.no_grad():
    _, _w = _model(torch.rand(8, 8, 8), torch.ones(8, 5, dtype=torch.long), need_weights=True)
question(
    "q2", points=1, variable="q2_shape", expected=tuple(_w.shape),
    misconceptions=[
        misconception("You swapped T and S: the queries are the 5 words and the keys the 16 "
                      "patches, so each word has a row of 16 weights (the last axis)",
                      value=(8, 2, 4, 16, 5)),
        misconception("The keys are patches of 2x2 pixels, not pixels: an 8x8 image has "
                      "(8/2)^2 = 16 of them", value=(8, 2, 4, 5, 64)),
        misconception("The words attend to the patches, not to each other: the last axis has "
                      "the 16 patches", value=(8, 2, 4, 5, 5)),
    ],
    hint="B images, L blocks, H heads, T words (queries), S patches (keys)",
)

# --- cell 14 (ex15-13)
# TESTS
RULE = """
import torch
from attnlab.data.vqa import Question
def rule_answer(question, labels):
    words = question.split()
    if words[-1] in ("even", "odd"):
        return Question(words[-1]).answer(labels)
    kind = "is" if words[2] == "a" else words[2]
    return Question(kind, int(words[-1])).answer(labels)
"""
RULE_BY_HAND = """
import torch
def rule_answer(question, labels):
    words = question.split()
    if words[-1] == "even":
        yes = labels % 2 == 0
    elif words[-1] == "odd":
        yes = labels % 2 == 1
    elif words[2] == "larger":
        yes = labels > int(words[-1])
    elif words[2] == "smaller":
        yes = labels < int(words[-1])
    else:
        yes = labels == int(words[-1])
    return yes.long()
"""
digits = torch.arange(10)
question(
    "q3", points=2, function="rule_answer", reference=RULE,
    public=[
        case("is it even", digits, note="'is it even' for the digits 0..9"),
        case("is it larger than 4", digits, note="'is it larger than 4' for 0..9"),
        case("is it smaller than 5", torch.tensor([5, 2, 8, 4]), note="'is it smaller than 5'"),
    ],
    hidden=[
        case("is it odd", torch.tensor([7, 0, 3, 8]), note="'is it odd'"),
        case("is it smaller than 3", digits, note="'is it smaller than 3' for 0..9"),
        case("is it a 7", torch.tensor([7, 1, 7, 9]), note="'is it a 7'"),
        case("is it larger than 0", torch.tensor([0, 0, 5]), note="'is it larger than 0'"),
        case("is it smaller than 9", torch.tensor([9, 8]), note="'is it smaller than 9'"),
    ],
    misconceptions=[
        misconception("'Larger than n' is strict: n itself is not larger than n (use >, not >=)",
                      code=edited(RULE_BY_HAND, ("labels > int", "labels >= int"))),
        misconception("'Smaller than n' is strict: n itself is not smaller than n "
                      "(use <, not <=)",
                      code=edited(RULE_BY_HAND, ("labels < int", "labels <= int"))),
        misconception("Even and odd are swapped: a digit is even when label % 2 == 0 (0 is even)",
                      code=edited(RULE_BY_HAND, ("labels % 2 == 0", "labels % 2 == 1"),
                                  ("yes = labels % 2 == 1\n    elif words[2]",
                                   "yes = labels % 2 == 0\n    elif words[2]"))),
    ],
    hint="Split the question into words; the last word is the kind (even, odd) or the number",
)

# --- cell 18 (ex15-17)
# TESTS
PRIOR = """
import torch
def question_only_accuracy(train_qids, train_answers, test_qids, test_answers):
    correct = 0
    for qid in test_qids.unique().tolist():
        majority = int(train_answers[train_qids == qid].float().mean() >= 0.5)
        correct += int((test_answers[test_qids == qid] == majority).sum())
    return correct / len(test_qids)
"""


def _unbalanced(seed, n_questions, n_train, n_test):
    gen = torch.Generator().manual_seed(seed)
    p_yes = torch.rand(n_questions, generator=gen)            # each question's share of yes
    tq = torch.randint(0, n_questions, (n_train,), generator=gen)
    sq = torch.randint(0, n_questions, (n_test,), generator=gen)
    ta = (torch.rand(n_train, generator=gen) < p_yes[tq]).long()
    sa = (torch.rand(n_test, generator=gen) < p_yes[sq]).long()
    return tq, ta, sq, sa


question(
    "q4", points=2, function="question_only_accuracy", reference=PRIOR, atol=1e-9,
    public=[
        case(torch.tensor([0, 0, 0, 1, 1]), torch.tensor([1, 1, 0, 0, 0]),
             torch.tensor([0, 0, 1, 1]), torch.tensor([1, 0, 0, 0]),
             note="two questions: q0 mostly yes, q1 always no"),
        case(*_unbalanced(1, 5, 400, 100), note="5 questions with lopsided answers"),
        case(torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([1, 1, 0, 0, 0, 1]),
             torch.tensor([0, 0, 0, 1, 1]), torch.tensor([0, 0, 1, 0, 0]),
             note="q0 mostly yes in training but mostly no in the test"),
        case(torch.tensor([0, 0, 1, 1, 1]), torch.tensor([1, 0, 1, 1, 0]),
             torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 0, 0]),
             note="a tie in training for q0 (answer yes)"),
    ],
    hidden=[
        case(*_unbalanced(2, 30, 3000, 600), note="30 questions, as in the chapter"),
        case(torch.tensor([0, 0, 1, 1, 1, 1, 1, 2, 2, 2]),
             torch.tensor([1, 0, 1, 1, 1, 1, 0, 0, 0, 0]),
             torch.tensor([0, 1, 2, 2]), torch.tensor([1, 1, 0, 0]),
             note="a tie in training for q0 (answer yes)"),
        case(*_unbalanced(3, 3, 90, 300), note="few training examples per question"),
    ],
    misconceptions=[
        misconception(
            "You used one majority answer for all questions: take each question's own majority "
            "answer, since the question alone says a lot on unbalanced data",
            code="import torch\n"
                 "def question_only_accuracy(train_qids, train_answers, test_qids, test_answers):\n"
                 "    majority = int(train_answers.float().mean() >= 0.5)\n"
                 "    return float((test_answers == majority).float().mean())"),
        misconception(
            "You took the majority answers from the test examples: that peeks at the answers "
            "being scored; take them from training",
            code=edited(PRIOR, ("train_answers[train_qids == qid]",
                                "test_answers[test_qids == qid]"))),
        misconception(
            "On a tie the baseline must answer yes: use >= 0.5, not > 0.5",
            code=edited(PRIOR, (">= 0.5", "> 0.5"))),
    ],
)

# --- cell 24 (ex15-24)
# TESTS
def _yes_shares():
    # The share answered yes of the "is" questions, and of all questions, in the test split.
    from attnlab.data.vqa import vqa_task

    t = vqa_task(per_answer_train=40, per_answer_test=10, balanced=False, seed=0)
    is_kind = torch.tensor([t.questions[int(q)].kind == "is" for q in t.test.question_ids])
    answers = t.test.answers.double()
    return float(answers[is_kind].mean()), float(answers.mean())


_yes_is, _yes_all = _yes_shares()
_no_on_is = 1 - _yes_is
assert 0.8 < _no_on_is < 1.0, _no_on_is
question(
    "q5", points=1, variable="q5_accuracy", expected=_no_on_is, atol=2e-3, rtol=0.0,
    misconceptions=[
        misconception("That is the share answered YES, the share that answering no gets "
                      "wrong: the accuracy of always answering no is 1 minus it",
                      value=1 - _no_on_is),
        misconception("0.5 holds for the chapter's balanced data; on this unbalanced split "
                      "\"is it a k\" is true for about one digit in ten, so always answering "
                      "no is right far more often", value=0.5),
        misconception("You used the share of all test examples answered no; the question asks "
                      "about the \"is\" questions only", value=1 - _yes_all),
    ],
    hint="1 minus the printed share answered yes of the \"is\" questions",
)
