"""Tests of the exercise set '10_vision', generated from its source notebook by
`attnlab exercises build`: edit the source, not this file."""
# ruff: noqa
import numpy as np
import torch

from attnlab.grading.spec import Model, case, edited, misconception, question

# --- cell 6 (ex10-05)
# TESTS
PATCHIFY = """
import torch
from attnlab.data.digits import patchify as _patchify
def patchify(images, p):
    return _patchify(images, p)
"""
g = torch.Generator().manual_seed(1)
question(
    "q1", points=2, function="patchify", reference=PATCHIFY,
    public=[case(torch.arange(16.0).reshape(1, 4, 4), 2, note="a 4x4 image holding 0..15, p=2")],
    hidden=[
        case(torch.rand(2, 8, 8, generator=g), 2, note="two 8x8 images, p=2"),
        case(torch.rand(3, 8, 8, generator=g), 4, note="three 8x8 images, p=4"),
        case(torch.arange(48.0).reshape(2, 6, 4), 2, note="images of 6 rows and 4 columns"),
        case(torch.rand(1, 9, 6, generator=g), 3, note="a 9x6 image, p=3"),
    ],
    misconceptions=[
        misconception(
            "You reshaped without moving the axes: each of your 'patches' is p·p consecutive "
            "pixels of the image's rows, not a p×p square. Reshape to (B, rows, p, cols, p), "
            "permute to (B, rows, cols, p, p), then flatten",
            code="def patchify(images, p):\n"
                 "    B = images.shape[0]\n"
                 "    return images.reshape(B, -1, p * p)"),
        misconception(
            "Your patches are numbered column by column: number them row by row, so that "
            "patch i * (width // p) + j is in grid row i and grid column j",
            code="def patchify(images, p):\n"
                 "    B, height, width = images.shape\n"
                 "    x = images.reshape(B, height // p, p, width // p, p)\n"
                 "    return x.permute(0, 3, 1, 2, 4).reshape(B, -1, p * p)"),
        misconception(
            "Inside each patch you listed the pixels column by column: list them row by row, "
            "as patch.flatten() does",
            code="def patchify(images, p):\n"
                 "    B, height, width = images.shape\n"
                 "    x = images.reshape(B, height // p, p, width // p, p)\n"
                 "    return x.permute(0, 1, 3, 4, 2).reshape(B, -1, p * p)"),
    ],
    hint="Reshape to (B, height//p, p, width//p, p), permute the two grid axes next to each "
         "other, then reshape to (B, N, p*p)",
)

# --- cell 10 (ex10-09)
# TESTS
ROLLOUT = """
from attnlab.analysis import attention_rollout as _rollout
def attention_rollout(weights):
    return _rollout(weights)
"""


def _weights(L, H, T, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(L, H, T, T, generator=gen), dim=-1)


to_first = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # (H=1, T=2, T=2)
question(
    "q2", points=2, function="attention_rollout", reference=ROLLOUT,
    public=[
        case(torch.stack([to_first, to_first]),
             note="two layers in which both tokens attend only to token 0"),
        case(_weights(2, 2, 3, seed=1), note="two layers, two heads, three tokens"),
    ],
    hidden=[
        case(_weights(3, 4, 5, seed=2), note="three layers of four heads"),
        case(_weights(1, 3, 4, seed=3), note="a single layer"),
        case(_weights(4, 4, 17, seed=4), note="four layers over 17 tokens (a small ViT)"),
    ],
    misconceptions=[
        misconception(
            "You multiplied the layers in the wrong order: the latest layer goes on the left, "
            "R = Ã_L ··· Ã_1 (layer 2's tokens read layer 1's tokens, which read the inputs)",
            code="import torch\ndef attention_rollout(weights):\n"
                 "    T = weights.shape[-1]\n    r = torch.eye(T)\n"
                 "    for w in weights:\n"
                 "        r = r @ (0.5 * w.mean(0) + 0.5 * torch.eye(T))\n    return r"),
        misconception(
            "You left out the residual connection: mix each layer's head average with the "
            "identity, Ã = ½ Ā + ½ I, before multiplying",
            code="import torch\ndef attention_rollout(weights):\n"
                 "    r = torch.eye(weights.shape[-1])\n"
                 "    for w in weights:\n        r = w.mean(0) @ r\n    return r"),
        misconception(
            "You combined the heads by their maximum: average them (Ā = mean over heads)",
            code="import torch\ndef attention_rollout(weights):\n"
                 "    T = weights.shape[-1]\n    r = torch.eye(T)\n"
                 "    for w in weights:\n"
                 "        r = (0.5 * w.amax(0) + 0.5 * torch.eye(T)) @ r\n    return r"),
        misconception(
            "You used the last layer only: rollout multiplies the residual-mixed attention "
            "of every layer",
            code="import torch\ndef attention_rollout(weights):\n"
                 "    T = weights.shape[-1]\n"
                 "    return 0.5 * weights[-1].mean(0) + 0.5 * torch.eye(T)"),
    ],
)

