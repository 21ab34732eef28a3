"""DDP as Ray Train workers run it: two gloo ranks on half batches give the single-process full-batch gradient."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from yolov12.config.train import OptimSection
from yolov12.engine.distributed import current_context, wrap_model
from yolov12.engine.optim import plan_optimiser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))


INPUTS = torch.linspace(-1, 1, 24).view(8, 3)
PASSES = (1, 2)  # backward passes before the optimiser step; each rank's share of the 8 inputs is split over them


def _rank_gradients(rank: int, port: int, results: dict) -> None:
    """For each pass count: this rank's gradient after that many backward passes on its half of the inputs."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        for passes in PASSES:
            model = _tiny_model()
            wrapped = wrap_model(model, current_context(), torch.device("cpu"))
            size = len(INPUTS) // 2 // passes
            for step in range(passes):
                start = step * 2 * size + rank * size
                wrapped(INPUTS[start:start + size]).pow(2).sum().backward()  # a per-batch SUM, like our losses
            results[(rank, passes)] = [p.grad.clone() for p in model.parameters()]
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_sums_gradients_once_so_two_half_batches_equal_one_full_batch() -> None:
    """One backward pass per rank, or several accumulated ones: each rank ends with the full batch's gradient."""
    results = mp.Manager().dict()
    mp.spawn(_rank_gradients, args=(_free_port(), results), nprocs=2, join=True)
    reference = _tiny_model()
    reference(INPUTS).pow(2).sum().backward()
    for rank in (0, 1):
        for passes in PASSES:
            for got, want in zip(results[(rank, passes)], reference.parameters()):
                torch.testing.assert_close(got, want.grad, msg=f"rank {rank}, {passes} passes")


def test_accumulation_is_planned_for_the_global_batch() -> None:
    optim = OptimSection(nbs=64)
    assert plan_optimiser(optim, 8 * 1, 100, 10).accumulate == 8  # one process, batch 8
    assert plan_optimiser(optim, 8 * 2, 100, 10).accumulate == 4  # global batch 16 (2 ranks x 8): half as many merged
    assert plan_optimiser(optim, 32 * 8, 100, 10).accumulate == 1
