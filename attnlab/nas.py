r"""Neural architecture search over small attention models: a space, two searches, a cost model.

An *architecture* is one choice per axis of a :class:`SearchSpace`: the number of heads H, the
depth (blocks), the width C, the attention type (``"softmax"``, ``"linear"`` -- the kernel
feature map of :func:`attnlab.efficient.linear_attention` -- or ``"local"``, a sliding window
as in :func:`attnlab.efficient.local_attention`) and the positional encoding (``"none"``,
``"sinusoidal"``, ``"learned"`` or ``"rotary"``, from :mod:`attnlab.layers`).

:func:`build_model` turns an architecture into a :class:`CandidateModel`, an encoder that
labels every position of a sequence (made of :class:`attnlab.layers.TransformerBlock` with its
attention swapped for the chosen type). :func:`train_and_evaluate` trains one for a short, fixed
budget on a :class:`TokenTask` and measures its validation accuracy; :func:`random_search` and
:func:`regularized_evolution` (aging evolution, Real et al. 2019) spend the same number of such
evaluations. :func:`pareto_front` keeps the designs that no other design beats on every
objective, and :func:`parameter_count` / :func:`flops_per_example` are the deterministic cost
model: a design's cost is computed from its hyper-parameters, never timed.

Matrix-product FLOPs of one forward pass over T positions (2 per multiply-add), per block:

.. math::

    \underbrace{8 T C^2}_{Q,K,V,O} + \underbrace{4 T C F}_{\text{feed-forward}} +
    \begin{cases} 4 T^2 C & \text{softmax} \\ 4 P C & \text{local, } P \text{ allowed pairs} \\
    4 T C D & \text{linear} \end{cases}

with F the feed-forward width and D = C / H; plus ``2 T C n_out`` for the output layer.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn

from attnlab.data import reversal_task
from attnlab.efficient import linear_attention, window_mask
from attnlab.functional import attention
from attnlab.layers import (
    KVCache,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    TransformerBlock,
)
from attnlab.train import TrainConfig, fit, sequence_loss

__all__ = [
    "ATTENTION_TYPES",
    "POSITIONAL_ENCODINGS",
    "Architecture",
    "SearchSpace",
    "SwappableAttention",
    "CandidateModel",
    "build_model",
    "parameter_count",
    "flops_per_example",
    "TokenTask",
    "reversal_token_task",
    "EvalConfig",
    "Evaluation",
    "token_accuracy",
    "train_and_evaluate",
    "CachedEvaluator",
    "random_search",
    "regularized_evolution",
    "best_so_far",
    "dominates",
    "pareto_front",
    "measure_latency",
]

ATTENTION_TYPES = ("softmax", "linear", "local")
POSITIONAL_ENCODINGS = ("none", "sinusoidal", "learned", "rotary")


# ------------------------------------------------------------------------ the space


@dataclass(frozen=True, order=True)
class Architecture:
    """One point of a :class:`SearchSpace`: a design to build, train and compare.

    Frozen and ordered, so that it can key a cache and be sorted.

    Example:
        >>> a = Architecture(heads=2, depth=1, width=32, attention="softmax", position="learned")
        >>> str(a)
        'softmax/learned L1 C32 H2'
    """

    heads: int  # H, heads per attention layer
    depth: int  # number of Transformer blocks
    width: int  # C, the model width (D = C / H per head)
    attention: str  # one of ATTENTION_TYPES
    position: str  # one of POSITIONAL_ENCODINGS

    def __post_init__(self) -> None:
        for name in ("heads", "depth", "width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.width % self.heads:
            raise ValueError(f"width C={self.width} must be divisible by heads H={self.heads}")
        if self.attention not in ATTENTION_TYPES:
            raise ValueError(f"attention must be one of {ATTENTION_TYPES}, got {self.attention!r}")
        if self.position not in POSITIONAL_ENCODINGS:
            raise ValueError(
                f"position must be one of {POSITIONAL_ENCODINGS}, got {self.position!r}"
            )
        if self.position == "rotary" and (self.width // self.heads) % 2:
            raise ValueError(f"rotary needs an even head dimension, D={self.width // self.heads}")

    def __str__(self) -> str:
        return f"{self.attention}/{self.position} L{self.depth} C{self.width} H{self.heads}"


@dataclass(frozen=True)
class SearchSpace:
    """The choices of each axis; an architecture takes one value per axis.

    Every combination must be a valid :class:`Architecture` (each width divisible by each head
    count, even head dimensions for rotary), so that sampling and mutation never need to
    reject a design, and the space's size is the product of the numbers of choices.

    Example:
        >>> space = SearchSpace()
        >>> space.size
        324
        >>> rng = random.Random(0)
        >>> a = space.sample(rng)
        >>> space.contains(a) and space.contains(space.mutate(a, rng))
        True
    """

    heads: tuple[int, ...] = (1, 2, 4)  # H
    depth: tuple[int, ...] = (1, 2, 3)  # blocks
    width: tuple[int, ...] = (16, 32, 64)  # C
    attention: tuple[str, ...] = ATTENTION_TYPES
    position: tuple[str, ...] = POSITIONAL_ENCODINGS

    def __post_init__(self) -> None:
        for name, choices in self.axes.items():
            if not isinstance(choices, tuple) or len(choices) == 0:
                raise ValueError(f"axis {name!r} needs a non-empty tuple of choices, "
                                 f"got {choices!r}")
            if len(set(choices)) != len(choices):
                raise ValueError(f"axis {name!r} repeats a choice: {choices!r}")
        for combo in itertools.product(self.heads, self.width, self.position):
            h, c, p = combo
            Architecture(h, self.depth[0], c, self.attention[0], p)  # raises if invalid

    @property
    def axes(self) -> dict[str, tuple]:
        """The axes by name, in the order of :class:`Architecture`'s fields."""
        return {f.name: getattr(self, f.name) for f in fields(Architecture)}

    @property
    def size(self) -> int:
        """The number of architectures, the product of the numbers of choices."""
        return math.prod(len(c) for c in self.axes.values())

    def contains(self, arch: Architecture) -> bool:
        """Whether every field of ``arch`` is one of this space's choices."""
        return all(getattr(arch, name) in choices for name, choices in self.axes.items())

    def __iter__(self) -> Iterator[Architecture]:
        """Every architecture of the space, in a fixed order."""
        for values in itertools.product(*self.axes.values()):
            yield Architecture(*values)

    def sample(self, rng: random.Random) -> Architecture:
        """An architecture drawn uniformly: one uniform choice per axis."""
        return Architecture(*(rng.choice(c) for c in self.axes.values()))

    def mutate(self, arch: Architecture, rng: random.Random) -> Architecture:
        """Change one axis (drawn uniformly among those with a choice) to another of its values.

        The child differs from its parent in exactly one field and stays inside the space.
        """
        if not self.contains(arch):
            raise ValueError(f"{arch} is not in the search space")
        names = [n for n, c in self.axes.items() if len(c) > 1]
        if not names:
            raise ValueError("every axis has a single choice: nothing to mutate")
        name = rng.choice(names)
        current = getattr(arch, name)
        value = rng.choice([c for c in self.axes[name] if c != current])
        values = {n: getattr(arch, n) for n in self.axes}
        values[name] = value
        return Architecture(**values)


