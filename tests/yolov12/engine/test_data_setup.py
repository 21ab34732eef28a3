"""The training loader's mosaic partners: a buffer of recent images per loader process (``data.mixing_buffer``)."""

from __future__ import annotations

import pytest

from yolov12.config.base import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.data import detection_dataset
from yolov12.data.augment.partners import DatasetPartners
from yolov12.engine.data_setup import build_training_data
from yolov12.engine.distributed import DistributedContext

DETECT = dict(data="sample", imgsz=64, batch=8, val=False, seed=3, mosaic=1.0, mixup=0.0, close_mosaic=0)


def decodes_in_one_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int = 0, **keys) -> tuple[int, int]:
    """(image decodes, images) of one epoch of the training loader without loader workers."""
    data = build_training_data(TrainConfig.from_overrides({**DETECT, "workers": 0, **keys}), "detect",
                               DistributedContext())
    calls = []
    real = detection_dataset.read_image_bgr
    monkeypatch.setattr(detection_dataset, "read_image_bgr", lambda path: calls.append(path) or real(path))
    data.set_epoch(epoch, 3)
    images = sum(len(batch["images"]) for batch in data.train_loader)
    return len(calls), images


def test_mosaic_partners_come_from_the_buffer_once_it_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    buffered, images = decodes_in_one_epoch(monkeypatch)
    unbuffered, _ = decodes_in_one_epoch(monkeypatch, mixing_buffer=0)
    assert unbuffered == 4 * images, "without a buffer each mosaic decodes its image and three partners"
    assert buffered < 2 * images, f"{buffered} decodes for {images} images: partners were decoded after the fill"
    whole, _ = decodes_in_one_epoch(monkeypatch, mixing_buffer=images)
    assert whole <= images, "a buffer that holds the split decodes no image twice in an epoch"
    small, _ = decodes_in_one_epoch(monkeypatch, mixing_buffer=4)
    assert small <= images + 4, "a 4-image buffer fills with at most 4 partner decodes"


def test_each_epoch_starts_with_an_empty_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    data = build_training_data(TrainConfig.from_overrides({**DETECT, "workers": 0}), "detect", DistributedContext())
    assert isinstance(data.partners, DatasetPartners) and data.partners.capacity == 64, "8 x batch 8"
    data.set_epoch(0, 3)
    next(iter(data.train_loader))
    assert len(data.partners.recent) > 0
    data.set_epoch(1, 3)
    assert len(data.partners.recent) == 0, "a resumed epoch must not depend on the images of the one before"


def test_the_buffer_is_sized_per_rank_and_refused_for_classification() -> None:
    config = TrainConfig.from_overrides({**DETECT, "workers": 0, "batch": 4, "fraction": 0.5})
    data = build_training_data(config, "detect", DistributedContext(rank=0, world_size=2))
    assert data.partners is not None and data.partners.capacity == 16, "8 x the rank's batch of 2"
    assert build_training_data(TrainConfig.from_overrides({**DETECT, "workers": 0, "mixing_buffer": 0}), "detect",
                               DistributedContext()).partners is None
    with pytest.raises(ConfigError, match="mixing_buffer=32 applies to detection"):
        build_training_data(TrainConfig.from_overrides({"data": "sample-cls", "mixing_buffer": 32, "val": False}),
                            "classify", DistributedContext())
