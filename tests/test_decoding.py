"""Decoding rules: top-k and nucleus filters, beam search, GPT.generate(top_p=...)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from attnlab.decoding import beam_search, length_penalty_factor, top_k_filter, top_p_filter
from attnlab.models import GPT, GPTConfig, Transformer, TransformerConfig

INF = float("-inf")


def nucleus_reference(row: list[float], p: float) -> list[bool]:
    """Which tokens top-p keeps, in plain Python: tokens by falling probability
    until the mass reaches p (ties with the last one kept are kept too)."""
    finite = [z for z in row if z != INF]
    top = max(finite)
    weights = [math.exp(z - top) if z != INF else 0.0 for z in row]
    probs = [w / sum(weights) for w in weights]
    order = sorted(range(len(row)), key=lambda i: -probs[i])
    mass, last = 0.0, None
    for i in order:
        last = probs[i]
        mass += probs[i]
        if mass >= p:
            break
    return [probs[i] >= last and row[i] != INF for i in range(len(row))]


# ------------------------------------------------------------------------- top-p


def test_top_p_matches_a_plain_reference():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(20, 7, generator=g, dtype=torch.float64) * 2
    for p in (0.05, 0.3, 0.5, 0.8, 0.95, 0.999):
        kept = top_p_filter(logits, p).isfinite()
        expected = torch.tensor([nucleus_reference(r, p) for r in logits.tolist()])
        assert torch.equal(kept, expected), f"p={p}"


def test_top_p_keeps_the_smallest_set_that_reaches_p():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(50, 10, generator=g)
    probs = F.softmax(logits, -1)
    for p in (0.2, 0.6, 0.9):
        kept = top_p_filter(logits, p).isfinite()
        mass = (probs * kept).sum(-1)
        assert (mass >= p - 1e-6).all()
        least_kept = probs.masked_fill(~kept, 2.0).min(-1).values
        assert (mass - least_kept < p).all(), "one token fewer would still reach p"
        # the kept tokens are the most likely ones
        assert (probs.masked_fill(kept, -1).max(-1).values < least_kept).all()


def test_top_p_one_keeps_every_finite_logit():
    logits = torch.tensor([[3.0, -40.0, INF, 0.5], [-100.0, 100.0, 0.0, INF]])
    assert torch.equal(top_p_filter(logits, 1.0), logits)
    assert torch.equal(top_p_filter(logits, 1), logits)


def test_tiny_p_keeps_only_the_most_likely_token():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(8, 12, generator=g)
    kept = top_p_filter(logits, 1e-9).isfinite()
    assert torch.equal(kept, F.one_hot(logits.argmax(-1), 12).bool())


def test_the_most_likely_token_is_kept_however_small_its_probability():
    logits = torch.zeros(1000)
    logits[3] = 1e-3                                  # most likely, probability ~0.001
    kept = top_p_filter(logits, 1e-4).isfinite()
    assert kept.nonzero().flatten().tolist() == [3]


def test_ties_are_kept_together_and_the_vocabulary_order_does_not_matter():
    uniform = torch.zeros(4)
    assert top_p_filter(uniform, 0.3).isfinite().all()    # 2 needed, all 4 tied
    logits = torch.tensor([2.0, 1.0, 1.0, 0.0, -1.0])
    kept = top_p_filter(logits, 0.6).isfinite()           # 0.53 + 0.20 reaches 0.6
    assert kept.tolist() == [True, True, True, False, False]
    g = torch.Generator().manual_seed(3)
    rows = torch.randint(0, 3, (30, 6), generator=g).float()   # many ties
    perm = torch.randperm(6, generator=g)
    for p in (0.3, 0.5, 0.9):
        assert torch.equal(top_p_filter(rows[:, perm], p), top_p_filter(rows, p)[:, perm])


def test_rows_are_filtered_independently_and_leading_dims_are_kept():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 9, generator=g)
    out = top_p_filter(logits, 0.7)
    assert out.shape == logits.shape
    for i, j in itertools.product(range(2), range(3)):
        assert torch.equal(out[i, j], top_p_filter(logits[i, j], 0.7))
    sharp = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert top_p_filter(sharp, 0.5).isfinite().sum(-1).tolist() == [1, 3]


def test_minus_inf_inputs_stay_removed_and_all_minus_inf_rows_pass_through():
    logits = torch.tensor([[INF, 1.0, INF, 0.9], [INF, INF, INF, INF]])
    out = top_p_filter(logits, 0.5)
    assert out[0].isfinite().tolist() == [False, True, False, False]
    assert torch.equal(out[1], logits[1])
    assert not out.isnan().any()
    out = top_p_filter(logits, 0.99)
    assert out[0].isfinite().tolist() == [False, True, False, True]


def test_top_p_keeps_values_dtype_and_does_not_modify_its_input():
    logits = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    before = logits.clone()
    out = top_p_filter(logits, 0.5)
    assert out.dtype == torch.float64 and torch.equal(logits, before)
    assert out.tolist() == [INF, INF, 3.0]
    half = top_p_filter(logits.to(torch.bfloat16), 0.5)
    assert half.dtype == torch.bfloat16 and half.isfinite().tolist() == [False, False, True]


@pytest.mark.parametrize("p", [0, 0.0, -0.1, 1.0001, 2, float("nan"), float("inf"), True,
                               "0.5", None])
def test_p_outside_the_unit_interval_is_a_clear_error(p):
    with pytest.raises(ValueError, match=r"p must be a number in \(0, 1\]"):
        top_p_filter(torch.zeros(3), p)


def test_bad_logits_are_clear_errors():
    with pytest.raises(ValueError, match="floating-point"):
        top_p_filter(torch.zeros(3, dtype=torch.long), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        top_p_filter(torch.tensor([0.0, float("nan")]), 0.5)
    with pytest.raises(ValueError, match=r"\+inf"):
        top_p_filter(torch.tensor([0.0, float("inf")]), 0.5)
    with pytest.raises(ValueError, match="V >= 1"):
        top_p_filter(torch.zeros(2, 0), 0.5)
    with pytest.raises(TypeError, match="torch.Tensor"):
        top_p_filter([0.0, 1.0], 0.5)


# ------------------------------------------------------------------------- top-k


def test_top_k_keeps_the_k_largest_and_their_ties():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    assert top_k_filter(logits, 2).isfinite().tolist() == [[False, True, True, False],
                                                          [True, True, True, False]]
    assert torch.equal(top_k_filter(logits, 4), logits)
    assert torch.equal(top_k_filter(logits, 99), logits)
    assert top_k_filter(logits[:1], 1).isfinite().sum() == 1
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            top_k_filter(logits, k)


# ------------------------------------------------------------- GPT.generate(top_p)


def small_gpt(seed: int = 0, vocab: int = 11, block: int = 24) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=2,
                         n_embd=16)).eval()


def test_generate_with_tiny_top_p_is_greedy_and_top_p_one_changes_nothing():
    model = small_gpt()
    prompt = torch.randint(0, 11, (4, 3), generator=torch.Generator().manual_seed(0))
    greedy = model.generate(prompt, 8)
    nucleus = model.generate(prompt, 8, temperature=1.0, top_p=1e-6,
                             generator=torch.Generator().manual_seed(5))
    assert torch.equal(nucleus, greedy)

    def sample(**kw):
        return model.generate(prompt, 8, temperature=1.5,
                              generator=torch.Generator().manual_seed(6), **kw)

    assert torch.equal(sample(top_p=1.0), sample())
    assert not torch.equal(sample(), greedy)          # sampling differs from greedy here
    with_cache = sample(top_p=0.8, top_k=5)
    without = model.generate(prompt, 8, temperature=1.5, top_p=0.8, top_k=5,
                             use_cache=False, generator=torch.Generator().manual_seed(6))
    assert torch.equal(with_cache, without)


def test_generate_samples_only_inside_the_nucleus():
    model = small_gpt(1)
    prompt = torch.zeros(64, 1, dtype=torch.long)
    out = model.generate(prompt, 1, temperature=1.0, top_p=0.5,
                         generator=torch.Generator().manual_seed(0))
    allowed = top_p_filter(model(prompt)[0, -1].detach(), 0.5).isfinite()
    assert allowed[out[:, 1]].all()
    assert allowed.sum() < 11


def test_generate_checks_top_p_even_when_greedy():
    model = small_gpt()
    with pytest.raises(ValueError, match="p must be a number"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), 3, top_p=0.0)


# --------------------------------------------------------------------- beam search


class Bigram(torch.nn.Module):
    """A hand-made model: the next token's probabilities depend on the last token."""

    def __init__(self, table: dict[int, dict[int, float]], vocab: int) -> None:
        super().__init__()
        logp = torch.full((vocab, vocab), math.log(1e-6))
        for prev, nxt in table.items():
            for tok, prob in nxt.items():
                logp[prev, tok] = math.log(prob)
        self.register_buffer("logp", logp.log_softmax(-1))
        self.calls: list[tuple[int, ...]] = []

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(idx.shape))
        return self.logp[idx]                       # (N, T, V)


