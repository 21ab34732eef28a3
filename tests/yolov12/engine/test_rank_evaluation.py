"""Validation spread over 2 gloo ranks gives exactly the metrics of one process validating the whole split."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from yolov12.data.sample_dataset import NAMES
from yolov12.engine.data_setup import build_val_loader
from yolov12.engine.distributed import current_context
from yolov12.engine.evaluate import evaluate
from yolov12.engine.rank_evaluation import RoundRobinBatches, broadcast_module, evaluate_on_ranks
from yolov12.models import build_model, load_architecture

CASES = {"detect": ("grid", "sample", 64, False), "detect-rect": ("grid", "sample", 64, True),
         "classify": ("yolov12n-cls", "sample-cls", 32, False)}


class GridDetector(nn.Module):
    """Square boxes of several sizes on dense grids, scored per class from the image's colours inside them.

    An untrained YOLO scores 0 everywhere on the sample set, which would make "the same metrics" an empty check; this
    finds some objects, and its output depends on every pixel. ``projection`` (a parameter) maps the mean and spread
    of the colours in a box to class scores.
    """

    task = "detect"
    SIZES = (6, 8, 10, 12, 16, 24)

    def __init__(self, names: dict[int, str]) -> None:
        super().__init__()
        self.names = names
        self.projection = nn.Parameter(torch.randn(len(names), 6, generator=torch.Generator().manual_seed(0)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 4 + nc, anchors): cx, cy, w, h in pixels, class scores in (0, 1)."""
        levels = []
        for size in self.SIZES:
            stride = max(size // 4, 1)
            mean = F.avg_pool2d(images, size, stride=stride)  # (B, 3, h, w)
            spread = F.avg_pool2d(images**2, size, stride=stride) - mean**2
            b, _, h, w = mean.shape
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            centres = torch.stack([xs, ys]).float().flatten(1) * stride + size / 2  # (2, h*w)
            boxes = torch.cat([centres, torch.full_like(centres, float(size))]).expand(b, -1, -1)
            features = torch.cat([mean, spread * 10], 1).flatten(2)  # (B, 6, h*w)
            scores = torch.sigmoid(torch.einsum("cf,bfa->bca", self.projection, features) * 4)
            levels.append(torch.cat([boxes, scores], 1))
        return torch.cat(levels, 2)


def _model(architecture: str, names: dict[int, str], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if architecture == "grid":
        model = GridDetector(names)
    else:
        model = build_model(load_architecture(architecture).with_overrides(num_classes=len(names)), names=names)
    with torch.no_grad():  # rank 1's model differs until the broadcast
        for parameter in model.parameters():
            parameter.add_(torch.rand_like(parameter) * 0.05)
    return model.eval()


def _names(data: str) -> dict[int, str]:
    loader = build_val_loader(data, "detect" if data == "sample" else "classify", 32, 1, 0)
    return dict(enumerate(getattr(loader.dataset, "names", None) or NAMES))


def _rank(rank: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        context = current_context()
        for case, (architecture, data, imgsz, rect) in CASES.items():
            task = "classify" if architecture.endswith("-cls") else "detect"
            loader = build_val_loader(data, task, imgsz, 4, 0, rect=rect)
            names = _names(data)
            model = _model(architecture, names, seed=rank)  # rank 1's weights differ until the broadcast
            broadcast_module(model, context)
            sharded = evaluate_on_ranks(model, loader, names, torch.device("cpu"), context)
            whole = evaluate(model, loader, names, torch.device("cpu")) if rank == 0 else {}
            results[(rank, case)] = (sharded, whole)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_give_the_metrics_of_rank_0_alone() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_rank, args=(port, results), nprocs=2, join=True)
    for case in CASES:
        sharded, whole = results[(0, case)]
        assert sharded == whole, case
        assert any(value > 0 for value in whole.values()), f"{case}: all metrics are 0, the check proves little"
        assert results[(1, case)][0] == {}


def test_round_robin_batches_cover_the_split_once() -> None:
    shards = [list(RoundRobinBatches(10, 3, rank, 3)) for rank in range(3)]
    assert shards == [[[0, 1, 2], [9]], [[3, 4, 5]], [[6, 7, 8]]]
    assert len(RoundRobinBatches(10, 3, 1, 3)) == 1 and len(RoundRobinBatches(2, 3, 1, 2)) == 0
