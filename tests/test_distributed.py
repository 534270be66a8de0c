"""Two CPU processes under torchrun: DDP keeps the replicas identical and its gradients equal one
process's; without it they drift; FSDP shards the parameters and trains the same way."""

from __future__ import annotations

import json

import pytest
import torch

from attnlab.distributed import shard_indices
from attnlab.models import GPT, GPTConfig
from attnlab.train import load_checkpoint
from conftest import run, tool


def torchrun(out, *extra):
    proc = run([tool("torchrun"), "--standalone", "--nproc-per-node", "2", "-m",
                "attnlab.distributed", "--steps", "12", "--n-train", "500", "--batch-size", "16",
                "--out", str(out), *extra], env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("mode", ["ddp", "no-ddp", "fsdp"])
def test_replicas_and_gradients(tmp_path, mode):
    extra = {"ddp": ["--grad-accum", "2", "--check-gradients"], "no-ddp": ["--no-ddp"],
             "fsdp": ["--fsdp", "--check-gradients"]}[mode]
    report = torchrun(tmp_path, *extra)
    assert report["world_size"] == 2 and report["backend"] == "gloo"
    assert report["last_loss"] < report["first_loss"]
    assert report["shard_size"] == 250  # each rank trains on its half of the 500 examples
    if mode == "no-ddp":  # each rank saw other batches: the check below is able to fail
        assert not report["replicas_identical"] and report["replica_max_difference"] > 1e-4
    else:  # the all-reduced gradient is one process's gradient of the mean micro-batch loss
        assert report["replicas_identical"] and report["replica_max_difference"] == 0.0
        assert report["gradient_max_difference"] < 1e-6
    if mode == "fsdp":  # each rank stores about half of every parameter
        assert report["parameter_bytes_per_rank"] < 0.55 * report["parameter_bytes_full"]
    else:
        assert report["parameter_bytes_per_rank"] == report["parameter_bytes_full"]
    assert report["step_seconds"] > 0 and report["grad_accum"] == (2 if mode == "ddp" else 1)
    model = GPT(GPTConfig(vocab_size=15, block_size=16))
    assert load_checkpoint(tmp_path / "model.pt", model) == 12
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_shards_are_disjoint_and_cover_the_data():
    shards = [shard_indices(10, r, 3) for r in range(3)]
    assert sorted(torch.cat(shards).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="rank"):
        shard_indices(10, 3, 3)


def test_distributed_refuses_to_run_without_torchrun(monkeypatch):
    from attnlab import distributed

    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit, match="start this with torchrun"):
        distributed.main(["--steps", "1"])
    with pytest.raises(SystemExit):  # argparse: --fsdp and --no-ddp exclude each other
        distributed.main(["--fsdp", "--no-ddp"])
