"""attnlab.models.vit: the ViT against a PyTorch reference, shapes, properties, the CNN, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.data.digits import digits_task
from attnlab.layers import TransformerBlock
from attnlab.models import count_parameters
from attnlab.models.vit import CNNConfig, SmallCNN, ViT, ViTConfig
from attnlab.train import TrainConfig, fit


def images(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_vit_equals_a_reference_built_from_pytorch_layers():
    torch.manual_seed(0)
    config = ViTConfig(image_size=8, patch_size=2, channels=3, dim=24, depth=2, num_heads=3,
                       ff_dim=40)
    reference = [nn.TransformerEncoderLayer(24, 3, 40, dropout=0.0, activation="gelu",
                                            batch_first=True, norm_first=True)
                 for _ in range(config.depth)]
    model = ViT(config).eval()
    model.blocks = nn.ModuleList(TransformerBlock.from_torch(layer) for layer in reference)
    x = images(2, 3, 8, 8)
    # the reference cuts patches with F.unfold: (B, c*P*P, N), the same (c, row, col) order
    patches = F.unfold(x, kernel_size=2, stride=2).transpose(1, 2)  # (B, N, c*P*P)
    tokens = patches @ model.patch_embed.weight.T + model.patch_embed.bias
    tokens = torch.cat([model.cls_token.expand(2, -1, -1), tokens], dim=1)
    tokens = tokens + model.pos_embed.embedding.weight
    for layer in reference:
        tokens = layer(tokens)
    expected = model.head(model.norm(tokens[:, 0]))
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def test_vit_shapes_weights_and_determinism():
    config = ViTConfig()
    assert (config.num_patches, config.seq_len) == (16, 17)
    torch.manual_seed(0)
    a = ViT(config).eval()
    torch.manual_seed(0)
    b = ViT(config).eval()
    x = images(5, 8, 8)
    logits, weights = a(x, need_weights=True)
    assert logits.shape == (5, 10) and weights.shape == (5, 2, 4, 17, 17)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5, 2, 4, 17))
    torch.testing.assert_close(a(x), logits)  # the fused path gives the same logits
    torch.testing.assert_close(a(x[:, None]), logits)  # (B, 1, 8, 8) works too
    assert torch.equal(b(x), a(x))
    assert a.embed(x).shape == (5, 17, 32)
    assert ViT(ViTConfig(patch_size=4))(x).shape == (5, 10)


def test_vit_parameter_count_by_formula():
    c = ViTConfig()
    C, F_, L = c.dim, c.ff_dim, c.depth
    block = (4 * C * C + 4 * C) + (2 * C * F_ + F_ + C) + 2 * 2 * C  # attention, ff, 2 norms
    total = (c.patch_size**2 * C + C) + C + c.seq_len * C + L * block + 2 * C + (C * 10 + 10)
    assert count_parameters(ViT(c)) == total == 18_218


def test_without_positions_a_vit_ignores_the_order_of_patches():
    torch.manual_seed(0)
    model = ViT(ViTConfig()).eval()
    x = images(3, 8, 8)
    # swap the 2x2 patch at grid (0, 0) with the one at grid (3, 2)
    y = x.clone()
    y[:, 0:2, 0:2], y[:, 6:8, 4:6] = x[:, 6:8, 4:6], x[:, 0:2, 0:2]
    assert not torch.allclose(model(x), model(y), atol=1e-4)  # positions tell them apart
    with torch.no_grad():
        model.pos_embed.embedding.weight.zero_()
    torch.testing.assert_close(model(x), model(y), atol=1e-5, rtol=1e-5)


def test_one_block_sees_every_pixel_one_convolution_nine():
    torch.manual_seed(0)
    vit, cnn = ViT(ViTConfig()).eval(), SmallCNN(CNNConfig()).eval()
    x = images(4, 8, 8).requires_grad_(True)
    vit.blocks[0](vit.embed(x))[:, 6].sum().backward()  # token 6 = patch (1, 1)
    assert int((x.grad.abs().sum(0) > 0).sum()) == 64
    x.grad = None
    vit.embed(x)[:, 6].sum().backward()  # before attention: its own 4 pixels
    assert (x.grad.abs().sum(0) > 0).nonzero().tolist() == [[2, 2], [2, 3], [3, 2], [3, 3]]
    x.grad = None
    cnn.features[0](x[:, None])[:, :, 3, 3].sum().backward()
    seen = x.grad.abs().sum(0) > 0
    assert int(seen.sum()) == 9 and bool(seen[2:5, 2:5].all())


def test_cnn_shapes_and_parameters():
    c = CNNConfig()
    model = SmallCNN(c)
    assert model(images(4, 8, 8)).shape == (4, 10)
    assert model(images(4, 1, 8, 8)).shape == (4, 10)
    expected = (9 * 30 + 30) + (9 * 30 * 60 + 60) + (60 * 2 * 2 * 10 + 10)
    assert count_parameters(model) == expected == 18_970
    assert SmallCNN(CNNConfig(widths=(8,), channels=3))(images(2, 3, 8, 8)).shape == (2, 10)


def test_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\) or \(B, 8, 8\), got \(2, 7, 7\)"):
        ViT(ViTConfig())(torch.zeros(2, 7, 7))
    with pytest.raises(ValueError, match=r"\(B, 3, 8, 8\), got \(2, 8, 8\)"):
        SmallCNN(CNNConfig(channels=3))(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="floating point"):
        ViT(ViTConfig())(torch.zeros(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of patch_size=3"):
        ViTConfig(patch_size=3)
    with pytest.raises(ValueError, match="odd"):
        CNNConfig(kernel_size=2)
    with pytest.raises(ValueError, match="cannot be halved 4 times"):
        CNNConfig(widths=(4, 4, 4, 4))


@pytest.mark.parametrize("make", [lambda: ViT(ViTConfig()), lambda: SmallCNN(CNNConfig())],
                         ids=["vit", "cnn"])
def test_both_models_learn_the_digits(make, one_thread):
    task = digits_task(seed=0)
    x, y = task.train.images, task.train.labels
    torch.manual_seed(0)
    model = make()

    def batch_fn(step, gen):
        rows = torch.randint(0, len(y), (128,), generator=gen)
        return x[rows], y[rows]

    fit(model, batch_fn, lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        TrainConfig(steps=120, lr=3e-3, warmup=12, device="cpu", progress=False))
    with torch.no_grad():
        accuracy = (model(task.test.images).argmax(-1) == task.test.labels).float().mean()
    assert accuracy > 0.6, float(accuracy)  # chance is 0.1
