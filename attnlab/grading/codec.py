"""Values as data: what crosses between the grader and the sandboxed child.

Values are encoded as JSON with arrays stored apart in a NumPy ``.npz`` file
(read with ``allow_pickle=False``): no pickles, so nothing the child writes can
run code in the grader. Supported: None, bools, numbers, strings, lists,
tuples, dicts with string keys, NumPy arrays, torch tensors (as arrays, with
their dtype), and :class:`attnlab.grading.spec.Model` (built on each side).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from attnlab.grading.spec import Model

__all__ = ["encode", "decode", "EncodeError", "build_model"]


class EncodeError(TypeError):
    """A value that cannot cross as data."""


def encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """JSON-able form of ``value``; arrays are added to ``arrays`` under fresh keys."""
    import torch

    if value is None or isinstance(value, (bool, str)):
        return value
    if value is Ellipsis:
        return {"ellipsis": True}
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return {"float": repr(f)} if not math.isfinite(f) else f
    if isinstance(value, torch.Tensor):
        key = f"a{len(arrays)}"
        t = value.detach().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype == torch.bfloat16:
            t = t.float()
        arrays[key] = t.numpy()
        return {"tensor": key, "dtype": dtype}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise EncodeError("an array of Python objects cannot be graded; use numbers")
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"ndarray": key}
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, tuple):
        return {"tuple": [encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise EncodeError("only dicts with string keys can be graded")
        return {"dict": {k: encode(v, arrays) for k, v in value.items()}}
    if isinstance(value, Model):
        return {"model": value.factory, "seed": value.seed,
                "kwargs": encode(value.kwargs, arrays)}
    if isinstance(value, torch.Size):
        return {"tuple": [int(v) for v in value]}
    raise EncodeError(f"a value of type {type(value).__name__} cannot be graded")


def decode(data: Any, arrays: Any, *, build: bool = True) -> Any:
    """The value that :func:`encode` encoded; ``Model`` entries are built when ``build``."""
    import torch

    if isinstance(data, list):
        return [decode(v, arrays, build=build) for v in data]
    if not isinstance(data, dict):
        return data
    if "float" in data:
        return float(data["float"])
    if "ellipsis" in data:
        return Ellipsis
    if "tensor" in data:
        a = np.asarray(arrays[data["tensor"]])
        t = torch.from_numpy(a.copy())
        return t.to(getattr(torch, data["dtype"]))
    if "ndarray" in data:
        return np.asarray(arrays[data["ndarray"]]).copy()
    if "tuple" in data:
        return tuple(decode(v, arrays, build=build) for v in data["tuple"])
    if "dict" in data:
        return {k: decode(v, arrays, build=build) for k, v in data["dict"].items()}
    if "model" in data:
        model = Model(data["model"], decode(data["kwargs"], arrays, build=False), data["seed"])
        return build_model(model) if build else model
    raise ValueError(f"malformed encoded value: {sorted(data)}")


def build_model(model: Model) -> Any:
    """Build ``model`` from its trusted factory, seeded, in eval mode."""
    import torch

    module_name, _, attr = model.factory.rpartition(".")
    if not module_name.startswith(("attnlab.", "torch.")):
        raise ValueError(f"model factories must come from attnlab or torch, got {model.factory}")
    factory = getattr(importlib.import_module(module_name), attr)
    kwargs = {k: build_model(v) if isinstance(v, Model) else v for k, v in model.kwargs.items()}
    torch.manual_seed(model.seed)
    built = factory(**kwargs)
    if hasattr(built, "eval"):
        built.eval()
    return built
