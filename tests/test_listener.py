"""attnlab.models.listener: shapes, padding, a forward-only encoder, the attention it reuses."""

from __future__ import annotations

import pytest
import torch

from attnlab.data.keypad import (
    KeypadConfig,
    exact_match,
    keypad_task,
    log_spectrogram,
    synthesize,
)
from attnlab.layers import AdditiveAttention
from attnlab.masks import padding_mask
from attnlab.models import AttentionSeq2Seq, Seq2SeqConfig, count_parameters
from attnlab.models.listener import Listener, ListenerConfig
from attnlab.train import TrainConfig, fit, sequence_loss


def model(seed: int = 0, **kw) -> Listener:
    torch.manual_seed(seed)
    return Listener(ListenerConfig(**kw)).eval()


def batch(seed: int = 0):
    rec = synthesize(["12", "123456", "#0"], generator=torch.Generator().manual_seed(seed))
    spec, frames = log_spectrogram(rec.waves, rec.lengths)
    return spec, frames


def test_config_is_a_seq2seq_config_and_the_model_an_attention_seq2seq():
    config = ListenerConfig()
    assert isinstance(config, Seq2SeqConfig) and isinstance(model(), AttentionSeq2Seq)
    assert model().src_embed is None and not model().encoder.bidirectional
    assert 150_000 < count_parameters(model()) < 300_000
    with pytest.raises(ValueError, match="stride"):
        ListenerConfig(stride=0)


def test_shapes_of_forward_and_greedy_decoding():
    m = model()
    spec, frames = batch()  # (3, S, 129)
    steps = m.step_lengths(frames)
    assert steps.tolist() == [(int(n) + 1) // 2 for n in frames]
    tgt_in = torch.tensor([[1, 4, 5], [1, 4, 5], [1, 14, 3]])
    logits, weights = m(spec, frames, tgt_in)
    S2 = (spec.shape[1] + 1) // 2
    assert logits.shape == (3, 3, 15) and weights.shape == (3, 3, S2)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 3))
    for b in range(3):
        assert torch.all(weights[b, :, int(steps[b]):] == 0)  # no weight past the end
    ids, w = m.greedy_decode(spec, frames, max_len=5)
    assert ids.shape[0] == 3 and ids.shape[1] <= 5 and w.shape == (3, ids.shape[1], S2)
    m3 = model(stride=3)
    assert m3(spec, frames, tgt_in)[1].shape[-1] == (spec.shape[1] + 2) // 3


def test_a_recording_gives_the_same_outputs_alone_and_in_a_padded_batch():
    m = model()
    spec, frames = batch()
    tgt_in = torch.tensor([[1, 4, 5]] * 3)
    logits, weights = m(spec, frames, tgt_in)
    n = int(frames[0])
    alone_logits, alone_weights = m(spec[:1, :n], frames[:1], tgt_in[:1])
    torch.testing.assert_close(alone_logits[0], logits[0], atol=1e-5, rtol=1e-5)
    steps = int(m.step_lengths(frames[:1]))
    torch.testing.assert_close(alone_weights[0], weights[0, :, :steps], atol=1e-6, rtol=1e-5)
    ids, _ = m.greedy_decode(spec, frames, 4)
    ids_alone, _ = m.greedy_decode(spec[:1, :n], frames[:1], 4)
    assert torch.equal(ids_alone[0], ids[0, : ids_alone.shape[1]])


def test_the_encoder_reads_forwards_only():
    # step j is centred on frame 2j and, through two convolutions of width 3, hears up to frame
    # 2j + 2; changing later frames must leave its state unchanged, and change later states
    m = model()
    spec, frames = batch()
    changed = spec.clone()
    changed[:, 13:] += torch.randn(changed[:, 13:].shape)
    states, _ = m.encode(*m.features(spec, frames))
    states2, _ = m.encode(*m.features(changed, frames))
    torch.testing.assert_close(states2[:, :6], states[:, :6])  # steps 0..5 hear frames <= 12
    assert not torch.allclose(states2[1, 6:], states[1, 6:])


def test_the_attention_is_attnlab_additive_attention_over_the_encoder_states():
    m = model()
    spec, frames = batch()
    tgt_in = torch.tensor([[1, 4, 5]] * 3)
    _, weights = m(spec, frames, tgt_in)
    x, steps = m.features(spec, frames)
    states, last = m.encode(x, steps)
    queries, _ = m.decoder(m.tgt_embed(tgt_in), torch.tanh(m.bridge(last))[None])
    layer = AdditiveAttention(128, 128, 64)
    layer.load_state_dict(m.attention.state_dict())
    _, ref = layer(queries, states, states, mask=padding_mask(steps, states.shape[1]),
                   need_weights=True)
    torch.testing.assert_close(weights, ref)


