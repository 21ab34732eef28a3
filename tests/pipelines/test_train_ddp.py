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


def _rank_gradient(rank: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        inputs = torch.linspace(-1, 1, 24).view(8, 3)
        wrapped = wrap_model(model, current_context(), torch.device("cpu"))
        wrapped(inputs[rank * 4:(rank + 1) * 4]).pow(2).sum().backward()  # a per-batch SUM, like our losses
        results[rank] = [p.grad.clone() for p in model.parameters()]
    finally:
        dist.destroy_process_group()


def _rank_accumulated_gradient(rank: int, port: int, results: dict) -> None:
    """Two backward passes before the optimiser step, each on this rank's quarter of the 8 inputs."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
        inputs = torch.linspace(-1, 1, 24).view(8, 3)
        wrapped = wrap_model(model, current_context(), torch.device("cpu"))
        for step in range(2):
            start = step * 4 + rank * 2
            wrapped(inputs[start:start + 2]).pow(2).sum().backward()
        results[rank] = [p.grad.clone() for p in model.parameters()]
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("rank_step", [_rank_gradient, _rank_accumulated_gradient],
                         ids=["one-pass", "accumulated-passes"])
def test_ddp_sums_gradients_once_so_two_half_batches_equal_one_full_batch(rank_step) -> None:
    """One backward pass per rank, or several accumulated ones: each rank ends with the full batch's gradient."""
    results = mp.Manager().dict()
    mp.spawn(rank_step, args=(_free_port(), results), nprocs=2, join=True)
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    reference(torch.linspace(-1, 1, 24).view(8, 3)).pow(2).sum().backward()
    for rank in (0, 1):
        for got, want in zip(results[rank], reference.parameters()):
            torch.testing.assert_close(got, want.grad)


def test_accumulation_is_planned_for_the_global_batch() -> None:
    optim = OptimSection(nbs=64)
    assert plan_optimiser(optim, 8 * 1, 100, 10).accumulate == 8  # one process, batch 8
    assert plan_optimiser(optim, 8 * 2, 100, 10).accumulate == 4  # global batch 16 (2 ranks x 8): half as many merged
    assert plan_optimiser(optim, 32 * 8, 100, 10).accumulate == 1
