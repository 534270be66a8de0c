"""Attributing a prediction to the input tokens by other means than attention.

- :func:`gradient_x_input` -- gradient times input at the token embeddings;
- :func:`occlusion` -- how much a score falls when one token is replaced;
- :func:`rank_correlation` -- a way to compare any two attributions (or an
  attribution and attention weights).

:mod:`attnlab.analysis` re-exports these names, beside the ways of reading
attention itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from attnlab._validate import shape_str

__all__ = ["gradient_x_input", "occlusion", "rank_correlation"]


def gradient_x_input(
    model: nn.Module,
    inputs: torch.Tensor,
    embedding: nn.Module,
    score: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    r"""Gradient × input: each token's first-order share of a score.

    With :math:`e_t` the embedding of token t (the output of ``embedding``)
    and :math:`f` the score,

    .. math::

        a_t = \nabla_{e_t} f \cdot e_t ,

    the first-order estimate of how much f changes when :math:`e_t` is set to
    zero (Shrikumar et al. 2017; with the gradient alone, Simonyan et al.
    2014). The embedding's output is captured by a forward hook; the gradient
    is taken with ``torch.autograd.grad``, so the parameters' ``.grad``
    are not touched.

    Args:
        model: the model; ``model(inputs)`` must run ``embedding`` exactly once.
        inputs: what the model reads (token ids, images, ...), batch first.
        embedding: the submodule whose output (B, T, C) holds one vector per
            token, e.g. ``gpt.tok_embed`` or ``vit.patch_embed``.
        score: a function of the model's output that returns the (B,) numbers
            to explain, one per example (e.g. the logit of the predicted class).
            Examples must not interact (no batch norm in training mode).

    Shape:
        -> (B, T), one attribution per token of the embedding's output.

    Returns:
        A float tensor (B, T), detached.

    Raises:
        ValueError: an embedding that ran other than once, an embedding output
            that is not (B, T, C), or a score that is not (B,).

    Example:
        A linear "model" sums its token vectors; its score is their total,
        so each token's attribution is the sum of its own vector:

        >>> emb = nn.Embedding(3, 2)
        >>> with torch.no_grad():
        ...     _ = emb.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]))
        >>> model = nn.Sequential(emb)
        >>> gradient_x_input(model, torch.tensor([[0, 1, 2]]), emb,
        ...                  lambda out: out.sum(dim=(1, 2)))
        tensor([[ 3.0000, -1.0000,  3.5000]])
    """
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        captured.append(output)

    handle = embedding.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            out = model(inputs)
            if len(captured) != 1:
                raise ValueError(f"the embedding ran {len(captured)} times in one forward "
                                 "pass; it must run exactly once")
            e = captured[0]
            if e.dim() != 3:
                raise ValueError(f"the embedding's output must be (B, T, C), got {shape_str(e)}")
            f = score(out)
            if not isinstance(f, torch.Tensor) or f.shape != (e.shape[0],):
                got = shape_str(f) if isinstance(f, torch.Tensor) else type(f).__name__
                raise ValueError(f"score must return (B,) = ({e.shape[0]},) numbers, got {got}")
            (grad,) = torch.autograd.grad(f.sum(), e)  # (B, T, C)
    finally:
        handle.remove()
    return (grad * e).sum(dim=-1).detach()  # (B, T)


def occlusion(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    replacement: float | int | torch.Tensor,
    positions: Sequence[int] | None = None,
) -> torch.Tensor:
    """Occlusion: how much a score falls when one token is replaced.

    For each position t, token t of every example is replaced by
    ``replacement`` (a blank patch, a filler word) and the score recomputed:
    ``a_t = score(inputs) - score(inputs with token t replaced)``. A large
    positive value means the model needed that token (Zeiler & Fergus 2014
    slide a grey square over an image; in text this is leave-one-out). It
    measures the model's behaviour directly, at the price of one forward pass
    per position, on inputs that may lie off the training distribution.

    Args:
        score_fn: maps a batch of inputs to (B,) scores, e.g. the
            log-probability of a fixed class per example. It is called once on
            ``inputs`` and once on a batch of B * P occluded copies, ordered
            example by example.
        inputs: (B, T, ...) -- token ids (B, T), or patches (B, N, P*P).
        replacement: what a removed token becomes: a number, or a tensor that
            broadcasts to one token, ``inputs[:, t]``'s (...) shape.
        positions: the P positions to occlude (default: all T).

    Shape:
        inputs (B, T, ...) -> (B, P).

    Returns:
        A float tensor (B, P) of score drops, detached.

    Raises:
        ValueError: inputs with fewer than 2 dimensions, a position out of
            range, or a score_fn that does not return (B,) then (B * P,).

    Example:
        A score that counts the ones in a sequence; replacing a token by 0
        lowers it by 1 exactly where there was a 1:

        >>> ids = torch.tensor([[1, 0, 1, 2]])
        >>> occlusion(lambda x: (x == 1).sum(-1).float(), ids, 0)
        tensor([[1., 0., 1., 0.]])
    """
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2:
        got = shape_str(inputs) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be (B, T, ...), got {got}")
    B, T = inputs.shape[:2]
    pos = list(range(T)) if positions is None else [int(p) for p in positions]
    if any(not 0 <= p < T for p in pos) or not pos:
        raise ValueError(f"positions must be a non-empty list of positions in 0..{T - 1}, "
                         f"got {positions!r}")
    P = len(pos)
    with torch.no_grad():
        base = score_fn(inputs)
        if not isinstance(base, torch.Tensor) or base.shape != (B,):
            raise ValueError(f"score_fn must return (B,) = ({B},) scores")
        copies = inputs.unsqueeze(1).repeat(1, P, *([1] * (inputs.dim() - 1)))  # (B, P, T, ...)
        index = torch.arange(P)
        copies[:, index, torch.tensor(pos)] = torch.as_tensor(
            replacement, dtype=inputs.dtype, device=inputs.device)
        occluded = score_fn(copies.reshape(B * P, *inputs.shape[1:]))
        if not isinstance(occluded, torch.Tensor) or occluded.shape != (B * P,):
            raise ValueError(f"score_fn must return (B * P,) = ({B * P},) scores on the "
                             "occluded copies")
    return (base[:, None] - occluded.reshape(B, P)).float()  # (B, P)


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Spearman's rank correlation between two attributions, row by row.

    Each row is replaced by its ranks (tied values share their average rank)
    and Pearson's correlation of the ranks is returned: 1 when the two orders
    agree exactly, -1 when one reverses the other, near 0 when unrelated.
    Jain & Wallace (2019) compare attention with other importance measures
    this way (with Kendall's tau).

    Args:
        a: scores (..., N).
        b: scores (..., N), the same shape.

    Shape:
        (..., N), (..., N) -> (...).

    Returns:
        A float64 tensor; a row in which either input is constant has no
        ranking, and gets NaN.

    Raises:
        ValueError: shapes that differ, or N < 2.

    Example:
        >>> a, b = torch.tensor([0.1, 0.5, 0.2]), torch.tensor([1.0, 9.0, 3.0])
        >>> round(float(rank_correlation(a, b)), 6)       # the same order: 1
        1.0
        >>> up, down = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([4.0, 3.0, 2.0, 1.0])
        >>> round(float(rank_correlation(up, down)), 6)   # the reverse order: -1
        -1.0
    """
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.shape != b.shape:
        got = tuple(shape_str(x) if isinstance(x, torch.Tensor) else type(x).__name__
                    for x in (a, b))
        raise ValueError(f"a and b must be tensors of one shape (..., N), got {got[0]} and "
                         f"{got[1]}")
    if a.dim() == 0 or a.shape[-1] < 2:
        raise ValueError(f"a rank correlation needs N >= 2 scores per row, got {shape_str(a)}")

    def ranks(x: torch.Tensor) -> torch.Tensor:
        x = x.double()
        below = (x[..., None, :] < x[..., :, None]).sum(-1)  # (..., N): how many are smaller
        equal = (x[..., None, :] == x[..., :, None]).sum(-1)  # (..., N): itself included
        return below.double() + (equal.double() + 1) / 2  # average 1-based rank

    ra, rb = ranks(a), ranks(b)
    ra = ra - ra.mean(-1, keepdim=True)
    rb = rb - rb.mean(-1, keepdim=True)
    denom = ra.norm(dim=-1) * rb.norm(dim=-1)
    nan = torch.full_like(denom, float("nan"))
    return torch.where(denom > 0, (ra * rb).sum(-1) / torch.where(denom > 0, denom, 1.0), nan)
