"""Yes/no answers to questions about images: cross-attention and two baselines.

All three models read a batch of 8x8 images and padded questions
(:mod:`attnlab.data.vqa`) and return two logits (no, yes):

- :class:`CrossAttentionVQA` -- encode the image patches and the question
  words separately, then let every question word attend to the patches
  (queries from the text, keys and values from the image), and classify the
  mean of the words' states;
- :class:`FusionVQA` -- the same two encoders, but each modality is pooled
  to one vector first and the two vectors are concatenated: the modalities
  meet only in the classifier's MLP;
- :class:`QuestionOnlyVQA` -- the question encoder alone: a measure of how
  much the question by itself gives away.

The encoders are those of a ViT without class token (patch embedding,
learned positions, Transformer blocks) and of a small Transformer encoder over
words, whose padding is masked (True = may attend).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab._validate import shape_str
from attnlab.layers import (
    FeedForward,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    TransformerBlock,
)
from attnlab.layers.patches import patch_count, patchify

__all__ = ["VQAConfig", "CrossAttentionBlock", "CrossAttentionVQA", "FusionVQA",
           "QuestionOnlyVQA", "masked_mean"]


@dataclass
class VQAConfig:
    """Sizes of the VQA models; the defaults suit the digit questions on a CPU."""

    vocab_size: int = 19  # V: 18 words and <pad>
    max_question_len: int = 5  # T: "is it larger than 4" is the longest question
    pad_id: int = 0  # the id of <pad> in the questions
    image_size: int = 8  # the side of a square image, in pixels
    patch_size: int = 2  # P: a 4x4 grid of S = 16 patches, as in the ViT of the digits
    dim: int = 32  # C: both modalities are embedded to the same width
    num_heads: int = 4  # H; D = C / H = 8
    ff_dim: int = 64  # the feed-forward hidden width, 2 C
    image_layers: int = 1  # self-attention blocks over the patches (a light image encoder)
    question_layers: int = 1  # self-attention blocks over the words: "larger" meets "4"
    cross_layers: int = 1  # cross-attention blocks, words -> patches (CrossAttentionVQA)
    fusion_hidden: int = 128  # the fusion MLP's hidden width (FusionVQA): as many parameters

    def __post_init__(self) -> None:
        patch_count(self.image_size, self.patch_size)  # raises unless the patches tile the image

    @property
    def num_patches(self) -> int:
        """S, the number of patches of an image (the keys of the cross-attention)."""
        return patch_count(self.image_size, self.patch_size)


def masked_mean(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The mean of the rows of ``x`` where ``keep`` is True (zeros where none is).

    Shape:
        x (B, T, C), keep (B, T) bool -> (B, C).

    Example:
        >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> masked_mean(x, torch.tensor([[True, True, False]]))
        tensor([[2.]])
    """
    if x.dim() != 3 or keep.shape != x.shape[:2] or keep.dtype != torch.bool:
        raise ValueError(f"x must be (B, T, C) and keep a bool (B, T), got {shape_str(x)} "
                         f"and {shape_str(keep)} {keep.dtype}")
    w = keep.to(x.dtype)[..., None]  # (B, T, 1)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)  # (B, C)


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention and a feed-forward network.

    ::

        x = x + cross_attn(norm1(x), context, context);  x = x + ff(norm2(x))

    The queries come from ``x`` (the question words), the keys and values from
    ``context`` (the image patches), which is normalised by its own norm.

    Shape:
        x (B, T, C), context (B, S, C), context_mask (B, S) bool, True = a real
        key (may attend), or None -> (B, T, C); weights (B, H, T, S).
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int) -> None:
        super().__init__()
        self.cross_attn = MultiHeadAttention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor,
                context_mask: torch.Tensor | None = None, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        mask = None
        if context_mask is not None:
            if context_mask.shape != context.shape[:2]:
                raise ValueError(f"context_mask must be (B, S) = {tuple(context.shape[:2])}, "
                                 f"got {shape_str(context_mask)}")
            mask = context_mask[:, None, :]  # (B, 1, S): every query sees the same keys
        c = self.norm_context(context)
        attn, w = self.cross_attn(self.norm1(x), c, c, mask=mask, need_weights=True)
        x = x + attn  # (B, T, C)
        x = x + self.ff(self.norm2(x))
        return (x, w) if need_weights else x


