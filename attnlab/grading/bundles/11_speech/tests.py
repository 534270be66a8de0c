"""Tests of the exercise set '11_speech', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex11-05)
# TESTS
import math

import torch

_DTMF = """
import math
import torch
def dtmf_wave(key, n_samples, sample_rate=8000):
    rows = ("123A", "456B", "789C", "*0#D")
    low, high = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    row = next(i for i, keys in enumerate(rows) if key in keys)
    f_lo, f_hi = low[row], high[rows[row].index(key)]
    t = torch.arange(n_samples, dtype=torch.float64) / sample_rate
    return {lo} + {hi}
"""


def _dtmf(lo="torch.sin(2 * math.pi * f_lo * t)", hi="torch.sin(2 * math.pi * f_hi * t)",
          swap=False):
    code = _DTMF.format(lo=lo, hi=hi)
    if swap:  # the column picks the low tone and the row the high one
        code = code.replace("f_lo, f_hi = low[row], high[rows[row].index(key)]",
                            "f_lo, f_hi = low[rows[row].index(key)], high[row]")
    return code


question(
    "q1", points=2, function="dtmf_wave", reference=_dtmf(), atol=1e-6, rtol=1e-6,
    public=[case("5", 80, note="key 5, 80 samples"),
            case("#", 40, 8000, note="key #, 40 samples")],
    hidden=[case("1", 100, note="key 1"), case("D", 64, note="key D"),
            case("3", 50, note="key 3"),
            case("0", 160, 16000, note="key 0 at 16 kHz"),
            case("*", 33, 11025, note="key * at 11025 Hz")],
    misconceptions=[
        misconception("You used the sample index n as the time: divide it by the sample rate, "
                      "t = n / r, so that a frequency in Hz makes f·t cycles",
                      code=_dtmf(lo="torch.sin(2 * math.pi * f_lo * t * sample_rate)",
                                 hi="torch.sin(2 * math.pi * f_hi * t * sample_rate)")),
        misconception("You left out 2π: sin(f·t) turns f·t radians, not f·t cycles; "
                      "use sin(2π f t)",
                      code=_dtmf(lo="torch.sin(f_lo * t)", hi="torch.sin(f_hi * t)")),
        misconception("You swapped rows and columns: a key's row picks the low-group "
                      "frequency (697–941 Hz), its column the high-group one (1209–1633 Hz)",
                      code=_dtmf(swap=True)),
        misconception("Your wave has only the low tone: a key sounds both of its frequencies",
                      code=_dtmf(hi="0 * t")),
    ],
    hint="Find the key's row i and column j in the table, then add sin(2π·LOW[i]·n/r) and "
         "sin(2π·HIGH[j]·n/r)",
)

# --- cell 10 (ex11-09)
# TESTS
_SPEC = """
import torch
def log_spectrogram(waves, n_fft, hop_length):
    window = {window}
    X = torch.stft(waves, n_fft, hop_length, window=window, center={center},
                   pad_mode="{pad}", return_complex=True)
    return torch.log({magnitude} + 1e-5){transpose}
