"""Distillation state in training: checkpointed with the run, all-reduced across ranks, clipped with the student.

The GKD loss owns trainable feature adapters and the gradient balancer's running norms. A resumed run must continue
with both as they were; under DDP the adapters' gradients must be reduced over the ranks like the student's (else
every rank trains its own adapters), and gradient clipping must cover them.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from yolov12 import YOLO
from yolov12.config.train import TrainConfig
from yolov12.data.sample_dataset import NAMES
from yolov12.engine.callbacks import Callback, CallbackList
from yolov12.engine.checkpoint import ResumeError, _restore_loss
from yolov12.engine.data_setup import build_training_data
from yolov12.engine.distributed import current_context
from yolov12.engine.loop import to_device, train_one_epoch
from yolov12.engine.precision import MixedPrecision
from yolov12.engine.trainer import adapt_model_to_dataset, build_state, fit
from yolov12.models import build_model, load_architecture

TINY = dict(data="sample", imgsz=64, batch=8, nbs=8, fraction=0.25, workers=0, val=False, verbose=False, plots=False,
            seed=3, warmup_epochs=0, close_mosaic=0, mosaic=0.0, amp=False, epochs=2, optimizer="SGD", lr0=0.01,
            device="cpu")


class Stop(Exception):
    """Raised by the probes once they have looked."""


def _distill_state(state: Any) -> dict[str, Any]:
    loss_fn = state.loss_fn
    return {"norms": loss_fn.balancer.norms,
            "adapters": {k: v.detach().clone() for k, v in loss_fn.distiller.adapters.state_dict().items()}}


class KeepAtCheckpoint(Callback):
    def __init__(self) -> None:
        self.kept: dict[str, Any] | None = None

    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None:
        self.kept = _distill_state(state)
        raise Stop


class KeepAtStart(KeepAtCheckpoint):
    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None:
        pass

    def on_fit_start(self, state: Any) -> None:
        self.kept = _distill_state(state)
        raise Stop


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A yolov12n teacher with the sample's classes and opinionated head weights."""
    torch.manual_seed(1)
    model = YOLO(build_model(load_architecture("yolov12n").with_overrides(num_classes=len(NAMES)),
                             names=dict(enumerate(NAMES))))
    with torch.no_grad():
        for param in model.model.head.parameters():
            param.add_(torch.randn_like(param) * 0.3)
    return model.save(tmp_path_factory.mktemp("teacher") / "teacher.safetensors")


def _config(teacher: Path, **changes: Any) -> TrainConfig:
    distill = {"teachers": [str(teacher)], "terms": ["cls", "box", "feat"], "fade_epochs": 0}
    return TrainConfig.from_overrides({**TINY, **changes, "distill": distill})


@pytest.mark.slow
def test_distillation_state_round_trips_through_a_checkpoint(teacher: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    at_checkpoint = KeepAtCheckpoint()
    torch.manual_seed(0)
    with pytest.raises(Stop):
        fit(YOLO("yolov12n.yaml").model, _config(teacher), [at_checkpoint], run_dir=run_dir)
    saved = at_checkpoint.kept
    assert saved is not None and saved["norms"] is not None
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed_dir)
    at_start = KeepAtStart()
    with pytest.raises(Stop):
        fit(YOLO("yolov12n.yaml").model, _config(teacher, resume=True), [at_start], run_dir=resumed_dir)
    resumed = at_start.kept
    assert resumed is not None and resumed["norms"] == pytest.approx(saved["norms"])
    assert resumed["adapters"].keys() == saved["adapters"].keys()
    for key, value in saved["adapters"].items():
        assert torch.equal(resumed["adapters"][key], value), key


class RecordingPrecision(MixedPrecision):
    """Keeps the parameters each step clips."""

    clipped: list[torch.nn.Parameter] = []

    def step(self, optimiser, parameters) -> bool:
        parameters = list(parameters)
        self.clipped.extend(parameters)
        return super().step(optimiser, parameters)


def _state(config: TrainConfig, run_dir: Path):
    context = current_context()
    data = build_training_data(config, "detect", context)
    torch.manual_seed(0)
    model = adapt_model_to_dataset(YOLO("yolov12n.yaml").model, data.names)
    return build_state(model, config, data, context, run_dir), data


@pytest.mark.slow
def test_adapters_are_clipped_with_the_student(teacher: Path, tmp_path: Path) -> None:
    state, data = _state(_config(teacher), tmp_path)
    state.precision = RecordingPrecision(state.device, False, state.config.optim.max_grad_norm)
    data.set_epoch(0, 2)
    train_one_epoch(state, [next(iter(data.train_loader))], CallbackList([]))
    clipped = {id(p) for p in RecordingPrecision.clipped}
    adapters = state.loss_fn.parameters()
    assert adapters and all(id(p) in clipped for p in adapters)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_adapter_gradients(rank: int, port: int, teacher: str, root: str, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        state, data = _state(_config(Path(teacher)), Path(root) / f"rank{rank}")
        data.set_epoch(0, 2)
        batch = to_device(next(iter(data.train_loader)), state.device)  # each rank its own shard
        loss, _ = state.loss_fn(state.model(batch["images"]), batch)
        state.precision.backward(loss)
        results[rank] = {"grads": [p.grad.clone() for p in state.loss_fn.parameters()],
                         "paths": list(batch["paths"])}
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_adapter_gradients_are_reduced_across_ranks(teacher: Path, tmp_path: Path) -> None:
    results = mp.Manager().dict()
    mp.spawn(_rank_adapter_gradients, args=(_free_port(), str(teacher), str(tmp_path), results), nprocs=2,
             join=True)
    assert not set(results[0]["paths"]) & set(results[1]["paths"]), "the ranks saw the same images"
    grads = [results[rank]["grads"] for rank in (0, 1)]
    assert grads[0] and len(grads[0]) == len(grads[1])
    assert any(float(g.abs().sum()) > 0 for g in grads[0])
    for first, second in zip(*grads):
        torch.testing.assert_close(first, second)


def test_a_loss_state_that_does_not_fit_the_run_is_refused_in_one_line() -> None:
    class OneAdapter:
        def load_state_dict(self, state: dict) -> None:
            torch.nn.Conv2d(4, 4, 1).load_state_dict(state)

    with pytest.raises(ResumeError, match="teachers or terms") as caught:
        _restore_loss(OneAdapter(), {"loss": {"weight": torch.zeros(2, 2, 1, 1), "bias": torch.zeros(2)}})
    assert "\n" not in str(caught.value)
