"""Seeding and device selection, shared by every chapter."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["set_seed", "pick_device", "count_parameters"]


def set_seed(seed: int = 0) -> torch.Generator:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and CUDA) at once.

    Args:
        seed: a non-negative integer.

    Returns:
        A fresh ``torch.Generator`` seeded with ``seed``, for code that wants
        its own stream of random numbers.

    Example:
        >>> _ = set_seed(0)
        >>> a = torch.rand(2)
        >>> _ = set_seed(0)
        >>> torch.equal(a, torch.rand(2))
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA and MPS too
    return torch.Generator().manual_seed(seed)


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` (or the environment variable ``ATTNLAB_DEVICE``) names a device
    to use instead, e.g. ``"cpu"`` to compare with a laptop run; asking for a
    device that is not available is an error, never a silent fallback.

    Args:
        prefer: ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"cpu"`` or ``None``.

    Returns:
        A ``torch.device``.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    choice = prefer if prefer is not None else os.environ.get("ATTNLAB_DEVICE") or None
    if choice is not None:
        try:
            device = torch.device(choice)
        except RuntimeError as err:
            raise ValueError(f"unknown device {choice!r}: {err}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} was asked for, but CUDA is not available")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"device {choice!r} was asked for, but MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def count_parameters(*parts: torch.nn.Module | torch.Tensor) -> int:
    """Number of trainable parameters of modules and parameter tensors together.

    Args:
        parts: modules (their parameters with ``requires_grad`` count) and
            tensors (counted when they require gradients, e.g. an
            ``nn.Parameter`` such as a class token), at least one.

    Example:
        >>> count_parameters(torch.nn.Linear(3, 2))  # 3 * 2 weights + 2 biases
        8
        >>> count_parameters(torch.nn.Linear(3, 2), torch.nn.Parameter(torch.zeros(4)))
        12
    """
    if not parts:
        raise TypeError("count_parameters needs at least one module or tensor")
    total = 0
    for part in parts:
        if isinstance(part, torch.nn.Module):
            total += sum(p.numel() for p in part.parameters() if p.requires_grad)
        elif isinstance(part, torch.Tensor):
            total += part.numel() if part.requires_grad else 0
        else:
            raise TypeError(f"count_parameters needs nn.Modules or tensors, got "
                            f"{type(part).__name__}")
    return total