# ------------------------------------------------------------------------ the model


class SwappableAttention(MultiHeadAttention):
    """Multi-head self-attention whose core is softmax, linear or sliding-window attention.

    The projections (and :class:`~attnlab.layers.RotaryEmbedding`, if given) are those of
    :class:`attnlab.layers.MultiHeadAttention`, so the three kinds have the same parameters
    and differ only in how queries meet keys:

    - ``"softmax"``: :func:`attnlab.functional.attention`;
    - ``"linear"``: :func:`attnlab.efficient.linear_attention` (feature map elu + 1);
    - ``"local"``: softmax over the keys within ``window`` positions
      (:func:`attnlab.efficient.window_mask`). For the short sequences here it runs as a dense
      masked softmax, which equals :func:`attnlab.efficient.local_attention` and is faster
      when T is small; the cost model counts the pairs a banded kernel would compute.

    Shape:
        query (B, T, C) -> (B, T, C).

    Example:
        >>> layer = SwappableAttention(8, 2, kind="linear")
        >>> layer(torch.randn(3, 5, 8)).shape
        torch.Size([3, 5, 8])
    """

    def __init__(self, embed_dim: int, num_heads: int, *, kind: str = "softmax",
                 window: int = 2, rope: RotaryEmbedding | None = None) -> None:
        super().__init__(embed_dim, num_heads, rope=rope)
        if kind not in ATTENTION_TYPES:
            raise ValueError(f"kind must be one of {ATTENTION_TYPES}, got {kind!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 0:
            raise ValueError(f"window must be a non-negative integer, got {window!r}")
        self.kind, self.window = kind, window

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None,
                value: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                causal: bool = False, need_weights: bool = False,
                cache: KVCache | None = None) -> torch.Tensor:
        """Self-attention over ``query``; the other arguments must keep their defaults."""
        if key is not None or value is not None or mask is not None or causal or need_weights \
                or cache is not None:
            raise ValueError("SwappableAttention does unmasked self-attention only")
        self._check(query, None, None)
        q, k, v = (self.split_heads(x) for x in self._project(query, None, None))  # (B,H,T,D)
        if self.rope is not None:
            q, k = self.rope(q), self.rope(k)
        if self.kind == "linear":
            out = linear_attention(q, k, v)  # (B, H, T, D)
        elif self.kind == "local":
            T = q.shape[-2]
            out = attention(q, k, v, window_mask(T, window=self.window, device=q.device))
        else:
            out = attention(q, k, v)  # (B, H, T, D)
        return self.out_proj(self.merge_heads(out))  # (B, T, C)