def sequence_logprob(model: Bigram, seq: list[int]) -> float:
    return sum(float(model.logp[a, b]) for a, b in itertools.pairwise(seq))


EOS, BOS, A, B_, C, D = range(6)


def test_beam_search_finds_what_greedy_misses():
    # from <bos>: A 0.6, B 0.4; after A the model hesitates (three tokens, 1/3 each),
    # after B it is sure (C 0.9): P(A ·) <= 0.2 < P(B C) = 0.36
    model = Bigram({BOS: {A: 0.6, B_: 0.4}, A: {C: 0.34, D: 0.33, A: 0.33},
                    B_: {C: 0.9, D: 0.1}}, vocab=6)
    prompt = torch.tensor([[BOS]])
    greedy = beam_search(model, prompt, 2, num_beams=1)
    beams = beam_search(model, prompt, 2, num_beams=2)
    assert greedy.tolist() == [[BOS, A, C]]
    assert beams.tolist() == [[BOS, B_, C]]
    assert sequence_logprob(model, beams[0].tolist()) > sequence_logprob(model, greedy[0].tolist())
    assert model.calls[-1] == (2, 2)              # B * num_beams rows


def test_length_penalty_decides_between_a_short_and_a_long_hypothesis():
    # "<eos>" at once: log 0.52 = -0.654; "A <eos>": log 0.48 + log 0.99 = -0.744,
    # divided by lp(2) = 7/6 at alpha = 1: -0.638, which beats -0.654
    # (from B, "A <eos>" wins either way: the two prompts are searched independently)
    model = Bigram({BOS: {EOS: 0.52, A: 0.48}, A: {EOS: 0.99, A: 0.01},
                    B_: {A: 0.9, EOS: 0.1}}, vocab=6)
    prompt = torch.tensor([[BOS], [B_]])
    short = beam_search(model, prompt, 4, num_beams=2, eos_id=EOS, pad_id=5)
    long = beam_search(model, prompt, 4, num_beams=2, length_penalty=1.0, eos_id=EOS, pad_id=5)
    assert short.tolist() == [[BOS, EOS, 5], [B_, A, EOS]]       # padded after <eos>
    assert long.tolist() == [[BOS, A, EOS], [B_, A, EOS]]
    alone = beam_search(model, prompt[:1], 4, num_beams=2, eos_id=EOS, pad_id=5)
    assert alone.tolist() == [[BOS, EOS]]
    assert math.log(0.48 * 0.99) / length_penalty_factor(2, 1.0) > math.log(0.52)