"""


def _spec(window="torch.hann_window(n_fft, dtype=waves.dtype)", center="True", pad="constant",
          magnitude="X.abs()", transpose=".transpose(1, 2)"):
    return _SPEC.format(window=window, center=center, pad=pad, magnitude=magnitude,
                        transpose=transpose)


_g = torch.Generator().manual_seed(11)
_tone = torch.sin(2 * math.pi * 770 * torch.arange(600, dtype=torch.float64) / 8000)[None]
question(
    "q2", points=2, function="log_spectrogram", reference=_spec(), atol=1e-4, rtol=1e-4,
    public=[case(torch.randn(2, 1000, generator=_g, dtype=torch.float64), 256, 128,
                 note="two random waves of 1000 samples, n_fft=256, hop 128")],
    hidden=[case(torch.randn(1, 800, generator=_g, dtype=torch.float64), 64, 16,
                 note="n_fft=64, hop 16"),
            case(torch.randn(3, 513, generator=_g), 128, 64, note="float32 waves of 513 samples"),
            case(_tone, 256, 128, note="a 770 Hz tone")],
    misconceptions=[
        misconception("Your result is (B, F, S): torch.stft puts the bins before the frames; "
                      "transpose the last two axes to get (B, S, F)",
                      code=_spec(transpose="")),
        misconception("You did not centre the frames (center=False): the frames must be "
                      "centred on 0, hop, 2·hop, ..., which gives 1 + L // hop of them",
                      code=_spec(center="False")),
        misconception("You used no window (a rectangular one): pass window="
                      "torch.hann_window(n_fft, dtype=waves.dtype)",
                      code=_spec(window="torch.ones(n_fft, dtype=waves.dtype)")),
        misconception("You took the log of the power |X|², not of the magnitude |X|",
                      code=_spec(magnitude="X.abs() ** 2")),
        misconception("You padded by reflection (torch.stft's default): pad with zeros, "
                      "pad_mode='constant', so a recording's frames do not depend on what is "
                      "padded after it",
                      code=_spec(pad="reflect")),
    ],
)

# --- cell 14 (ex11-13)
# TESTS
question(
    "q3", points=1, variable="q3_shape", expected=(1 + 8000 // 128, 256 // 2 + 1),
    atol=0, rtol=0,
    misconceptions=[
        misconception("8000 / 128 = 62.5 frames would fit end to end, but centred frames sit "
                      "on samples 0, 128, ..., 7936: 1 + L // hop of them",
                      value=(62, 129)),
        misconception("61 frames is what center=False gives; centred frames number "
                      "1 + L // hop", value=(61, 129)),
        misconception("The FFT of 256 real samples has 256 / 2 + 1 = 129 distinct bins, "
                      "from 0 Hz to 4000 Hz", value=(63, 256)),
        misconception("Count both ends: bins 0 to 128 are 129 bins", value=(63, 128)),
        misconception("The shape is (S, F): frames first, then bins", value=(129, 63)),
    ],
)

# --- cell 18 (ex11-17)
# TESTS
_RUNS = """
import itertools
def collapse_runs(labels, min_tone, min_gap):
    runs = [(label, len(list(group))) for label, group in itertools.groupby(labels)]
    kept = [label for label, n in runs if {keep}]
    return {out}
"""
_KEEP = "n >= (min_gap if label == -1 else min_tone)"
_OUT = "[label for label, _ in itertools.groupby(kept) if label != -1]"


def _runs(keep=_KEEP, out=_OUT):
    return _RUNS.format(keep=keep, out=out)


_SILENCE_FIRST = """
import itertools
def collapse_runs(labels, min_tone, min_gap):
    keys = [label for label in labels if label != -1]
    runs = [(label, len(list(group))) for label, group in itertools.groupby(keys)]
    return [label for label, n in runs if n >= min_tone]
"""
question(
    "q4", points=2, function="collapse_runs", reference=_runs(),
    public=[case([-1, 5, 5, -1, 5, 5, 3, -1, -1], 2, 2, note="the example"),
            case([-1, 3, 3, -1, -1, 3, 3, -1], 1, 1, note="two presses of 3"),
            case([2, 2, 2, 6, 2, 2, -1, -1, 4, 4, -1, -1, 4, 4], 2, 2,
                 note="a 1-frame blip inside a 2, then two presses of 4")],
    hidden=[case([7, 7, 7, -1, 7, 7, 7, 2, 2], 2, 2, note="a 1-frame dropout inside a 7"),
            case([4, 4, -1, -1, 4, 4, -1, -1, 4], 1, 2, note="three presses of 4"),
            case([1, 1, 1, 9, 1, 1, -1, -1, 0, 0], 2, 1, note="a 1-frame blip inside a 1"),
            case([6, 6, -1, -1, 6, 6, 8, 8], 2, 2, note="runs exactly min_tone and min_gap long"),
            case([-1, -1, -1], 1, 1, note="silence only"),
            case([], 2, 2, note="no frames")],
    misconceptions=[
        misconception("You removed the silence before finding the runs: then two presses of "
                      "the same key merge into one. Silences of at least min_gap frames must "
                      "separate presses", code=_SILENCE_FIRST),
        misconception("You never delete short silences: a 1-frame dropout inside a tone splits "
                      "it into two presses. Delete silence runs shorter than min_gap",
                      code=_runs(keep="n >= min_tone or label == -1")),
        misconception("After deleting the short runs you did not join equal neighbours again: "
                      "a key interrupted by a deleted blip or dropout is one press",
                      code=_runs(out="[label for label, n in runs if label != -1 and "
                                     "n >= min_tone]")),
        misconception("A run exactly min_tone (or min_gap) frames long must be kept: "
                      "use >=, not >",
                      code=_runs(keep="n > (min_gap if label == -1 else min_tone)")),
    ],
)

# --- cell 22 (ex11-21)
# TESTS
_INSIDE = """
import torch
def weight_inside(weights, spans, hop_length, stride):
    centre = torch.arange(weights.shape[-1]) * {centre}
    inside = (centre[None, :] >= spans[:, :1]) & (centre[None, :] {op} spans[:, 1:])
    return {total}
