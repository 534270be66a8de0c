"""Handwritten digits of 8x8 pixels, split for classification, and images cut into patches.

The 1,797 digits are the copy of the UCI "optical recognition of handwritten
digits" test set that ships inside scikit-learn (``sklearn.datasets.load_digits``
reads it from the installed package: nothing is downloaded). Each pixel counts
the ink in a 4x4 block of a 32x32 bitmap, an integer from 0 to 16; here the
pixels are divided by 16, so that they lie in [0, 1] and a blank pixel is 0.

- **Source.** E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits",
  UCI Machine Learning Repository (1998), as ``sklearn.datasets.load_digits`` ships it.
- **Licence.** The UCI data set: Creative Commons Attribution 4.0 (CC BY 4.0);
  scikit-learn: BSD-3-Clause.
- **Citation.** Alpaydin and Kaynak, "Cascading Classifiers", Kybernetika 34(4), 1998,
  the paper the data set asks to be cited (``alpaydin1998cascading`` in the book's
  bibliography); scikit-learn, Pedregosa et al. 2011 (``pedregosa2011scikit``).

- :func:`load_digit_images` -- all 1,797 images and labels as tensors;
- :func:`stratified_split`, :func:`stratified_subset` -- seeded, per-class
  index selections (the subsets of one seed are nested);
- :func:`digits_task` -- a :class:`Digits` with disjoint train and test splits
  (:meth:`DigitsSplit.hold_out` cuts a validation split from the training one);
- :func:`patchify`, :func:`unpatchify` -- images to a sequence of flattened
  patches and back, the first step of a Vision Transformer.

Images are (B, height, width), or (B, channels, height, width); P is the side
of a square patch and N = (height / P) * (width / P) the number of patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from attnlab._validate import shape_str
from attnlab.layers.patches import (  # re-exported: they lived here
    patch_count,
    patchify,
    unpatchify,
)

__all__ = [
    "DigitsSplit",
    "Digits",
    "load_digit_images",
    "stratified_split",
    "stratified_subset",
    "digits_task",
    "patch_count",
    "patchify",
    "unpatchify",
]

_MAX_INK = 16.0  # the largest pixel value of the data set


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    data = load_digits()
    return data.images.astype(np.float32) / _MAX_INK, data.target.astype(np.int64)


def load_digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits, with pixels scaled to [0, 1].

    Returns:
        images (1797, 8, 8) float32 in [0, 1] and labels (1797,) int64 in 0..9,
        in the data set's own order. Fresh tensors on every call.

    Example:
        >>> images, labels = load_digit_images()
        >>> tuple(images.shape), float(images.min()), float(images.max())
        ((1797, 8, 8), 0.0, 1.0)
        >>> labels[:10].tolist()
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    images, labels = _digits_arrays()
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())


def _check_labels(labels: torch.Tensor) -> np.ndarray:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        got = shape_str(labels) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a 1-D (N,) tensor of class ids, got {got}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must hold integer class ids, got dtype {labels.dtype}")
    if labels.numel() == 0:
        raise ValueError("labels is empty: there is nothing to split")
    return labels.cpu().numpy()


def _per_class_orders(labels: np.ndarray, seed: int) -> dict[int, np.ndarray]:
    """For each class, the positions of its examples in a seeded random order."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    return {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}


def _count(n: int, fraction: float) -> int:
    return int(np.floor(n * fraction + 0.5))  # round half up: monotone in the fraction


