"""Validation during training: ``val_period`` epochs apart (plus the first and last), spread over the DDP ranks."""

from __future__ import annotations

import csv
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

import yolov12.engine.rank_evaluation as rank_evaluation
import yolov12.engine.trainer as trainer
from yolov12 import YOLO
from yolov12.config.train import TrainConfig
from yolov12.engine.callbacks import Callback

TINY = dict(data="sample", imgsz=64, batch=8, fraction=0.25, workers=0, verbose=False, plots=False, seed=3,
            warmup_epochs=0, close_mosaic=0, mosaic=0.0, amp=False, device="cpu", optimizer="SGD", lr0=0.01)


class EpochTracker(Callback):
    def __init__(self) -> None:
        self.epoch = -1

    def on_epoch_start(self, state: Any) -> None:
        self.epoch = state.epoch + 1


@pytest.mark.slow
def test_val_period_validates_every_nth_and_the_first_and_last_epochs(tmp_path: Path, monkeypatch) -> None:
    tracker, validated = EpochTracker(), []
    evaluate_on_ranks = trainer.evaluate_on_ranks

    def counting(*args, **kwargs):
        validated.append(tracker.epoch)
        return evaluate_on_ranks(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate_on_ranks", counting)
    config = TrainConfig.from_overrides({**TINY, "epochs": 4, "val_period": 3})
    result = trainer.fit(YOLO("yolov12n.yaml").model, config, [tracker], run_dir=tmp_path)
    assert validated == [1, 3, 4]
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4]
    assert all(None not in row and None not in row.values() for row in rows), "ragged results.csv"
    metric_columns = [key for key in rows[0] if key.startswith("metrics/")]
    assert metric_columns and all(rows[1][k] == rows[0][k] for k in metric_columns)  # epoch 2 carries epoch 1's
    assert result.metrics.keys() >= set(metric_columns)


def test_val_period_is_a_checked_training_key() -> None:
    assert TrainConfig.from_overrides(val_period=5).run.val_period == 5
    with pytest.raises(Exception, match="val_period"):
        TrainConfig.from_overrides(val_period=0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank(rank: int, port: int, root: str, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        predicted = []
        iterate = rank_evaluation.iter_detection_batches

        def counting(model, loader, *args, **kwargs):
            for batch in iterate(model, loader, *args, **kwargs):
                predicted.extend(batch[2])
                yield batch

        rank_evaluation.iter_detection_batches = counting
        config = TrainConfig.from_overrides({**TINY, "epochs": 1})
        run_dir = Path(root) / f"rank{rank}"
        run_dir.mkdir()
        result = trainer.fit(YOLO("yolov12n.yaml").model, config, run_dir=run_dir)
        results[rank] = {"predicted": predicted,
                         "metrics": {k: v for k, v in result.metrics.items() if k.startswith("metrics/")}}
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_validates_its_share_and_all_report_the_same_metrics(tmp_path: Path) -> None:
    results = mp.Manager().dict()
    mp.spawn(_rank, args=(_free_port(), str(tmp_path), results), nprocs=2, join=True)
    first, second = results[0]["predicted"], results[1]["predicted"]
    assert first and second, "a rank sat idle during validation"
    assert not set(first) & set(second)
    assert results[0]["metrics"] and results[0]["metrics"] == results[1]["metrics"]
