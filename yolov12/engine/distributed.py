"""Process-group facts for the loop. The launcher (torchrun, Ray Train) owns the group; the engine only reads it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def current_context() -> DistributedContext:
    """Rank and world size of the initialised default process group (single process when there is none)."""
    if dist.is_available() and dist.is_initialized():
        import os  # noqa: PLC0415

        return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistributedContext()


def per_rank_batch(batch: int, world_size: int) -> int:
    """Images each rank loads per step: ``batch`` is global (Ultralytics' meaning), split evenly over the ranks.

    Raises:
        ValueError: ``batch`` is not a multiple of ``world_size`` (one line with the nearest valid values).
    """
    if batch % world_size:
        lower, upper = max(batch // world_size, 1) * world_size, (batch // world_size + 1) * world_size
        raise ValueError(f"batch={batch} is the global batch and must split evenly over {world_size} workers; "
                         f"use batch={lower} or batch={upper}")
    return batch // world_size


def sum_gradients_hook(process_group, bucket):
    """DDP communication hook: all-reduce gradients as a SUM over ranks (DDP's default is the mean).

    Our losses are sums over the batch and ``plan_optimiser`` divides the accumulation by the world size, so the
    gradient of one optimiser step covers ``nbs`` images whether they come from one process or from many.
    """
    work = dist.all_reduce(bucket.buffer(), group=process_group, async_op=True)
    return work.get_future().then(lambda future: future.value()[0])


def wrap_model(model: nn.Module, context: DistributedContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel (summing gradients) when several processes train together, the model otherwise."""
    if not context.is_distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    wrapped = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    wrapped.register_comm_hook(None, sum_gradients_hook)
    return wrapped


def broadcast_object(value, context: DistributedContext, source: int = 0):
    """Share a picklable value from ``source`` with every rank (identity in a single process)."""
    if not context.is_distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=source)
    return holder[0]
