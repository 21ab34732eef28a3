"""Validation spread over the ranks of a DDP job: each rank predicts its share of the batches, rank 0 evaluates.

The validation loader's batches are dealt out round-robin (batch ``b`` to rank ``b % world_size``, the batches
themselves unchanged, so rectangular batches keep their shapes). Each rank runs the model on its batches and the
per-image predictions and ground truth are gathered to rank 0 (``torch.distributed.gather_object``), which adds them
to one evaluator in the loader's order: the metrics are those of one process validating the whole split, from
``1 / world_size`` of the model time. Every rank must validate the same weights (:func:`broadcast_module` first).

Example:
    >>> metrics = evaluate_on_ranks(ema_model, val_loader, names, device, context)  # doctest: +SKIP
    >>> metrics  # rank 0: the metrics; every other rank: {}  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from yolov12.engine.distributed import DistributedContext
from yolov12.engine.evaluate import evaluate, iter_classification_batches, iter_detection_batches
from yolov12.eval.classification_metrics import ClassificationEvaluator
from yolov12.eval.detection_metrics import COCOEvaluator
from yolov12.tasks import task_spec


class RoundRobinBatches(Sampler[list[int]]):
    """Batch sampler of batches ``rank, rank + world_size, ...`` of a sequential ``batch_size`` batching of
    ``length`` items (no padding, no repeats: the shards of all ranks are exactly the batches of the split)."""

    def __init__(self, length: int, batch_size: int, rank: int, world_size: int) -> None:
        self.length, self.batch_size, self.rank, self.world_size = length, batch_size, rank, world_size

    def positions(self) -> range:
        """Positions of this rank's batches in the sequential batching."""
        return range(self.rank, -(-self.length // self.batch_size), self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        for position in self.positions():
            start = position * self.batch_size
            yield list(range(start, min(start + self.batch_size, self.length)))

    def __len__(self) -> int:
        return len(self.positions())


def shard_loader(loader: DataLoader, context: DistributedContext) -> DataLoader:
    """This rank's round-robin share of the batches of a sequential validation ``loader`` (same dataset, workers
    and collation)."""
    sampler = RoundRobinBatches(len(loader.dataset), loader.batch_size, context.rank, context.world_size)
    return DataLoader(loader.dataset, batch_sampler=sampler, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn)


def broadcast_module(module: nn.Module, context: DistributedContext) -> None:
    """Copy rank 0's parameters and buffers into ``module`` on every rank (in place; nothing when single)."""
    if not context.is_distributed:
        return
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def _gather(items: list[tuple[int, Any]], context: DistributedContext) -> list[Any]:
    """On rank 0: every rank's ``(position, value)`` items, values in position order; [] on the other ranks."""
    gathered: list[list[tuple[int, Any]]] | None = [[] for _ in range(context.world_size)] if context.rank == 0 \
        else None
    dist.gather_object(items, gathered, dst=0)
    if gathered is None:
        return []
    return [value for _, value in sorted((item for part in gathered for item in part), key=lambda item: item[0])]


def _detection(model: nn.Module, loader: DataLoader, names: dict[int, str], device: torch.device,
               context: DistributedContext) -> dict[str, float]:
    shard = shard_loader(loader, context)
    results = list(zip(shard.batch_sampler.positions(), iter_detection_batches(model, shard, device)))
    batches = _gather(results, context)
    if context.rank != 0:
        return {}
    evaluator = COCOEvaluator(len(names), names=names)
    for predictions, ground_truth, image_ids in batches:
        evaluator.update(predictions, ground_truth, image_ids=image_ids)
    return evaluator.compute().results_dict()


def _classification(model: nn.Module, loader: DataLoader, names: dict[int, str], device: torch.device,
                    context: DistributedContext) -> dict[str, float]:
    shard = shard_loader(loader, context)
    results = [(position, (scores, classes)) for position, (scores, classes, _) in
               zip(shard.batch_sampler.positions(), iter_classification_batches(model, shard, device))]
    batches = _gather(results, context)
    if context.rank != 0:
        return {}
    evaluator = ClassificationEvaluator(len(names))
    for scores, classes in batches:
        evaluator.update(scores, classes)
    return evaluator.compute().results_dict()


def evaluate_on_ranks(model: nn.Module, loader: DataLoader, names: dict[int, str], device: torch.device,
                      context: DistributedContext) -> dict[str, float]:
    """Validation metrics of ``model`` on the whole of ``loader`` (a sequential, unshuffled loader), with the
    prediction spread over the ranks. Call it on every rank; returns the metrics on rank 0 and ``{}`` elsewhere.
    A single process validates as :func:`~yolov12.engine.evaluate.evaluate` does (it is called).
    """
    if not context.is_distributed:
        return evaluate(model, loader, names, device)
    if task_spec(getattr(model, "task", "detect")).predicts_boxes:
        return _detection(model, loader, names, device, context)
    return _classification(model, loader, names, device, context)
