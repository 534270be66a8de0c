"""attnlab.data.speech (eSpeak NG, offline), its features and the error rates."""

import numpy as np
import pytest
import torch

from attnlab.data.speech import (
    ENGLISH_VOICES,
    SpeechConfig,
    add_noise,
    change_speed,
    reverberate,
    speak,
    spoken_digits_task,
)
from attnlab.data.speech_features import (
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
)
from attnlab.metrics import char_error_rate, word_error_rate


def test_speak_is_deterministic_and_offline(monkeypatch):
    # no network: the library and voices come from the wheel; a socket would fail
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("speak() tried to open a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    texts, voices = ["four two", "nine"], ["en-us+m1", "en-gb-scotland+f2"]
    a = speak(texts, voices, [170, 200], [40, 60], sample_rate=11025)
    speak(["one"], ["en+m5"])  # another call between must not change the next
    b = speak(list(texts), list(voices), [170, 200], [40, 60], sample_rate=11025)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert all(x.dtype == np.float32 and 0.05 < np.abs(x).max() <= 1 for x in a)


def test_fresh_library_gives_the_same_samples_uncached():
    from attnlab.data.speech import _synthesize

    args = (("three one",), ("en-029+m3",), (180,), (50,))
    first, second = _synthesize(*args), _synthesize(*args)
    assert np.array_equal(first[0], second[0]) and len(first[0]) > 5000


def test_voices_rates_and_rates_differ():
    say = ["seven seven"] * 3
    a, b, c = speak(say, ["en-us+m1", "en-us+f3", "en-us+m1"], [175, 175, 300])
    assert not (len(a) == len(b) and np.array_equal(a, b))  # another speaker
    assert len(c) < 0.8 * len(a)  # a faster rate is shorter
    assert len(a) / 11025 > 0.4


def test_sample_rate_resamples():
    (lo,), (hi,) = speak(["five"], ["en"], sample_rate=8000), speak(["five"], ["en"],
                                                                   sample_rate=22050)
    assert abs(len(lo) / 8000 - len(hi) / 22050) < 0.01


@pytest.mark.parametrize("kwargs, message", [
    ({"texts": [""], "voices": ["en"]}, "non-empty"),
    ({"texts": ["one"], "voices": ["xx-klingon"]}, "unknown voice"),
    ({"texts": ["one"], "voices": ["en+m99"]}, "unknown voice"),
    ({"texts": ["one", "two"], "voices": ["en"]}, "as many voices"),
    ({"texts": "one", "voices": ["en"]}, "lists of strings"),
    ({"texts": ["one"], "voices": ["en"], "rates": [10]}, "rates must lie"),
])
def test_speak_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        speak(**kwargs)


def test_add_noise_reaches_the_snr():
    x = speak(["eight six"], ["en-us+f1"])[0]
    for snr in (0.0, 10.0, 20.0):
        y = add_noise(x, snr, np.random.default_rng(1))
        measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2)
                                 / np.mean((y - x).astype(np.float64) ** 2))
        assert abs(measured - snr) < 0.01
    with pytest.raises(ValueError, match="silent"):
        add_noise(np.zeros(10, np.float32), 0.0, np.random.default_rng(0))


def test_reverberate_and_change_speed():
    x = np.zeros(1000, np.float32)
    x[0] = 1.0
    y = reverberate(x, 0.2, 8000, np.random.default_rng(0))
    assert len(y) == 1000 + 1600 - 1 and abs(np.sum(y**2) - 1) < 1e-4  # unit-energy room
    assert np.abs(y[1000:1600]).max() < np.abs(y[1:200]).max()  # it decays
    assert len(change_speed(x, 0.9)) == 1111
    with pytest.raises(ValueError, match="rt60"):
        reverberate(x, 0.0, 8000, np.random.default_rng(0))
    with pytest.raises(ValueError, match="factor"):
        change_speed(x, 3.0)


def test_task_splits_by_string_and_speaker():
    task = spoken_digits_task(30, 6, 8, seed=1)
    c = task.config
    assert len(task.train) == 30 and task.train.waves.shape[0] == 30
    assert int(task.train.lengths.max()) == task.train.waves.shape[1]
    for split, variants in ((task.train, c.train_variants), (task.val, c.val_variants),
                            (task.test, c.test_variants)):
        assert all(v.split("+")[0] in ENGLISH_VOICES and v.split("+")[1] in variants
                   for v in split.voices)
        assert all(c.min_digits <= len(d) <= c.max_digits and d.isdigit() for d in split.digits)
    assert not set(task.test.digits) & set(task.train.digits)
    again = spoken_digits_task(30, 6, 8, seed=1)
    assert torch.equal(task.train.waves, again.train.waves)
    noisy = spoken_digits_task(30, 6, 8, seed=1, test_snr_db=-5.0)
    assert noisy.test.voices == task.test.voices and noisy.test.digits == task.test.digits
    assert torch.equal(noisy.train.waves, task.train.waves)
    assert not torch.equal(noisy.test.waves, task.test.waves)


def test_config_rejects_shared_speakers():
    with pytest.raises(ValueError, match="disjoint"):
        SpeechConfig(test_variants=("m1",))
    with pytest.raises(ValueError, match="unknown voice"):
        SpeechConfig(voices=("fr",))


def test_mel_filterbank_and_scale():
    assert abs(float(mel_to_hz(hz_to_mel(3000.0))) - 3000.0) < 1e-9
    W = mel_filterbank(129, 40, 11025)
    centres = W.argmax(1)
    assert torch.all(centres[1:] >= centres[:-1])  # ordered by frequency
    widths = (W > 0).sum(1)
    assert widths[-1] > 2 * widths[0]  # wider at high frequencies
    with pytest.raises(ValueError, match="too many"):
        mel_filterbank(17, 40, 11025)


def test_log_mel_matches_a_direct_computation_and_ignores_padding():
    x = torch.from_numpy(speak(["two"], ["en"])[0])
    feats, frames = log_mel_spectrogram(x[None])
    X = torch.stft(x, 256, 220, window=torch.hann_window(256), return_complex=True,
                   pad_mode="constant")
    direct = torch.log(mel_filterbank(129, 40, 11025) @ X.abs() ** 2 + 1e-6).T
    torch.testing.assert_close(feats[0], direct, rtol=1e-4, atol=1e-4)
    padded = torch.nn.functional.pad(x, (0, 3000))[None]
    alone, _ = log_mel_spectrogram(padded, torch.tensor([len(x)]))
    n = int(frames[0])
    torch.testing.assert_close(alone[0, : n - 1], feats[0, : n - 1])
    with pytest.raises(ValueError, match="lengths"):
        log_mel_spectrogram(x[None], torch.tensor([len(x) + 1]))


def test_error_rates():
    assert word_error_rate(["a b c"], ["a b c"]) == 0.0
    assert word_error_rate(["a x c d"], ["a b c"]) == pytest.approx(2 / 3)
    assert char_error_rate(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert word_error_rate([""], ["one two"]) == 1.0
    with pytest.raises(ValueError, match="as many"):
        word_error_rate(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        char_error_rate([""], [""])
