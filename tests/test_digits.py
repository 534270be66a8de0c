"""attnlab.data.digits: the data, seeded stratified disjoint splits, nested subsets, patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.data.digits import (
    Digits,
    digits_task,
    load_digit_images,
    patchify,
    stratified_split,
    stratified_subset,
    unpatchify,
)


def test_images_are_the_scaled_digits():
    images, labels = load_digit_images()
    assert images.shape == (1797, 8, 8) and images.dtype == torch.float32
    assert labels.shape == (1797,) and labels.dtype == torch.int64
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    assert torch.equal(images * 16, (images * 16).round())  # counts 0..16, divided by 16
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    images[0] = -1.0  # callers get their own copy
    assert float(load_digit_images()[0].min()) == 0.0


def test_split_is_seeded_stratified_disjoint_and_complete():
    labels = load_digit_images()[1]
    train, test = stratified_split(labels, 0.2, seed=0)
    again = stratified_split(labels, 0.2, seed=0)
    assert torch.equal(train, again[0]) and torch.equal(test, again[1])
    assert not torch.equal(test, stratified_split(labels, 0.2, seed=1)[1])
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(1797))
    counts = torch.bincount(labels, minlength=10)
    expected = torch.floor(counts * 0.2 + 0.5).long()  # round(n_c * 0.2) per class
    assert torch.equal(torch.bincount(labels[test], minlength=10), expected)
    assert len(test) == 359 and len(train) == 1438


def test_split_by_hand():
    labels = torch.tensor([2, 2, 2, 2, 2, 7, 7, 7, 7, 7])
    train, test = stratified_split(labels, test_fraction=0.4, seed=5)
    assert labels[test].tolist() == [2, 2, 7, 7] and labels[train].tolist() == [2] * 3 + [7] * 3


def test_subsets_are_nested_stratified_and_seeded():
    labels = load_digit_images()[1]
    tenth, quarter, whole = (set(stratified_subset(labels, f, seed=3).tolist())
                             for f in (0.1, 0.25, 1.0))
    assert tenth < quarter < whole == set(range(1797))
    small = stratified_subset(labels, 0.1, seed=3)
    assert torch.bincount(labels[small]).tolist() == [18] * 8 + [17, 18]  # round(n_c / 10)
    assert not torch.equal(small, stratified_subset(labels, 0.1, seed=4))


def test_digits_task_splits():
    task = digits_task(test_fraction=0.2, seed=0)
    assert isinstance(task, Digits) and task.num_classes == 10
    assert (len(task.train), len(task.test)) == (1438, 359)
    images, labels = load_digit_images()
    for split in (task.train, task.test):
        assert torch.equal(split.images, images[split.index])
        assert torch.equal(split.labels, labels[split.index])
    assert not set(task.train.index.tolist()) & set(task.test.index.tolist())
    # no test image appears in the training set, not even as a copy under another index
    train_rows = {tuple(x) for x in task.train.images.flatten(1).numpy().tolist()}
    assert not any(tuple(x) in train_rows for x in task.test.images.flatten(1).numpy().tolist())
    sub = task.train.subset(0.25, seed=0)
    assert set(sub.index.tolist()) < set(task.train.index.tolist())
    assert torch.equal(sub.images, images[sub.index])


def test_hold_out_cuts_a_stratified_disjoint_validation_split():
    images, labels = load_digit_images()
    train = digits_task(test_fraction=0.2, seed=0).train
    kept, held = train.hold_out(0.2, seed=0)
    assert len(kept) + len(held) == len(train)
    assert not set(kept.index.tolist()) & set(held.index.tolist())
    assert set(kept.index.tolist()) | set(held.index.tolist()) == set(train.index.tolist())
    for split in (kept, held):
        assert torch.equal(split.images, images[split.index])
        assert torch.equal(split.labels, labels[split.index])
    share = torch.bincount(held.labels) / torch.bincount(train.labels)
    assert (share - 0.2).abs().max() < 0.01                      # stratified
    again, other = train.hold_out(0.2, seed=0), train.hold_out(0.2, seed=1)
    assert torch.equal(again[1].index, held.index)               # seeded
    assert not torch.equal(other[1].index, held.index)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        train.hold_out(1.0)


@pytest.mark.parametrize("bad, match", [(0.0, r"\(0, 1\)"), (1.0, r"\(0, 1\)"),
                                        (0.01, "class 0 has 2 examples")])
def test_split_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        stratified_split(torch.tensor([0, 0, 1, 1]), bad)


def test_subset_and_label_errors():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        stratified_subset(torch.tensor([0, 1]), 1.5)
    with pytest.raises(ValueError, match="keeps none"):
        stratified_subset(torch.tensor([0, 1, 1, 1]), 0.2)
    with pytest.raises(ValueError, match=r"1-D \(N,\) tensor of class ids, got \(2, 2\)"):
        stratified_split(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class ids"):
        stratified_split(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="seed"):
        stratified_split(torch.tensor([0, 0, 1, 1]), 0.5, seed=-1)


def naive_patchify(images: np.ndarray, p: int) -> np.ndarray:
    """(B, c, height, width) -> (B, N, c*p*p), patch by patch with loops."""
    B, c, height, width = images.shape
    out = []
    for b in range(B):
        patches = []
        for i in range(height // p):
            for j in range(width // p):
                patches.append(images[b, :, i * p:(i + 1) * p, j * p:(j + 1) * p].reshape(-1))
        out.append(patches)
    return np.array(out)


@pytest.mark.parametrize("shape, p", [((2, 8, 8), 2), ((3, 8, 8), 4), ((2, 3, 6, 4), 2),
                                      ((1, 5, 5), 5), ((1, 4, 4), 1)])
def test_patchify_matches_loops_and_round_trips(shape, p):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    before = x.clone()
    patches = patchify(x, p)
    x4 = x if x.dim() == 4 else x[:, None]
    np.testing.assert_array_equal(patches.numpy(), naive_patchify(x4.numpy(), p))
    assert torch.equal(x, before)
    channels = x4.shape[1]
    back = unpatchify(patches, p, shape[-2], shape[-1], channels=channels)
    assert torch.equal(back, x)


def test_patch_embedding_is_a_strided_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=g)
    conv = torch.nn.Conv2d(3, 5, kernel_size=2, stride=2)
    by_conv = conv(x).flatten(2).transpose(1, 2)  # (B, N, C)
    by_linear = torch.nn.functional.linear(patchify(x, 2), conv.weight.flatten(1), conv.bias)
    torch.testing.assert_close(by_linear, by_conv)


def test_patch_errors():
    with pytest.raises(ValueError, match="multiples of patch_size=3"):
        patchify(torch.zeros(1, 8, 8), 3)
    with pytest.raises(ValueError, match=r"\(B, height, width\) or .* got \(8, 8\)"):
        patchify(torch.zeros(8, 8), 2)
    with pytest.raises(ValueError, match="positive integer"):
        patchify(torch.zeros(1, 8, 8), 0)
    with pytest.raises(ValueError, match=r"\(B, 16, 4\) for 8x8 images, got \(1, 15, 4\)"):
        unpatchify(torch.zeros(1, 15, 4), 2, 8, 8)
