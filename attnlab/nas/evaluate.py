"""One evaluation of a design: a token task, a short fixed training budget, validation accuracy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from attnlab.data.symbols import reversal_task
from attnlab.nas.candidate import CandidateModel, build_model, flops_per_example, parameter_count
from attnlab.nas.space import Architecture
from attnlab.train import TrainConfig, fit, sequence_loss

__all__ = [
    "TokenTask",
    "reversal_token_task",
    "EvalConfig",
    "Evaluation",
    "token_accuracy",
    "train_and_evaluate",
    "CachedEvaluator",
]


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
