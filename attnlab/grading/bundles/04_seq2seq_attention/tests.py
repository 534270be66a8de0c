"""Tests of the exercise set '04_seq2seq_attention', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex04-05)
# TESTS
import torch

from attnlab.data import dates_task
from attnlab.grading.codec import build_model
from attnlab.models import AttentionSeq2Seq, Seq2Seq, Seq2SeqConfig, count_parameters

ADDITIVE = """
import torch
def additive_attention(query, keys, values, w_q, w_k, w_v, mask=None):
    hidden = torch.tanh((query @ w_q.T)[:, :, None, :] + (keys @ w_k.T)[:, None, :, :])
    scores = hidden @ w_v
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, weights
"""
ADDITIVE_REF = """
import torch
from attnlab.functional import additive_scores, masked_softmax
def additive_attention(query, keys, values, w_q, w_k, w_v, mask=None):
    scores = additive_scores(query, keys, w_q, w_k, w_v)                     # (B, T, S)
    weights = torch.softmax(scores, -1) if mask is None else masked_softmax(scores, mask)
    return weights @ values, weights
"""
_MASKING = ('    if mask is not None:\n        scores = scores.masked_fill(~mask, float("-inf"))\n'
            '    weights = torch.softmax(scores, dim=-1)\n')


def _lengths_mask(lengths, S):
    return (torch.arange(S)[None, :] < torch.tensor(lengths)[:, None])[:, None, :]   # (B, 1, S)


def _additive_case(g, B, T, S, Dq, Dk, Dv, A, mask, scale=1.0, dtype=torch.float32, note=""):
    def r(*shape):
        return scale * torch.randn(*shape, generator=g, dtype=dtype)
    return case(r(B, T, Dq), r(B, S, Dk), r(B, S, Dv), r(A, Dq), r(A, Dk), r(A), mask=mask,
                note=note)


g = torch.Generator().manual_seed(41)
_dense = torch.rand(2, 4, 6, generator=g) > 0.5
_dense[..., 0] = True                                   # every query may attend a key
question(
    "q1", points=3, function="additive_attention", reference=ADDITIVE_REF,
    public=[
        _additive_case(g, 2, 3, 5, 4, 6, 3, 5, _lengths_mask([5, 2], 5),
                       note="B = 2 sources of lengths 5 and 2 (padding mask), T = 3 steps"),
        _additive_case(g, 1, 2, 4, 3, 3, 2, 4, None, note="one source, no mask"),
    ],
    hidden=[
        _additive_case(g, 1, 4, 3, 5, 2, 6, 3, None, note="T = 4 queries, S = 3 keys, no mask"),
        _additive_case(g, 2, 4, 6, 3, 5, 4, 7, _dense,
                       note="a (B, T, S) mask with a different pattern for every query"),
        _additive_case(g, 3, 2, 7, 4, 4, 4, 6, _lengths_mask([1, 7, 3], 7), scale=30.0,
                       note="large inputs (tanh saturates) and a source of length 1"),
        _additive_case(g, 2, 1, 4, 6, 3, 5, 2, _lengths_mask([4, 2], 4), dtype=torch.float64,
                       note="a single decoder step (T = 1), float64"),
    ],
    misconceptions=[
        misconception(
            "You applied the mask after the softmax, so the weights of the real keys no longer "
            "sum to 1: give the masked scores -inf BEFORE the softmax",
            code=edited(ADDITIVE, (_MASKING, "    weights = torch.softmax(scores, dim=-1)\n"
                                            "    if mask is not None:\n"
                                            "        weights = weights * mask\n"))),
        misconception(
            "Your mask is inverted: True means the key MAY be attended, so fill the scores "
            "where the mask is False (~mask) with -inf",
            code=edited(ADDITIVE, ("masked_fill(~mask", "masked_fill(mask"))),
        misconception(
            "You took the softmax over the queries (dim 1): each query's weights must sum to 1 "
            "over the keys, the last dim",
            code=edited(ADDITIVE, ("dim=-1", "dim=1"))),
        misconception(
            "You left out the tanh: the score is w_v · tanh(W_q q_t + W_k k_j); without it "
            "the scorer is linear and the query term cancels in the softmax",
            code=edited(ADDITIVE, ("torch.tanh((query @ w_q.T)[:, :, None, :] + "
                                  "(keys @ w_k.T)[:, None, :, :])",
                                  "(query @ w_q.T)[:, :, None, :] + "
                                  "(keys @ w_k.T)[:, None, :, :]"))),
        misconception(
            "Your context is a weighted sum of the keys: it must be a weighted sum of the "
            "values (weights @ values)",
            code=edited(ADDITIVE, ("weights @ values", "weights @ keys"))),
        misconception(
            "You ignored the mask: masked keys (padding) must get weight exactly 0",
            code=edited(ADDITIVE, ("if mask is not None:", "if False:"))),
    ],
    hint="Project, broadcast (B, T, 1, A) + (B, 1, S, A), tanh, @ w_v, fill the masked scores "
         "with -inf, softmax over the last dim, then weights @ values",
)

# --- cell 10 (ex04-09)
# TESTS
MASK = """
import torch
def lengths_to_mask(lengths, S):
    positions = torch.arange(S)
    return (positions[None, :] < lengths[:, None])[:, None, :]