# --- cell 14 (ex10-13)
# TESTS
FIELD = """
import torch
import torch.nn.functional as F
def receptive_field(w1, w2, size, row, col):
    x = torch.zeros(1, 1, size, size, dtype=w1.dtype, requires_grad=True)
    y = F.conv2d(F.conv2d(x, w1, padding="same"), w2, padding="same")
    seen = torch.zeros(size, size, dtype=torch.bool)
    for channel in range(y.shape[1]):  # channel by channel: no sum that could cancel
        (grad,) = torch.autograd.grad(y[0, channel, row, col], x, retain_graph=True)
        seen |= grad[0, 0] != 0
    return seen
"""
g = torch.Generator().manual_seed(3)


def _conv_weights(c1, k1, c2, k2):
    return torch.randn(c1, 1, k1, k1, generator=g), torch.randn(c2, c1, k2, k2, generator=g)


question(
    "q3", points=2, function="receptive_field", reference=FIELD,
    public=[case(*_conv_weights(4, 3, 2, 3), 8, 4, 4, note="two 3x3 convolutions, centre")],
    hidden=[
        case(*_conv_weights(3, 3, 3, 3), 8, 0, 0, note="two 3x3 convolutions, a corner"),
        case(*_conv_weights(2, 5, 4, 3), 10, 5, 4, note="a 5x5 then a 3x3 convolution"),
        case(*_conv_weights(1, 3, 1, 5), 9, 7, 2, note="one channel each, near an edge"),
    ],
    misconceptions=[
        misconception(
            "You measured the first convolution alone: output (row, col) of the second reads "
            "a k2×k2 window of the first's outputs, each of which reads k1×k1 pixels",
            code="import torch\nimport torch.nn.functional as F\n"
                 "def receptive_field(w1, w2, size, row, col):\n"
                 "    x = torch.zeros(1, 1, size, size, requires_grad=True)\n"
                 "    h = F.conv2d(x, w1, padding='same')\n"
                 "    h[0, :, row, col].sum().backward()\n"
                 "    return x.grad[0, 0] != 0"),
        misconception(
            "You back-propagated from every output at once: take the gradient of the single "
            "output y[0, :, row, col] only",
            code="import torch\nimport torch.nn.functional as F\n"
                 "def receptive_field(w1, w2, size, row, col):\n"
                 "    x = torch.zeros(1, 1, size, size, requires_grad=True)\n"
                 "    y = F.conv2d(F.conv2d(x, w1, padding='same'), w2, padding='same')\n"
                 "    y.sum().backward()\n"
                 "    return x.grad[0, 0] != 0"),
        misconception(
            "Your convolutions have no padding, so their outputs are smaller and shifted: with "
            "padding='same', output (row, col) is centred on pixel (row, col)",
            code="import torch\nimport torch.nn.functional as F\n"
                 "def receptive_field(w1, w2, size, row, col):\n"
                 "    x = torch.zeros(1, 1, size, size, requires_grad=True)\n"
                 "    y = F.conv2d(F.conv2d(x, w1), w2)\n"
                 "    y[0, :, row, col].sum().backward()\n"
                 "    return x.grad[0, 0] != 0"),
    ],
    hint="Back-propagate from the output at (row, col) alone, then compare the gradient of "
         "the input pixels with 0",
)