def stratified_split(labels: torch.Tensor, test_fraction: float = 0.2, seed: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Split positions ``0..N-1`` into disjoint train and test sets, class by class.

    Each class puts ``round(n_c * test_fraction)`` of its ``n_c`` examples,
    drawn at random, in the test set and the rest in the training set, so both
    sets keep the classes' proportions.

    Args:
        labels: class ids (N,).
        test_fraction: the share of each class held out, in (0, 1).
        seed: seeds the random order within each class.

    Shape:
        labels (N,) -> train (N - M,), test (M,): sorted positions into ``labels``.

    Returns:
        ``(train, test)`` index tensors (int64) that together cover ``range(N)`` once.

    Raises:
        ValueError: a fraction outside (0, 1), or a class that would leave one
            of the two sets without an example.

    Example:
        >>> labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
        >>> train, test = stratified_split(labels, test_fraction=0.5, seed=0)
        >>> len(train), len(test), labels[test].tolist()
        (5, 5, [0, 0, 1, 1, 1])
    """
    y = _check_labels(labels)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for c, order in _per_class_orders(y, seed).items():
        m = _count(len(order), test_fraction)
        if m == 0 or m == len(order):
            raise ValueError(
                f"class {c} has {len(order)} examples: a test_fraction of {test_fraction} "
                "leaves one of the two sets without any")
        test.append(order[:m])
        train.append(order[m:])
    return (torch.from_numpy(np.sort(np.concatenate(train))),
            torch.from_numpy(np.sort(np.concatenate(test))))


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """A random share of each class, e.g. to train on 10 % of the data with every digit in it.

    For one seed the subsets are **nested**: the 10 % subset lies inside the
    25 % subset, which lies inside the whole, so a larger training set only
    adds examples.

    Args:
        labels: class ids (N,).
        fraction: the share of each class kept, in (0, 1]; each class keeps
            ``round(n_c * fraction)`` examples.
        seed: seeds the random order within each class.

    Shape:
        labels (N,) -> (M,) sorted positions into ``labels``.

    Raises:
        ValueError: a fraction outside (0, 1], or one so small that a class
            keeps no example.

    Example:
        >>> labels = torch.tensor([0, 1] * 10)
        >>> small, large = stratified_subset(labels, 0.2), stratified_subset(labels, 0.5)
        >>> len(small), len(large), set(small.tolist()) <= set(large.tolist())
        (4, 10, True)
    """
    y = _check_labels(labels)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    kept: list[np.ndarray] = []
    for c, order in _per_class_orders(y, seed).items():
        m = _count(len(order), fraction)
        if m == 0:
            raise ValueError(f"class {c} has {len(order)} examples: a fraction of {fraction} "
                             "keeps none of them")
        kept.append(order[:m])
    return torch.from_numpy(np.sort(np.concatenate(kept)))


@dataclass(frozen=True)
class DigitsSplit:
    """One split of the digits: images, labels, and which of the 1,797 they are.

    Shape:
        images (M, 8, 8) in [0, 1], labels (M,) int64, index (M,) int64
        positions in :func:`load_digit_images`' order.
    """

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.labels.shape != (n,) or self.index.shape != (n,):
            raise ValueError(f"images {shape_str(self.images)}, labels {shape_str(self.labels)} "
                             f"and index {shape_str(self.index)} must agree on M")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, fraction: float, seed: int = 0) -> DigitsSplit:
        """A stratified share of this split (see :func:`stratified_subset`); nested per seed."""
        rows = stratified_subset(self.labels, fraction, seed)
        return self._rows(rows)

    def hold_out(self, fraction: float, seed: int = 0) -> tuple[DigitsSplit, DigitsSplit]:
        """Split this split in two, class by class, e.g. training digits into train and validation.

        Args:
            fraction: the share of each class held out, in (0, 1) (see
                :func:`stratified_split`).
            seed: seeds the random order within each class.

        Returns:
            ``(kept, held_out)``: disjoint splits that together hold every row once.

        Example:
            >>> train, validation = digits_task(seed=0).train.hold_out(0.2, seed=0)
            >>> len(train), len(validation)
            (1151, 287)
            >>> set(train.index.tolist()) & set(validation.index.tolist())
            set()
        """
        kept, held_out = stratified_split(self.labels, fraction, seed)
        return self._rows(kept), self._rows(held_out)

    def _rows(self, rows: torch.Tensor) -> DigitsSplit:
        return DigitsSplit(self.images[rows], self.labels[rows], self.index[rows])


@dataclass(frozen=True)
class Digits:
    """The digits task: disjoint, stratified train and test splits."""

    train: DigitsSplit
    test: DigitsSplit
    num_classes: int = 10


def digits_task(test_fraction: float = 0.2, seed: int = 0) -> Digits:
    """The 1,797 digits, split into disjoint train and test sets with the same class mix.

    Args:
        test_fraction: the share of each class held out for testing.
        seed: seeds the split.

    Returns:
        A :class:`Digits`; its splits hold (M, 8, 8) images in [0, 1].

    Example:
        >>> task = digits_task(test_fraction=0.2, seed=0)
        >>> len(task.train), len(task.test)
        (1438, 359)
        >>> set(task.train.index.tolist()) & set(task.test.index.tolist())
        set()
    """
    images, labels = load_digit_images()
    train, test = stratified_split(labels, test_fraction, seed)
    return Digits(train=DigitsSplit(images[train], labels[train], train),
                  test=DigitsSplit(images[test], labels[test], test))
