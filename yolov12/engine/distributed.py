"""Process-group facts for the loop. The launcher (torchrun, Ray Train) owns the group; the engine only reads it."""

from __future__ import annotations

import functools
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


def _times(gradient: torch.Tensor, factor: float) -> torch.Tensor:
    return gradient * factor


def scale_incoming_gradients(module: nn.Module, factor: float) -> None:
    """Multiply every gradient that reaches a trainable parameter of ``module`` by ``factor`` before it is
    accumulated into ``.grad`` (a tensor hook; gradient probes with ``torch.autograd.grad`` see it too)."""
    for parameter in module.parameters():
        if parameter.requires_grad:
            parameter.register_hook(functools.partial(_times, factor=factor))


def wrap_model(model: nn.Module, context: DistributedContext, device: torch.device) -> nn.Module:
    """DistributedDataParallel whose gradients are the SUM over ranks when several processes train together, the
    model otherwise.

    Our losses are sums over the batch and ``plan_optimiser`` divides the accumulation by the world size, so the
    gradient of one optimiser step must cover ``nbs`` images whether they come from one process or from many. DDP
    all-reduces ``.grad`` after every backward, and with accumulation ``.grad`` already holds the reduced gradient
    of the earlier passes: a SUM all-reduce would count that part once per rank. So each rank's new gradient
    enters at ``world_size`` times its value (:func:`scale_incoming_gradients`) and DDP averages: the mean of
    ``reduced + world_size * local`` over ranks is ``reduced + sum of local``, after one backward or several.
    Modules trained beside the model (distillation adapters) are wrapped the same way.
    """
    if not context.is_distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    scale_incoming_gradients(model, float(context.world_size))
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def broadcast_object(value, context: DistributedContext, source: int = 0):
    """Share a picklable value from ``source`` with every rank (identity in a single process)."""
    if not context.is_distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=source)
    return holder[0]