"""


def _inside(centre="stride * hop_length", op="<", total="(weights * inside).sum(-1)"):
    return _INSIDE.format(centre=centre, op=op, total=total)


_g = torch.Generator().manual_seed(5)
_w1 = torch.tensor([[0.1, 0.6, 0.3, 0.0, 0.0, 0.0],
                    [0.0, 0.0, 0.1, 0.2, 0.5, 0.2]])
_w2 = torch.softmax(torch.randn(4, 20, generator=_g), -1)
_w3 = torch.softmax(3 * torch.randn(3, 12, generator=_g), -1)
question(
    "q5", points=2, function="weight_inside", reference=_inside(),
    public=[case(_w1, torch.tensor([[200, 700], [900, 1300]]), 128, 2,
                 note="two keys, six steps of 256 samples"),
            case(_w1, torch.tensor([[256, 768], [768, 1280]]), 128, 2,
                 note="spans that start and stop exactly on a step's centre")],
    hidden=[case(_w2, torch.tensor([[0, 1024], [1024, 2048], [2304, 3072], [3072, 4864]]),
                 128, 2, note="four keys, spans ending exactly on a step's centre"),
            case(_w3, torch.tensor([[100, 500], [640, 1280], [1300, 1400]]), 128, 1,
                 note="stride 1; the last key covers no centre"),
            case(_w3, torch.tensor([[0, 1152], [1152, 3000], [3100, 4608]]), 128, 3,
                 note="stride 3")],
    misconceptions=[
        misconception("You forgot the stride: step j is centred on sample "
                      "j · stride · hop_length, not j · hop_length",
                      code=_inside(centre="hop_length")),
        misconception("The stop sample is excluded: a step centred exactly on stop is "
                      "outside the tone (use <, not <=)", code=_inside(op="<=")),
        misconception("You averaged the weights inside instead of summing them: the question "
                      "asks for the share of the row's weight that falls inside",
                      code=_inside(total="(weights * inside).sum(-1) / "
                                         "inside.sum(-1).clamp_min(1)")),
    ],
)

# --- cell 29 (ex11-28)
# TESTS
def _peak_bins():
    from attnlab.data.keypad import log_spectrogram

    t = torch.arange(2000, dtype=torch.float64) / 8000
    tones = torch.tensor([697.0, 770.0, 852.0, 941.0], dtype=torch.float64)
    waves = torch.sin(2 * torch.pi * tones[:, None] * t).float()
    out = {}
    for n_fft in (32, 64, 128, 256):
        spec, _ = log_spectrogram(waves, n_fft=n_fft, hop_length=n_fft // 2)
        out[n_fft] = spec.mean(dim=1).argmax(dim=-1)
    return out


_bins = _peak_bins()
_separating = [n for n, b in _bins.items() if len(set(b.tolist())) == 4]
_smallest = min(_separating)
assert _smallest > 32 and 256 in _separating, _bins
question(
    "q6", points=1, variable="q6_n_fft", expected=_smallest, atol=0, rtol=0,
    misconceptions=[
        misconception("256 separates the rows too (it is the chapter's choice), but it is not "
                      "the smallest: a shorter window blurs the tones less in time",
                      value=256),
        misconception(f"Read the peaks for {_smallest // 2}: two of the four low tones share a "
                      "bin there, so that window cannot tell those rows apart",
                      value=_smallest // 2),
        misconception("With 32 samples the bins are 250 Hz apart, wider than the gaps of 73 "
                      "to 89 Hz between the tones: three of them share a bin", value=32),
    ],
    hint="Find the first row whose four peak bins are all different",
)
