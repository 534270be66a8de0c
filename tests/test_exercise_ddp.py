"""Exercise set 7, question 9 grades a data-parallel step against one process's step on the whole
batch. Here real DDP runs the question's public case (2 ranks) and its 4-rank case on gloo
processes, and every replica must end where the question's reference says."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from attnlab.grading.codec import build_model
from attnlab.grading.compare import reference_outputs
from attnlab.grading.grade import bundled_tests
from attnlab.grading.spec import load_set


def _rank(rank: int, world: int, spec, x, y, lr: float, out: str) -> None:
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel

    from attnlab.distributed import shard_indices

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/store", rank=rank,
                            world_size=world)  # a file store: no port to race for
    try:
        model = build_model(spec)  # seeded: the same weights on every rank
        ddp = DistributedDataParallel(model)
        shard = shard_indices(x.shape[0], rank, world)
        F.cross_entropy(ddp(x[shard]), y[shard]).backward()  # the all-reduce runs here
        torch.optim.SGD(model.parameters(), lr=lr).step()
        torch.save([p.detach().clone() for p in model.parameters()], f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _q9():
    return load_set(bundled_tests() / "07_gpu_transformer").question("q9")


@pytest.mark.parametrize("index", [i for i, (c, _) in enumerate(_q9().cases) if c.args[3] > 1][:2])
def test_ddp_on_gloo_processes_ends_where_the_question_says(index, tmp_path):
    q = _q9()
    spec, x, y, world, lr = q.cases[index][0].args
    mp.spawn(_rank, args=(world, spec, x, y, lr, str(tmp_path)), nprocs=world,
             join=True)
    expected = reference_outputs(q)[index].value
    replicas = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    for got, want in zip(replicas, expected, strict=True):
        for p, w in zip(got, want, strict=True):
            torch.testing.assert_close(p, w, atol=1e-6, rtol=1e-5)
    before = [p.detach() for p in build_model(spec).parameters()]  # the step moved them:
    assert max((a - b).abs().max().item() for a, b in zip(replicas[0], before)) > 1e-3
