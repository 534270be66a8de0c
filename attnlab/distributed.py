"""Train the book's GPT with DistributedDataParallel; run it with ``torchrun``.

::

    torchrun --standalone --nproc-per-node 2 -m attnlab.distributed --steps 200 --out runs/ddp

Each process (a *rank*) holds a replica of the model and draws its own
batches; after every backward pass DDP averages the gradients across ranks
(all-reduce), so every replica takes the same optimiser step and the
replicas stay identical. GPUs talk through NCCL, CPU processes through gloo.

At the end the ranks compare their parameters, and rank 0 writes
``report.json`` (losses, throughput, whether the replicas are identical) and
a checkpoint to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from attnlab.data import addition_task
from attnlab.models import GPT, GPTConfig, count_parameters
from attnlab.train import TrainConfig, fit, save_checkpoint, sequence_loss

__all__ = ["main", "replica_max_difference"]


def replica_max_difference(model: torch.nn.Module) -> float:
    """Largest difference between this rank's parameters and rank 0's (0.0 when identical)."""
    flat = torch.cat([p.detach().flatten() for p in model.parameters()]).float()
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    diff = (flat - reference).abs().max()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per rank and step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--n-train", type=int, default=20_000, help="addition examples")
    p.add_argument("--out", type=Path, default=Path("runs/ddp"), help="report and checkpoint")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on GPUs")
    p.add_argument("--no-ddp", action="store_true",
                   help="train each replica alone (no gradient all-reduce): they drift apart")
    return p.parse_args(argv)


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
        model = GPT(GPTConfig(vocab_size=task.tokenizer.vocab_size,
                              block_size=16)).to(device)  # "999+999=1998" framed: 14
        if args.no_ddp:
            ddp: torch.nn.Module = model
        else:
            ddp = DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)

        def batch_fn(step: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
            i = torch.randint(0, ids.shape[0], (args.batch_size,), generator=g)
            return ids[i], answer[i]

        def loss_fn(m: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            x, mask = batch
            return sequence_loss(m(x[:, :-1]), x[:, 1:], mask)

        # each rank draws different batches: its own seed
        config = TrainConfig(steps=args.steps, lr=args.lr, warmup=min(50, args.steps // 5),
                             device=str(device), amp=args.amp, seed=1000 + rank)
        start = time.perf_counter()
        history = fit(ddp, batch_fn, loss_fn, config)
        seconds = time.perf_counter() - start
        difference = replica_max_difference(model)
        tokens = args.steps * args.batch_size * (ids.shape[1] - 1) * world
        report = {
            "world_size": world,
            "ddp": not args.no_ddp,
            "backend": dist.get_backend(),
            "device": torch.cuda.get_device_name(device) if use_cuda else "cpu",
            "parameters": count_parameters(model),
            "steps": args.steps,
            "first_loss": history.loss[0],
            "last_loss": history.loss[-1],
            "tokens_per_second": tokens / seconds,
            "replica_max_difference": difference,
            "replicas_identical": difference == 0.0,
        }
        if rank == 0:
            args.out.mkdir(parents=True, exist_ok=True)
            save_checkpoint(args.out / "model.pt", model, step=args.steps)
            (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
            print(json.dumps(report, indent=2))
        dist.barrier()
        return report
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
