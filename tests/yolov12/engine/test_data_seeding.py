"""Each rank (and each loader worker) draws its own augmentation; a (seed, epoch, rank) reproduces it exactly.

The loaders are built as rank 0 and rank 1 of a 2-process job (the distributed sampler needs no process group when it
is told the rank). Every record of the training split is made the same image, so whichever indices the sampler gives
a rank, the batches differ only where the random draws differ: mosaic partners and centre, affine, colour, flips.
Before each epoch the process-wide generators are seeded the same way on every rank, as a launcher that seeds each
process alike leaves them.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from yolov12.config.train import TrainConfig
from yolov12.engine.data_setup import TrainingData, build_training_data, stream_seed
from yolov12.engine.distributed import DistributedContext

DETECT = dict(data="sample", imgsz=64, batch=4, fraction=0.25, val=False, seed=7, mosaic=1.0, close_mosaic=0,
              mixup=0.5, degrees=10.0)
CLASSIFY = dict(data="sample-cls", imgsz=32, batch=4, fraction=0.25, val=False, seed=7)


def _loader(task: str, rank: int, workers: int, **keys) -> TrainingData:
    config = TrainConfig.from_overrides({**keys, "workers": workers})
    data = build_training_data(config, task, DistributedContext(rank=rank, world_size=2))
    dataset = data.train_loader.dataset
    dataset.records = [dataset.records[0]] * len(dataset.records)  # one image: batches differ by the draws only
    if getattr(dataset, "cache", None) is not None:
        dataset.cache = None
    return data


def _first_batch(data: TrainingData, epoch: int) -> torch.Tensor:
    random.seed(0)  # the process-wide generators, alike on every rank
    np.random.seed(0)
    torch.manual_seed(0)
    data.set_epoch(epoch, 3)
    return next(iter(data.train_loader))["images"]


@pytest.mark.parametrize("workers", [0, 2])
def test_ranks_draw_different_augmentations_and_each_rank_reproduces(workers: int) -> None:
    rank0, rank1 = _loader("detect", 0, workers, **DETECT), _loader("detect", 1, workers, **DETECT)
    first = _first_batch(rank0, 1)
    assert not torch.equal(first, _first_batch(rank1, 1)), "rank 1 drew the augmentation of rank 0"
    assert torch.equal(first, _first_batch(_loader("detect", 0, workers, **DETECT), 1)), "not reproducible"
    assert not torch.equal(first, _first_batch(rank0, 2)), "epoch 2 repeated the draws of epoch 1"


def test_loader_workers_draw_different_augmentations() -> None:
    config = {**DETECT, "batch": 2}  # one image per rank and batch: two batches come from the two workers
    data = _loader("detect", 0, 2, **config)
    data.set_epoch(0, 3)
    first, second = (batch["images"] for _, batch in zip(range(2), data.train_loader))
    assert not torch.equal(first, second), "the two loader workers drew the same augmentation"


def test_albumentations_transforms_are_seeded_per_rank() -> None:
    rank0, rank1 = _loader("classify", 0, 0, **CLASSIFY), _loader("classify", 1, 0, **CLASSIFY)
    first = _first_batch(rank0, 1)
    assert not torch.equal(first, _first_batch(rank1, 1))
    assert torch.equal(first, _first_batch(_loader("classify", 0, 0, **CLASSIFY), 1)), "not reproducible"


def test_stream_seeds_differ_by_seed_epoch_and_rank() -> None:
    seeds = {stream_seed(seed, epoch, rank) for seed in (0, 1, -1) for epoch in range(4) for rank in range(8)}
    assert len(seeds) == 3 * 4 * 8
    assert stream_seed(0, 1, 0) != stream_seed(1, 0, 0)  # seed + epoch alone would collide here
    assert all(0 <= seed < 2**63 for seed in seeds)
