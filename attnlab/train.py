"""One small training loop for every chapter.

:func:`fit` takes a model, a function that draws a batch, a function that
turns a batch into a loss, and a :class:`TrainConfig`. It handles the device,
bf16 autocast on GPUs, gradient clipping, a warm-up + cosine learning-rate
schedule, periodic evaluation, checkpoints and a :class:`History` for plots.

Example:
    >>> model = torch.nn.Linear(1, 1)
    >>> x = torch.linspace(-1, 1, 64)[:, None]
    >>> history = fit(model, lambda step, g: (x, 3 * x),
    ...               lambda m, batch: F.mse_loss(m(batch[0]), batch[1]),
    ...               TrainConfig(steps=300, lr=0.1, warmup=10, device="cpu"))
    >>> abs(model.weight.item() - 3.0) < 0.05
    True
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.utils import pick_device

__all__ = ["TrainConfig", "History", "fit", "lr_at", "save_checkpoint", "load_checkpoint",
           "sequence_loss"]

Batch = Any


@dataclass
class TrainConfig:
    """How to train; the defaults suit the book's small models."""

    steps: int = 1000  # optimiser steps
    lr: float = 3e-3  # peak learning rate (AdamW)
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio
    warmup: int = 100  # steps of linear warm-up from 0 to lr
    weight_decay: float = 0.01  # decoupled weight decay (AdamW) on matrices only
    betas: tuple[float, float] = (0.9, 0.99)  # AdamW betas; 0.99 suits short runs
    grad_clip: float | None = 1.0  # clip the global gradient norm (None: never)
    eval_every: int | None = None  # evaluate every n steps (and always at the end)
    device: str | None = None  # None: pick_device() (CUDA, then MPS, then CPU)
    amp: bool = True  # bf16 autocast where the device supports it (CUDA); fp32 on CPU
    amp_cpu: bool = False  # bf16 autocast on the CPU too (it works there, often slower)
    compile: bool = False  # torch.compile the model (a GPU option; slow to start)
    checkpoint: str | None = None  # save the model here at the end (and at each eval)
    progress: bool | None = None  # a tqdm bar; None: only when stderr is a terminal
    seed: int = 0  # seeds the generator handed to the batch function
    log_every: int = 10  # record the training loss every n steps
    # check that the loss is finite every n steps (and at the last): reading a value from the
    # device waits for it, so a check at every step would stall a GPU's queue of kernels
    check_every: int = 10


