"""Two CPU processes under torchrun: DDP keeps the replicas identical; without it they drift."""

from __future__ import annotations

import json

import pytest
import torch

from attnlab.models import GPT, GPTConfig
from attnlab.train import load_checkpoint
from conftest import run, tool


def torchrun(out, *extra):
    proc = run([tool("torchrun"), "--standalone", "--nproc-per-node", "2", "-m",
                "attnlab.distributed", "--steps", "12", "--n-train", "500", "--batch-size", "16",
                "--out", str(out), *extra], env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("ddp", [True, False], ids=["ddp", "no-ddp"])
def test_ddp_replicas_stay_identical(tmp_path, ddp):
    report = torchrun(tmp_path, *([] if ddp else ["--no-ddp"]))
    assert report["world_size"] == 2 and report["backend"] == "gloo"
    assert report["last_loss"] < report["first_loss"]
    if ddp:
        assert report["replicas_identical"] and report["replica_max_difference"] == 0.0
    else:  # each rank saw other batches: the check above is able to fail
        assert not report["replicas_identical"] and report["replica_max_difference"] > 1e-4
    model = GPT(GPTConfig(vocab_size=15, block_size=16))
    assert load_checkpoint(tmp_path / "model.pt", model) == 12
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_distributed_refuses_to_run_without_torchrun(monkeypatch):
    from attnlab import distributed

    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit, match="start this with torchrun"):
        distributed.main(["--steps", "1"])