class CandidateModel(nn.Module):
    """An encoder built from an :class:`Architecture` that labels every position.

    Token embedding (+ sinusoidal or learned positions) -> ``depth`` pre-norm
    :class:`attnlab.layers.TransformerBlock`\\ s with :class:`SwappableAttention` (rotary
    positions rotate queries and keys inside it) -> LayerNorm -> a linear layer to ``n_out``
    classes per position.

    Args:
        arch: the architecture.
        vocab_size: V, the number of input ids.
        max_len: the longest sequence (size of a learned position table).
        n_out: classes per position (default V).
        ff_mult: the feed-forward width is ``ff_mult * C``.
        window: the half-width of local attention.

    Shape:
        ids (B, T) int64 -> logits (B, T, n_out).
    """

    def __init__(self, arch: Architecture, vocab_size: int, max_len: int,
                 n_out: int | None = None, *, ff_mult: int = 2, window: int = 2) -> None:
        super().__init__()
        if vocab_size < 1 or max_len < 1 or ff_mult < 1:
            raise ValueError(f"need positive vocab_size, max_len and ff_mult, got "
                             f"{vocab_size}, {max_len}, {ff_mult}")
        self.arch, self.max_len = arch, max_len
        C, n_out = arch.width, vocab_size if n_out is None else n_out
        self.embed = nn.Embedding(vocab_size, C)
        self.pos: nn.Module | None = None
        if arch.position == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(C, max_len)
        elif arch.position == "learned":
            self.pos = LearnedPositionalEmbedding(max_len, C)
        blocks = []
        for _ in range(arch.depth):
            rope = RotaryEmbedding(C // arch.heads, max_len) if arch.position == "rotary" else None
            block = TransformerBlock(C, arch.heads, ff_mult * C, norm_first=True)
            block.self_attn = SwappableAttention(C, arch.heads, kind=arch.attention,
                                                 window=window, rope=rope)
            blocks.append(block)
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(C)
        self.head = nn.Linear(C, n_out)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or ids.dtype != torch.long:
            raise ValueError(f"ids must be (B, T) int64, got {tuple(ids.shape)} {ids.dtype}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"T={ids.shape[1]} exceeds max_len={self.max_len}")
        x = self.embed(ids)  # (B, T, C)
        if self.pos is not None:
            x = self.pos(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))  # (B, T, n_out)


def build_model(arch: Architecture, vocab_size: int, max_len: int, n_out: int | None = None,
                *, ff_mult: int = 2, window: int = 2, seed: int = 0) -> CandidateModel:
    """A :class:`CandidateModel` whose weights depend only on ``arch`` and ``seed``.

    Example:
        >>> arch = Architecture(2, 1, 16, "local", "rotary")
        >>> build_model(arch, vocab_size=10, max_len=6)(torch.zeros(4, 6, dtype=torch.long)).shape
        torch.Size([4, 6, 10])
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CandidateModel(arch, vocab_size, max_len, n_out, ff_mult=ff_mult, window=window)


# ------------------------------------------------------------------- the cost model


def parameter_count(arch: Architecture, vocab_size: int, max_len: int,
                    n_out: int | None = None, *, ff_mult: int = 2) -> int:
    """The number of parameters of :func:`build_model`'s model, from the formula.

    Per block: Q, K, V and O projections ``4 C^2 + 4 C``, feed-forward ``2 C F + F + C``,
    two LayerNorms ``4 C``; plus the embedding ``V C``, a learned table ``max_len C``, the
    final LayerNorm ``2 C`` and the output layer ``C n_out + n_out``. The attention type
    changes no parameter.

    Example:
        >>> arch = Architecture(2, 1, 16, "softmax", "learned")
        >>> parameter_count(arch, 10, 6) == sum(
        ...     p.numel() for p in build_model(arch, 10, 6).parameters())
        True
    """
    C, n_out = arch.width, vocab_size if n_out is None else n_out
    Fw = ff_mult * C
    block = (4 * C * C + 4 * C) + (2 * C * Fw + Fw + C) + 4 * C
    table = max_len * C if arch.position == "learned" else 0
    return vocab_size * C + table + arch.depth * block + 2 * C + C * n_out + n_out


def flops_per_example(arch: Architecture, seq_len: int, n_out: int, *, ff_mult: int = 2,
                      window: int = 2) -> int:
    """Forward-pass FLOPs of the matrix products for one sequence of length T (2 per MAC).

    Element-wise work (softmax, norms, activations, the feature map) is left out, as in the
    usual ``2 N`` per token estimates. Local attention counts only the (query, key) pairs of
    its window, ``P = window_mask(T, window).sum()``: what a banded kernel computes.

    Example:
        >>> flops_per_example(Architecture(1, 1, 4, "softmax", "none"), seq_len=2, n_out=3)
        624
    """
    if seq_len < 1 or n_out < 1:
        raise ValueError(f"need seq_len >= 1 and n_out >= 1, got {seq_len}, {n_out}")
    T, C = seq_len, arch.width
    D = C // arch.heads
    if arch.attention == "softmax":
        core = 4 * T * T * C  # Q K^T and weights @ V, each 2 T^2 C
    elif arch.attention == "local":
        pairs = int(window_mask(T, window=window).sum())
        core = 4 * pairs * C
    else:
        core = 4 * T * C * D  # phi(K)^T V and phi(Q) (KV): 2 T D D per head each
    block = 8 * T * C * C + 4 * T * C * ff_mult * C + core
    return arch.depth * block + 2 * T * C * n_out


# -------------------------------------------------------------------------- the task


@dataclass(frozen=True)
class TokenTask:
    """Per-position classification with train / validation / test splits that share no input.

    The search chooses designs by validation accuracy; the test split is touched once, for
    the chosen design.

    Shape:
        x_* (N, T) int64 ids; y_* (N, T) int64 labels in [0, n_out).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    vocab_size: int  # V of the inputs
    n_out: int  # classes per position

    @property
    def seq_len(self) -> int:
        """T."""
        return self.x_train.shape[1]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def reversal_token_task(seq_len: int = 12, n_train: int = 4000, n_val: int = 500,
                        n_test: int = 500, *, alphabet: str = "abcdefgh",
                        seed: int = 0) -> TokenTask:
    """Reverse a string of fixed length, one output per position: ``y[t] = x[T - 1 - t]``.

    Made from :func:`attnlab.data.reversal_task` (which makes every string unique), so the
    three splits share no string. Position ``t`` must find position ``T - 1 - t``: a model
    without absolute positions cannot tell them apart, and a short window cannot reach them.

    Example:
        >>> task = reversal_token_task(6, 20, 5, 5, seed=1)
        >>> task.x_train.shape, task.vocab_size
        (torch.Size([20, 6]), 11)
        >>> bool((task.y_val == task.x_val.flip(1)).all())
        True
    """
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    base = reversal_task(n_train, n_val + n_test, min_len=seq_len, max_len=seq_len,
                         alphabet=alphabet, seed=seed)
    tok = base.src_tokenizer
    x_train, _ = tok.batch(base.train.sources)
    x_rest, _ = tok.batch(base.test.sources)
    x_val, x_test = x_rest[:n_val], x_rest[n_val:]
    return TokenTask("reversal", x_train, x_train.flip(1), x_val, x_val.flip(1), x_test,
                     x_test.flip(1), tok.vocab_size, tok.vocab_size)


# -------------------------------------------------------------------- one evaluation


@dataclass(frozen=True)
class EvalConfig:
    """The fixed, short training every candidate gets (the same for all)."""

    steps: int = 150  # AdamW steps: short on purpose, a search evaluates many designs
    batch_size: int = 64  # sequences per step
    lr: float = 1e-2  # peak learning rate: high, to learn much in few steps
    warmup: int = 15  # linear warm-up steps
    ff_mult: int = 2  # feed-forward width F = ff_mult * C
    window: int = 2  # local attention sees positions within +-window
    seed: int = 0  # seeds the weights and the batches


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation measured, and the design's deterministic costs."""

    arch: Architecture
    accuracy: float  # per-position accuracy on the validation split
    params: int  # parameter_count
    flops: int  # flops_per_example (forward)
    seconds: float  # wall-clock training time (varies from run to run)


def token_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   batch: int = 500) -> float:
    """The fraction of positions whose most likely class is the label (in eval mode).

    Shape:
        x (N, T) ids, y (N, T) labels -> a float in [0, 1].

    Example:
        >>> class Echo(nn.Module):
        ...     def forward(self, ids): return torch.eye(4)[ids]
        >>> token_accuracy(Echo(), torch.tensor([[1, 2], [3, 0]]), torch.tensor([[1, 2], [0, 0]]))
        0.75
    """
    if x.shape != y.shape or x.dim() != 2:
        raise ValueError(f"x and y must both be (N, T), got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum())
    return correct / y.numel()


def train_and_evaluate(arch: Architecture, task: TokenTask, config: EvalConfig = EvalConfig(),
                       *, split: str = "val", return_model: bool = False
                       ) -> Evaluation | tuple[Evaluation, CandidateModel]:
    """Build ``arch``, train it with ``config`` on the training split, measure ``split``.

    Deterministic on the CPU for a given ``config.seed``: the same design gets the same
    accuracy every time (on another seed it gets another -- the noise of a short training).

    Example:
        >>> task = reversal_token_task(6, 64, 32, 32)
        >>> e = train_and_evaluate(Architecture(1, 1, 16, "softmax", "learned"), task,
        ...                        EvalConfig(steps=2, batch_size=8))
        >>> 0.0 <= e.accuracy <= 1.0, e.params > 0
        (True, True)
    """
    x, y = task.split("train")
    x_eval, y_eval = task.split(split)
    model = build_model(arch, task.vocab_size, task.seq_len, task.n_out,
                        ff_mult=config.ff_mult, window=config.window, seed=config.seed)
    n = len(x)

    def batch_fn(step: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(n, (config.batch_size,), generator=g)
        return x[idx], y[idx]

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return sequence_loss(m(batch[0]), batch[1], torch.ones_like(batch[1], dtype=torch.bool))

    tc = TrainConfig(steps=config.steps, lr=config.lr, warmup=config.warmup, device="cpu",
                     progress=False, seed=config.seed, log_every=config.steps)
    history = fit(model, batch_fn, loss_fn, tc)
    result = Evaluation(
        arch=arch,
        accuracy=token_accuracy(model, x_eval, y_eval),
        params=parameter_count(arch, task.vocab_size, task.seq_len, task.n_out,
                               ff_mult=config.ff_mult),
        flops=flops_per_example(arch, task.seq_len, task.n_out, ff_mult=config.ff_mult,
                                window=config.window),
        seconds=history.seconds,
    )
    return (result, model) if return_model else result


class CachedEvaluator:
    """Evaluates each architecture once: a repeated proposal is answered from the cache.

    A search's budget counts proposals (``calls``); ``trained`` counts the trainings actually
    paid for. Since an evaluation is deterministic, a cached answer is what retraining would
    give.

    Example:
        >>> ev = CachedEvaluator(lambda a: Evaluation(a, 0.5, 1, 1, 0.0))
        >>> a = Architecture(1, 1, 16, "softmax", "none")
        >>> _ = ev(a); _ = ev(a)
        >>> ev.calls, ev.trained
        (2, 1)
    """

    def __init__(self, evaluate: Callable[[Architecture], Evaluation]) -> None:
        self.evaluate = evaluate
        self.cache: dict[Architecture, Evaluation] = {}
        self.calls = 0

    @property
    def trained(self) -> int:
        """The number of distinct architectures evaluated."""
        return len(self.cache)

    def __call__(self, arch: Architecture) -> Evaluation:
        self.calls += 1
        if arch not in self.cache:
            self.cache[arch] = self.evaluate(arch)
        return self.cache[arch]


# -------------------------------------------------------------------------- searches


def _check_budget(budget: int) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")


def _fitness(e: Evaluation) -> tuple[float, int]:
    """Higher accuracy first; on a tie, fewer parameters."""
    return (e.accuracy, -e.params)


def _check_initial(space: SearchSpace, initial: Sequence[Architecture], budget: int) -> None:
    _check_budget(budget)
    if len(initial) > budget:
        raise ValueError(f"{len(initial)} initial designs exceed the budget of {budget}")
    for arch in initial:
        if not space.contains(arch):
            raise ValueError(f"initial design {arch} is not in the search space")


def random_search(space: SearchSpace, evaluate: Callable[[Architecture], Evaluation],
                  budget: int, seed: int = 0,
                  initial: Sequence[Architecture] = ()) -> list[Evaluation]:
    """Evaluate ``budget`` architectures drawn uniformly from ``space`` (Li & Talwalkar 2019).

    Args:
        space: the search space.
        evaluate: trains and measures one architecture.
        budget: the number of evaluations, ``initial`` included.
        seed: seeds the draws (a ``random.Random``).
        initial: designs to evaluate first (e.g. a hand-picked one); the remaining
            evaluations are uniform draws.

    Returns:
        The evaluations in the order they were made.

    Example:
        >>> ev = lambda a: Evaluation(a, a.width / 64, a.width, 1, 0.0)
        >>> len(random_search(SearchSpace(), ev, budget=5))
        5
    """
    _check_initial(space, initial, budget)
    rng = random.Random(seed)
    history = [evaluate(arch) for arch in initial]
    return history + [evaluate(space.sample(rng)) for _ in range(budget - len(initial))]


def regularized_evolution(space: SearchSpace, evaluate: Callable[[Architecture], Evaluation],
                          budget: int, population_size: int = 4, sample_size: int = 3,
                          seed: int = 0,
                          initial: Sequence[Architecture] = ()) -> list[Evaluation]:
    """Regularised (aging) evolution of Real et al. (2019) with ``budget`` evaluations.

    The first ``population_size`` evaluations are the ``initial`` designs (a warm start, as
    the Evolved Transformer's search started from the Transformer, So et al. 2019) followed
    by random designs, drawn exactly as :func:`random_search` draws them with the same seed
    and the same ``initial``. Then, each cycle: draw
    ``sample_size`` members of the population at random, take the fittest (highest accuracy,
    then fewer parameters) as the parent, evaluate a one-axis mutation of it, add the child
    and remove the *oldest* member -- not the worst: a design lives for a fixed number of
    cycles however lucky its evaluation was, which regularises the search against noise.

    Returns:
        The evaluations in the order they were made.

    Example:
        >>> ev = lambda a: Evaluation(a, a.width / 64, a.width, 1, 0.0)
        >>> history = regularized_evolution(SearchSpace(), ev, budget=8)
        >>> len(history), max(e.accuracy for e in history) >= history[0].accuracy
        (8, True)
    """
    _check_initial(space, initial, budget)
    if len(initial) > population_size:
        raise ValueError(f"{len(initial)} initial designs exceed the population of "
                         f"{population_size}")
    if population_size < 1 or not 1 <= sample_size <= population_size:
        raise ValueError(f"need population_size >= 1 and 1 <= sample_size <= population_size, "
                         f"got {population_size} and {sample_size}")
    rng = random.Random(seed)
    population: deque[Evaluation] = deque()
    history: list[Evaluation] = []
    while len(history) < budget:
        if len(history) < len(initial):
            child = evaluate(initial[len(history)])
        elif len(history) < population_size:
            child = evaluate(space.sample(rng))
        else:
            contenders = rng.sample(list(population), sample_size)
            parent = max(contenders, key=_fitness)
            child = evaluate(space.mutate(parent.arch, rng))
        population.append(child)
        history.append(child)
        if len(population) > population_size:
            population.popleft()  # the oldest dies
    return history


def best_so_far(history: Sequence[Evaluation]) -> list[float]:
    """The best validation accuracy after each evaluation of a search.

    Example:
        >>> a = Architecture(1, 1, 16, "softmax", "none")
        >>> best_so_far([Evaluation(a, x, 1, 1, 0.0) for x in (0.2, 0.1, 0.5)])
        [0.2, 0.2, 0.5]
    """
    out: list[float] = []
    for e in history:
        out.append(e.accuracy if not out else max(out[-1], e.accuracy))
    return out


# ----------------------------------------------------------------------- Pareto front


def dominates(a: Sequence[float], b: Sequence[float], maximise: Sequence[bool]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every objective and better on one.

    Example:
        >>> dominates((0.9, 100), (0.8, 100), (True, False))
        True
        >>> dominates((0.9, 100), (0.9, 100), (True, False))   # equal points: neither
        False
    """
    if not len(a) == len(b) == len(maximise):
        raise ValueError(f"points of {len(a)} and {len(b)} objectives with {len(maximise)} "
                         "directions")
    better = False
    for x, y, up in zip(a, b, maximise):
        if (x < y) if up else (x > y):
            return False
        better |= (x > y) if up else (x < y)
    return better


def pareto_front(points: Sequence[Sequence[float]] | torch.Tensor,
                 maximise: Sequence[bool]) -> list[int]:
    """Indices of the points that no other point dominates, in increasing order.

    A point is kept unless another is at least as good on every objective and strictly better
    on one; so duplicates of a front point are all kept, and of two points tied on one
    objective only the better on the other survives. O(N^2 K), fine for a search's history.

    Args:
        points: N points of K objectives, e.g. ``[(accuracy, params), ...]``.
        maximise: K flags: True where larger is better (accuracy), False where smaller is
            (parameters, FLOPs, latency).

    Shape:
        points (N, K) -> a list of at most N indices.

    Example:
        >>> pareto_front([(0.9, 300), (0.8, 100), (0.7, 200), (0.9, 300)], (True, False))
        [0, 1, 3]
    """
    pts = [tuple(float(v) for v in p) for p in (points.tolist() if isinstance(
        points, torch.Tensor) else points)]
    for i, p in enumerate(pts):
        if len(p) != len(maximise):
            raise ValueError(f"point {i} has {len(p)} objectives, maximise has {len(maximise)}")
        if any(math.isnan(v) for v in p):
            raise ValueError(f"point {i} has a NaN objective: {p}")
    return [i for i, p in enumerate(pts)
            if not any(dominates(q, p, maximise) for j, q in enumerate(pts) if j != i)]


# ---------------------------------------------------------------------------- latency


def measure_latency(model: nn.Module, ids: torch.Tensor, repeats: int = 5) -> float:
    """The median wall-clock seconds of one forward pass over ``ids`` (after one warm-up).

    A measurement, not a cost model: it varies with the machine and its load.

    Shape:
        ids (B, T) int64.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be positive, got {repeats}")
    model.eval()
    times = []
    with torch.no_grad():
        model(ids)
        for _ in range(repeats):
            began = time.perf_counter()
            model(ids)
            times.append(time.perf_counter() - began)
    return sorted(times)[len(times) // 2]