def test_the_front_end_ignores_the_recording_level():
    # scaling a wave by a adds log(a) to every bin (up to eps); the layer norm removes it
    m = model()
    spec, frames = batch()
    tgt_in = torch.tensor([[1, 4, 5]] * 3)
    torch.testing.assert_close(m(spec + 2.5, frames, tgt_in)[0], m(spec, frames, tgt_in)[0],
                               atol=1e-4, rtol=1e-4)


def test_input_checks():
    m = model()
    spec, frames = batch()
    with pytest.raises(ValueError, match="F=129"):
        m.features(spec[..., :100], frames)
    with pytest.raises(ValueError, match=r"must be a \(B,\) tensor"):
        m.features(spec, frames[:2])
    with pytest.raises(ValueError, match="lengths must lie"):
        m.features(spec, frames + 1000)
    with pytest.raises(ValueError, match="floating point"):
        m.features(spec.long(), frames)
    with pytest.raises(ValueError, match="tgt_in"):
        m(spec, frames, torch.tensor([[1, 99]] * 3))


def test_it_learns_to_transcribe_short_sequences():
    # a smoke test of training: fresh recordings (new durations, phases, noise) of the
    # training sequences are transcribed after 100 steps
    config = KeypadConfig(min_keys=1, max_keys=2, snr_db=10.0, keys="0123")
    task = keypad_task(8, 1, n_val=1, config=config, seed=0)
    m = model(hidden_dim=64, attention_dim=32, embed_dim=32, tgt_vocab=7)

    def batch_fn(step, g):
        rec = task.train_batch(32, g)
        spec, frames = log_spectrogram(rec.waves, rec.lengths)
        return spec, frames, task.tokenizer.batch(rec.keys, bos=True, eos=True)[0]

    def loss_fn(net, b):
        logits, _ = net(b[0], b[1], b[2][:, :-1])
        return sequence_loss(logits, b[2][:, 1:])

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(m, batch_fn, loss_fn, TrainConfig(steps=100, lr=1e-2, warmup=10, device="cpu",
                                              progress=False))
    finally:
        torch.set_num_threads(threads)
    rec = task.record(task.train_keys, seed=99)
    ids, _ = m.greedy_decode(*log_spectrogram(rec.waves, rec.lengths), 3)
    predictions = [task.tokenizer.decode(r) for r in ids]
    assert exact_match(predictions, rec.keys) == 1.0, (predictions, rec.keys)


def test_ctc_listener_shares_the_encoder_and_decodes():
    from attnlab.models.listener import CTCListener

    config = ListenerConfig(n_freqs=8, tgt_vocab=6, embed_dim=8, hidden_dim=8, stride=2)
    torch.manual_seed(0)
    ctc, las = CTCListener(config), Listener(config)
    assert CTCListener.encode is Listener.encode and CTCListener.features is Listener.features
    ctc.load_state_dict({k: v for k, v in las.state_dict().items()
                         if k.split(".")[0] in ("norm", "conv1", "conv2", "encoder")}
                        | {k: v for k, v in ctc.state_dict().items() if k.startswith("head")})
    spec, lengths = torch.randn(2, 11, 8), torch.tensor([11, 6])
    with torch.no_grad():
        torch.testing.assert_close(ctc.encode(*ctc.features(spec, lengths))[0],
                                   las.encode(*las.features(spec, lengths))[0])
        logp, steps = ctc(spec, lengths)
    assert tuple(logp.shape) == (2, 6, 6) and steps.tolist() == [6, 3]
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(2, 6))
    # greedy decoding merges repeats and drops blanks: force the head's choices
    with torch.no_grad():
        ctc.head.weight.zero_()
        ctc.head.bias.copy_(torch.tensor([0.0, -9, -9, 5.0, -9, -9]))
    assert ctc.greedy_decode(spec, lengths) == [[3], [3]]


def test_ctc_listener_learns_a_fixed_target():
    from attnlab.models.listener import CTCListener

    torch.manual_seed(0)
    model = CTCListener(ListenerConfig(n_freqs=4, tgt_vocab=5, embed_dim=16, hidden_dim=16))
    spec, lengths = torch.randn(4, 12, 4), torch.full((4,), 12)
    targets, target_lengths = torch.tensor([[3, 4, 3]] * 4), torch.full((4,), 3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    first = None
    for _ in range(150):
        loss = model.loss(spec, lengths, targets, target_lengths)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 4
    assert model.greedy_decode(spec, lengths) == [[3, 4, 3]] * 4
