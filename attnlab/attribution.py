"""Attributing a prediction to the input tokens, or a loss to the heads, by gradients.

- :func:`gradient_x_input` -- gradient times input at the token embeddings;
- :func:`integrated_gradients` -- the gradient integrated along a straight
  path from a baseline input (Sundararajan et al. 2017);
- :func:`occlusion` -- how much a score falls when one token is replaced;
- :func:`head_gradient_importance` -- Michel et al.'s (2019) proxy for a
  head's importance: the expected absolute gradient of the loss with respect to its gate;
- :func:`rank_correlation` -- a way to compare any two attributions (or an
  attribution and attention weights, or two rankings of the heads).

:mod:`attnlab.analysis` re-exports these names, beside the ways of reading
attention itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from attnlab._validate import shape_str
from attnlab.layers import MultiHeadAttention

__all__ = [
    "gradient_x_input",
    "integrated_gradients",
    "occlusion",
    "head_gradient_importance",
    "rank_correlation",
]


def _layers_and_heads(model: nn.Module) -> tuple[list[MultiHeadAttention], int]:
    """The model's attention layers in module order and their one head count H."""
    layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no MultiHeadAttention layer")
    counts = {layer.num_heads for layer in layers}
    if len(counts) != 1:
        raise ValueError(f"the attention layers have different head counts {sorted(counts)}: "
                         "importance (L, H) needs one H")
    return layers, counts.pop()


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


def integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    embedding: nn.Module,
    score: Callable[[torch.Tensor], torch.Tensor],
    *,
    baseline: torch.Tensor | None = None,
    steps: int = 32,
    return_delta: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Integrated gradients: each token's share of ``f(x) - f(x')``, along a path.

    With :math:`e_t` the embedding of token t, :math:`e'_t` a baseline (an
    input that means "nothing": zeros, or the embeddings of blanks) and
    :math:`f` the score, Sundararajan et al. (2017) integrate the gradient
    along the straight path from the baseline to the input:

    .. math::

        a_t = (e_t - e'_t) \cdot \int_0^1
              \nabla_{e_t} f\big(e' + \alpha (e - e')\big)\, d\alpha
            \approx (e_t - e'_t) \cdot \frac1m \sum_{k=1}^{m}
              \nabla_{e_t} f\big(e' + \tfrac{k - 1/2}{m} (e - e')\big) .

    The integral is a midpoint sum over ``steps`` = m points (one forward and
    backward pass each). By the gradient theorem the attributions are
    *complete*: :math:`\sum_t a_t = f(e) - f(e')` up to the error of the sum,
    which ``return_delta`` reports. Gradient × input is the case m = 1 with a
    zero baseline only when f is linear; in general it uses the gradient at the
    input alone, which a saturated softmax can make nearly zero.

    The embedding's output is replaced by a forward hook, so ``model`` runs
    unchanged; gradients are taken with ``torch.autograd.grad`` and the
    parameters' ``.grad`` are not touched.

    Args:
        model: the model; ``model(inputs)`` must run ``embedding`` exactly once.
        inputs: what the model reads (token ids, images, ...), batch first.
        embedding: the submodule whose output (B, T, C) holds one vector per
            token, e.g. ``gpt.tok_embed``.
        score: a function of the model's output that returns the (B,) numbers
            to explain, one per example. Examples must not interact.
        baseline: e', a tensor that broadcasts to the embedding's output
            (B, T, C), e.g. (C,) or ``embedding(blank_ids)``; None: zeros.
        steps: m >= 1, the number of points of the sum.
        return_delta: also return the completeness gap per example.

    Shape:
        -> (B, T), one attribution per token of the embedding's output; with
        ``return_delta``, also (B,): ``a.sum(-1) - (f(x) - f(x'))``.

    Returns:
        A float tensor (B, T), detached; or ``(attributions, delta)``.

    Raises:
        ValueError: an embedding that ran other than once per pass, an output
            that is not (B, T, C), a baseline that does not broadcast to it,
            a score that is not (B,), or ``steps`` < 1.

    Example:
        For a score quadratic in the embeddings, :math:`f = \sum e^2`, the
        path integral from a zero baseline is :math:`e_t \cdot e_t`, and the
        attributions add up to f exactly:

        >>> emb = nn.Embedding(3, 2)
        >>> with torch.no_grad():
        ...     _ = emb.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]))
        >>> model = nn.Sequential(emb)
        >>> a, delta = integrated_gradients(
        ...     model, torch.tensor([[0, 1, 2]]), emb,
        ...     lambda out: (out ** 2).sum(dim=(1, 2)), steps=4, return_delta=True)
        >>> a, delta.abs() < 1e-5
        (tensor([[5.0000, 1.0000, 9.2500]]), tensor([True]))
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    state: dict[str, torch.Tensor] = {}
    calls: list[int] = []

    def hook(_module: nn.Module, _args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        calls.append(1)
        if "path" in state:
            return state["path"]
        state["e"] = output.detach()
        return None

    def scored(out: torch.Tensor, B: int) -> torch.Tensor:
        f = score(out)
        if not isinstance(f, torch.Tensor) or f.shape != (B,):
            got = shape_str(f) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(f"score must return (B,) = ({B},) numbers, got {got}")
        return f

    def run() -> torch.Tensor:
        calls.clear()
        out = model(inputs)
        if len(calls) != 1:
            raise ValueError(f"the embedding ran {len(calls)} times in one forward pass; "
                             "it must run exactly once")
        return out

    handle = embedding.register_forward_hook(hook)
    try:
        with torch.no_grad():
            out = run()
            e = state["e"]
            if e.dim() != 3:
                raise ValueError(f"the embedding's output must be (B, T, C), got {shape_str(e)}")
            f_x = scored(out, e.shape[0])
            if baseline is None:
                base = torch.zeros_like(e)
            else:
                try:
                    base = torch.broadcast_to(baseline.to(e.device, e.dtype), e.shape)
                except (RuntimeError, AttributeError) as err:
                    got = (shape_str(baseline) if isinstance(baseline, torch.Tensor)
                           else type(baseline).__name__)
                    raise ValueError(f"baseline {got} does not broadcast to the embedding's "
                                     f"output {shape_str(e)}") from err
            state["path"] = base
            f_base = scored(run(), e.shape[0])
        total = torch.zeros_like(e)  # (B, T, C): the sum of the gradients
        with torch.enable_grad():
            for k in range(steps):
                alpha = (k + 0.5) / steps
                point = (base + alpha * (e - base)).requires_grad_(True)  # (B, T, C)
                state["path"] = point
                f = scored(run(), e.shape[0])
                (grad,) = torch.autograd.grad(f.sum(), point)  # (B, T, C)
                total += grad
    finally:
        handle.remove()
    attributions = ((e - base) * total / steps).sum(dim=-1).detach()  # (B, T)
    if return_delta:
        return attributions, (attributions.sum(-1) - (f_x - f_base)).detach()
    return attributions


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


def head_gradient_importance(
    model: nn.Module,
    loss: Callable[[nn.Module], torch.Tensor],
    *,
    normalize: bool = False,
) -> torch.Tensor:
    r"""Michel et al.'s head importance: the mean absolute gradient of the loss by a head's gate.

    Michel et al. (2019) put a gate :math:`\xi_h` on every head,
    :math:`\operatorname{out} = \sum_h \xi_h \operatorname{head}_h W^O_h
    + b^O`, and estimate what masking head h costs, without masking it, by the
    expected size of the loss's derivative at :math:`\xi = 1`:

    .. math::

        I_h = \mathbb{E}_x \left| \frac{\partial L(x)}{\partial \xi_h} \right| ,

    a first-order Taylor estimate of :math:`|L(x; \xi_h = 0) - L(x)|`. One
    backward pass gives every head of every layer, where ablation needs one
    evaluation per head. Each example gets its own gates (a (B, H) tensor
    of ones per layer, applied by a forward pre-hook on ``out_proj`` like
    :func:`attnlab.analysis.mask_heads`), so the gradient of the summed loss
    with respect to gate (b, h) is example b's own derivative and the absolute
    value is taken per example, as the expectation asks. A layer called more
    than once per pass adds the derivatives of its calls.

    Args:
        model: a module whose :class:`~attnlab.layers.MultiHeadAttention`
            layers (in module order, as :func:`attnlab.analysis.attention_layers`
            lists them) all have the same number of heads H.
        loss: a function of the model that runs it on a batch of B examples
            and returns their (B,) losses, e.g.
            ``lambda m: F.cross_entropy(m(x), y, reduction="none")``.
        normalize: divide each layer's importances by their l2 norm, as
            Michel et al. do before they compare heads across layers.

    Shape:
        -> (L, H).

    Returns:
        A float64 tensor (L, H) of mean absolute derivatives; the parameters'
        ``.grad`` are not touched.

    Raises:
        ValueError: a model without attention layers, layers with different H,
            a layer that did not run, a merged-heads input without a batch
            axis, or a loss that is not (B,).

    Example:
        One layer, and a loss linear in its output: the derivative with respect
        to gate h is exactly head h's term of the sum, the part that masking
        it removes.

        >>> torch.manual_seed(0) and None
        >>> mha = MultiHeadAttention(4, num_heads=2, bias=False)
        >>> x = torch.randn(5, 3, 4)
        >>> proxy = head_gradient_importance(mha, lambda m: m(x).sum(dim=(1, 2)))
        >>> from attnlab.analysis import mask_heads
        >>> with torch.no_grad(), mask_heads(mha, [(0, 1)]):
        ...     without_1 = mha(x).sum(dim=(1, 2))
        >>> torch.allclose(proxy[0, 1], (mha(x).sum(dim=(1, 2)) - without_1).abs().mean().double())
        True
    """
    layers, H = _layers_and_heads(model)
    gates: list[list[torch.Tensor]] = [[] for _ in layers]

    def make_hook(index: int, layer: MultiHeadAttention):  # noqa: ANN202 - a hook
        D = layer.head_dim

        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            merged = args[0]  # (B, ..., C): the heads side by side
            if merged.dim() < 2:
                raise ValueError(f"the heads' output {shape_str(merged)} has no batch axis")
            B = merged.shape[0]
            gate = torch.ones(B, H, dtype=merged.dtype, device=merged.device,
                              requires_grad=True)  # (B, H): xi = 1
            gates[index].append(gate)
            scale = gate.repeat_interleave(D, dim=1)  # (B, C)
            scale = scale.view(B, *([1] * (merged.dim() - 2)), H * D)  # (B, 1, ..., C)
            return (merged * scale,) + tuple(args[1:])

        return hook

    handles = [layer.out_proj.register_forward_pre_hook(make_hook(i, layer))
               for i, layer in enumerate(layers)]
    try:
        with torch.enable_grad():
            losses = loss(model)
            missing = [i for i, g in enumerate(gates) if not g]
            if missing:
                raise ValueError(f"attention layers {missing} did not run in loss(model)")
            B = gates[0][0].shape[0]
            if not isinstance(losses, torch.Tensor) or losses.shape != (B,):
                got = shape_str(losses) if isinstance(losses, torch.Tensor) else \
                    type(losses).__name__
                raise ValueError(f"loss must return the (B,) = ({B},) losses of the "
                                 f"examples, got {got}")
            flat = [g for calls in gates for g in calls]
            if any(g.shape[0] != B for g in flat):
                raise ValueError("every attention call must see the loss's B examples")
            grads = torch.autograd.grad(losses.sum(), flat, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    per_example = torch.zeros(len(layers), B, H, dtype=torch.float64)  # (L, B, H)
    owners = [index for index, calls in enumerate(gates) for _ in calls]
    for index, grad in zip(owners, grads):
        if grad is not None:  # None: the loss does not depend on that call
            per_example[index] += grad.double()  # (B, H)
    importance = per_example.abs().mean(dim=1)  # (L, H)
    if normalize:
        norms = importance.norm(dim=1, keepdim=True)  # (L, 1)
        importance = importance / torch.where(norms > 0, norms, torch.ones_like(norms))
    return importance


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
