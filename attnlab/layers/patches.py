"""Images to sequences of patches and back, as a Vision Transformer reads them."""

from __future__ import annotations

import torch

from attnlab._validate import shape_str

__all__ = ["patch_count", "patchify", "unpatchify"]


def _as_4d(images: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        got = shape_str(images) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be (B, height, width) or (B, channels, height, width), "
                         f"got {got}")
    return images[:, None] if images.dim() == 3 else images


def _check_patch_size(patch_size: int) -> None:
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive integer, got {patch_size!r}")


def patch_count(image_size: int, patch_size: int) -> int:
    """The number of square patches of a square image; the sizes must divide (checked)."""
    if patch_size < 1 or image_size % patch_size:
        raise ValueError(f"image_size={image_size} must be a multiple of patch_size={patch_size}")
    return (image_size // patch_size) ** 2


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping P x P patches and flatten each one.

    The patches are numbered row by row (patch ``i * (width / P) + j`` is the
    one in the i-th row and j-th column of the grid); within a patch the
    values run over channels, then rows, then columns -- the order of a
    ``Conv2d`` weight's ``flatten(1)``, so a linear patch embedding equals a
    convolution with kernel size and stride P.

    ::

        a 4x4 image, P = 2          4 patches of 4 values
        a b | c d                   0: a b e f
        e f | g h                   1: c d g h
        ----+----                   2: i j m n
        i j | k l                   3: k l o p
        m n | o p

    Args:
        images: (B, height, width) or (B, channels, height, width); height and
            width must be multiples of ``patch_size``.
        patch_size: P, the side of a square patch.

    Shape:
        images (B, height, width) -> (B, N, P*P);
        (B, channels, height, width) -> (B, N, channels*P*P), N = height*width / P².

    Returns:
        The patches, a new view or copy; ``images`` is not modified.

    Example:
        >>> x = torch.arange(16.0).reshape(1, 4, 4)
        >>> patchify(x, 2)
        tensor([[[ 0.,  1.,  4.,  5.],
                 [ 2.,  3.,  6.,  7.],
                 [ 8.,  9., 12., 13.],
                 [10., 11., 14., 15.]]])
    """
    _check_patch_size(patch_size)
    x = _as_4d(images, "images")
    B, c, height, width = x.shape
    P = patch_size
    if height % P or width % P:
        raise ValueError(f"images {shape_str(images)} have height {height} and width {width}; "
                         f"both must be multiples of patch_size={P}")
    x = x.reshape(B, c, height // P, P, width // P, P)  # (B, c, rows, P, cols, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, rows, cols, c, P, P)
    return x.reshape(B, (height // P) * (width // P), c * P * P)  # (B, N, c*P*P)


def unpatchify(patches: torch.Tensor, patch_size: int, height: int, width: int,
               channels: int = 1) -> torch.Tensor:
    """Put patches made by :func:`patchify` back into images.

    Args:
        patches: (B, N, channels*P*P).
        patch_size: P.
        height, width: the image size; N must equal height*width / P².
        channels: the number of channels; with 1 the result has no channel axis.

    Shape:
        (B, N, channels*P*P) -> (B, height, width), or (B, channels, height,
        width) when ``channels > 1``.

    Example:
        >>> x = torch.randn(2, 8, 8)
        >>> torch.equal(unpatchify(patchify(x, 2), 2, 8, 8), x)
        True
    """
    _check_patch_size(patch_size)
    P = patch_size
    if height % P or width % P:
        raise ValueError(f"height {height} and width {width} must be multiples of "
                         f"patch_size={P}")
    rows, cols = height // P, width // P
    if patches.dim() != 3 or patches.shape[1:] != (rows * cols, channels * P * P):
        raise ValueError(f"patches must be (B, N, channels*P*P) = (B, {rows * cols}, "
                         f"{channels * P * P}) for {height}x{width} images, got "
                         f"{shape_str(patches)}")
    B = patches.shape[0]
    x = patches.reshape(B, rows, cols, channels, P, P)  # (B, rows, cols, c, P, P)
    x = x.permute(0, 3, 1, 4, 2, 5).reshape(B, channels, height, width)  # (B, c, height, width)
    return x[:, 0] if channels == 1 else x
