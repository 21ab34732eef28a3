"""Data loaders for training and validation, built from the config's data and augment sections."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from yolov12.config.base import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.data.augment import (
    build_classification_transforms,
    build_detection_transforms,
    to_training_arrays,
)
from yolov12.data.detection_dataset import build_datasets
from yolov12.data.image_cache import ImageCache
from yolov12.data.rect import RectValidationDataset
from yolov12.engine.distributed import DistributedContext, per_rank_batch
from yolov12.tasks import task_spec

logger = logging.getLogger(__name__)


class DetectionItems:
    """Dataset transform: augmentation pipeline then model arrays (picklable, so loader workers can copy it)."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def __call__(self, sample: Any) -> dict[str, Any]:
        return to_training_arrays(self.pipeline(sample))


def collate_classification(batch: list[Any]) -> dict[str, Any]:
    """ClassificationSample list -> ``images`` (B, 3, S, S) uint8 RGB, ``classes`` (B,), ``paths``."""
    images = np.stack([np.ascontiguousarray(s.image[..., ::-1].transpose(2, 0, 1)) for s in batch])
    return {"images": torch.from_numpy(images), "classes": torch.tensor([s.label for s in batch], dtype=torch.int64),
            "paths": [s.path for s in batch]}


def detection_dataset_transform(augment: Any, imgsz: int, dataset: Any, training: bool) -> tuple[Any, Any]:
    """(item transform, epoch-aware pipeline): the augmentation pipeline (training) or the letterbox, then arrays."""
    if training:
        pipeline = build_detection_transforms(augment, imgsz, dataset, training=True)
        return DetectionItems(pipeline), pipeline
    return DetectionItems(build_detection_transforms(None, imgsz, training=False)), None


def classification_dataset_transform(augment: Any, imgsz: int, dataset: Any, training: bool) -> tuple[Any, None]:
    """(item transform, None): colour jitter and flips from ``augment`` (training) or resize + centre crop."""
    del dataset
    if training:
        return build_classification_transforms(imgsz, True, augment.hsv_h, augment.hsv_s, augment.hsv_v,
                                               augment.fliplr, augment.flipud), None
    return build_classification_transforms(imgsz, training=False), None


@dataclass
class TrainingData:
    """Loaders plus what the loop must tell them each epoch (sampler shuffling seed, close_mosaic)."""

    train_loader: DataLoader
    val_loader: DataLoader | None
    names: dict[int, str]
    seed: int
    pipeline: Any = None
    sampler: DistributedSampler | None = None
    generator: torch.Generator = field(default_factory=torch.Generator)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Seed this epoch's shuffle and tell the augmentation which epoch it is (before iterating)."""
        self.generator.manual_seed(self.seed + epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        if self.pipeline is not None and hasattr(self.pipeline, "set_epoch"):
            self.pipeline.set_epoch(epoch, total_epochs)


def _subset(dataset: Any, fraction: float, seed: int) -> None:
    """Keep a seeded random ``fraction`` of the records (in their original order); records are often sorted by
    class, so a prefix would drop whole classes."""
    if fraction < 1.0:
        keep = max(1, round(len(dataset.records) * fraction))
        chosen = np.sort(np.random.default_rng(seed).permutation(len(dataset.records))[:keep])
        dataset.records = [dataset.records[i] for i in chosen]


def attach_image_cache(dataset: Any, mode: str | bool, task: str, imgsz: int) -> None:
    """Give ``dataset`` a filled :class:`~yolov12.data.image_cache.ImageCache` (``mode`` False: none).

    Detection images are cached resized to the training long side (the pipeline's first step), classification
    images as decoded (their random crops come from the full image). Filled here, in the main process, before any
    loader worker starts: workers inherit it (see :mod:`yolov12.data.image_cache`).
    """
    if not mode:
        dataset.cache = None
        return
    long_side = imgsz if task_spec(task).predicts_boxes else None
    dataset.cache = ImageCache([record.path for record in dataset.records], "ram" if mode is True else mode,
                               long_side=long_side, augment=True)


def check_detection_only(config: TrainConfig, task: str) -> None:
    """Refuse the detection-only data keys for other tasks, in one line."""
    if task_spec(task).predicts_boxes:
        return
    for key in ("rect", "multi_scale"):
        if getattr(config.data, key):
            raise ConfigError(f"{key}=True applies to detection; {task_spec(task).description} trains and validates "
                              f"square crops, remove {key}")


def build_training_data(config: TrainConfig, task: str, context: DistributedContext, stride: int = 32) -> TrainingData:
    """Train and validation loaders for ``task`` on ``config.data.data`` (``stride``: the model's largest stride,
    for rectangular validation batches)."""
    section, augment, spec = config.data, config.augment, task_spec(task)
    check_detection_only(config, task)
    train_set, names = build_datasets(section.data, "train", workers=section.workers or None)
    _subset(train_set, section.fraction, config.run.seed)
    if len(train_set) == 0:
        raise ValueError(f"the train split of '{section.data}' has no usable images")
    attach_image_cache(train_set, section.cache, task, section.imgsz)
    train_set.transform, pipeline = spec.dataset_transform(augment, section.imgsz, train_set, training=True)
    generator = torch.Generator()
    sampler = (DistributedSampler(train_set, context.world_size, context.rank, shuffle=True, seed=config.run.seed)
               if context.is_distributed else None)
    train_loader = DataLoader(
        train_set, batch_size=per_rank_batch(section.batch, context.world_size), shuffle=sampler is None,
        sampler=sampler, generator=generator,
        num_workers=section.workers, collate_fn=spec.collate.resolve(), drop_last=False, persistent_workers=False,
    )
    val_loader = build_val_loader(section.data, task, section.imgsz, section.batch * 2, section.workers,
                                  rect=section.rect, stride=stride) if config.run.val else None
    return TrainingData(train_loader, val_loader, dict(enumerate(names)), config.run.seed, pipeline, sampler,
                        generator)


def build_val_loader(data: Any, task: str, imgsz: int, batch: int, workers: int, split: str = "val", *,
                     rect: bool = False, stride: int = 32) -> DataLoader:
    """Un-augmented loader of ``split`` (letterboxed detection images / centre-cropped classification images).

    ``rect``: rectangular batches (detection only): images in aspect-ratio order, each batch letterboxed to the
    smallest multiple of ``stride`` that fits it (:class:`~yolov12.data.rect.RectValidationDataset`); otherwise
    every image is letterboxed to ``imgsz`` x ``imgsz``.
    """
    spec = task_spec(task)
    if rect and not spec.predicts_boxes:
        raise ConfigError(f"rect=True applies to detection; {spec.description} validates square centre crops, "
                          "remove rect")
    dataset, _ = build_datasets(data, split, workers=workers or None)
    if rect:
        return DataLoader(RectValidationDataset(dataset, imgsz, batch, stride), batch_size=batch, shuffle=False,
                          num_workers=workers, collate_fn=spec.collate.resolve())
    dataset.transform, _ = spec.dataset_transform(None, imgsz, dataset, training=False)
    return DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=workers,
                      collate_fn=spec.collate.resolve())
