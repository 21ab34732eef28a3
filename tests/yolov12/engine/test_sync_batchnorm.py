"""``fit(..., sync_bn=True)``: SyncBatchNorm in the model that trains, whatever the head rebuild for the dataset did.

The sample dataset has 10 classes and yolov12n.yaml 80, so ``fit`` rebuilds the head (a new model) before training:
a conversion done before ``fit`` would be lost there. The EMA (what is validated, saved and returned) keeps plain
BatchNorm, so checkpoints and exports do not depend on how the run was distributed.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from yolov12 import YOLO
from yolov12.config.train import TrainConfig
from yolov12.engine.callbacks import Callback
from yolov12.engine.ema import unwrap
from yolov12.engine.trainer import fit
from yolov12.utils.device import DeviceError

TINY = dict(data="sample", imgsz=64, batch=8, fraction=0.25, workers=0, val=False, verbose=False, plots=False,
            seed=3, warmup_epochs=0, close_mosaic=0, amp=False, epochs=1)


class Stop(Exception):
    """Raised by the probe once it has looked."""


class NormProbe(Callback):
    """Counts the norm layers of the training model and of the EMA at ``on_fit_start``, then stops."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def on_fit_start(self, state: Any) -> None:
        trained, ema = unwrap(state.model), state.ema.ema
        self.seen = {"distributed": isinstance(state.model, nn.parallel.DistributedDataParallel),
                     "classes": trained.num_classes,
                     "sync": sum(isinstance(m, nn.SyncBatchNorm) for m in trained.modules()),
                     "plain": sum(isinstance(m, nn.BatchNorm2d) for m in trained.modules()),
                     "ema_sync": sum(isinstance(m, nn.SyncBatchNorm) for m in ema.modules()),
                     "ema_plain": sum(isinstance(m, nn.BatchNorm2d) for m in ema.modules())}
        raise Stop


def test_sync_batchnorm_is_applied_after_the_head_rebuild(tmp_path: Path) -> None:
    probe = NormProbe()
    model = YOLO("yolov12n.yaml").model
    assert model.num_classes == 80
    with pytest.raises(Stop):
        fit(model, TrainConfig.from_overrides({**TINY, "device": "cpu"}), [probe], run_dir=tmp_path, sync_bn=True)
    seen = probe.seen
    assert seen["classes"] == 10, "the head was not rebuilt for the dataset"
    assert seen["sync"] > 0 and seen["plain"] == 0, seen
    assert seen["ema_sync"] == 0 and seen["ema_plain"] == seen["sync"], seen


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(rank: int, port: int, device: str, root: str, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        probe = NormProbe()
        config = TrainConfig.from_overrides({**TINY, "device": device})
        try:
            fit(YOLO("yolov12n.yaml").model, config, [probe], run_dir=Path(root) / f"rank{rank}", sync_bn=True)
        except Stop:
            results[rank] = probe.seen
        except DeviceError as exc:
            results[rank] = str(exc)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_sync_bn_over_cpu_ranks_is_refused_in_one_line(tmp_path: Path) -> None:
    results = mp.Manager().dict()
    mp.spawn(_rank, args=(_free_port(), "cpu", str(tmp_path), results), nprocs=2, join=True)
    for rank in (0, 1):
        assert isinstance(results[rank], str) and "sync_bn" in results[rank] and "GPU" in results[rank], results[rank]
        assert "\n" not in results[rank]


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="SyncBatchNorm under DDP needs CUDA")
def test_two_ranks_train_a_sync_batchnorm_model_under_ddp(tmp_path: Path) -> None:
    """Two gloo ranks on the one GPU of the test machine (enough to build the DDP model)."""
    results = mp.Manager().dict()
    mp.spawn(_rank, args=(_free_port(), "cuda:0", str(tmp_path), results), nprocs=2, join=True)
    for rank in (0, 1):
        seen = results[rank]
        assert isinstance(seen, dict), seen
        assert seen["distributed"] and seen["classes"] == 10
        assert seen["sync"] > 0 and seen["plain"] == 0 and seen["ema_sync"] == 0, seen
