r"""Motif detectors for DNA: convolution + attention with readable weights, and a CNN baseline.

:class:`MotifAttention` reads one-hot DNA (B, T, 4) in three steps:

1. a convolution of width k embeds each position's k-mer (the bases around it) as a
   vector of width C, as a DeepBind-style filter bank would (Alipanahi et al. 2015);
2. ``num_layers`` pre-norm Transformer blocks (:class:`attnlab.layers.TransformerBlock`)
   let every position read every other one, as Enformer's attention layers do over far
   longer sequences (Avsec et al. 2021); with ``num_layers=0`` this step is skipped;
3. attention pooling with one learned query
   (:class:`attnlab.models.pooling_classifier.AttentionPooling`),

   .. math::

       \alpha_t = \operatorname{softmax}_t\!\left(\frac{q \cdot W_k h_t}{\sqrt{C}}\right),
       \qquad z = \sum_{t=1}^{T} \alpha_t h_t ,

   and a linear layer on :math:`z` gives the logit of "holds a binding site". The weights
   :math:`\alpha_t` (B, T) say where the model read the evidence.

:class:`MotifCNN` is the baseline: convolutions, then global max pooling over the positions
("is the pattern anywhere?"), then a linear layer. Its receptive field is one filter wide,
so it cannot relate two motifs further apart than that. :class:`MotifDeepCNN` is the fair
baseline for such rules: convolutions with max pooling between them, so that each unit of
the last one sees :attr:`MotifDeepCNNConfig.receptive_field` bases (62 by default, as
wide as both motifs of ``grammar_task(length=80)`` and the gap between them), then global
max pooling and a linear layer.

Reading a trained detector: :func:`in_silico_mutagenesis` (the logit's change for every
single-base substitution), :func:`aligned_pwm` (a PWM from windows around where a model
points, aligned by strand and shift), :func:`compare_pwms` (its best correlation with a
planted PWM), and :func:`pwm_scan`, the classic log-odds scanner that needs the true PWM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab._validate import check_weights_and_positions, shape_str
from attnlab.layers import SinusoidalPositionalEncoding, TransformerBlock, run_blocks
from attnlab.layers.attention_pooling import AttentionPooling

__all__ = ["MotifAttentionConfig", "MotifAttention", "MotifCNNConfig", "MotifCNN",
           "MotifDeepCNNConfig", "MotifDeepCNN", "peak_in_mask", "in_silico_mutagenesis",
           "aligned_pwm", "compare_pwms", "pwm_scan"]


def _check_dna(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != 4:
        got = shape_str(x) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be one-hot DNA (B, T, 4), got {got}; "
                         "use attnlab.data.dna.one_hot(ids)")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got dtype {x.dtype}")


@dataclass
class MotifAttentionConfig:
    """Sizes of :class:`MotifAttention`; the defaults train in seconds on a CPU."""

    kernel_size: int = 11  # k: odd, so that the k-mer is centred on t; at least the motif (10)
    dim: int = 32  # C: a handful of filters suffices for one motif and its decoys
    num_heads: int = 2  # H; D = C / H = 16
    num_layers: int = 0  # Transformer blocks between the k-mers and the pooling (0: none)
    ff_dim: int = 64  # the feed-forward hidden width, 2 C
    positions: bool = False  # add sinusoidal positions: a site means the same anywhere
    max_len: int = 1024  # the longest sequence (only with positions)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {self.kernel_size}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim={self.dim} must be a multiple of num_heads={self.num_heads}")
        if self.num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {self.num_layers}")


class MotifAttention(nn.Module):
    """k-mer convolution + Transformer blocks + attention pooling + linear layer.

    Args:
        config: a :class:`MotifAttentionConfig`.

    Shape:
        x (B, T, 4) one-hot -> logits (B,) (of "holds a site"); with ``need_weights`` also
        the pooling weights (B, T), each row summing to 1.

    Example:
        >>> model = MotifAttention(MotifAttentionConfig())
        >>> logits, w = model(torch.eye(4)[torch.randint(0, 4, (3, 50))], need_weights=True)
        >>> logits.shape, w.shape
        (torch.Size([3]), torch.Size([3, 50]))
    """

    def __init__(self, config: MotifAttentionConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.kmer = nn.Conv1d(4, c.dim, c.kernel_size, padding=c.kernel_size // 2)
        self.act = nn.GELU()
        self.position = SinusoidalPositionalEncoding(c.dim, c.max_len) if c.positions else None
        self.blocks = nn.ModuleList(
            TransformerBlock(c.dim, c.num_heads, c.ff_dim, c.dropout, norm_first=True)
            for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.dim)
        self.pool = AttentionPooling(c.dim)
        self.head = nn.Linear(c.dim, 1)

    def encode(self, x: torch.Tensor, need_weights: bool = False
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The states (B, T, C) the pooling reads and, with ``need_weights``, each block's
        self-attention weights (B, H, T, T) (else an empty list)."""
        _check_dna(x)
        h = self.act(self.kmer(x.transpose(1, 2))).transpose(1, 2)  # (B, 4, T) -> (B, T, C)
        if self.position is not None:
            h = self.position(h)  # (B, T, C)
        h, maps = run_blocks(self.blocks, h, need_weights=need_weights)  # (B, T, C)
        return self.norm(h), maps

    def forward(self, x: torch.Tensor, need_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (B,); with ``need_weights`` also the pooling weights (B, T)."""
        states, _ = self.encode(x)  # (B, T, C)
        pooled, weights = self.pool(states)  # (B, C), (B, T)
        logits = self.head(pooled)[:, 0]  # (B,)
        return (logits, weights) if need_weights else logits


@dataclass
class MotifCNNConfig:
    """Sizes of :class:`MotifCNN`; the defaults give about as many parameters as
    ``MotifAttentionConfig()``'s model."""

    widths: tuple[int, ...] = (56,)  # output channels of each convolution
    kernel_size: int = 11  # odd, "same" padding; a filter spans the whole motif

    def __post_init__(self) -> None:
        if not self.widths:
            raise ValueError("widths needs at least one convolution")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {self.kernel_size}")


class MotifCNN(nn.Module):
    """Convolutions with GELU, global max pooling over positions, a linear layer.

    The max over positions asks "does the pattern occur anywhere?" and forgets where.

    Args:
        config: a :class:`MotifCNNConfig`.

    Shape:
        x (B, T, 4) one-hot -> logits (B,).

    Example:
        >>> model = MotifCNN(MotifCNNConfig())
        >>> model(torch.eye(4)[torch.randint(0, 4, (3, 50))]).shape
        torch.Size([3])
    """

    def __init__(self, config: MotifCNNConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        layers: list[nn.Module] = []
        width_in = 4
        for width in c.widths:
            layers += [nn.Conv1d(width_in, width, c.kernel_size, padding=c.kernel_size // 2),
                       nn.GELU()]
            width_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B,)."""
        _check_dna(x)
        h = self.features(x.transpose(1, 2))  # (B, 4, T) -> (B, C, T)
        return self.head(h.amax(dim=-1))[:, 0]  # max over T: (B, C) -> (B,)


@dataclass
class MotifDeepCNNConfig:
    """Sizes of :class:`MotifDeepCNN`.

    The defaults reach 62 bases: enough for the two motifs of ``grammar_task(length=80)``,
    which span at most 60 bases from the first one's start to the second one's end, with
    10,637 parameters, about as many as ``MotifAttentionConfig(num_layers=1,
    positions=True)``'s model (11,137).
    """

    widths: tuple[int, ...] = (32, 22)  # output channels of each convolution
    kernel_sizes: tuple[int, ...] = (11, 13)  # odd, "same" padding; the first spans a motif
    pool: int = 4  # max pooling (window = stride) after each convolution but the last

    def __post_init__(self) -> None:
        if not self.widths or len(self.widths) != len(self.kernel_sizes):
            raise ValueError(f"widths {self.widths} and kernel_sizes {self.kernel_sizes} "
                             "need one entry per convolution, at least one")
        if any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd and positive, got {self.kernel_sizes}")
        if any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive, got {self.widths}")
        if self.pool < 1:
            raise ValueError(f"pool must be >= 1, got {self.pool}")

    @property
    def receptive_field(self) -> int:
        """How many consecutive bases one unit of the last convolution sees.

        Each convolution of width k adds (k - 1) steps of the current stride, each pooling
        (pool - 1) of them and multiplies the stride by ``pool``:
        ``11 + 3 + 12 * 4 = 62`` for the defaults.

        Example:
            >>> MotifDeepCNNConfig().receptive_field
            62
            >>> MotifDeepCNNConfig(widths=(8,), kernel_sizes=(11,)).receptive_field
            11
        """
        field, stride = self.kernel_sizes[0], 1
        for k in self.kernel_sizes[1:]:
            field += (self.pool - 1) * stride
            stride *= self.pool
            field += (k - 1) * stride
        return field


class MotifDeepCNN(nn.Module):
    """Convolutions with GELU and max pooling between them, global max pooling, a linear layer.

    The first convolution detects motifs; the pooling between convolutions widens what
    the next one sees, so that a unit of the last convolution covers
    ``config.receptive_field`` bases and can tell which of two motifs comes first when
    both fit in it. The global max pooling then asks "does that arrangement occur
    anywhere?".

    Args:
        config: a :class:`MotifDeepCNNConfig`.

    Shape:
        x (B, T, 4) one-hot -> logits (B,).

    Example:
        >>> model = MotifDeepCNN(MotifDeepCNNConfig())
        >>> model(torch.eye(4)[torch.randint(0, 4, (3, 80))]).shape
        torch.Size([3])
    """

    def __init__(self, config: MotifDeepCNNConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        layers: list[nn.Module] = []
        width_in = 4
        for i, (width, k) in enumerate(zip(c.widths, c.kernel_sizes)):
            if i > 0:  # ceil_mode: the last, partial window is pooled too
                layers.append(nn.MaxPool1d(c.pool, ceil_mode=True))
            layers += [nn.Conv1d(width_in, width, k, padding=k // 2), nn.GELU()]
            width_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B,)."""
        _check_dna(x)
        h = self.features(x.transpose(1, 2))  # (B, 4, T) -> (B, C, T / pool^(n-1))
        return self.head(h.amax(dim=-1))[:, 0]  # max over positions: (B, C) -> (B,)


def peak_in_mask(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Whether each row's largest weight falls on a position where ``mask`` is True.

    Args:
        weights: attention weights (B, T).
        mask: bool (B, T), e.g. the planted site's positions.

    Shape:
        weights (B, T), mask (B, T) -> (B,) bool.

    Example:
        >>> peak_in_mask(torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]),
        ...              torch.tensor([[False, True, True], [False, True, True]]))
        tensor([ True, False])
    """
    check_weights_and_positions(weights, mask, "mask")
    peak = weights.argmax(dim=-1)  # (B,)
    return mask.gather(1, peak[:, None])[:, 0]  # (B,)


def in_silico_mutagenesis(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The change in the logit for every single-base substitution of each sequence.

    Entry ``[b, t, c]`` is ``model(x_b with base t set to c) - model(x_b)``: 0 where ``c``
    is the base already there, negative where the change costs the model its evidence.
    All ``4 T`` variants of a sequence go through the model in one batch.

    Args:
        model: maps one-hot DNA (B, T, 4) to logits (B,); run in eval mode, no gradients.
        x: one-hot DNA (B, T, 4).

    Shape:
        x (B, T, 4) -> (B, T, 4).

    Example:
        >>> torch.manual_seed(0) and None
        >>> model = MotifCNN(MotifCNNConfig(widths=(4,), kernel_size=3))
        >>> x = torch.eye(4)[torch.tensor([[0, 1, 2, 3, 0]])]
        >>> effect = in_silico_mutagenesis(model, x)
        >>> effect.shape, bool((effect[x.bool()] == 0).all())
        (torch.Size([1, 5, 4]), True)
    """
    _check_dna(x)
    B, T, _ = x.shape
    variants = x[:, None, None].repeat(1, T, 4, 1, 1)  # (B, T, 4, T, 4)
    t = torch.arange(T)
    variants[:, t, :, t] = torch.eye(4, dtype=x.dtype)  # position t set to each base
    with torch.no_grad():
        model.eval()
        ref = model(x)  # (B,)
        out = model(variants.reshape(B * T * 4, T, 4)).reshape(B, T, 4)
    return out - ref[:, None, None]


def aligned_pwm(ids: torch.Tensor, centres: torch.Tensor, width: int, *, shift: int = 3,
                rounds: int = 3, pseudocount: float = 0.5) -> torch.Tensor:
    """A PWM from windows around given positions, aligned by strand and a small shift.

    Each window of ``width`` bases is centred on ``centres[b]`` (e.g. where the attention
    peaks). Sites may lie on either strand and the peak need not fall on the same base
    of every site, so each window is aligned like a tiny motif finder: starting from the
    first window (pass the most confident first), each round places every window at the
    shift in ``[-shift, shift]`` and on the strand (as read or reverse-complemented)
    where it scores best under the current PWM, then recounts the PWM from them.

    Args:
        ids: bases (B, T), ids into ``ALPHABET``.
        centres: (B,) positions to centre the windows on.
        width: bases per window.
        shift: how far a window may move to align.
        rounds: alignment rounds.
        pseudocount: added to each count of the PWM used for scoring.

    Shape:
        ids (B, T), centres (B,) -> (width, 4), rows summing to 1 (without pseudocounts).

    Example:
        >>> ids = torch.tensor([[0, 0, 1, 2, 3, 0, 0], [3, 3, 0, 1, 2, 3, 3]])
        >>> aligned_pwm(ids, torch.tensor([3, 3]), 3, shift=0).argmax(-1)
        tensor([1, 2, 3])
    """
    if ids.dim() != 2 or centres.shape != ids.shape[:1]:
        raise ValueError(f"need ids (B, T) and centres (B,), got {shape_str(ids)} and "
                         f"{shape_str(centres)}")
    if width < 1 or shift < 0:
        raise ValueError(f"need width >= 1 and shift >= 0, got {width} and {shift}")
    pad = width // 2 + shift
    padded = nn.functional.pad(ids.long(), (pad, pad), value=4)  # 4: beyond the ends
    span = torch.arange(-(width // 2) - shift, width - width // 2 + shift)  # (W + 2 s,)
    wide = padded.gather(1, centres.long()[:, None] + pad + span)  # (B, W + 2 s)
    strands = torch.stack([wide, torch.where(wide < 4, 3 - wide, 4).flip(-1)], 1)
    cands = strands.unfold(-1, width, 1).reshape(len(ids), -1, width)  # (B, K, W)
    onehot = nn.functional.one_hot(cands, 5)[..., :4].double()  # (B, K, W, 4)
    pick = onehot[0, shift]  # the first window, as read and unshifted
    for _ in range(rounds):
        p = pick.sum(0) if pick.dim() == 3 else pick
        logp = ((p + pseudocount) / (p + pseudocount).sum(-1, keepdim=True)).log()
        score = (onehot * logp).sum((-1, -2))  # (B, K)
        pick = onehot[torch.arange(len(ids)), score.argmax(-1)]  # (B, W, 4)
    counts = pick.sum(0)
    return counts / counts.sum(-1, keepdim=True).clamp_min(1)


def compare_pwms(found: torch.Tensor, planted: torch.Tensor) -> tuple[float, int, int]:
    """How well ``found`` matches ``planted``: the best Pearson r of their probabilities.

    ``planted`` (L, 4) slides along ``found`` (W, 4), W >= L, on both strands (as given and
    reverse-complemented, ``flip(0, 1)``); at each offset the L x 4 probabilities of both
    are correlated.

    Args:
        found: a PWM (W, 4), e.g. from :func:`aligned_pwm`.
        planted: a PWM (L, 4), L <= W.

    Returns:
        A tuple ``(r, offset, strand)`` -- the best correlation, the row of ``found``
        where ``planted`` starts, and +1 or -1 for the strand.

    Example:
        >>> p = torch.tensor([[.7, .1, .1, .1], [.1, .1, .1, .7], [.1, .7, .1, .1]])
        >>> wide = torch.cat([torch.full((2, 4), .25), p.flip(0, 1)])
        >>> r, offset, strand = compare_pwms(wide, p)
        >>> round(r, 4), offset, strand
        (1.0, 2, -1)
    """
    if found.dim() != 2 or planted.dim() != 2 or found.shape[1] != 4 or planted.shape[1] != 4:
        raise ValueError(f"need two PWMs (W, 4) and (L, 4), got {shape_str(found)} and "
                         f"{shape_str(planted)}")
    W, L = found.shape[0], planted.shape[0]
    if L > W:
        raise ValueError(f"planted ({L} rows) must be no longer than found ({W} rows)")
    best = (-2.0, 0, 1)
    for strand, p in ((1, planted), (-1, planted.flip(0, 1))):
        b = p.double().flatten() - p.double().mean()
        for offset in range(W - L + 1):
            a = found[offset:offset + L].double().flatten()
            a = a - a.mean()
            r = float(a @ b / (a.norm() * b.norm()).clamp_min(1e-12))
            if r > best[0]:
                best = (r, offset, strand)
    return best


def pwm_scan(x: torch.Tensor, pwm: torch.Tensor, background: torch.Tensor | None = None,
             pseudocount: float = 1e-3) -> torch.Tensor:
    r"""The classic motif scanner: every window's log-odds score, on both strands.

    .. math::

        s_{t} = \sum_{i=0}^{L-1} \log \frac{P(x_{t+i} \mid \text{position } i)}
                {P(x_{t+i} \mid \text{background})}

    The reverse strand uses the reverse-complemented PWM (``pwm.flip(0, 1)``).
    ``scores.amax((1, 2))`` is the score of a sequence's best site.

    Args:
        x: one-hot DNA (B, T, 4).
        pwm: (L, 4) probabilities, rows summing to 1.
        background: (4,) base probabilities; None: uniform.
        pseudocount: added to the PWM's probabilities (then renormalised) so that a base
            the sites never showed scores finitely.

    Shape:
        x (B, T, 4), pwm (L, 4) -> (B, T - L + 1, 2): forward, reverse strand.

    Example:
        >>> pwm = torch.tensor([[1., 0, 0, 0], [0, 0, 0, 1.]])      # "AT"
        >>> x = torch.eye(4)[torch.tensor([[2, 0, 3, 2]])]          # "GATG"
        >>> pwm_scan(x, pwm).argmax(1)       # both strands: AT is its own complement
        tensor([[1, 1]])
    """
    _check_dna(x)
    if pwm.dim() != 2 or pwm.shape[1] != 4 or pwm.shape[0] > x.shape[1]:
        raise ValueError(f"pwm must be (L, 4) with L <= T = {x.shape[1]}, got {shape_str(pwm)}")
    bg = torch.full((4,), 0.25) if background is None else background
    p = (pwm.double() + pseudocount) / (pwm.double() + pseudocount).sum(-1, keepdim=True)
    logodds = (p / bg.double()).log().to(x.dtype)  # (L, 4)
    filters = torch.stack([logodds, logodds.flip(0, 1)]).transpose(1, 2)  # (2, 4, L)
    return nn.functional.conv1d(x.transpose(1, 2), filters).transpose(1, 2)  # (B, T-L+1, 2)
