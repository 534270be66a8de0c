"""attnlab.models.motif: shapes, the pooling against a by-hand computation, training, metrics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnlab.data import random_rows
from attnlab.data.dna import dna_task, grammar_task
from attnlab.models import count_parameters
from attnlab.models.motif import (
    MotifAttention,
    MotifAttentionConfig,
    MotifCNN,
    MotifCNNConfig,
    MotifDeepCNN,
    MotifDeepCNNConfig,
    peak_in_mask,
)
from attnlab.train import TrainConfig, fit


def dna(B, T, seed=0):
    ids = torch.randint(0, 4, (B, T), generator=torch.Generator().manual_seed(seed))
    return F.one_hot(ids, 4).float()


def test_shapes_weights_and_determinism():
    x = dna(3, 40)
    for config in (MotifAttentionConfig(), MotifAttentionConfig(num_layers=1, positions=True)):
        torch.manual_seed(0)
        a = MotifAttention(config)
        torch.manual_seed(0)
        b = MotifAttention(config)
        logits, w = a(x, need_weights=True)
        assert logits.shape == (3,) and w.shape == (3, 40)
        torch.testing.assert_close(w.sum(-1), torch.ones(3))
        assert torch.equal(b(x), a(x))
        states, maps = a.encode(x, need_weights=True)
        assert states.shape == (3, 40, 32) and len(maps) == config.num_layers
    assert MotifCNN(MotifCNNConfig())(x).shape == (3,)


def test_forward_by_hand():
    torch.manual_seed(0)
    model = MotifAttention(MotifAttentionConfig()).eval()
    x = dna(2, 30)
    h = F.gelu(F.conv1d(x.transpose(1, 2), model.kmer.weight, model.kmer.bias, padding=5))
    h = F.layer_norm(h.transpose(1, 2), (32,), model.norm.weight, model.norm.bias)  # (B, T, C)
    scores = h @ model.pool.key.weight.T @ model.pool.query / 32**0.5               # (B, T)
    w = scores.softmax(-1)
    logits = model.head((w[..., None] * h).sum(1))[:, 0]
    got, got_w = model(x, need_weights=True)
    torch.testing.assert_close(got_w, w)
    torch.testing.assert_close(got, logits)


def test_the_models_see_a_motif_anywhere():
    # no positions: shifting a sequence (with wrap-around far from the edges) shifts the weights
    torch.manual_seed(0)
    model = MotifAttention(MotifAttentionConfig()).eval()
    x = torch.cat([torch.full((1, 20, 4), 0.25), dna(1, 10), torch.full((1, 20, 4), 0.25)], 1)
    _, w = model(x, need_weights=True)
    _, w_shift = model(x.roll(5, dims=1), need_weights=True)
    torch.testing.assert_close(w_shift[0, 10:40], w[0, 5:35])


def test_parameter_counts_are_close():
    a = count_parameters(MotifAttention(MotifAttentionConfig()))
    c = count_parameters(MotifCNN(MotifCNNConfig()))
    assert abs(a / c - 1) < 0.05


def test_both_learn_the_rule_quickly():
    task = dna_task(n_train=1000, n_test=300, length=50, seed=1)
    x, y = task.train.one_hot, task.train.labels.float()

    batch = random_rows(x, y, batch_size=64)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds overhead
    try:
        for model in (MotifAttention(MotifAttentionConfig()), MotifCNN(MotifCNNConfig())):
            torch.manual_seed(0)
            fit(model, batch, lambda m, b: F.binary_cross_entropy_with_logits(m(b[0]), b[1]),
                TrainConfig(steps=150, lr=3e-3, warmup=15, device="cpu"))
            with torch.no_grad():
                acc = ((model(task.test.one_hot) > 0).long() == task.test.labels).float().mean()
            assert acc > 0.9
    finally:
        torch.set_num_threads(threads)


def test_peak_in_mask():
    w = torch.tensor([[0.1, 0.6, 0.3], [0.6, 0.3, 0.1]])
    m = torch.tensor([[False, True, False], [False, True, True]])
    assert peak_in_mask(w, m).tolist() == [True, False]
    with pytest.raises(ValueError, match="bool"):
        peak_in_mask(w, m.int())


def test_input_checks():
    model = MotifAttention(MotifAttentionConfig())
    with pytest.raises(ValueError, match=r"\(B, T, 4\)"):
        model(torch.zeros(2, 10, 5))
    with pytest.raises(ValueError, match="floating"):
        model(torch.zeros(2, 10, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="odd"):
        MotifAttentionConfig(kernel_size=4)
    with pytest.raises(ValueError, match="multiple"):
        MotifAttentionConfig(dim=30, num_heads=4)


def _reach(model, T, t=None):
    """The input positions that the last convolution's unit at position t depends on.

    Max pooling passes a gradient to one position of its window only, so the windows
    are averaged instead, with the same geometry: every position of a window then has one.
    """
    for i, layer in enumerate(model.features):
        if isinstance(layer, torch.nn.MaxPool1d):
            model.features[i] = torch.nn.AvgPool1d(layer.kernel_size, ceil_mode=True)
    x = dna(1, T).requires_grad_(True)
    h = model.features(x.transpose(1, 2))  # (1, C, T')
    t = h.shape[-1] // 2 if t is None else t
    h[0, :, t].sum().backward()
    return (x.grad[0].abs().sum(-1) > 0).nonzero()[:, 0]  # positions with a gradient


def test_deep_cnn_shapes_parameters_and_receptive_field():
    torch.manual_seed(0)
    config = MotifDeepCNNConfig()
    model = MotifDeepCNN(config)
    assert model(dna(3, 80)).shape == (3,) and model(dna(2, 121)).shape == (2,)
    block = MotifAttention(MotifAttentionConfig(num_layers=1, positions=True))
    assert count_parameters(model) == 10_637
    assert abs(count_parameters(model) / count_parameters(block) - 1) < 0.1
    # the property agrees with what autograd says one unit depends on, for several layouts
    for c in (config, MotifDeepCNNConfig((8, 8, 4), (5, 3, 7), pool=3),
              MotifDeepCNNConfig((6,), (11,))):
        torch.manual_seed(0)
        reach = _reach(MotifDeepCNN(c), 400)
        assert len(reach) == c.receptive_field
        assert bool((reach.diff() == 1).all())  # consecutive bases
    assert config.receptive_field == 62 >= 80 - 2 * 10  # both motifs of grammar_task(80)


def test_deep_cnn_max_pooling_ignores_where_the_pattern_is():
    # positions enter only through the padding: far from the ends, a shift changes nothing
    torch.manual_seed(0)
    model = MotifDeepCNN(MotifDeepCNNConfig()).eval()
    x = torch.cat([torch.full((1, 100, 4), 0.25), dna(1, 20), torch.full((1, 100, 4), 0.25)], 1)
    torch.testing.assert_close(model(x.roll(8, dims=1)), model(x))


def test_deep_cnn_learns_the_order_that_max_pooling_cannot():
    order = grammar_task(n_train=2000, n_test=300, length=80, seed=1)
    x, y = order.train.one_hot, order.train.labels.float()

    batch = random_rows(x, y, batch_size=64)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        accs = {}
        for name, model in (("deep", MotifDeepCNN(MotifDeepCNNConfig())),
                            ("one layer", MotifCNN(MotifCNNConfig()))):
            torch.manual_seed(0)
            fit(model, batch, lambda m, b: F.binary_cross_entropy_with_logits(m(b[0]), b[1]),
                TrainConfig(steps=150, lr=6e-3, warmup=15, device="cpu"))
            with torch.no_grad():
                pred = (model.eval()(order.test.one_hot) > 0).long()
            accs[name] = float((pred == order.test.labels).float().mean())
        assert accs["deep"] > 0.9 and accs["one layer"] < 0.7, accs
    finally:
        torch.set_num_threads(threads)


def test_deep_cnn_input_checks():
    with pytest.raises(ValueError, match="one entry per convolution"):
        MotifDeepCNNConfig(widths=(8, 8), kernel_sizes=(11,))
    with pytest.raises(ValueError, match="odd"):
        MotifDeepCNNConfig(kernel_sizes=(11, 12))
    with pytest.raises(ValueError, match="pool"):
        MotifDeepCNNConfig(pool=0)
    with pytest.raises(ValueError, match="widths must be positive"):
        MotifDeepCNNConfig(widths=(8, 0))
    with pytest.raises(ValueError, match=r"\(B, T, 4\)"):
        MotifDeepCNN(MotifDeepCNNConfig())(torch.zeros(2, 80, 5))
