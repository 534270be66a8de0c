r"""Attention pooling as kernel regression: the Nadaraya–Watson estimator.

Given keys :math:`k_j` with values :math:`v_j`, a query :math:`q` is answered
with a weighted average of the values, the weights coming from a kernel of the
distance between the query and each key (Nadaraya, 1964; Watson, 1964):

.. math::

    \hat f(q) = \sum_{j=1}^{S} \alpha_j(q)\, v_j, \qquad
    \alpha_j(q) = \operatorname{softmax}_j(s_j), \qquad
    s_j = -\frac{\lVert q - k_j \rVert^2}{2 h^2} .

With the Gaussian kernel the normalised kernel weights are exactly a softmax
of these scores, so the estimator is attention whose scores are fixed by the
geometry of the keys; the width :math:`h` plays the role of a temperature
(:math:`\tau = 2h^2` for the scores :math:`-\lVert q - k_j \rVert^2`).

Shapes follow :mod:`attnlab`: queries (..., T, D), keys (..., S, D), values
(..., S, Dv), scores and weights (..., T, S). For 1-D data D = 1. Masks are
bool with ``True`` = *may attend*.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnlab._validate import check_qk, check_qkv, check_tensor, shape_str
from attnlab.functional import masked_softmax, softmax
from attnlab.masks import leave_one_out_mask  # re-exported: it lived here first

__all__ = [
    "gaussian_kernel_scores",
    "nadaraya_watson",
    "leave_one_out_mask",
    "NadarayaWatsonPooling",
]


def _check_width(width: float | torch.Tensor) -> None:
    if isinstance(width, torch.Tensor):
        if not width.is_floating_point():
            raise ValueError(f"width must be a floating-point tensor, got dtype {width.dtype}")
        if not bool(torch.isfinite(width).all()) or bool((width <= 0).any()):
            raise ValueError(
                f"width must be positive and finite, got a tensor of shape {shape_str(width)} "
                f"with values in [{width.min().item():.4g}, {width.max().item():.4g}]"
            )
        return
    if isinstance(width, bool) or not isinstance(width, (int, float)):
        raise ValueError(f"width must be a positive number or tensor, got {width!r}")
    if not math.isfinite(width) or width <= 0:
        raise ValueError(f"width must be a positive finite number, got {width!r}")


def gaussian_kernel_scores(
    q: torch.Tensor, k: torch.Tensor, width: float | torch.Tensor
) -> torch.Tensor:
    r"""Gaussian-kernel scores :math:`s_{ij} = -\lVert q_i - k_j \rVert^2 / (2 h^2)`.

    The softmax of these scores over the keys is the normalised Gaussian
    kernel :math:`e^{s_{ij}} / \sum_l e^{s_{il}}`. The squared distance is
    computed from the differences, not expanded as
    :math:`\lVert q\rVert^2 - 2 q \cdot k + \lVert k\rVert^2`, so a key equal to
    the query scores exactly 0 (the largest possible score) and nothing is lost
    to cancellation. This costs (..., T, S, D) memory, fine for the small D of
    kernel regression.

    Args:
        q: queries (..., T, D), floating point.
        k: keys (..., S, D), the same dtype and leading dims as ``q``.
        width: the kernel width :math:`h > 0`: a number, or a tensor that
            broadcasts against the scores (e.g. a 0-dim learnable parameter).

    Shape:
        (..., T, D), (..., S, D) -> (..., T, S).

    Returns:
        The scores, all :math:`\le 0`; differentiable in ``q``, ``k`` and a
        tensor ``width``.

    Example:
        >>> q = torch.tensor([[0.0], [1.0]])                # (T=2, D=1)
        >>> k = torch.tensor([[0.0], [1.0], [3.0]])         # (S=3, D=1)
        >>> gaussian_kernel_scores(q, k, width=1.0)
        tensor([[ 0.0000, -0.5000, -4.5000],
                [-0.5000,  0.0000, -2.0000]])
    """
    check_qk(q, k)
    _check_width(width)
    diff = q.unsqueeze(-2) - k.unsqueeze(-3)  # (..., T, 1, D) - (..., 1, S, D) -> (..., T, S, D)
    sq_dist = diff.pow(2).sum(dim=-1)  # (..., T, S)
    return 0.0 - sq_dist / (2 * width**2)  # (..., T, S); 0.0 - x: no -0.0 on the diagonal


def nadaraya_watson(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    width: float | torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    need_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Nadaraya–Watson kernel regression with a Gaussian kernel: attention pooling.

    .. math::

        \operatorname{out}_i = \sum_j \alpha_{ij} v_j, \qquad
        \alpha_{ij} = \operatorname{softmax}_j\!\left(
            -\frac{\lVert q_i - k_j \rVert^2}{2 h^2}\right) \text{ over allowed } j

    Small widths approach a hard 1-nearest-neighbour lookup (the weights become
    an arg-max); large widths approach the plain average of the values (every
    weight :math:`1/S`). A query that may attend no key gets zero weights and a
    zero output, as in :func:`attnlab.functional.attention`.

    Args:
        q: queries (..., T, D), e.g. test inputs.
        k: keys (..., S, D), e.g. training inputs.
        v: values (..., S, Dv), e.g. training targets.
        width: kernel width :math:`h > 0` (a number or a broadcastable tensor).
        mask: optional bool mask, ``True`` = may attend; (T, S) or one dim per
            score dim, e.g. :func:`leave_one_out_mask`.
        need_weights: also return the weights.

    Shape:
        q (..., T, D), k (..., S, D), v (..., S, Dv) -> out (..., T, Dv);
        with ``need_weights`` also weights (..., T, S).

    Returns:
        ``out``, or ``(out, weights)`` when ``need_weights`` is True.

    Example:
        >>> k = torch.tensor([[0.0], [1.0], [2.0]])         # (S=3, D=1)
        >>> v = torch.tensor([[0.0], [10.0], [20.0]])       # (S=3, Dv=1)
        >>> q = torch.tensor([[1.0]])                       # (T=1, D=1)
        >>> nadaraya_watson(q, k, v, width=0.01)            # narrow: nearest key's value
        tensor([[10.]])
        >>> nadaraya_watson(q, k, v, width=1e3)             # wide: the mean of the values
        tensor([[10.]])
        >>> out, w = nadaraya_watson(q, k, v, width=1.0, need_weights=True)
        >>> w
        tensor([[0.2741, 0.4519, 0.2741]])
    """
    check_qkv(q, k, v)
    scores = gaussian_kernel_scores(q, k, width)  # (..., T, S)
    weights = softmax(scores) if mask is None else masked_softmax(scores, mask)  # (..., T, S)
    out = weights @ v  # (..., T, S) @ (..., S, Dv) -> (..., T, Dv)
    return (out, weights) if need_weights else out