def test_length_penalty_factor():
    assert length_penalty_factor(1, 0.0) == 1.0
    assert length_penalty_factor(1, 1.0) == 1.0
    assert length_penalty_factor(7, 1.0) == 2.0
    lengths = torch.arange(1, 10)
    assert (length_penalty_factor(lengths, 0.6).diff() > 0).all()


def test_beam_search_with_one_beam_is_greedy_generate():
    model = small_gpt(2)
    prompt = torch.randint(0, 11, (5, 4), generator=torch.Generator().manual_seed(1))
    for alpha in (0.0, 0.7):
        assert torch.equal(beam_search(model, prompt, 10, 1, alpha), model.generate(prompt, 10))


def test_beam_search_with_one_beam_and_an_end_token_is_greedy_up_to_the_end():
    model = small_gpt(3, vocab=5)
    prompt = torch.randint(1, 5, (16, 2), generator=torch.Generator().manual_seed(2))
    greedy = model.generate(prompt, 12)
    eos = int(greedy[0, 5])                         # a token that greedy writes
    pad = (eos + 1) % 5
    beam = beam_search(model, prompt, 12, 1, eos_id=eos, pad_id=pad)
    ended = False
    for g_row, b_row in zip(greedy.tolist(), beam.tolist()):
        new_g = g_row[2:]
        cut = new_g.index(eos) + 1 if eos in new_g else len(new_g)
        ended |= cut < len(new_g)
        assert b_row[2:2 + cut] == new_g[:cut]
        assert all(t == pad for t in b_row[2 + cut:])
    assert ended, "the test needs a sequence that ends early"


