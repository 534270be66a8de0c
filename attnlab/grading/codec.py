"""Values as data: what crosses between the grader and the sandboxed child.

Values are encoded as JSON with arrays stored apart in a NumPy ``.npz`` file
(read with ``allow_pickle=False``): no pickles, so nothing the child writes can
run code in the grader. Supported: None, bools, numbers, strings, lists,
tuples, dicts with string keys, NumPy arrays, torch tensors (as arrays, with
their dtype), and :class:`attnlab.grading.spec.Model` (from the grader to the
child only: the child builds it from trusted code the grader named).

What comes back from the child is read with :func:`decode_result`, which accepts
data and nothing else: a ``Model`` (or any entry that names code, a module or a
file) is an error there, never something the grader imports or builds.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from attnlab.grading.spec import Model

__all__ = ["encode", "decode", "decode_result", "EncodeError", "ResultError", "build_model",
           "TENSOR_DTYPES"]


class EncodeError(TypeError):
    """A value that cannot cross as data."""


class ResultError(ValueError):
    """What the child returned is not a well-formed record of plain data."""


# the tensor dtypes a result may name (anything else is refused, never looked up)
TENSOR_DTYPES = ("float16", "bfloat16", "float32", "float64", "complex64", "complex128",
                 "int8", "int16", "int32", "int64", "uint8", "bool")
_MAX_DEPTH = 32


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
        if dtype not in TENSOR_DTYPES:
            raise EncodeError(f"a tensor of dtype {dtype} cannot be graded")
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


_FACTORY_MODULES = ("attnlab.models", "attnlab.layers", "torch.nn")


def build_model(model: Model) -> Any:
    """Build ``model`` from its trusted factory, seeded, in eval mode.

    Only the test specs name models (they travel from the grader to the child,
    never back), and even then the factory must be a class of ``attnlab.models``,
    ``attnlab.layers`` or ``torch.nn``: no function, no other module.
    """
    import torch

    module_name, _, attr = model.factory.rpartition(".")
    if not any(module_name == m or module_name.startswith(m + ".") for m in _FACTORY_MODULES):
        raise ValueError(f"model factories must be classes of {', '.join(_FACTORY_MODULES)}; "
                         f"got {model.factory}")
    factory = getattr(importlib.import_module(module_name), attr, None)
    if not isinstance(factory, type):
        raise ValueError(f"model factory {model.factory} is not a class")
    kwargs = {k: build_model(v) if isinstance(v, Model) else v for k, v in model.kwargs.items()}
    torch.manual_seed(model.seed)
    built = factory(**kwargs)
    if hasattr(built, "eval"):
        built.eval()
    return built


def decode_result(data: Any, arrays: dict[str, np.ndarray], *, max_nodes: int = 200_000) -> Any:
    """Decode a value that came back from the sandboxed child: data only, strictly.

    Accepts exactly what :func:`encode` writes for plain values: None, bools,
    numbers, strings, lists, ``{"float": "nan"|"inf"|"-inf"}``, ``{"ellipsis":
    true}``, ``{"tuple": [...]}``, ``{"dict": {...}}``, ``{"ndarray": key}`` and
    ``{"tensor": key, "dtype": name}`` with ``key`` one of ``arrays`` and ``name``
    one of :data:`TENSOR_DTYPES`. Anything else -- a ``Model``, an unknown key, a
    dtype that is not a plain number type, nesting deeper than 32 or more than
    ``max_nodes`` entries -- raises :class:`ResultError`.

    Example:
        >>> decode_result({"tuple": [1, {"float": "nan"}]}, {})
        (1, nan)
        >>> decode_result({"model": "os.system", "kwargs": {}, "seed": 0}, {})
        Traceback (most recent call last):
        ...
        attnlab.grading.codec.ResultError: not a plain value (keys ['kwargs', 'model', 'seed'])
    """
    import torch

    budget = [max_nodes]

    def walk(x: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise ResultError(f"more than {max_nodes} values")
        if depth > _MAX_DEPTH:
            raise ResultError(f"nested deeper than {_MAX_DEPTH}")
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [walk(v, depth + 1) for v in x]
        if not isinstance(x, dict):
            raise ResultError(f"not a plain value ({type(x).__name__})")
        keys = sorted(x)
        if keys == ["float"] and x["float"] in ("nan", "inf", "-inf"):
            return float(x["float"])
        if keys == ["ellipsis"] and x["ellipsis"] is True:
            return Ellipsis
        if keys == ["tuple"] and isinstance(x["tuple"], list):
            return tuple(walk(v, depth + 1) for v in x["tuple"])
        if keys == ["dict"] and isinstance(x["dict"], dict):
            return {str(k): walk(v, depth + 1) for k, v in x["dict"].items()}
        if keys == ["ndarray"] and isinstance(x["ndarray"], str) and x["ndarray"] in arrays:
            return np.asarray(arrays[x["ndarray"]]).copy()
        if (keys == ["dtype", "tensor"] and isinstance(x["tensor"], str)
                and x["tensor"] in arrays and x["dtype"] in TENSOR_DTYPES):
            a = np.asarray(arrays[x["tensor"]])
            return torch.from_numpy(a.copy()).to(getattr(torch, x["dtype"]))
        raise ResultError(f"not a plain value (keys {keys})")

    return walk(data, 0)