"""
MASK_REF = """
from attnlab.masks import padding_mask
def lengths_to_mask(lengths, S):
    return padding_mask(lengths, S)
"""
question(
    "q2", points=1, function="lengths_to_mask", reference=MASK_REF,
    public=[case(torch.tensor([3, 1]), 4, note="lengths [3, 1], S = 4")],
    hidden=[
        case(torch.tensor([5, 2, 4]), 5, note="a source as long as S"),
        case(torch.tensor([0, 3]), 3, note="an empty source (length 0)"),
        case(torch.tensor([1]), 1, note="one source of length 1, S = 1"),
        case(torch.tensor([7, 7, 2, 9]), 9, note="four sources, S = 9"),
    ],
    misconceptions=[
        misconception(
            "Off by one: you also marked position lengths[b] as real (<= instead of <); "
            "positions run from 0, so the real ones are 0 .. lengths[b] - 1",
            code=edited(MASK, ("positions[None, :] < lengths", "positions[None, :] <= lengths"))),
        misconception(
            "Off by one: you counted positions from 1, so the last real position is marked as "
            "padding; positions are 0 .. S - 1 (torch.arange(S))",
            code=edited(MASK, ("torch.arange(S)", "torch.arange(1, S + 1)"))),
        misconception(
            "Your mask is inverted: True must mark the real positions (may attend), "
            "False the padding",
            code=edited(MASK, ("positions[None, :] < lengths", "positions[None, :] >= lengths"))),
        misconception(
            "Your mask is (B, S): add the query axis, (B, 1, S), so that it broadcasts over "
            "the T queries of scores (B, T, S)",
            code=edited(MASK, ("[:, None, :]\n", "\n"))),
    ],
    hint="Compare torch.arange(S)[None, :] with lengths[:, None], then add an axis at dim 1",
)

# --- cell 15 (ex04-14)
# TESTS
GREEDY = """
import torch
from attnlab.masks import padding_mask
def greedy_decode(model, src, src_lengths, max_len):
    with torch.no_grad():
        states, summary = model.encode(src, src_lengths)
        mask = padding_mask(src_lengths, src.shape[1])
        hidden = first = torch.tanh(model.bridge(summary))[None]
        B = src.shape[0]
        tokens = torch.full((B, 1), model.config.bos_id)
        done = torch.zeros(B, dtype=torch.bool)
        out = []
        for _ in range(max_len):
            dec, hidden = model.decoder(model.tgt_embed(tokens), hidden)
            context = model.attention(dec, states, states, mask=mask)
            logits = model.out(torch.cat([dec, context], dim=-1))[:, 0]
            tokens = logits.argmax(dim=-1, keepdim=True)
            tokens = tokens.masked_fill(done[:, None], 0)
            out.append(tokens)
            done |= tokens[:, 0] == model.config.eos_id
    return torch.cat(out + [torch.zeros(B, max_len - len(out), dtype=torch.long)], dim=1)
