"""attnlab.models: shapes, decoding with and without caches, masks, and errors."""

from __future__ import annotations

import pytest
import torch

from attnlab.models import (
    GPT,
    AttentionSeq2Seq,
    GPTConfig,
    Seq2Seq,
    Seq2SeqConfig,
    Transformer,
    TransformerConfig,
    count_parameters,
)


def ids(*shape, vocab=10, low=3, seed=0):
    return torch.randint(low, vocab, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("positional", ["learned", "rotary"])
def test_gpt_cache_gives_the_same_tokens_and_logits(positional):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=12, block_size=24, n_embd=32, n_head=4,
                          positional=positional)).eval()
    prompt = ids(3, 5, vocab=12)
    greedy = model.generate(prompt, 12, use_cache=True)
    torch.testing.assert_close(greedy, model.generate(prompt, 12, use_cache=False))
    sampled = [model.generate(prompt, 12, temperature=1.0, top_k=5, use_cache=c,
                              generator=torch.Generator().manual_seed(1)) for c in (True, False)]
    torch.testing.assert_close(sampled[0], sampled[1])
    caches = model.new_caches()
    steps = [model(greedy[:, :5], caches)] + [model(greedy[:, t : t + 1], caches)
                                              for t in range(5, greedy.shape[1])]
    torch.testing.assert_close(torch.cat(steps, 1), model(greedy), atol=1e-5, rtol=1e-5)


def test_gpt_is_causal_and_checks_its_input():
    model = GPT(GPTConfig(vocab_size=10, block_size=8, n_embd=16, n_head=2)).eval()
    x = ids(2, 8)
    y = x.clone()
    y[:, 5:] = 3
    torch.testing.assert_close(model(x)[:, :5], model(y)[:, :5])
    with pytest.raises(ValueError, match="exceeds block_size=8"):
        model(ids(1, 9))
    with pytest.raises(ValueError, match=r"ids outside \[0, 10\)"):
        model(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="positional must be"):
        GPT(GPTConfig(vocab_size=10, positional="sinusoidal"))  # type: ignore[arg-type]
    assert model.head.weight is model.tok_embed.weight


def test_gpt_generate_stops_at_stop_id():
    model = GPT(GPTConfig(vocab_size=6, block_size=16, n_embd=16, n_head=2)).eval()
    with torch.no_grad():
        model.head.weight.zero_()  # every logit 0 -> argmax is token 0
    out = model.generate(ids(2, 3, vocab=6), 10, stop_id=0)
    assert out.shape == (2, 4)


def test_transformer_greedy_decode_equals_teacher_forced_argmax():
    torch.manual_seed(1)
    model = Transformer(TransformerConfig(src_vocab=10, tgt_vocab=10, dim=32)).eval()
    src, lengths = ids(4, 7), torch.tensor([7, 5, 3, 6])
    out = model.greedy_decode(src, lengths, 8)
    tgt_in = torch.cat([torch.ones(4, 1, dtype=torch.long), out[:, :-1]], dim=1)
    torch.testing.assert_close(model(src, lengths, tgt_in).argmax(-1), out)


def test_transformer_ignores_padding():
    torch.manual_seed(2)
    model = Transformer(TransformerConfig(src_vocab=10, tgt_vocab=10, dim=32)).eval()
    src = ids(1, 5)
    padded = torch.cat([src, ids(1, 3, seed=5)], dim=1)
    tgt_in = ids(1, 4, seed=6)
    torch.testing.assert_close(model(src, torch.tensor([5]), tgt_in),
                               model(padded, torch.tensor([5]), tgt_in), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [Seq2Seq, AttentionSeq2Seq])
def test_seq2seq_shapes_padding_and_decoding(cls):
    torch.manual_seed(3)
    model = cls(Seq2SeqConfig(src_vocab=10, tgt_vocab=9, hidden_dim=16, attention_dim=8)).eval()
    src, lengths = ids(3, 6), torch.tensor([6, 2, 4])
    tgt_in = ids(3, 5, vocab=9)
    logits, weights = model(src, lengths, tgt_in)
    assert logits.shape == (3, 5, 9)
    padded = torch.cat([src, ids(3, 4, seed=9)], dim=1)
    torch.testing.assert_close(model(padded, lengths, tgt_in)[0], logits, atol=1e-5, rtol=1e-5)
    out, w = model.greedy_decode(src, lengths, 7)
    assert out.shape[0] == 3 and out.shape[1] <= 7
    if cls is AttentionSeq2Seq:
        assert weights.shape == (3, 5, 6) and w.shape == (3, out.shape[1], 6)
        assert torch.all(weights[1, :, 2:] == 0) and torch.all(weights[2, :, 4:] == 0)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
    else:
        assert weights is None and w is None


def test_seq2seq_errors():
    model = Seq2Seq(Seq2SeqConfig(src_vocab=10, tgt_vocab=9, hidden_dim=16))
    with pytest.raises(ValueError, match=r"src_lengths must lie in \[1, S=4\]"):
        model(ids(2, 4), torch.tensor([4, 5]), ids(2, 3, vocab=9))
    with pytest.raises(ValueError, match=r"must be \(B,\)"):
        model(ids(2, 4), torch.tensor([4]), ids(2, 3, vocab=9))
    with pytest.raises(ValueError, match="hidden_dim must be even"):
        Seq2Seq(Seq2SeqConfig(src_vocab=10, tgt_vocab=9, hidden_dim=15))


def test_attention_adds_parameters_only_for_the_scorer():
    c = Seq2SeqConfig(src_vocab=10, tgt_vocab=9)
    extra = count_parameters(AttentionSeq2Seq(c)) - count_parameters(Seq2Seq(c))
    assert extra == 2 * c.hidden_dim * c.attention_dim + c.attention_dim


def test_shift_model_positions_window_and_errors():
    from attnlab.models import ShiftModel

    ids = torch.randint(0, 16, (3, 12), generator=torch.Generator().manual_seed(0))
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for positions in ("none", "sinusoidal", "learned", "rotary"):
            torch.manual_seed(0)
            model = ShiftModel(positions, max_len=16)
            out = model(ids)
            assert out.shape == (3, 12, 16)
            moved = torch.allclose(model(ids[:, perm]), out[:, perm], atol=1e-5)
            assert moved == (positions == "none")     # only positions break the symmetry
        w = ShiftModel("rotary", window=2).attention(ids)                  # (B, H, T, S)
        far = (torch.arange(12)[:, None] - torch.arange(12)[None, :]).abs() > 2
        assert w.shape == (3, 2, 12, 12) and (w[..., far] == 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 12))
        with pytest.raises(ValueError, match="exceed max_len=16"):
            ShiftModel("learned", max_len=16)(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="positions must be one of"):
        ShiftModel("absolute")
    with pytest.raises(ValueError, match="window must be None or an integer >= 0"):
        ShiftModel("rotary", window=-1)