def test_enough_beams_search_exhaustively():
    # V = 4, 3 new tokens: 16 beams hold every 2-token prefix, so nothing is pruned
    model = small_gpt(4, vocab=4, block=8)
    prompt = torch.tensor([[1, 2]])
    best = beam_search(model, prompt, 3, num_beams=16)[0, 2:].tolist()
    with torch.no_grad():
        def logprob(cont):
            seq = torch.tensor([[1, 2, *cont]])
            logp = model(seq[:, :-1]).log_softmax(-1)[0, 1:]       # predicts cont
            return logp[torch.arange(3), torch.tensor(cont)].sum().item()

        scores = {c: logprob(list(c)) for c in itertools.product(range(4), repeat=3)}
    assert tuple(best) == max(scores, key=scores.get)


def test_beam_search_shapes_and_padding():
    model = small_gpt(5, vocab=6)
    prompt = torch.randint(1, 6, (3, 2), generator=torch.Generator().manual_seed(3))
    out = beam_search(model, prompt, 6, num_beams=3)
    assert out.shape == (3, 8) and out.dtype == prompt.dtype
    assert torch.equal(out[:, :2], prompt)
    assert torch.equal(beam_search(model, prompt, 0, num_beams=3), prompt)
    ended = beam_search(model, prompt, 6, num_beams=3, eos_id=0, pad_id=5)
    assert ended.shape[0] == 3 and 2 < ended.shape[1] <= 8


def test_beam_search_reaches_an_encoder_decoder_through_an_adapter():
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(src_vocab=9, tgt_vocab=9, dim=16, num_heads=2,
                                          ff_dim=32, max_len=16)).eval()
    src = torch.randint(3, 9, (4, 6), generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([6, 4, 5, 3])
    memory, mask = model.encode(src, lengths)

    def decoder(num_beams):                         # (B K, T) -> (B K, T, V)
        mem, m = memory.repeat_interleave(num_beams, 0), mask.repeat_interleave(num_beams, 0)
        return lambda y: model.decode(y, mem, m)

    bos = torch.full((4, 1), model.config.bos_id)
    out = beam_search(decoder(3), bos, 7, num_beams=3)
    assert out.shape == (4, 8)
    greedy = model.greedy_decode(src, lengths, 7)   # ids after <eos> are 0
    one = beam_search(decoder(1), bos, 7, num_beams=1, eos_id=model.config.eos_id)
    assert torch.equal(one[:, 1:], greedy)


def test_beam_search_bad_input_is_a_clear_error():
    model = small_gpt()
    ok = torch.zeros(1, 2, dtype=torch.long)
    cases = [((ok.float(), 3, 2), "integer token ids"),
             ((ok[0], 3, 2), r"\(B, T0\)"),
             ((ok[:, :0], 3, 2), r"\(B, T0\)"),
             ((ok, -1, 2), "max_new_tokens must be an integer >= 0"),
             ((ok, 3, 0), "num_beams must be an integer >= 1"),
             ((ok, 3, 2.0), "num_beams must be an integer >= 1")]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            beam_search(model, *args)
    with pytest.raises(ValueError, match="length_penalty must be a finite number"):
        beam_search(model, ok, 3, 2, float("nan"))
    with pytest.raises(ValueError, match="eos_id must be a token id"):
        beam_search(model, ok, 3, 2, eos_id=-1)
    with pytest.raises(ValueError, match=r"logits \(N, T, V\)"):
        beam_search(lambda ids: ids.float(), ok, 3, 2)