@dataclass
class History:
    """What happened during training, for plots and asserts."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds since the start, per logged step
    eval_steps: list[int] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0  # the training loop, evaluations excluded
    eval_seconds: float = 0.0  # time spent in evaluations (and checkpoints) during training

    def metric(self, name: str) -> list[float]:
        """The values of one evaluation metric, in order."""
        return [e[name] for e in self.evals]

    def throughput(self, items_per_step: float, skip: int = 1) -> float:
        """Items (e.g. tokens) per second over the logged steps after the first ``skip``.

        Skipping the first logged step leaves out start-up costs (the first
        kernels, ``torch.compile``).
        """
        if len(self.steps) <= skip:
            raise ValueError(f"need more than {skip} logged steps, have {len(self.steps)}")
        steps = self.steps[-1] - self.steps[skip]
        return items_per_step * steps / (self.times[-1] - self.times[skip])

    @property
    def last(self) -> dict[str, float]:
        """The final evaluation."""
        return self.evals[-1] if self.evals else {}


def lr_at(step: int, config: TrainConfig) -> float:
    """The learning rate at ``step``: linear warm-up, then cosine decay.

    Example:
        >>> c = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.0)
        >>> [round(lr_at(s, c), 3) for s in (0, 9, 10, 55, 100)]
        [0.1, 1.0, 1.0, 0.5, 0.0]
    """
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    span = max(1, config.steps - config.warmup)
    progress = min(1.0, (step - config.warmup) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(model: nn.Module, config: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas,
                             **({"fused": True} if fused else {}))


def _to(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def _progress(config: TrainConfig):  # noqa: ANN202 - a tqdm or a stand-in
    show = config.progress
    if show is None:
        show = sys.stderr.isatty() and os.environ.get("ATTNLAB_PROGRESS", "1") != "0"
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=config.steps, unit="step", dynamic_ncols=True)


def fit(
    model: nn.Module,
    batch_fn: Callable[[int, torch.Generator], Batch],
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
    config: TrainConfig,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
) -> History:
    """Train ``model`` for ``config.steps`` steps and return its :class:`History`.

    Args:
        model: the model; moved to the chosen device.
        batch_fn: ``batch_fn(step, generator)`` returns a batch (tensors, or
            tuples/dicts of them) on any device; it is moved to the model's.
        loss_fn: ``loss_fn(model, batch)`` returns a scalar loss.
        config: the :class:`TrainConfig`.
        eval_fn: ``eval_fn(model)`` returns metrics; called every
            ``config.eval_every`` steps and at the end, in eval mode without
            gradients.

    Returns:
        A :class:`History` with the training loss and learning rate every
        ``log_every`` steps, the evaluations and the time taken.
    """
    if config.steps < 1:
        raise ValueError(f"steps must be positive, got {config.steps}")
    if config.log_every < 1 or config.check_every < 1:
        raise ValueError(f"log_every and check_every must be positive, got "
                         f"{config.log_every} and {config.check_every}")
    device = pick_device(config.device)
    model.to(device)
    use_amp = config.amp and (
        (device.type == "cuda" and torch.cuda.is_bf16_supported())
        or (device.type == "cpu" and config.amp_cpu))
    optimizer = _optimizer(model, config, fused=device.type == "cuda")
    step_model = torch.compile(model) if config.compile else model
    generator = torch.Generator().manual_seed(config.seed)
    history = History()
    bar = _progress(config)

    def evaluate(step: int) -> None:
        if eval_fn is None:
            return
        began = time.perf_counter()
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=use_amp):
            metrics = {k: float(v) for k, v in eval_fn(model).items()}
        model.train()
        history.eval_steps.append(step)
        history.evals.append(metrics)
        if bar is not None:
            bar.set_postfix(metrics)
        if config.checkpoint:
            save_checkpoint(config.checkpoint, model, optimizer, step, config)
        history.eval_seconds += time.perf_counter() - began

    model.train()
    start = time.perf_counter()
    for step in range(config.steps):
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = _to(batch_fn(step, generator), device)
        with torch.autocast(device.type, torch.bfloat16, enabled=use_amp):
            loss = loss_fn(step_model, batch)
        last = step == config.steps - 1
        if (step % config.check_every == 0 or last) and not torch.isfinite(loss):
            value = float(loss.detach())
            raise FloatingPointError(f"the loss is {value} at step {step}; lower the lr?")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if step % config.log_every == 0 or last:
            history.steps.append(step)
            history.loss.append(float(loss.detach()))
            history.lr.append(lr)
            # training time so far: float(loss) has synchronised; evaluations are left out
            history.times.append(time.perf_counter() - start - history.eval_seconds)
        if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.steps:
            evaluate(step + 1)
        if bar is not None:
            bar.update(1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    history.seconds = time.perf_counter() - start - history.eval_seconds
    evaluate(config.steps)
    if config.checkpoint and eval_fn is None:
        save_checkpoint(config.checkpoint, model, optimizer, config.steps, config)
    if bar is not None:
        bar.close()
    model.eval()
    return history


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor,
                  mask: torch.Tensor | None = None, ignore_index: int = 0) -> torch.Tensor:
    """Mean cross-entropy over the positions that count.

    Args:
        logits: (B, T, V).
        targets: (B, T) ids.
        mask: (B, T) bool, True where the loss counts; default: where
            ``targets != ignore_index``.
        ignore_index: the padding id, used when ``mask`` is None.

    Example:
        >>> logits = torch.zeros(1, 2, 4)
        >>> round(float(sequence_loss(logits, torch.tensor([[3, 0]]))), 4)  # log 4
        1.3863
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, T, V) and targets (B, T); got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    if mask is None:
        mask = targets != ignore_index
    if mask.shape != targets.shape or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool (B, T) tensor like targets {tuple(targets.shape)}")
    losses = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    mask = mask.flatten()
    return (losses * mask).sum() / mask.sum().clamp_min(1)


def save_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None, step: int = 0,
                    config: TrainConfig | None = None) -> None:
    """Save the model's weights (and optimiser state) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "step": step,
             "optimizer": optimizer.state_dict() if optimizer is not None else None,
             "config": asdict(config) if config is not None else None}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> int:
    """Load weights saved by :func:`save_checkpoint` into ``model``; return the step."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    device = next(model.parameters()).device
    state = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path} is not an attnlab checkpoint")
    model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])