# --- cell 18 (ex10-17)
# TESTS
question(
    "q4", points=1, variable="q4_attention_parameters", expected=4 * 32 * 32 + 4 * 32,
    misconceptions=[
        misconception("You forgot the biases: each of the four C×C projections has C of them",
                      value=4 * 32 * 32),
        misconception("You forgot the output projection: queries, keys and values make three "
                      "C×C matrices, the output projection a fourth", value=3 * 32 * 32 + 3 * 32),
        misconception("The heads share the projections (each head uses D = C/H of the C "
                      "columns): the count does not grow with H", value=4 * (4 * 32 * 32 + 4 * 32)),
    ],
    hint="Four C×C weight matrices and four bias vectors of C, for C = 32",
)

# --- cell 22 (ex10-21)
# TESTS
def _changes(shuffle, zero_positions=True):
    from attnlab.data.digits import digits_task, patchify, unpatchify
    from attnlab.models.vit import ViT, ViTConfig

    torch.manual_seed(0)
    model = ViT(ViTConfig()).eval()
    images = digits_task(seed=0).test.images[:8]
    if shuffle == "patches":
        other = unpatchify(patchify(images, 2).flip(1), 2, 8, 8)
    else:  # the pixels reversed: the image turned by 180 degrees
        other = images.flip(1, 2)
    with torch.no_grad():
        changes = [float((model(images) - model(other)).abs().max())]
        if zero_positions:
            model.pos_embed.embedding.weight.zero_()
        changes.append(float((model(images) - model(other)).abs().max()))
    return tuple(changes)


_right = _changes("patches")
assert _right[0] > 1e-3 and _right[1] < 1e-5, _right
question(
    "q5", points=2, variable="q5_changes", expected=_right, atol=1e-4, rtol=1e-3,
    misconceptions=[
        misconception("Your second number is as large as the first: did you zero the position "
                      "embeddings (model.pos_embed.embedding.weight) before measuring again?",
                      value=_changes("patches", zero_positions=False)),
        misconception("You reversed the pixels (turning each digit upside down), not the order "
                      "of the patches: patchify, flip the patch axis (dim 1), unpatchify",
                      value=_changes("pixels")),
    ],
    hint="Without position embeddings, reordering the patches must leave the logits unchanged "
         "(up to rounding)",
)

# --- cell 28 (ex10-28)
# TESTS
def _weights_per_head(patch):
    from attnlab.analysis import record_attention
    from attnlab.data.digits import digits_task
    from attnlab.models.vit import ViT, ViTConfig

    torch.manual_seed(0)
    vit = ViT(ViTConfig(patch_size=patch)).eval()
    with torch.no_grad(), record_attention(vit) as recorded:
        vit(digits_task(seed=0).test.images[:8])
    return recorded[0].shape[-2] * recorded[0].shape[-1], vit.config.num_patches


_w2, _n2 = _weights_per_head(2)
_w1, _n1 = _weights_per_head(1)
question(
    "q6", points=1, variable="q6_growth", expected=_w1 / _w2, atol=0.0, rtol=1e-6,
    misconceptions=[
        misconception(f"{_n1 // _n2} is how much the number of PATCHES grows; every token "
                      "attends to every token, so the attention weights grow with its square",
                      value=_n1 / _n2),
        misconception(f"{(_n1 / _n2) ** 2:g} leaves out the class token: the sequence is the "
                      f"patches and the class token, {_n2 + 1} and {_n1 + 1} tokens, so read "
                      "the printed weights", value=(_n1 / _n2) ** 2),
        misconception("2 is how much the side of a patch shrinks: the number of patches grows "
                      "with its square, and the attention weights with the square of that",
                      value=2.0),
        misconception("You turned the ratio upside down: the 1x1 patches make MORE weights, so "
                      "the growth is larger than 1", value=_w2 / _w1),
    ],
    hint="Divide the printed number of attention weights for 1x1 patches by the one for 2x2",
)