class NadarayaWatsonPooling(nn.Module):
    r"""Gaussian-kernel attention pooling with a learnable width.

    The width is stored as its logarithm, :math:`h = e^{\log h}`, so gradient
    descent can move it freely without ever making it zero or negative, and a
    step changes it by a *factor*, which suits a scale parameter. This is the
    simplest learned attention: a single parameter that decides how sharp the
    lookup is.

    Fitting the width on the training points themselves needs
    :func:`leave_one_out_mask`: if a point may attend to itself, the training
    loss falls towards 0 as :math:`h \to 0` (each point returns its own target)
    and the width collapses.

    Args:
        width: the initial width :math:`h > 0`.
        learnable: make the log-width an ``nn.Parameter`` (else a buffer).
        device: where to create the parameter.
        dtype: its floating-point dtype (default: torch's default dtype).

    Shape:
        q (..., T, D), k (..., S, D), v (..., S, Dv), mask broadcastable to
        (..., T, S) -> out (..., T, Dv); with ``need_weights`` also weights
        (..., T, S).

    Example:
        >>> pool = NadarayaWatsonPooling(width=0.5, dtype=torch.float64)
        >>> x = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None]  # (S=5, D=1)
        >>> out = pool(x, x, 2 * x, mask=leave_one_out_mask(5))        # (T=5, Dv=1)
        >>> out.shape, round(pool.width.item(), 4)
        (torch.Size([5, 1]), 0.5)
        >>> out.sum().backward()
        >>> pool.log_width.grad is not None
        True
    """

    def __init__(
        self,
        width: float = 1.0,
        *,
        learnable: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_width(width)
        log_width = torch.tensor(math.log(width), device=device, dtype=dtype)
        if learnable:
            self.log_width = nn.Parameter(log_width)
        else:
            self.register_buffer("log_width", log_width)

    @property
    def width(self) -> torch.Tensor:
        """The kernel width :math:`h = e^{\\log h}` (a 0-dim tensor, differentiable)."""
        return self.log_width.exp()

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        need_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Pool the values ``v`` for the queries ``q``; see :func:`nadaraya_watson`."""
        check_tensor(q, "q")
        if q.is_floating_point() and q.dtype != self.log_width.dtype:
            raise ValueError(
                f"q has dtype {q.dtype} but the width is {self.log_width.dtype}; "
                f"convert one of them (e.g. pool.to({q.dtype}))"
            )
        return nadaraya_watson(q, k, v, self.width, mask, need_weights=need_weights)

    def extra_repr(self) -> str:
        return f"width={self.width.item():.4g}"
