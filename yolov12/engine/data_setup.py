"""Data loaders for training and validation, built from the config's data and augment sections.

Random augmentation is a function of (seed, epoch, rank, loader worker): :func:`stream_seed` derives one seed per
(seed, epoch, rank) with numpy's ``SeedSequence``, which seeds the loader's generator (its shuffle, and the base seed
torch gives each worker) and, when the loader has no workers, this process's ``random``/``numpy`` generators.
Each worker then seeds ``random``, ``numpy`` and the albumentations pipelines of its dataset from its own torch seed
(:func:`seed_loader_worker`). Two ranks therefore never draw the same mosaic partners, affine, colour or mixup
choices, and a rank that runs an epoch again (a resume) draws exactly what it drew before.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from yolov12.config.base import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.data.augment import (
    ClassificationTransforms,
    build_classification_transforms,
    build_detection_transforms,
    to_training_arrays,
)
from yolov12.data.augment.partners import DatasetPartners, partner_buffer_size
from yolov12.data.augment.policy_transform import PolicyTransform
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


def classification_dataset_transform(augment: Any, imgsz: int, dataset: Any, training: bool) -> tuple[Any, Any]:
    """(item transform, epoch-aware transform or None): flips, ``augment_policy`` and colour jitter from ``augment``
    (training; the transform itself takes ``set_epoch`` for the policy's magnitude schedule) or resize + centre
    crop (validation, None)."""
    del dataset
    if training:
        transform = build_classification_transforms(imgsz, True, augment.hsv_h, augment.hsv_s, augment.hsv_v,
                                                    augment.fliplr, augment.flipud, policy=augment.augment_policy)
        return transform, transform
    return build_classification_transforms(imgsz, training=False), None


_MASK64 = 2**64 - 1
_AUGMENT_MODULES = ("yolov12.data.augment", __name__)  # whose objects may hold albumentations pipelines


def stream_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed (0 <= s < 2**63) of one rank's random stream in one epoch of a run seeded ``seed``.

    Derived with ``numpy.random.SeedSequence``: distinct for every (seed, epoch, rank), unlike sums such as
    ``seed + epoch`` (seed 1, epoch 0 and seed 0, epoch 1 would share a stream).
    """
    low, high = np.random.SeedSequence([seed & _MASK64, epoch, rank]).generate_state(2, np.uint32)
    return int(low) | (int(high) & 0x7FFFFFFF) << 32


def _albumentations_pipelines(transform: Any) -> list[Any]:
    """The albumentations ``Compose`` objects reachable from a dataset transform (ours wrap them).

    Only objects of the augmentation modules are looked into, so datasets (which mosaic and mixup hold) are never
    walked; a policy compiled lazily is compiled here first, so that it is seeded like the others.
    """
    found, queue, seen = [], deque([transform]), set()
    while queue:
        item = queue.popleft()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, (list, tuple)):
            queue.extend(item)
        elif type(item).__module__.startswith("albumentations") and hasattr(item, "set_random_seed"):
            found.append(item)
        elif isinstance(item, PolicyTransform):
            queue.append(item.compiled)
        elif isinstance(item, ClassificationTransforms):
            queue.append(item.compose)  # built here when a loader worker has not called it yet
        elif type(item).__module__.startswith(_AUGMENT_MODULES) and hasattr(item, "__dict__"):
            queue.extend(vars(item).values())
    return found


def seed_augmentation(seed: int, transform: Any) -> None:
    """Seed what augmentation draws from in this process: ``random``, ``numpy``'s global generator and the
    albumentations pipelines inside ``transform`` (which keep generators of their own)."""
    random.seed(seed)
    np.random.seed(np.random.SeedSequence(seed & _MASK64).generate_state(4))
    for pipeline in _albumentations_pipelines(transform):
        pipeline.set_random_seed(seed)


def seed_loader_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed the worker's augmentation from its torch seed (the loader's base seed,
    drawn from the generator of this rank and epoch, plus ``worker_id``)."""
    del worker_id  # already part of the worker's torch seed
    info = torch.utils.data.get_worker_info()
    seed_augmentation(info.seed, getattr(info.dataset, "transform", None))


@dataclass
class TrainingData:
    """Loaders plus what the loop must tell them each epoch (sampler shuffling seed, close_mosaic, random stream)."""

    train_loader: DataLoader
    val_loader: DataLoader | None
    names: dict[int, str]
    seed: int
    pipeline: Any = None
    sampler: DistributedSampler | None = None
    generator: torch.Generator = field(default_factory=torch.Generator)
    rank: int = 0
    partners: DatasetPartners | None = None  # the mosaic's partner buffer (emptied before each epoch)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Tell the augmentation which epoch it is and seed this rank's random stream of the epoch (before
        iterating): the loader's generator, and this process's augmentation when the loader has no workers."""
        if self.pipeline is not None and hasattr(self.pipeline, "set_epoch"):
            self.pipeline.set_epoch(epoch, total_epochs)
        if self.partners is not None:  # loader workers start from this (empty) state; without workers, this
            self.partners.clear()  # process's buffer would otherwise carry the previous epoch's images over
        seed = stream_seed(self.seed, epoch, self.rank)
        self.generator.manual_seed(seed)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)  # the shard permutation: the same on every rank
        if self.train_loader.num_workers == 0:
            seed_augmentation(seed, getattr(self.train_loader.dataset, "transform", None))


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


def mosaic_partners(dataset: Any, section: Any, world_size: int) -> Any:
    """What mosaic and mixup draw their extra images from: ``dataset`` through a buffer of recent images of each
    loader process (``data.mixing_buffer``, unset: min(images, 8 x the rank's batch, 1000)), attached to
    ``dataset`` so that an image still buffered is not decoded again; or ``dataset`` itself (``mixing_buffer=0``:
    every partner decoded)."""
    if section.mixing_buffer == 0:
        return dataset
    size = section.mixing_buffer
    if size is None:
        size = partner_buffer_size(len(dataset), per_rank_batch(section.batch, world_size))
    dataset.partners = DatasetPartners(dataset, size, section.imgsz)
    return dataset.partners


def check_detection_only(config: TrainConfig, task: str) -> None:
    """Refuse the detection-only data keys for other tasks, in one line."""
    if task_spec(task).predicts_boxes:
        return
    for key in ("rect", "multi_scale", "mixing_buffer"):
        value = getattr(config.data, key)
        if value:
            raise ConfigError(f"{key}={value} applies to detection; {task_spec(task).description} trains and "
                              f"validates square crops, remove {key}")


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
    partners = mosaic_partners(train_set, section, context.world_size) if spec.predicts_boxes else train_set
    train_set.transform, pipeline = spec.dataset_transform(augment, section.imgsz, partners, training=True)
    generator = torch.Generator()
    sampler = (DistributedSampler(train_set, context.world_size, context.rank, shuffle=True, seed=config.run.seed)
               if context.is_distributed else None)
    train_loader = DataLoader(
        train_set, batch_size=per_rank_batch(section.batch, context.world_size), shuffle=sampler is None,
        sampler=sampler, generator=generator, worker_init_fn=seed_loader_worker,
        num_workers=section.workers, collate_fn=spec.collate.resolve(), drop_last=False, persistent_workers=False,
    )
    val_loader = build_val_loader(section.data, task, section.imgsz, section.batch * 2, section.workers,
                                  rect=section.rect, stride=stride) if config.run.val else None
    return TrainingData(train_loader, val_loader, dict(enumerate(names)), config.run.seed, pipeline, sampler,
                        generator, rank=context.rank,
                        partners=partners if isinstance(partners, DatasetPartners) else None)


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