class _Encoders(nn.Module):
    """The image and question encoders that the three models share."""

    def __init__(self, config: VQAConfig, image: bool = True) -> None:
        super().__init__()
        c = config
        self.config = c
        if image:
            self.patch_embed = nn.Linear(c.patch_size**2, c.dim)  # a flattened patch -> C
            self.patch_pos = LearnedPositionalEmbedding(c.num_patches, c.dim)
            self.image_blocks = nn.ModuleList(
                TransformerBlock(c.dim, c.num_heads, c.ff_dim) for _ in range(c.image_layers))
        self.word_embed = nn.Embedding(c.vocab_size, c.dim)
        self.word_pos = LearnedPositionalEmbedding(c.max_question_len, c.dim)
        self.question_blocks = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.ff_dim) for _ in range(c.question_layers))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Patch states (B, S, C) of images (B, side, side)."""
        c = self.config
        if images.dim() != 3 or images.shape[1:] != (c.image_size, c.image_size):
            raise ValueError(f"images must be (B, {c.image_size}, {c.image_size}), "
                             f"got {shape_str(images)}")
        x = self.patch_pos(self.patch_embed(patchify(images, c.patch_size)))  # (B, S, C)
        for block in self.image_blocks:
            x = block(x)
        return x

    def encode_question(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Word states (B, T, C) and the mask of real words (B, T) of padded ids (B, T)."""
        c = self.config
        if tokens.dim() != 2 or tokens.shape[1] > c.max_question_len or tokens.is_floating_point():
            raise ValueError(f"tokens must be integer ids (B, T) with T <= {c.max_question_len}, "
                             f"got {shape_str(tokens)}")
        real = tokens != c.pad_id  # (B, T)
        x = self.word_pos(self.word_embed(tokens))  # (B, T, C)
        key_mask = real[:, None, :]  # (B, 1, T): no word attends to padding
        for block in self.question_blocks:
            x = block(x, mask=key_mask)
        return x, real

    def _check_batch(self, images: torch.Tensor, tokens: torch.Tensor) -> None:
        if images.shape[0] != tokens.shape[0]:
            raise ValueError(f"images {shape_str(images)} and tokens {shape_str(tokens)} must "
                             "have the same batch size B")


class CrossAttentionVQA(_Encoders):
    r"""Question words attend to image patches; the attended words are classified.

    .. math::

        Z = \operatorname{Enc}_{\text{img}}(\text{patches}) \in \mathbb{R}^{S \times C},
        \quad
        X = \operatorname{Enc}_{\text{q}}(\text{words}) \in \mathbb{R}^{T \times C},
        \quad
        X' = X + \operatorname{softmax}\!\Big(\frac{X W^Q (Z W^K)^\top}{\sqrt{D}}\Big)
             Z W^V W^O

    (per head, with layer norms and a feed-forward network as in
    :class:`CrossAttentionBlock`), then the logits are a linear map of the mean
    of :math:`X'` over the real words.

    Args:
        config: a :class:`VQAConfig`.

    Shape:
        images (B, 8, 8), tokens (B, T) -> logits (B, 2) (no, yes); with
        ``need_weights`` also the cross-attention weights (B, L, H, T, S),
        L = ``cross_layers``, S = 16 patches.

    Example:
        >>> model = CrossAttentionVQA(VQAConfig())
        >>> logits, w = model(torch.rand(3, 8, 8), torch.tensor([[1, 2, 3, 0, 0]] * 3),
        ...                   need_weights=True)
        >>> logits.shape, w.shape
        (torch.Size([3, 2]), torch.Size([3, 1, 4, 5, 16]))
    """

    def __init__(self, config: VQAConfig) -> None:
        super().__init__(config)
        c = config
        self.cross_blocks = nn.ModuleList(
            CrossAttentionBlock(c.dim, c.num_heads, c.ff_dim) for _ in range(c.cross_layers))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, 2)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, 2); with ``need_weights`` also the weights (B, L, H, T, S)."""
        self._check_batch(images, tokens)
        z = self.encode_image(images)  # (B, S, C)
        x, real = self.encode_question(tokens)  # (B, T, C), (B, T)
        weights = []
        for block in self.cross_blocks:
            x, w = block(x, z, need_weights=True)  # (B, T, C), w (B, H, T, S)
            weights.append(w)
        logits = self.head(self.norm(masked_mean(x, real)))  # (B, C) -> (B, 2)
        return (logits, torch.stack(weights, dim=1)) if need_weights else logits


class FusionVQA(_Encoders):
    """The same encoders, pooled separately and concatenated: no cross-attention.

    ``logits = MLP([mean of the patch states; mean of the word states])``, an
    MLP with one hidden layer of ``fusion_hidden`` units.

    Shape:
        images (B, 8, 8), tokens (B, T) -> logits (B, 2).

    Example:
        >>> FusionVQA(VQAConfig())(torch.rand(3, 8, 8), torch.tensor([[1, 2, 3]] * 3)).shape
        torch.Size([3, 2])
    """

    def __init__(self, config: VQAConfig) -> None:
        super().__init__(config)
        c = config
        self.norm_image = nn.LayerNorm(c.dim)
        self.norm_question = nn.LayerNorm(c.dim)
        self.mlp = nn.Sequential(nn.Linear(2 * c.dim, c.fusion_hidden), nn.GELU(),
                                 nn.Linear(c.fusion_hidden, 2))

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2)."""
        self._check_batch(images, tokens)
        z = self.norm_image(self.encode_image(images).mean(1))  # (B, C)
        x, real = self.encode_question(tokens)  # (B, T, C)
        q = self.norm_question(masked_mean(x, real))  # (B, C)
        return self.mlp(torch.cat([z, q], dim=-1))  # (B, 2C) -> (B, 2)


class QuestionOnlyVQA(_Encoders):
    """The question encoder and a linear head: it never sees the image.

    Shape:
        images (B, 8, 8) (ignored), tokens (B, T) -> logits (B, 2).

    Example:
        >>> QuestionOnlyVQA(VQAConfig())(torch.rand(2, 8, 8), torch.tensor([[1, 2, 3]] * 2)).shape
        torch.Size([2, 2])
    """

    def __init__(self, config: VQAConfig) -> None:
        super().__init__(config, image=False)
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, 2)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2); ``images`` only sets the batch size it is checked against."""
        self._check_batch(images, tokens)
        x, real = self.encode_question(tokens)  # (B, T, C)
        return self.head(self.norm(masked_mean(x, real)))  # (B, 2)
