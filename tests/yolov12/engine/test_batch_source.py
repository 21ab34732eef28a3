"""``fit(train_batches=...)``: the loop trains on batches from a source instead of building a local train loader."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch

import yolov12.engine.trainer as trainer
from yolov12 import YOLO
from yolov12.config.train import TrainConfig
from yolov12.data.augment import collate_detection
from yolov12.engine.batch_source import FirstBatchKept, StreamedTrainingData, TrainBatchSource, check_batch_source

TINY = dict(data="sample", imgsz=64, batch=4, workers=0, verbose=False, plots=True, val=False, seed=0,
            warmup_epochs=0, close_mosaic=0, mosaic=0.0, amp=False, device="cpu", optimizer="SGD", lr0=0.01)


def fixed_batch(seed: int, size: int = 4, imgsz: int = 64) -> dict[str, Any]:
    """A collated detection batch of random images with one box each."""
    generator = torch.Generator().manual_seed(seed)
    items = [{"image": torch.randint(0, 255, (3, imgsz, imgsz), dtype=torch.uint8, generator=generator).numpy(),
              "boxes": torch.tensor([[0.5, 0.5, 0.25, 0.25]]).numpy(), "classes": torch.tensor([i % 3]).numpy(),
              "path": f"image-{seed}-{i}.jpg"} for i in range(size)]
    return collate_detection(items)


class RecordingSource:
    """Yields the same two batches every epoch and records what the trainer asked of it."""

    def __init__(self) -> None:
        self.batches = [fixed_batch(0), fixed_batch(1)]
        self.epochs: list[tuple[int, int]] = []
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        self.epochs.append((epoch, total_epochs))


def test_fit_trains_on_the_source_without_reading_the_train_split(tmp_path: Path, monkeypatch) -> None:
    def no_local_loader(*args, **kwargs):
        raise AssertionError("the local train loader must not be built when train_batches is given")

    monkeypatch.setattr(trainer, "build_training_data", no_local_loader)
    source = RecordingSource()
    config = TrainConfig.from_overrides({**TINY, "epochs": 2})
    result = trainer.fit(YOLO("yolov12n.yaml").model, config, run_dir=tmp_path, train_batches=source)

    assert source.epochs == [(0, 2), (1, 2)]
    assert source.passes == 2, "one pass per epoch; the train_batch plot must not start another"
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [int(row["epoch"]) for row in rows] == [1, 2]
    assert all(float(row["train/box_loss"]) > 0 for row in rows)
    assert (tmp_path / "train_batch.png").is_file()
    assert result.model.names == {0: "0", 1: "1", 2: "2", 3: "3", 4: "4", 5: "5", 6: "6", 7: "7", 8: "8", 9: "9"}


def test_first_batch_kept_remembers_the_latest_epoch_and_forwards_set_epoch() -> None:
    source = RecordingSource()
    kept = FirstBatchKept(source)
    assert isinstance(kept, TrainBatchSource) and len(kept) == 2 and kept.first_batch is None
    assert list(kept) == source.batches and kept.first_batch is source.batches[0]
    source.batches = source.batches[::-1]
    kept.set_epoch(1, 3)
    list(kept)
    assert kept.first_batch is source.batches[0] and source.epochs == [(1, 3)]
    data = StreamedTrainingData(kept, None, {0: "a"})
    assert data.preview_batches() == [source.batches[0]]
    assert StreamedTrainingData(FirstBatchKept(RecordingSource()), None, {}).preview_batches() == []


def test_a_source_without_set_epoch_is_refused_in_one_line() -> None:
    with pytest.raises(TypeError, match=r"^train_batches=list lacks set_epoch: .*TrainBatchSource\)$"):
        check_batch_source([fixed_batch(0)])
