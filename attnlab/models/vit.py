"""A Vision Transformer for small images, and a small CNN to compare it with.

:class:`ViT` follows Dosovitskiy et al. (2021): cut the image into P x P
patches, embed each flattened patch linearly, prepend a learned class token,
add learned position embeddings, run pre-norm Transformer blocks and classify
from the class token's final state. :class:`SmallCNN` is the baseline: two
3x3 convolutions, each followed by 2x2 max-pooling, and a linear head.

The configs' defaults are the CPU preset for the 8x8 digits of
:mod:`attnlab.data.digits`: a ViT of about 18k parameters and a CNN of about
19k that each train in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab._validate import shape_str
from attnlab.layers import LearnedPositionalEmbedding, TransformerBlock, run_blocks
from attnlab.layers.patches import patch_count, patchify

__all__ = ["ViTConfig", "ViT", "CNNConfig", "SmallCNN"]


def _check_images(images: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """Images as (B, channels, size, size); (B, size, size) is accepted for one channel."""
    given = images
    if isinstance(images, torch.Tensor) and images.dim() == 3 and channels == 1:
        images = images[:, None]  # (B, 1, size, size)
    if not isinstance(images, torch.Tensor) or images.shape[1:] != (channels, size, size):
        got = shape_str(given) if isinstance(given, torch.Tensor) else type(given).__name__
        raise ValueError(f"images must be (B, {channels}, {size}, {size})"
                         + (f" or (B, {size}, {size})" if channels == 1 else "")
                         + f", got {got}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point, got dtype {images.dtype}")
    return images


# -------------------------------------------------------------------------------- ViT


@dataclass
class ViTConfig:
    """Sizes of the Vision Transformer; the defaults suit the 8x8 digits on a CPU."""

    image_size: int = 8  # the side of a square image, in pixels
    patch_size: int = 2  # P: 2x2 patches make a 4x4 grid, N = 16 tokens of 4 pixels each
    channels: int = 1  # grey-scale
    num_classes: int = 10  # the digits 0..9
    dim: int = 32  # C: 16 tokens of 4 pixels need little width
    depth: int = 2  # L, the number of Transformer blocks
    num_heads: int = 4  # H; D = C / H = 8
    ff_dim: int = 64  # the feed-forward hidden width, 2 C (4 C is usual at scale)
    dropout: float = 0.0  # 1,438 training images at 400 steps: no need to regularise

    def __post_init__(self) -> None:
        patch_count(self.image_size, self.patch_size)  # raises unless the patches tile the image

    @property
    def num_patches(self) -> int:
        """N, the number of patches of an image."""
        return patch_count(self.image_size, self.patch_size)

    @property
    def seq_len(self) -> int:
        """The sequence length T = N + 1 (the patches and the class token)."""
        return self.num_patches + 1


class ViT(nn.Module):
    r"""A Vision Transformer classifier (Dosovitskiy et al. 2021).

    .. math::

        z_0 = [x_{\text{cls}};\, x_1 E;\, \dots;\, x_N E] + E_{\text{pos}}, \qquad
        z_\ell = \operatorname{Block}_\ell(z_{\ell-1}), \qquad
        \text{logits} = \operatorname{LN}(z_L^{(0)})\, W

    with :math:`x_i` the i-th flattened patch, :math:`E` the patch embedding,
    :math:`E_{\text{pos}}` one learned vector per position (the class token's
    is position 0) and :math:`z_L^{(0)}` the class token's final state.

    Args:
        config: a :class:`ViTConfig`.

    Shape:
        images (B, channels, side, side), or (B, side, side) for one channel ->
        logits (B, num_classes); with ``need_weights`` also the attention
        weights (B, L, H, T, T), T = N + 1, token 0 being the class token.

    Example:
        >>> model = ViT(ViTConfig())
        >>> logits, weights = model(torch.rand(3, 8, 8), need_weights=True)
        >>> logits.shape, weights.shape
        (torch.Size([3, 10]), torch.Size([3, 2, 4, 17, 17]))
    """

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        patch_dim = c.channels * c.patch_size**2
        self.patch_embed = nn.Linear(patch_dim, c.dim)  # E: a flattened patch -> C
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        nn.init.normal_(self.cls_token, std=0.02)
        self.pos_embed = LearnedPositionalEmbedding(c.seq_len, c.dim)  # E_pos, (T, C)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.ff_dim, c.dropout, norm_first=True)
            for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The tokens the first block reads: the class token and the embedded patches,
        plus their positions, (B, T, C)."""
        c = self.config
        x = _check_images(images, c.channels, c.image_size)
        patches = patchify(x, c.patch_size)  # (B, N, channels*P*P)
        tokens = self.patch_embed(patches)  # (B, N, C)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # (B, 1, C)
        tokens = torch.cat([cls, tokens], dim=1)  # (B, T, C), T = N + 1
        return self.dropout(self.pos_embed(tokens))  # (B, T, C)

    def forward(self, images: torch.Tensor, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Class logits (B, num_classes); with ``need_weights`` also the weights
        (B, L, H, T, T) of every block."""
        x = self.embed(images)  # (B, T, C)
        x, weights = run_blocks(self.blocks, x, need_weights=need_weights)  # (B, T, C)
        logits = self.head(self.norm(x[:, 0]))  # the class token: (B, C) -> (B, classes)
        if need_weights:
            return logits, torch.stack(weights, dim=1)  # (B, L, H, T, T)
        return logits


# -------------------------------------------------------------------------------- CNN


@dataclass
class CNNConfig:
    """Sizes of the small CNN; the defaults give about as many parameters as ViTConfig()'s."""

    image_size: int = 8  # the side of a square image; halved by each 2x2 max-pooling
    channels: int = 1  # grey-scale
    num_classes: int = 10
    widths: tuple[int, ...] = (30, 60)  # output channels of each 3x3 convolution
    kernel_size: int = 3  # an odd kernel, padded to keep the size ("same" convolutions)

    def __post_init__(self) -> None:
        if not self.widths:
            raise ValueError("widths needs at least one convolution")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {self.kernel_size}")
        if self.image_size % 2 ** len(self.widths):
            raise ValueError(f"image_size={self.image_size} cannot be halved "
                             f"{len(self.widths)} times")


class SmallCNN(nn.Module):
    """Convolution -> GELU -> 2x2 max-pooling, per width in ``config.widths``, then a linear head.

    ``features`` is an ``nn.Sequential`` of those layers, so ``features[:k]``
    gives the activations after the k-th layer.

    Args:
        config: a :class:`CNNConfig`.

    Shape:
        images (B, channels, side, side), or (B, side, side) for one channel ->
        logits (B, num_classes).

    Example:
        >>> model = SmallCNN(CNNConfig())
        >>> model(torch.rand(3, 8, 8)).shape
        torch.Size([3, 10])
    """

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        layers: list[nn.Module] = []
        width_in = c.channels
        for width in c.widths:
            layers += [nn.Conv2d(width_in, width, c.kernel_size, padding=c.kernel_size // 2),
                       nn.GELU(), nn.MaxPool2d(2)]
            width_in = width
        self.features = nn.Sequential(*layers)
        side = c.image_size // 2 ** len(c.widths)
        self.head = nn.Linear(width_in * side * side, c.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        c = self.config
        x = _check_images(images, c.channels, c.image_size)  # (B, channels, side, side)
        return self.head(self.features(x).flatten(1))  # (B, widths[-1]*s*s) -> (B, classes)