"""
GREEDY_REF = """
import torch
def greedy_decode(model, src, src_lengths, max_len):
    ids, _ = model.greedy_decode(src, src_lengths, max_len)     # (B, L), L <= max_len
    out = torch.zeros(src.shape[0], max_len, dtype=torch.long)
    out[:, : ids.shape[1]] = ids
    return out
"""
_TASK = dates_task(n_train=1, n_test=1)          # for its tokenizers only
_CONFIG = {"src_vocab": _TASK.src_tokenizer.vocab_size,
           "tgt_vocab": _TASK.tgt_tokenizer.vocab_size,
           "embed_dim": 16, "hidden_dim": 32, "attention_dim": 16}


def _model(seed):
    return Model("attnlab.models.AttentionSeq2Seq",
                 {"config": Model("attnlab.models.Seq2SeqConfig", _CONFIG)}, seed=seed)


def _decode_case(seed, sources, max_len, note):
    src, lengths = _TASK.src_tokenizer.batch(sources)
    return case(_model(seed), src, lengths, max_len, note=note)


_DATES = ["5.3.87", "Thursday, March 5, 1987", "MAR 05 1987", "12/31/49", "1 Jan 1950",
          "29.2.96"]
_GREEDY_CASES = (
    [_decode_case(18, _DATES, 11, note="an untrained model, 6 dates, max_len = 11")],
    [_decode_case(38, _DATES, 8, note="another untrained model, max_len = 8"),
     _decode_case(2, _DATES, 11, note="a model whose sequences all finish early"),
     _decode_case(15, _DATES, 11, note="a model that writes <eos> at the first step"),
     _decode_case(10, _DATES[:3], 6, note="three dates, max_len = 6"),
     _decode_case(8, _DATES[1:2], 5, note="one date that never finishes, max_len = 5")],
)


def _check_greedy_cases(cases):
    # The tests must exercise <eos>, and no greedy choice may hinge on rounding (a float32
    # logit is off by ~1e-7; every arg-max here wins by more than 1e-5).
    eos_inside = finished_early = False
    for c in cases:
        spec, src, lengths, max_len = c.args
        with torch.random.fork_rng():               # leave the caller's generator alone
            model = build_model(spec)
        with torch.no_grad():
            states, summary = model.encode(src, lengths)
            mask = (torch.arange(src.shape[1])[None, :] < lengths[:, None])[:, None, :]
            hidden = torch.tanh(model.bridge(summary))[None]
            tokens = torch.full((src.shape[0], 1), model.config.bos_id)
            done = torch.zeros(src.shape[0], dtype=torch.bool)
            for _ in range(max_len):
                dec, hidden = model.decoder(model.tgt_embed(tokens), hidden)
                logits = model.out(torch.cat([dec, model.attention(dec, states, states,
                                                                   mask=mask)], -1))[:, 0]
                top2 = logits.topk(2, dim=-1).values[~done]           # unfinished rows
                assert float((top2[:, 0] - top2[:, 1]).min()) > 1e-5, "a near tie"
                tokens = logits.argmax(dim=-1, keepdim=True).masked_fill(done[:, None], 0)
                done |= tokens[:, 0] == model.config.eos_id
                if done.all():
                    break
        ids, _ = model.greedy_decode(src, lengths, max_len)
        eos_inside |= bool((ids[:, :-1] == model.config.eos_id).any())
        finished_early |= ids.shape[1] < max_len
    assert eos_inside and finished_early


_threads = torch.get_num_threads()
torch.set_num_threads(1)              # tiny models: a second thread only waits (and slows)
try:
    _check_greedy_cases(_GREEDY_CASES[0] + _GREEDY_CASES[1])
finally:
    torch.set_num_threads(_threads)
_STEP = ("            tokens = logits.argmax(dim=-1, keepdim=True)\n"
         "            tokens = tokens.masked_fill(done[:, None], 0)\n"
         "            out.append(tokens)\n"
         "            done |= tokens[:, 0] == model.config.eos_id\n")
question(
    "q3", points=3, function="greedy_decode", reference=GREEDY_REF,
    public=_GREEDY_CASES[0], hidden=_GREEDY_CASES[1],
    misconceptions=[
        misconception(
            "You started the decoder from <pad> (0): its first input must be <bos>, "
            "model.config.bos_id, as in training",
            code=edited(GREEDY, ("torch.full((B, 1), model.config.bos_id)",
                                "torch.full((B, 1), 0)"))),
        misconception(
            "You fed <bos> at every step: the input of each step is the token the decoder "
            "has just written",
            code=edited(GREEDY, (_STEP,
                                "            new = logits.argmax(dim=-1, keepdim=True)\n"
                                "            new = new.masked_fill(done[:, None], 0)\n"
                                "            out.append(new)\n"
                                "            done |= new[:, 0] == model.config.eos_id\n"))),
        misconception(
            "A sequence that has written <eos> kept writing: after its <eos>, write <pad> (0) "
            "at every step (keep a bool `done` per sequence)",
            code=edited(GREEDY, ("            tokens = tokens.masked_fill(done[:, None], 0)\n",
                                ""))),
        misconception(
            "You replaced the <eos> itself by <pad>: mark a sequence as done AFTER storing "
            "its <eos>, so that only the later steps are padded",
            code=edited(GREEDY, (_STEP,
                                "            tokens = logits.argmax(dim=-1, keepdim=True)\n"
                                "            done |= tokens[:, 0] == model.config.eos_id\n"
                                "            tokens = tokens.masked_fill(done[:, None], 0)\n"
                                "            out.append(tokens)\n"))),
        misconception(
            "You stopped the whole batch when the first sequence wrote <eos>: the others must "
            "go on; stop only when every sequence is done, and pad to max_len columns",
            code=edited(GREEDY,
                       ("            done |= tokens[:, 0] == model.config.eos_id\n",
                        "            done |= tokens[:, 0] == model.config.eos_id\n"
                        "            if done.any():\n"
                        "                break\n"),
                       ("    return torch.cat(out + [torch.zeros(B, max_len - len(out), "
                        "dtype=torch.long)], dim=1)", "    return torch.cat(out, dim=1)"))),
        misconception(
            "You started every step from the first decoder state: pass the state that "
            "decoder_step returns on to the next step",
            code=edited(GREEDY, ("model.decoder(model.tgt_embed(tokens), hidden)",
                                "model.decoder(model.tgt_embed(tokens), first)"))),
    ],
    hint="Start from <bos>; each step: decoder_step, argmax, <pad> for finished rows, store, "
         "then mark the rows that wrote <eos> as done",
)

# --- cell 19 (ex04-18)
# TESTS
_sources = ["5.3.87", "Thursday, March 5, 1987", "MAR 05 1987"]
_src, _lengths = _TASK.src_tokenizer.batch(_sources)
_tgt, _ = _TASK.tgt_tokenizer.batch(["1987-03-05"] * 3, bos=True, eos=True)
with torch.random.fork_rng():
    _model04 = AttentionSeq2Seq(Seq2SeqConfig(_TASK.src_tokenizer.vocab_size,
                                              _TASK.tgt_tokenizer.vocab_size)).eval()
with torch.no_grad():
    _weights = _model04(_src, _lengths, _tgt[:, :-1])[1]
_B, _T, _S = tuple(_weights.shape)
question(
    "q4", points=1, variable="q4_shape", expected=(_B, _T, _S),
    misconceptions=[
        misconception("The decoder reads tgt[:, :-1]: <bos> and the 10 characters, not the "
                      "<eos> that ends the framed target", value=(_B, _T + 1, _S)),
        misconception("There is one decoder step per input token, <bos> included: the step "
                      "that reads the last character predicts <eos>", value=(_B, _T - 1, _S)),
        misconception("The weights are (B, T, S): one row per decoder step (query), one "
                      "column per source position (key)", value=(_B, _S, _T)),
        misconception("The sources are padded to the LONGEST one, 23 characters; the mask, "
                      "not the shape, hides the padding", value=(_B, _T, len(_sources[0]))),
        misconception("(B, T, S, A) is the scorer's hidden tensor; the weights have one "
                      "number per (query, key) pair", value=(_B, _T, _S, 64)),
    ],
    hint="B sources; T = the length of tgt[:, :-1]; S = the padded source length",
)

# --- cell 23 (ex04-22)
# TESTS
_cfg = Seq2SeqConfig(src_vocab=70, tgt_vocab=14, hidden_dim=96, attention_dim=32)
with torch.random.fork_rng():
    _extra = count_parameters(AttentionSeq2Seq(_cfg)) - count_parameters(Seq2Seq(_cfg))
assert _extra == 2 * 96 * 32 + 32
question(
    "q5", points=1, variable="q5_extra_parameters", expected=_extra,
    misconceptions=[
        misconception("You left out w_v, the scoring vector of length A", value=2 * 96 * 32),
        misconception("The layers have no bias: W_q (A, C), W_k (A, C) and w_v (A,) only",
                      value=2 * 96 * 32 + 32 + 2 * 32 + 1),
        misconception("The keys are the encoder states, of width hidden_dim (both directions "
                      "joined), not hidden_dim / 2", value=96 * 32 + 48 * 32 + 32),
        misconception("The query and the key have their own projections, W_q and W_k, "
                      "each (A, C)", value=96 * 32 + 32),
    ],
    hint="Count the weights of the one extra module, AdditiveAttention(hidden_dim, hidden_dim, "
         "attention_dim): what shapes do its three nn.Linear layers have?",
)

# --- cell 28 (ex04-27)
# TESTS
targets = ["1984-07-22", "1970-08-02", "2035-01-25", "2011-09-06", "2035-04-07",
           "2008-05-19", "1950-09-16", "2036-06-04", "1999-12-31", "2001-01-01"]
predictions = ["1984-07-22", "1970-08-29", "2035-05-15", "2011-09-10", "2035-07-03",
               "2008-05-19", "1950-06-29", "2036-06-02", "1999-12-3", "2001-01-011"]
_n_exact = sum(p == t for p, t in zip(predictions, targets))
_n_right = sum(sum(a == b for a, b in zip(p, t)) for p, t in zip(predictions, targets))
_n_chars = sum(len(t) for t in targets)
_n_compared = sum(min(len(p), len(t)) for p, t in zip(predictions, targets))
assert _n_compared < _n_chars
_exact, _chars = _n_exact / len(targets), _n_right / _n_chars
question(
    "q6", points=1, variable="q6_scores", expected={"exact": _exact, "characters": _chars},
    atol=1e-6, rtol=0.0,
    misconceptions=[
        misconception("You swapped the two scores: the exact match counts whole strings, "
                      "the character accuracy single characters",
                      value={"exact": _chars, "characters": _exact}),
        misconception("You divided by the characters compared (zip stops at the shorter "
                      "string), so a prediction that stops early is not punished for the "
                      "characters it left out: divide by the targets' characters",
                      value={"exact": _exact, "characters": _n_right / _n_compared}),
        misconception("You stored counts: both scores are fractions between 0 and 1",
                      value={"exact": _n_exact, "characters": _n_right}),
    ],
    hint="Exact: the share of pairs with p == t. Characters: count positions j < len(t) with "
         "j < len(p) and p[j] == t[j], divided by the total length of the targets",
)
