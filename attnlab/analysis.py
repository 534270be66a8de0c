"""Reading trained attention: where information flows through a Transformer.

- :func:`attention_rollout` -- attention rollout (Abnar & Zuidema 2020):
  the attention of every layer, with the residual connection counted as
  attention to oneself, multiplied through the layers;
- :func:`attention_entropy` -- how sharp or diffuse each query's attention is;
- :func:`attention_layers`, :func:`record_attention` -- find a model's
  attention layers, and record their weights when the model does not return them;
- :func:`mask_heads`, :func:`head_importance`, :func:`pruning_curve`,
  :func:`head_order`, :func:`prunable_heads` -- switch heads off and measure
  what the model loses (Michel et al. 2019);
- :func:`head_gradient_importance` -- Michel et al.'s gradient proxy for a
  head's importance, one backward pass for every head;
- :func:`gradient_x_input`, :func:`integrated_gradients`, :func:`occlusion`,
  :func:`rank_correlation` -- attributions of a prediction to the input tokens
  other than attention, and a way to compare any two (defined in
  :mod:`attnlab.attribution`, re-exported here).

Weights are laid out as :class:`attnlab.layers.MultiHeadAttention` returns
them, (B, H, T, S), with self-attention's S = T; a stack of L layers is
(B, L, H, T, T), as :class:`attnlab.models.vit.ViT` returns it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from attnlab._validate import shape_str
from attnlab.attribution import (
    _layers_and_heads,
    gradient_x_input,
    head_gradient_importance,
    integrated_gradients,
    occlusion,
    rank_correlation,
)
from attnlab.layers import MultiHeadAttention

__all__ = [
    "attention_rollout",
    "attention_entropy",
    "attention_layers",
    "record_attention",
    "mask_heads",
    "head_importance",
    "pruning_curve",
    "head_order",
    "prunable_heads",
    "head_gradient_importance",
    "gradient_x_input",
    "integrated_gradients",
    "occlusion",
    "rank_correlation",
]

HeadFusion = Literal["mean", "max", "min"]


def _stack_layers(weights: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(weights, torch.Tensor):
        return weights
    if not isinstance(weights, (list, tuple)) or len(weights) == 0:
        raise ValueError("weights must be a tensor (..., L, H, T, T) or a non-empty sequence "
                         "of L tensors (..., H, T, T)")
    shapes = {tuple(w.shape) for w in weights}
    if len(shapes) != 1:
        raise ValueError(f"the layers' weights must share one shape (..., H, T, T), got "
                         f"{sorted(shapes)}")
    return torch.stack(list(weights), dim=-4)  # (..., L, H, T, T)


def attention_rollout(
    weights: torch.Tensor | Sequence[torch.Tensor],
    *,
    residual: float = 0.5,
    head_fusion: HeadFusion = "mean",
) -> torch.Tensor:
    r"""Attention rollout: how much each input token flows into each final token.

    Abnar & Zuidema (2020) treat each layer's attention as the share of a
    token's next representation that comes from each token. The residual
    connection carries a token's own representation forward too, so the heads'
    weights :math:`A_\ell` (fused by their mean) are mixed with the identity and
    the rows renormalised; the layers are then chained by matrix products:

    .. math::

        \tilde A_\ell = \operatorname{rownorm}\big(r\, I + (1 - r)\, A_\ell\big),
        \qquad
        R = \tilde A_L\, \tilde A_{L-1} \cdots \tilde A_1 .

    Row i of R says how much of final token i comes from each input token
    (each row sums to 1). With :math:`r = 0.5` this is the paper's
    :math:`0.5\,W_{att} + 0.5\,I`. For a ViT, ``R[..., 0, 1:]`` is the class
    token's rollout over the patches.

    The products assume that information mixes linearly, as the weights say,
    and ignore the values, the feed-forward layers and the norms: a rollout
    map is a summary of the attention, not a measured attribution.

    Args:
        weights: the attention weights of L self-attention layers, first layer
            first: a tensor (..., L, H, T, T), or a sequence of L tensors
            (..., H, T, T). Each row should sum to 1 (or 0 for a query that
            attended nothing).
        residual: r, the weight of the identity, in [0, 1]; 0 multiplies the
            raw attention, 1 returns the identity.
        head_fusion: how the H heads of a layer are combined: ``"mean"`` (the
            paper's), ``"max"`` or ``"min"``.

    Shape:
        (..., L, H, T, T) -> (..., T, T).

    Returns:
        The rollout R, a new float tensor; ``weights`` is not modified.

    Raises:
        ValueError: weights that are not (..., L, H, T, T) with square T x T
            maps, negative or non-finite weights, a ``residual`` outside
            [0, 1], or an unknown ``head_fusion``.

    Example:
        Two tokens; in each of two layers, both attend only to token 0:

        >>> one_layer = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])   # (H=1, T=2, T=2)
        >>> attention_rollout(torch.stack([one_layer, one_layer]))  # (L=2, H, T, T)
        tensor([[1.0000, 0.0000],
                [0.7500, 0.2500]])

        Token 1 keeps a quarter of itself: half survives each residual.
    """
    w = _stack_layers(weights)
    if not isinstance(w, torch.Tensor) or w.dim() < 4 or w.shape[-1] != w.shape[-2]:
        got = shape_str(w) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"weights must be (..., L, H, T, T) with square (T, T) maps of "
                         f"self-attention, got {got}")
    if not w.is_floating_point():
        raise ValueError(f"weights must be floating point, got dtype {w.dtype}")
    if w.numel() == 0:
        raise ValueError(f"weights {shape_str(w)} are empty")
    if not torch.isfinite(w).all() or bool((w < 0).any()):
        raise ValueError("weights must be finite and non-negative (attention probabilities)")
    if isinstance(residual, bool) or not 0.0 <= float(residual) <= 1.0:
        raise ValueError(f"residual must lie in [0, 1], got {residual!r}")
    if head_fusion == "mean":
        fused = w.mean(dim=-3)  # (..., L, T, T)
    elif head_fusion == "max":
        fused = w.amax(dim=-3)
    elif head_fusion == "min":
        fused = w.amin(dim=-3)
    else:
        raise ValueError(f"head_fusion must be 'mean', 'max' or 'min', got {head_fusion!r}")
    T = w.shape[-1]
    eye = torch.eye(T, dtype=w.dtype, device=w.device)
    mixed = residual * eye + (1.0 - residual) * fused  # (..., L, T, T)
    totals = mixed.sum(dim=-1, keepdim=True)  # (..., L, T, 1)
    mixed = mixed / torch.where(totals > 0, totals, torch.ones_like(totals))
    rollout = mixed[..., 0, :, :]  # (..., T, T): the first layer
    for layer in range(1, w.shape[-4]):
        rollout = mixed[..., layer, :, :] @ rollout  # (..., T, T) @ (..., T, T) -> (..., T, T)
    return rollout


# ------------------------------------------------------------------ reading the heads


def attention_entropy(weights: torch.Tensor, *, base: float | None = None) -> torch.Tensor:
    r"""The entropy of each row of attention weights: how spread out a query's attention is.

    .. math::

        H_t = -\sum_{s} \alpha_{ts} \log \alpha_{ts}, \qquad 0 \log 0 = 0 .

    A query that puts all its weight on one key has entropy 0; one that spreads
    it evenly over S keys has the largest possible entropy, :math:`\log S`.
    Averaged over queries and examples, it separates sharp heads from diffuse
    ones. Keys with weight 0 (masked ones) contribute 0, so a causal row t has
    at most :math:`\log(t + 1)`; a row that attended nothing gets 0.

    Args:
        weights: attention weights (..., T, S), rows summing to 1 (or 0).
        base: the logarithm's base: None for nats (e), 2 for bits.

    Shape:
        (..., T, S) -> (..., T): one entropy per query.

    Returns:
        A new float tensor of entropies, ``weights`` is not modified.

    Raises:
        ValueError: weights with fewer than 2 dimensions, not floating point,
            negative or not finite, or a ``base`` that is not > 0 and != 1.

    Example:
        >>> w = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])   # (T=2, S=4)
        >>> attention_entropy(w, base=2)          # one-hot: 0 bits; uniform over 4: 2 bits
        tensor([0., 2.])
    """
    if not isinstance(weights, torch.Tensor) or weights.dim() < 2:
        got = shape_str(weights) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights must be (..., T, S) attention weights, got {got}")
    if not weights.is_floating_point():
        raise ValueError(f"weights must be floating point, got dtype {weights.dtype}")
    if not torch.isfinite(weights).all() or bool((weights < 0).any()):
        raise ValueError("weights must be finite and non-negative (attention probabilities)")
    if base is not None and (isinstance(base, bool) or not float(base) > 0 or float(base) == 1):
        raise ValueError(f"base must be None (nats) or a number > 0 other than 1, got {base!r}")
    logs = torch.log(torch.where(weights > 0, weights, torch.ones_like(weights)))  # 0 log 0 = 0
    entropy = -(weights * logs).sum(dim=-1) + 0.0  # (..., T); + 0.0 turns -0.0 into 0.0
    if base is not None:
        entropy = entropy / math.log(float(base))
    return entropy


def attention_layers(model: nn.Module) -> list[MultiHeadAttention]:
    """The :class:`~attnlab.layers.MultiHeadAttention` modules of a model, in module order.

    Layer ``l`` of :func:`mask_heads` and :func:`head_importance` is entry ``l``
    of this list: for :class:`~attnlab.models.vit.ViT` and
    :class:`~attnlab.models.GPT`, block ``l``'s self-attention.

    Args:
        model: any module (a MultiHeadAttention itself counts as one layer).

    Returns:
        The list of attention modules (empty when there is none).

    Example:
        >>> from attnlab.models.vit import ViT, ViTConfig
        >>> [type(m).__name__ for m in attention_layers(ViT(ViTConfig(depth=3)))]
        ['MultiHeadAttention', 'MultiHeadAttention', 'MultiHeadAttention']
    """
    return [m for m in model.modules() if isinstance(m, MultiHeadAttention)]


def _head_list(model: nn.Module, heads: Iterable[tuple[int, int]]
               ) -> tuple[list[MultiHeadAttention], dict[int, list[int]]]:
    layers = attention_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no MultiHeadAttention layer")
    chosen: dict[int, list[int]] = {}
    for pair in heads:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"heads must be (layer, head) pairs, got {pair!r}")
        layer, head = (int(v) for v in pair)
        if not 0 <= layer < len(layers):
            raise ValueError(f"layer {layer} out of range: the model has {len(layers)} "
                             "attention layers")
        if not 0 <= head < layers[layer].num_heads:
            raise ValueError(f"head {head} out of range: layer {layer} has "
                             f"{layers[layer].num_heads} heads")
        chosen.setdefault(layer, []).append(head)
    return layers, chosen


@contextmanager
def mask_heads(model: nn.Module, heads: Iterable[tuple[int, int]]) -> Iterator[None]:
    r"""Switch off attention heads while the ``with`` block runs.

    Head h of a :class:`~attnlab.layers.MultiHeadAttention` writes the slice
    ``h*D : (h+1)*D`` of the concatenation that the output projection
    :math:`W^O` reads. A forward pre-hook on ``out_proj`` zeroes that slice,
    which is the gate :math:`\xi_h = 0` of Michel et al. (2019):

    .. math::

        \operatorname{out} = \textstyle\sum_h \xi_h\, \operatorname{head}_h W^O_h + b^O .

    The other heads, the bias and the residual path are untouched; the hooks
    are removed on leaving the block, even after an error. Parameters are not
    modified.

    Args:
        model: a module containing MultiHeadAttention layers, numbered as
            :func:`attention_layers` lists them.
        heads: (layer, head) pairs to switch off; an empty iterable masks nothing.

    Raises:
        ValueError: a model without attention layers, or a pair out of range.

    Example:
        >>> from attnlab.layers import MultiHeadAttention
        >>> mha = MultiHeadAttention(4, num_heads=2, bias=False)
        >>> x = torch.randn(1, 3, 4)
        >>> with mask_heads(mha, [(0, 0), (0, 1)]):    # every head off: the output is 0
        ...     bool((mha(x) == 0).all())
        True
        >>> bool((mha(x) == 0).all())                 # and back on after the block
        False
    """
    layers, chosen = _head_list(model, heads)
    handles = []

    def make_hook(layer: MultiHeadAttention, off: list[int]):  # noqa: ANN202 - a hook
        D = layer.head_dim
        keep = torch.ones(layer.embed_dim)
        for h in off:
            keep[h * D:(h + 1) * D] = 0.0

        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            merged = args[0]  # (B, T, C): the heads side by side
            return (merged * keep.to(merged.device, merged.dtype),) + tuple(args[1:])

        return hook

    try:
        for index, off in chosen.items():
            layer = layers[index]
            handles.append(layer.out_proj.register_forward_pre_hook(make_hook(layer, off)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def record_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the attention weights of every MultiHeadAttention call of a model.

    Models such as :class:`~attnlab.models.GPT` do not return their attention
    weights. Inside the ``with`` block, each call of one of the model's
    attention layers is made with ``need_weights=True`` (a forward pre-hook),
    its weights are appended to the yielded list, detached, and the caller gets
    the output it asked for (a forward hook). The computation is the layer's
    own, so the weights are exactly those it used.

    Args:
        model: a module containing MultiHeadAttention layers.

    Yields:
        A list that fills with one (B, H, T, S) tensor per attention call, in
        call order (for one forward pass of a stack: layer 0 first).

    Raises:
        ValueError: a model without attention layers.

    Example:
        >>> from attnlab.models import GPT, GPTConfig
        >>> gpt = GPT(GPTConfig(vocab_size=10, block_size=8, n_embd=16, n_head=2))
        >>> with record_attention(gpt) as weights:
        ...     logits = gpt(torch.zeros(3, 5, dtype=torch.long))
        >>> logits.shape, len(weights), weights[0].shape      # 2 layers of (B, H, T, T)
        (torch.Size([3, 5, 10]), 2, torch.Size([3, 2, 5, 5]))
    """
    layers = attention_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no MultiHeadAttention layer")
    recorded: list[torch.Tensor] = []
    asked: list[bool] = []

    def before(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        asked.append(bool(kwargs.get("need_weights", False)))
        return args, {**kwargs, "need_weights": True}

    def after(_module: nn.Module, _args: tuple, output: tuple[torch.Tensor, torch.Tensor]):
        out, weights = output
        recorded.append(weights.detach())
        return output if asked.pop() else out

    handles = []
    try:
        for layer in layers:
            handles.append(layer.register_forward_pre_hook(before, with_kwargs=True))
            handles.append(layer.register_forward_hook(after))
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def head_importance(
    model: nn.Module, evaluate: Callable[[nn.Module], float]
) -> tuple[float, torch.Tensor]:
    """How much a score falls when each head alone is switched off.

    The importance of head h of layer l is ``evaluate(model)`` minus the same
    with that one head masked by :func:`mask_heads` (Michel et al. 2019 measure
    it this way, and estimate it by a gradient for large models). With an
    accuracy, 0.05 means "the model loses 5 points without this head"; a
    negative value means it does better without.

    Args:
        model: a module whose attention layers all have the same number of heads H.
        evaluate: a function of the model that returns a number, larger is
            better (an accuracy, or minus a loss); it should run in eval mode
            without gradients.

    Shape:
        Returns a baseline and importances (L, H).

    Returns:
        ``(baseline, importance)``: the score with every head on, and a float64
        tensor (L, H) of drops.

    Raises:
        ValueError: a model without attention layers, or layers with different H.

    Example:
        >>> from attnlab.layers import MultiHeadAttention
        >>> torch.manual_seed(0) and None
        >>> mha = MultiHeadAttention(4, num_heads=2, bias=False).requires_grad_(False)
        >>> x = torch.randn(1, 3, 4)
        >>> base, imp = head_importance(mha, lambda m: float(m(x).abs().sum()))
        >>> imp.shape, bool((imp > 0).all())      # either head carries part of |out|
        (torch.Size([1, 2]), True)
    """
    layers, H = _layers_and_heads(model)
    baseline = float(evaluate(model))
    importance = torch.zeros(len(layers), H, dtype=torch.float64)
    for layer in range(len(layers)):
        for head in range(H):
            with mask_heads(model, [(layer, head)]):
                importance[layer, head] = baseline - float(evaluate(model))
    return baseline, importance


def pruning_curve(
    model: nn.Module,
    order: Sequence[tuple[int, int]] | torch.Tensor,
    evaluate: Callable[[nn.Module], float],
) -> list[float]:
    """The score as heads are switched off one after another, in a given order.

    Entry k is ``evaluate(model)`` with the first k heads of ``order`` masked
    together. Ordered from the least important head to the most (e.g.
    ``head_order(importance)``), the curve shows how many heads a model can lose
    before the score falls (Michel et al. 2019, Voita et al. 2019).

    Args:
        model: a module with MultiHeadAttention layers.
        order: (layer, head) pairs, a sequence or a (K, 2) integer tensor.
        evaluate: as for :func:`head_importance`.

    Returns:
        The K + 1 scores, in order (none masked, the first masked, ..., all K masked).

    Raises:
        ValueError: a pair out of range, or a head listed twice.

    Example:
        >>> from attnlab.layers import MultiHeadAttention
        >>> mha = MultiHeadAttention(4, num_heads=2, bias=False).requires_grad_(False)
        >>> x = torch.randn(1, 3, 4)
        >>> curve = pruning_curve(mha, [(0, 1), (0, 0)], lambda m: float(m(x).abs().sum()))
        >>> len(curve), curve[-1]                  # no head left: the output is 0
        (3, 0.0)
    """
    pairs = [tuple(int(v) for v in pair) for pair in
             (order.tolist() if isinstance(order, torch.Tensor) else order)]
    if len(set(pairs)) != len(pairs):
        raise ValueError("order lists a head twice")
    _head_list(model, pairs)  # checks the ranges
    curve = []
    for k in range(len(pairs) + 1):
        with mask_heads(model, pairs[:k]):
            curve.append(float(evaluate(model)))
    return curve


def head_order(importance: torch.Tensor) -> torch.Tensor:
    """The heads as (layer, head) pairs, from the least important to the most.

    Ties keep the order layer by layer, head by head (a stable sort).

    Args:
        importance: (L, H) importances, as :func:`head_importance` returns them.

    Shape:
        (L, H) -> (L * H, 2).

    Returns:
        An int64 tensor of (layer, head) rows.

    Raises:
        ValueError: importance that is not a 2-D tensor.

    Example:
        >>> head_order(torch.tensor([[0.3, 0.0, 0.1], [0.2, 0.5, -0.1]])).tolist()
        [[1, 2], [0, 1], [0, 2], [1, 0], [0, 0], [1, 1]]
    """
    if not isinstance(importance, torch.Tensor) or importance.dim() != 2:
        got = shape_str(importance) if isinstance(importance, torch.Tensor) else \
            type(importance).__name__
        raise ValueError(f"importance must be (L, H), got {got}")
    H = importance.shape[1]
    flat = torch.argsort(importance.flatten(), stable=True)  # (L*H,) least important first
    return torch.stack([flat // H, flat % H], dim=1)  # (L*H, 2)


def prunable_heads(curve: Sequence[float], tolerance: float = 0.01) -> int:
    """How many heads can go, in the curve's order, before the score falls by > ``tolerance``.

    The answer is the largest k such that every one of ``curve[0..k]`` stays
    at or above ``curve[0] - tolerance`` (a small margin of 1e-9 absorbs
    rounding).

    Args:
        curve: a :func:`pruning_curve` (entry 0: nothing masked).
        tolerance: the largest acceptable fall (0.01 = 1 point of accuracy).

    Returns:
        k, from 0 to ``len(curve) - 1``.

    Raises:
        ValueError: an empty curve or a negative tolerance.

    Example:
        >>> prunable_heads([0.98, 0.985, 0.975, 0.96, 0.979], tolerance=0.01)
        2
    """
    if len(curve) == 0:
        raise ValueError("curve is empty")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    floor = curve[0] - tolerance - 1e-9
    k = 0
    while k + 1 < len(curve) and curve[k + 1] >= floor:
        k += 1
    return k
