"""The benchmark's cases: which attention implementations, on which inputs, and its settings.

:func:`make_case` builds the inputs of one case and a closure that runs one
implementation on them; :class:`BenchConfig` says what a run of the suite
measures. The list of methods is in :mod:`attnlab.bench`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["BenchConfig", "METHODS", "PASSES", "DEFAULT_LENGTHS", "QUADRATIC", "default_methods",
           "make_case"]

PASSES = ("forward", "forward+backward")
DEFAULT_LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384)

# name -> (kind, what it is). kind: "exact" attention on (B, H, T, D), "approx", or "layer".
METHODS: dict[str, tuple[str, str]] = {
    "naive": ("exact", "attnlab.functional.naive_attention, materialising the (T, T) weights"),
    "functional": ("exact", "attnlab.functional.attention (no weights)"),
    "chunked": ("exact", "attnlab.efficient.chunked_attention (online softmax, plain PyTorch)"),
    "sdpa": ("exact", "F.scaled_dot_product_attention, backend chosen by PyTorch"),
    "sdpa-flash": ("exact", "SDPA, flash-attention backend"),
    "sdpa-efficient": ("exact", "SDPA, memory-efficient backend"),
    "sdpa-cudnn": ("exact", "SDPA, cuDNN backend"),
    "sdpa-math": ("exact", "SDPA, math (reference) backend"),
    "triton": ("exact", "attnlab.triton_attention (Triton kernel)"),
    "linear": ("approx", "attnlab.efficient.linear_attention (elu + 1 features)"),
    "linformer": ("approx", "attnlab.efficient.linformer_attention, r = 256"),
    "local": ("approx", "attnlab.efficient.local_attention, window 128"),
    "mha": ("layer", "attnlab.layers.MultiHeadAttention"),
    "torch-mha": ("layer", "nn.MultiheadAttention (same weights, need_weights=False)"),
}
# Methods whose memory grows with T * S: skipped when their estimate exceeds the budget.
QUADRATIC = {"naive", "sdpa-math"}
LINFORMER_R = 256
LOCAL_WINDOW = 128


@dataclass
class BenchConfig:
    """What one run of the suite measures.

    Every default is the suite the book's targets are stated for.
    """

    lengths: tuple[int, ...] = DEFAULT_LENGTHS  # T = S, self-attention
    methods: tuple[str, ...] | None = None  # None: every method available on the device
    passes: tuple[str, ...] = PASSES
    device: str = "cpu"
    dtype: str | None = None  # None: float32 on the CPU, bfloat16 on CUDA
    batch: int = 1  # B
    heads: int = 1  # H for the attention functions (q, k, v are (B, H, T, D))
    head_dim: int = 64  # D
    layer_heads: int = 4  # H of the layers "mha" and "torch-mha": C = layer_heads * head_dim
    layer_max_len: int = 4096  # the layers are timed up to this T
    block_size: int | None = None  # chunked attention's keys per block (None: its default)
    max_quadratic_mib: float = 1024.0  # skip naive / math cases whose (T, T) tensors exceed this
    min_time: float = 0.5  # seconds of timed calls per case
    min_repeats: int = 3  # timed calls per case at least (unless max_repeats is smaller)
    max_repeats: int = 5  # timed calls per case at most (after the untimed one)
    case_timeout: float = 600.0  # seconds before a case is abandoned
    seed: int = 0

    def resolved_dtype(self) -> torch.dtype:
        name = self.dtype or ("bfloat16" if self.device.startswith("cuda") else "float32")
        dt = getattr(torch, name, None)
        if not isinstance(dt, torch.dtype):
            raise ValueError(f"unknown dtype {name!r}")
        return dt


def default_methods(device: str) -> tuple[str, ...]:
    """The methods that can run on ``device``: SDPA's CPU backends are flash and math."""
    if device.startswith("cuda"):
        return ("naive", "functional", "chunked", "sdpa", "sdpa-flash", "sdpa-efficient",
                "sdpa-cudnn", "sdpa-math", "triton", "linear", "linformer", "local", "mha",
                "torch-mha")
    # On the CPU, "sdpa" dispatches to the flash kernel: "sdpa-flash" would time it twice.
    return ("naive", "functional", "chunked", "sdpa", "sdpa-math", "linear", "linformer",
            "local", "mha", "torch-mha")




def _sdpa_backend(name: str):  # noqa: ANN202
    from torch.nn.attention import SDPBackend

    return {"sdpa-flash": SDPBackend.FLASH_ATTENTION,
            "sdpa-efficient": SDPBackend.EFFICIENT_ATTENTION,
            "sdpa-cudnn": SDPBackend.CUDNN_ATTENTION,
            "sdpa-math": SDPBackend.MATH}[name]

