"""Train the book's GPT with DistributedDataParallel (or FSDP); run it with ``torchrun``.

::

    torchrun --standalone --nproc-per-node 2 -m attnlab.distributed --steps 200 --out runs/ddp

The loop is nanoGPT's (``train.py``): each process (a *rank*) holds a replica
of the model and draws its micro-batches from its own shard of the training
set (rank r takes examples r, r + W, r + 2W, ... of W ranks). An optimiser
step accumulates the gradients of ``--grad-accum`` micro-batches, each loss
divided by their number; the backward passes of all but the last run under
DDP's ``no_sync()``, so the ranks exchange gradients once per step: during
the last backward pass DDP averages them across ranks (all-reduce), every
replica takes the same optimiser step, and the replicas stay identical. GPUs
talk through NCCL, CPU processes through gloo.

``--check-gradients`` checks the all-reduce: after the first step's backward
passes, rank 0 recomputes, in one process, the gradient of the mean of every
micro-batch loss of every rank (the ranks send it their micro-batches), and
compares it with the gradient DDP left on each replica. With ``--fsdp`` the
model is sharded instead (``torch.distributed.fsdp.fully_shard``, ZeRO stage
3): each rank stores only its 1/W of every parameter, gradient and optimiser
state, and gathers a layer's full weights just before using them.

At the end the ranks compare their parameters, and rank 0 writes
``report.json`` (losses, time per step, throughput, whether the replicas are
identical, the gradient check) and a checkpoint to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from attnlab.data import addition_task
from attnlab.models import GPT, GPTConfig, count_parameters
from attnlab.train import TrainConfig, lr_at, save_checkpoint, sequence_loss

__all__ = ["main", "replica_max_difference", "shard_indices"]


def _full(p: torch.Tensor) -> torch.Tensor:
    """A parameter's full value: a sharded (DTensor) one is gathered from every rank."""
    return p.full_tensor() if hasattr(p, "full_tensor") else p


def replica_max_difference(model: torch.nn.Module) -> float:
    """Largest difference between this rank's parameters and rank 0's (0.0 when identical)."""
    flat = torch.cat([_full(p).detach().flatten() for p in model.parameters()]).float()
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    diff = (flat - reference).abs().max()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


