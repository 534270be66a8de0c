"""attnlab.data.keypad: DTMF tones, spectrograms, disjoint splits, a classic decoder, metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from attnlab.data.keypad import (
    HIGH_HZ,
    KEYPAD,
    LOW_HZ,
    PHONE_KEYS,
    KeypadConfig,
    collapse_runs,
    dtmf_frame_keys,
    edit_distance,
    exact_match,
    frame_count,
    key_error_rate,
    key_frequencies,
    keypad_task,
    log_spectrogram,
    peak_decode,
    span_mask,
    synthesize,
)

CLEAN = KeypadConfig(snr_db=60.0, detune=0.0, twist_db=0.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_key_frequencies_follow_the_keypad_grid():
    assert key_frequencies("1") == (697.0, 1209.0)
    assert key_frequencies("0") == (941.0, 1336.0)
    assert key_frequencies("D") == (941.0, 1633.0)
    pairs = {key_frequencies(k) for row in KEYPAD for k in row}
    assert len(pairs) == 16 and pairs == {(lo, hi) for lo in LOW_HZ for hi in HIGH_HZ}
    for bad in ("x", "12", "", 5):
        with pytest.raises(ValueError, match="not a keypad key"):
            key_frequencies(bad)


def test_config_checks():
    with pytest.raises(ValueError, match="sample_rate"):
        KeypadConfig(sample_rate=3000)
    with pytest.raises(ValueError, match="not a keypad key"):
        KeypadConfig(keys="12x")
    with pytest.raises(ValueError, match="min_keys"):
        KeypadConfig(min_keys=4, max_keys=3)
    with pytest.raises(ValueError, match="gap_ms"):
        KeypadConfig(gap_ms=(80.0, 40.0))


def test_synthesize_shapes_spans_and_durations():
    config = KeypadConfig(min_keys=2, max_keys=5)
    seqs = ["12", "55555", "#0*"]
    rec = synthesize(seqs, config, gen(1))
    assert rec.waves.dtype == torch.float32 and rec.waves.shape == (3, int(rec.lengths.max()))
    assert rec.keys == seqs and [len(s) for s in rec.spans] == [2, 5, 3]
    ms = 1000 / config.sample_rate
    for n, spans in enumerate(rec.spans):
        assert torch.all(rec.waves[n, int(rec.lengths[n]):] == 0)
        edges = [x for span in spans for x in span]
        assert edges == sorted(edges) and edges[-1] < rec.lengths[n]
        lead, trail = spans[0][0] * ms, (int(rec.lengths[n]) - spans[-1][1]) * ms
        for t in (lead, trail):
            assert config.edge_ms[0] - ms <= t <= config.edge_ms[1] + ms
        for start, stop in spans:
            assert config.tone_ms[0] - ms <= (stop - start) * ms <= config.tone_ms[1] + ms
        for (_, stop), (start, _) in zip(spans, spans[1:]):
            assert config.gap_ms[0] - ms <= (start - stop) * ms <= config.gap_ms[1] + ms


def test_synthesize_is_deterministic_and_checks_its_input():
    a, b = synthesize(["123", "9"], generator=gen(3)), synthesize(["123", "9"], generator=gen(3))
    assert torch.equal(a.waves, b.waves) and a.spans == b.spans
    assert a.spans != synthesize(["123", "9"], generator=gen(4)).spans
    with pytest.raises(ValueError, match="only the keys"):
        synthesize(["12A"])  # A is not on a phone's keypad
    with pytest.raises(ValueError, match="non-empty list"):
        synthesize("123")


def test_a_clean_key_sounds_at_its_two_frequencies():
    config = dataclasses.replace(CLEAN, tone_ms=(1000.0, 1000.0))  # one second: 1 Hz bins
    for key in "5#1":
        rec = synthesize([key], config, gen(0))
        start, stop = rec.spans[0][0]
        spectrum = np.abs(np.fft.rfft(rec.waves[0, start:stop].double().numpy()))
        peaks = sorted(np.argsort(spectrum)[-2:] * config.sample_rate / (stop - start))
        assert tuple(peaks) == key_frequencies(key)


def test_noise_has_the_stated_snr_and_silences_are_noise_only():
    for snr in (-5.0, 10.0):
        config = dataclasses.replace(CLEAN, snr_db=snr, level_db=(-6.0, -6.0))
        rec = synthesize(["1234567890"] * 4, config, gen(2))
        tone = torch.zeros_like(rec.waves, dtype=torch.bool)
        for n, spans in enumerate(rec.spans):
            for start, stop in spans:
                tone[n, start:stop] = True
        real = torch.arange(rec.waves.shape[1])[None, :] < rec.lengths[:, None]
        noise_power = rec.waves[real & ~tone].double().pow(2).mean()
        tone_power = rec.waves[tone].double().pow(2).mean() - noise_power
        assert float(tone_power) == pytest.approx(10 ** -0.6, rel=0.05)
        assert float(10 * torch.log10(tone_power / noise_power)) == pytest.approx(snr, abs=0.3)


def test_keypad_task_is_deterministic_with_disjoint_splits():
    config = KeypadConfig(min_keys=2, max_keys=4)
    a = keypad_task(300, 40, n_val=20, config=config, seed=5)
    b = keypad_task(300, 40, n_val=20, config=config, seed=5)
    assert a.train_keys == b.train_keys and torch.equal(a.test.waves, b.test.waves)
    assert torch.equal(a.val.waves, b.val.waves)
    assert keypad_task(300, 40, n_val=20, config=config, seed=6).train_keys != a.train_keys
    train, val, test = set(a.train_keys), set(a.val.keys), set(a.test.keys)
    assert len(train) == 300 and len(val) == 20 and len(test) == 40
    assert not train & val and not train & test and not val & test
    for s in a.train_keys + a.test.keys:
        assert 2 <= len(s) <= 4 and set(s) <= set(PHONE_KEYS)
    assert a.tokenizer.decode(a.tokenizer.encode(a.test.keys[0])) == a.test.keys[0]
    batch = a.train_batch(8, gen(0))
    assert set(batch.keys) <= train and torch.equal(batch.waves, a.train_batch(8, gen(0)).waves)
    with pytest.raises(ValueError, match="more than half"):
        keypad_task(100, 10, config=KeypadConfig(min_keys=1, max_keys=1))
    with pytest.raises(ValueError, match="n_test"):
        keypad_task(10, 0)


def naive_log_spectrogram(wave: np.ndarray, n_fft: int, hop: int, eps: float) -> np.ndarray:
    # frames centred on 0, hop, 2 hop, ... of the zero-padded signal, Hann window (periodic)
    padded = np.concatenate([np.zeros(n_fft // 2), wave, np.zeros(n_fft // 2)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = [padded[s * hop : s * hop + n_fft] * window for s in range(1 + len(wave) // hop)]
    return np.log(np.abs(np.fft.rfft(np.array(frames), axis=-1)) + eps)  # (S, F)


def test_log_spectrogram_matches_a_naive_stft():
    waves = torch.randn(2, 1000, generator=gen(0), dtype=torch.float64)
    waves[1, 700:] = 0
    lengths = torch.tensor([1000, 700])
    for n_fft, hop in ((256, 128), (200, 80)):
        spec, frames = log_spectrogram(waves, lengths, n_fft=n_fft, hop_length=hop)
        assert spec.shape == (2, frame_count(1000, hop), n_fft // 2 + 1)
        assert frames.tolist() == [frame_count(1000, hop), frame_count(700, hop)]
        for n in range(2):
            ref = naive_log_spectrogram(waves[n, : int(lengths[n])].numpy(), n_fft, hop, 1e-5)
            np.testing.assert_allclose(spec[n, : int(frames[n])].numpy(), ref, atol=1e-9)


def test_log_spectrogram_of_a_recording_does_not_depend_on_its_batch():
    rec = synthesize(["12", "123456"], generator=gen(0))
    spec, frames = log_spectrogram(rec.waves, rec.lengths)
    n = int(rec.lengths[0])
    alone, _ = log_spectrogram(rec.waves[:1, :n])
    torch.testing.assert_close(spec[0, : int(frames[0])], alone[0])
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        log_spectrogram(rec.waves[0])
    with pytest.raises(ValueError, match="lengths"):
        log_spectrogram(rec.waves, torch.tensor([0, 5]))


def test_span_mask_marks_steps_whose_centre_is_inside():
    mask = span_mask([(0, 256), (300, 900)], n_steps=4, hop_length=128, stride=2)
    # step centres: 0, 256, 512, 768
    assert mask.tolist() == [[True, False, False, False], [False, False, True, True]]
    assert span_mask([], 3, 128).shape == (0, 3)
    with pytest.raises(ValueError, match="stride"):
        span_mask([(0, 1)], 3, 128, stride=0)


def test_dtmf_frame_keys_reads_the_key_inside_its_tone_and_silence_outside():
    rec = synthesize(["7#"], CLEAN, gen(0))
    spec, frames = log_spectrogram(rec.waves, rec.lengths)
    labels = dtmf_frame_keys(spec)[0]
    for key, (start, stop) in zip("7#", rec.spans[0]):
        inside = span_mask([(start + 128, stop - 128)], spec.shape[1], 128)[0]  # whole windows
        assert inside.any() and torch.all(labels[inside] == PHONE_KEYS.index(key))
    before = span_mask([(0, rec.spans[0][0][0] - 128)], spec.shape[1], 128)[0]
    assert torch.all(labels[before] == -1)
    with pytest.raises(ValueError, match="n_fft"):
        dtmf_frame_keys(spec, n_fft=512)


def test_collapse_runs_on_hand_made_labels():
    assert collapse_runs([-1, 3, 3, -1, 3, 3, -1]) == [3, 3]  # a gap separates two presses
    assert collapse_runs([3, 3, 4, 4]) == [3, 4]
    assert collapse_runs([-1, -1]) == [] and collapse_runs([]) == []
    blip = [-1, 3, 3, 3, 7, 3, 3, -1]
    assert collapse_runs(blip) == [3, 7, 3] and collapse_runs(blip, min_tone=2) == [3]
    dropout = [5, 5, -1, 5, 5, -1, -1, 5]
    assert collapse_runs(dropout) == [5, 5, 5]
    assert collapse_runs(dropout, min_gap=2) == [5, 5]  # the 1-frame dropout is not a gap
    assert collapse_runs(torch.tensor([0, 0, -1, 1])) == [0, 1]
    with pytest.raises(ValueError, match="min_tone"):
        collapse_runs([1], min_tone=0)
    with pytest.raises(ValueError, match=r"\(S,\)"):
        collapse_runs(torch.zeros(2, 2, dtype=torch.long))


def test_peak_decode_transcribes_clean_recordings():
    seqs = ["1234567890*#", "5555", "00#00"]
    rec = synthesize(seqs, dataclasses.replace(CLEAN, snr_db=20.0), gen(7))
    assert peak_decode(*log_spectrogram(rec.waves, rec.lengths)) == seqs
    abcd = KeypadConfig(keys="ABCD1", snr_db=20.0)
    rec = synthesize(["AB1D"], abcd, gen(0))
    spec, frames = log_spectrogram(rec.waves, rec.lengths)
    assert peak_decode(spec, frames, keys="ABCD1") == ["AB1D"]
    assert peak_decode(spec, frames) == ["1"]  # A, B, D are not a phone's keys: silence


def test_metrics_on_hand_made_cases():
    assert edit_distance("", "") == 0 and edit_distance("123", "") == 3
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("12345", "1345") == 1 and edit_distance("1345", "12345") == 1
    assert edit_distance("55", "5") == 1 and edit_distance("123", "321") == 2
    assert edit_distance([1, 2], [2]) == 1
    assert key_error_rate(["123", "4"], ["123", "45"]) == pytest.approx(1 / 5)
    assert key_error_rate(["", ""], ["1", "22"]) == 1.0
    assert exact_match(["1", "2", "3", "4"], ["1", "2", "3", "5"]) == 0.75
    with pytest.raises(ValueError, match="as many predictions"):
        exact_match(["1"], ["1", "2"])