def make_case(method: str, T: int, cfg: BenchConfig, requires_grad: bool = False
              ) -> tuple[Callable[[], torch.Tensor], list[torch.Tensor]]:
    """Inputs and a closure for one case: ``fn()`` runs the method once on them.

    Args:
        method: a key of ``METHODS``.
        T: the sequence length (T = S).
        cfg: the suite's configuration (device, dtype, B, H, D).
        requires_grad: make the inputs (and a layer's weights) trainable.

    Returns:
        ``(fn, tensors)``: ``tensors`` are the inputs that require grad (the
        first ones) followed by the others, so that a caller can inspect them.

    Example:
        >>> fn, (q, k, v) = make_case("chunked", 16, BenchConfig())
        >>> fn().shape
        torch.Size([1, 1, 16, 64])
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    device, dtype = torch.device(cfg.device), cfg.resolved_dtype()
    g = torch.Generator(device="cpu").manual_seed(cfg.seed)
    kind = METHODS[method][0]
    if kind == "layer":
        from attnlab.layers import MultiHeadAttention

        C = cfg.layer_heads * cfg.head_dim
        x = torch.randn(cfg.batch, T, C, generator=g).to(device, dtype)  # (B, T, C)
        x.requires_grad_(requires_grad)
        torch.manual_seed(cfg.seed)
        ref = torch.nn.MultiheadAttention(C, cfg.layer_heads, batch_first=True)
        ref = ref.to(device, dtype)
        if method == "torch-mha":
            return (lambda: ref(x, x, x, need_weights=False)[0]), [x]
        ours = MultiHeadAttention.from_torch(ref)
        return (lambda: ours(x)), [x]

    shape = (cfg.batch, cfg.heads, T, cfg.head_dim)  # (B, H, T, D)
    q, k, v = (torch.randn(*shape, generator=g).to(device, dtype).requires_grad_(requires_grad)
               for _ in range(3))
    if method == "naive":
        from attnlab.functional import naive_attention

        return (lambda: naive_attention(q, k, v)), [q, k, v]
    if method == "functional":
        from attnlab.functional import attention

        return (lambda: attention(q, k, v)), [q, k, v]
    if method == "chunked":
        from attnlab.efficient import chunked_attention

        return (lambda: chunked_attention(q, k, v, block_size=cfg.block_size)), [q, k, v]
    if method == "sdpa":
        return (lambda: F.scaled_dot_product_attention(q, k, v)), [q, k, v]
    if method.startswith("sdpa-"):
        from torch.nn.attention import sdpa_kernel

        backend = _sdpa_backend(method)

        def forced() -> torch.Tensor:
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v)

        return forced, [q, k, v]
    if method == "triton":
        from attnlab.triton_attention import triton_attention

        return (lambda: triton_attention(q, k, v)), [q, k, v]
    if method == "linear":
        from attnlab.efficient import linear_attention

        return (lambda: linear_attention(q, k, v)), [q, k, v]
    if method == "linformer":
        from attnlab.efficient import linformer_attention

        r = min(LINFORMER_R, T)
        e = (torch.randn(r, T, generator=g) / math.sqrt(r)).to(device, dtype)  # (r, S)
        f = (torch.randn(r, T, generator=g) / math.sqrt(r)).to(device, dtype)  # (r, S)
        return (lambda: linformer_attention(q, k, v, e, f)), [q, k, v, e, f]
    from attnlab.efficient import local_attention  # method == "local"

    return (lambda: local_attention(q, k, v, LOCAL_WINDOW)), [q, k, v]


def _quadratic_bytes(method: str, T: int, cfg: BenchConfig, pass_: str) -> int:
    """A lower bound on what a method that materialises (T, T) matrices holds at once."""
    if method not in QUADRATIC:
        return 0
    one = cfg.batch * cfg.heads * T * T * cfg.resolved_dtype().itemsize
    return one * (2 if pass_ == "forward" else 3)


def _available(method: str, device: torch.device) -> str | None:
    """None if ``method`` can run on ``device``, else why not."""
    if method == "triton":
        if device.type != "cuda":
            return "the Triton kernel needs CUDA"
        try:
            import triton  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            return "triton is not installed"
    if method in ("sdpa-efficient", "sdpa-cudnn") and device.type != "cuda":
        return f"{method} is a CUDA backend"
    return None