def shard_indices(n: int, rank: int, world: int) -> torch.Tensor:
    """The examples rank ``rank`` of ``world`` trains on: ``rank, rank + world, ...``.

    Example:
        >>> shard_indices(7, 1, 3).tolist()
        [1, 4]
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in [0, {world}), got {rank}")
    return torch.arange(rank, n, world)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per micro-batch")
    p.add_argument("--grad-accum", type=int, default=1,
                   help="micro-batches per optimiser step and rank")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--n-train", type=int, default=20_000, help="addition examples")
    p.add_argument("--out", type=Path, default=Path("runs/ddp"), help="report and checkpoint")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on GPUs")
    p.add_argument("--check-gradients", action="store_true",
                   help="compare the first step's gradients with one process's")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-ddp", action="store_true",
                      help="train each replica alone (no gradient all-reduce): they drift apart")
    mode.add_argument("--fsdp", action="store_true",
                      help="shard parameters, gradients and optimiser state (FSDP2, ZeRO-3)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.grad_accum < 1:
        p.error("--steps, --batch-size and --grad-accum must be positive")
    return args


def _check_gradients(model: torch.nn.Module, reference: torch.nn.Module,
                     batches: list[tuple[torch.Tensor, torch.Tensor]], loss_fn: Any,
                     device: torch.device) -> float:
    """Max |DDP's gradient - one process's gradient of the mean micro-batch loss| (all ranks)."""
    world = dist.get_world_size()
    stacked = [torch.stack([b[i] for b in batches]) for i in (0, 1)]  # (accum, B, L) each
    gathered = [[torch.empty_like(t) for _ in range(world)] for t in stacked]
    for t, out in zip(stacked, gathered):
        dist.all_gather(out, t)
    grads = [_full(p.grad) for p in model.parameters()]  # FSDP: gathered on every rank
    diff = torch.zeros((), device=device)
    if dist.get_rank() == 0:
        micro = [(x, m) for xs, ms in zip(*gathered) for x, m in zip(xs, ms)]
        reference.zero_grad(set_to_none=True)
        for x, m in micro:
            (loss_fn(reference, x, m) / len(micro)).backward()
        for grad, r in zip(grads, reference.parameters()):
            diff = torch.maximum(diff, (grad - r.grad).abs().max())
    dist.broadcast(diff, src=0)
    return float(diff)


def main(argv: list[str] | None = None) -> dict:
    """Train on every rank; return (and on rank 0 write) the report."""
    args = _parse(argv)
    if "RANK" not in os.environ:
        raise SystemExit("start this with torchrun, e.g. "
                         "torchrun --standalone --nproc-per-node 2 -m attnlab.distributed")
    use_cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    try:
        torch.manual_seed(0)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
        task = addition_task(args.n_train, 100, seed=0)
        ids, answer = task.tensors("train")
        shard = shard_indices(ids.shape[0], rank, world)  # this rank's examples
        model = GPT(GPTConfig(vocab_size=task.tokenizer.vocab_size,
                              block_size=16)).to(device)  # "999+999=1998" framed: 14
        reference = copy.deepcopy(model) if args.check_gradients and rank == 0 else None
        full_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        if args.fsdp:
            from torch.distributed.fsdp import fully_shard

            for block in model.blocks:
                fully_shard(block)
            fully_shard(model)
            net: torch.nn.Module = model
        elif args.no_ddp:
            net = model
        else:
            net = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)
        local_bytes = sum((p.to_local() if hasattr(p, "to_local") else p).numel()
                          * p.element_size() for p in model.parameters())
        decay = [p for p in model.parameters() if p.dim() >= 2]
        rest = [p for p in model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                       {"params": rest, "weight_decay": 0.0}],
                                      lr=args.lr, betas=(0.9, 0.99))
        schedule = TrainConfig(steps=args.steps, lr=args.lr, warmup=min(50, args.steps // 5))
        g = torch.Generator().manual_seed(1000 + rank)  # each rank its own draws

        def micro_batch() -> tuple[torch.Tensor, torch.Tensor]:
            i = shard[torch.randint(0, shard.numel(), (args.batch_size,), generator=g)]
            return ids[i].to(device), answer[i].to(device)

        def loss_fn(m: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device.type, torch.bfloat16, enabled=args.amp and use_cuda):
                return sequence_loss(m(x[:, :-1]), x[:, 1:], mask)

        losses, step_times, grad_diff = [], [], None
        for step in range(args.steps):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, schedule)
            if use_cuda:
                torch.cuda.synchronize()
            began = time.perf_counter()
            batches, total = [], 0.0
            for micro in range(args.grad_accum):
                x, mask = micro_batch()
                batches.append((x, mask))
                last = micro == args.grad_accum - 1
                if args.fsdp:  # FSDP2's no_sync: reduce-scatter the gradients only at the last
                    net.set_requires_gradient_sync(last)
                    sync: Any = contextlib.nullcontext()
                elif isinstance(net, DistributedDataParallel) and not last:
                    sync = net.no_sync()  # accumulate locally; no all-reduce yet
                else:
                    sync = contextlib.nullcontext()
                with sync:
                    loss = loss_fn(net, x, mask) / args.grad_accum
                    loss.backward()
                total += float(loss.detach())
            if step == 0 and args.check_gradients:
                grad_diff = _check_gradients(model, reference, batches, loss_fn, device)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if use_cuda:
                torch.cuda.synchronize()
            if step > 0 or args.steps == 1:  # the first step pays for start-up
                step_times.append(time.perf_counter() - began)
            losses.append(total)
        difference = replica_max_difference(model)
        step_s = statistics.median(step_times)
        tokens = args.batch_size * args.grad_accum * (ids.shape[1] - 1) * world
        report = {
            "world_size": world,
            "ddp": not (args.no_ddp or args.fsdp),
            "fsdp": args.fsdp,
            "backend": dist.get_backend(),
            "device": torch.cuda.get_device_name(device) if use_cuda else "cpu",
            "parameters": count_parameters(model),
            "parameter_bytes_full": full_bytes,
            "parameter_bytes_per_rank": local_bytes,
            "steps": args.steps,
            "grad_accum": args.grad_accum,
            "batch_size": args.batch_size,
            "shard_size": int(shard.numel()),
            "first_loss": losses[0],
            "last_loss": sum(losses[-5:]) / len(losses[-5:]),
            "step_seconds": step_s,
            "tokens_per_second": tokens / step_s,
            "replica_max_difference": difference,
            "replicas_identical": difference == 0.0,
            "gradient_max_difference": grad_diff,
        }
        if rank == 0:
            args.out.mkdir(parents=True, exist_ok=True)
            state = {k: _full(v) for k, v in model.state_dict().items()}
            plain = GPT(model.config)
            plain.load_state_dict(state)
            save_checkpoint(args.out / "model.pt", plain, step=args.steps)
            (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            print(json.dumps(report, indent=2))
        elif args.fsdp:
            for v in model.state_dict().values():  # every rank takes part in the gathers
                _full(v)
        dist.barrier()
        return report
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
