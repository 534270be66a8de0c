"""Input checks shared by the public functions.

Each check raises an error whose message names the argument and its shape or
dtype, so that a wrong call is caught where it is made instead of being broadcast
into a silently wrong result.
"""

from __future__ import annotations

import torch


def shape_str(x: torch.Tensor) -> str:
    """Format a tensor's shape as ``(2, 3, 4)``."""
    return "(" + ", ".join(str(s) for s in x.shape) + ")"


def check_tensor(x: object, name: str) -> torch.Tensor:
    """Require a torch tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_float(x: torch.Tensor, name: str) -> None:
    """Require a floating-point tensor."""
    if not x.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype} "
            f"with shape {shape_str(x)}; convert it with .float()"
        )


def check_min_dims(x: torch.Tensor, name: str, n: int, layout: str) -> None:
    """Require at least ``n`` dimensions, none of the last ``n`` empty."""
    if x.dim() < n:
        raise ValueError(f"{name} must have shape {layout}, got {shape_str(x)}")
    if any(s == 0 for s in x.shape[-n:]):
        raise ValueError(
            f"{name} has an empty dimension: shape {shape_str(x)} (layout {layout}); "
            "attention needs at least one position and one feature"
        )


def check_qk(q: torch.Tensor, k: torch.Tensor) -> None:
    """Check queries (..., T, D) against keys (..., S, D)."""
    check_tensor(q, "q")
    check_tensor(k, "k")
    check_min_dims(q, "q", 2, "(..., T, D)")
    check_min_dims(k, "k", 2, "(..., S, D)")
    check_float(q, "q")
    check_float(k, "k")
    if q.dtype != k.dtype:
        raise ValueError(f"q and k must share a dtype, got q {q.dtype} and k {k.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dimension D: q {shape_str(q)} is (..., T, D) "
            f"with D={q.shape[-1]}, k {shape_str(k)} is (..., S, D) with D={k.shape[-1]}"
        )
    if q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            f"q and k must have the same leading (batch, head) dimensions: "
            f"q {shape_str(q)} vs k {shape_str(k)}"
        )


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Check q (..., T, D), k (..., S, D), v (..., S, Dv)."""
    check_qk(q, k)
    check_tensor(v, "v")
    check_min_dims(v, "v", 2, "(..., S, Dv)")
    check_float(v, "v")
    if v.dtype != q.dtype:
        raise ValueError(f"v must have the dtype of q and k ({q.dtype}), got {v.dtype}")
    if v.shape[:-1] != k.shape[:-1]:
        raise ValueError(
            f"k and v must agree on (..., S): k {shape_str(k)} is (..., S, D), "
            f"v {shape_str(v)} is (..., S, Dv)"
        )


def check_mask(mask: object, target: torch.Size, target_name: str) -> torch.Tensor:
    """Require a bool mask that broadcasts to ``target`` without enlarging it."""
    mask = check_tensor(mask, "mask")
    if mask.dtype != torch.bool:
        raise ValueError(
            f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype} "
            f"with shape {shape_str(mask)}; build one with attnlab.masks or compare, "
            "e.g. mask = m > 0"
        )
    tgt = "(" + ", ".join(str(s) for s in target) + ")"
    if mask.dim() > 2 and mask.dim() != len(target):
        # (B, 1, S) against (B, H, T, S) would broadcast B against H: refuse.
        raise ValueError(
            f"mask of shape {shape_str(mask)} has {mask.dim()} dims but the {target_name} "
            f"{tgt} has {len(target)}; a mask is (T, S) or has one dim per {target_name} dim "
            "(use size 1 where it is shared, e.g. mask[:, None] to add a head axis)"
        )
    if broadcast_shape(tuple(mask.shape), tuple(target)) != tuple(target):
        raise ValueError(
            f"mask of shape {shape_str(mask)} does not broadcast to the {target_name} "
            f"of shape {tgt} (..., T, S)"
        )
    return mask


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape that ``a`` and ``b`` broadcast to, or None if they do not.

    (``torch.broadcast_shapes`` does the same, but its first call imports
    ``torch._refs``, which costs most of a second.)
    """
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def check_dim(x_shape: tuple[int, ...], dim: int) -> int:
    """Normalise ``dim`` for a tensor of shape ``x_shape``."""
    n = len(x_shape)
    if n == 0:
        raise ValueError("softmax needs at least one dimension, got a scalar (shape ())")
    if not -n <= dim < n:
        raise ValueError(f"dim={dim} is out of range for an input of shape {tuple(x_shape)}")
    return dim % n


def check_ids(
    ids: object,
    name: str,
    high: int,
    *,
    what: str = "token",
    layout: str = "(B, T)",
    bounds: str | None = None,
    dtypes: tuple[torch.dtype, ...] = (torch.int64, torch.int32),
) -> torch.Tensor:
    """Require a 2-D integer tensor of ids in ``[0, high)``, the one id check of the package.

    ``what`` names the ids in the messages (token, item, base), ``layout`` the
    expected shape and ``bounds`` the allowed range (default ``[0, high)``).
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        got = shape_str(ids) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"{name} must be a {layout} tensor of {what} ids, got {got}")
    if ids.dtype not in dtypes:
        raise ValueError(f"{name} must hold integer {what} ids, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= high):
        bounds = f"[0, {high})" if bounds is None else bounds
        raise ValueError(f"{name} has ids outside {bounds}: min {int(ids.min())}, "
                         f"max {int(ids.max())}")
    return ids


def check_weights_and_positions(weights: object, positions: object, name: str) -> None:
    """Require attention weights (B, T) and a bool tensor ``name`` of the same shape.

    ``positions`` marks some of the positions each row attends over (a planted
    site, the words to count), as the metrics that read the weights need it.
    """
    if not isinstance(weights, torch.Tensor) or weights.dim() != 2:
        got = shape_str(weights) if isinstance(weights, torch.Tensor) else "no tensor"
        raise ValueError(f"weights must be (B, T), got {got}")
    if not isinstance(positions, torch.Tensor) or positions.shape != weights.shape \
            or positions.dtype != torch.bool:
        got = shape_str(positions) if isinstance(positions, torch.Tensor) else "no tensor"
        raise ValueError(f"{name} must be a bool tensor shaped like weights "
                         f"{shape_str(weights)}, got {got}")
