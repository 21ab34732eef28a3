"""Train batches from somewhere other than the local DataLoader: the seam a streaming ingest plugs into ``fit``.

``fit(..., train_batches=source)`` trains on the batches ``source`` yields instead of building a local train loader;
the loop, loss, EMA, validation and checkpoints stay the same. Only the *train* split comes from the source: the
validation split is still read locally, on every rank, with the usual un-augmented loader (validation needs every
image once, in order, which a local loader over the val split does cheaply).

A source is any object with the three members of :class:`TrainBatchSource`; the library itself has no implementation
(the Ray Data one lives in ``pipelines.ray_data_ingest``), so this module imports nothing beyond torch and the data
setup it reuses.

Example:
    >>> class Batches:  # one epoch of two fixed batches
    ...     def __init__(self, batches): self.batches = batches
    ...     def __iter__(self): return iter(self.batches)
    ...     def __len__(self): return len(self.batches)
    ...     def set_epoch(self, epoch, total_epochs): pass
    >>> fit(model, config, train_batches=Batches(batches))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch.utils.data import DataLoader

from yolov12.config.train import TrainConfig
from yolov12.data.s3_split import dataset_names
from yolov12.engine.data_setup import TrainingData, build_val_loader, check_detection_only
from yolov12.engine.distributed import DistributedContext

logger = logging.getLogger(__name__)


@runtime_checkable
class TrainBatchSource(Protocol):
    """Where the training loop's train batches come from when they do not come from the local DataLoader.

    - iterating yields one epoch of this rank's batches, each the dict the local loader yields (for detection
      :func:`~yolov12.data.augment.collate_detection`: ``images`` (B, 3, S, S) uint8 RGB, ``batch_index`` (N,),
      ``classes`` (N,), ``boxes`` (N, 4) normalised cx, cy, w, h, ``paths``);
    - ``len(source)`` is the number of batches one epoch yields on this rank (the optimiser and warm-up are planned
      from it, and under DDP every rank must yield the same number);
    - ``set_epoch(epoch, total_epochs)`` is called before each epoch is iterated (0-based ``epoch``; a resumed run
      starts at its saved epoch), so the source can shuffle and close mosaic for that epoch.
    """

    def __iter__(self) -> Iterator[dict[str, Any]]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int, total_epochs: int) -> None: ...


class FirstBatchKept:
    """A :class:`TrainBatchSource` that remembers the first batch of the latest epoch it yielded.

    The end-of-training plot of an augmented batch (``train_batch.png``) is drawn from that batch: iterating a
    stream once more only for a picture would start another pass (and, over Ray Data's split, wait for every rank).
    """

    def __init__(self, source: TrainBatchSource) -> None:
        self.source = source
        self.first_batch: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index, batch in enumerate(self.source):
            if index == 0:
                self.first_batch = batch
            yield batch

    def __len__(self) -> int:
        return len(self.source)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Forward to the source."""
        self.source.set_epoch(epoch, total_epochs)


@dataclass
class StreamedTrainingData:
    """What :func:`~yolov12.engine.trainer.fit` needs when the train batches come from a :class:`TrainBatchSource`:
    the same members the loop reads from :class:`~yolov12.engine.data_setup.TrainingData`."""

    train_loader: FirstBatchKept
    val_loader: DataLoader | None
    names: dict[int, str]

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Tell the source which epoch comes next (the trainer seeds this process's own random stream)."""
        self.train_loader.set_epoch(epoch, total_epochs)

    def preview_batches(self) -> list[dict[str, Any]]:
        """The batches the end-of-training plots may draw: the first one of the latest epoch, if any."""
        return [] if self.train_loader.first_batch is None else [self.train_loader.first_batch]


TrainingSplits = TrainingData | StreamedTrainingData


def check_batch_source(source: Any) -> TrainBatchSource:
    """``source`` itself when it has the members of :class:`TrainBatchSource`; a one-line ``TypeError`` otherwise."""
    missing = [name for name in ("__iter__", "__len__", "set_epoch") if not callable(getattr(source, name, None))]
    if missing:
        raise TypeError(f"train_batches={type(source).__name__} lacks {', '.join(missing)}: pass an object that "
                        "iterates one epoch of batch dicts, has len() = batches per epoch and set_epoch(epoch, "
                        "total_epochs) (yolov12.engine.batch_source.TrainBatchSource)")
    return source


def build_streamed_training_data(config: TrainConfig, task: str, context: DistributedContext,
                                 source: TrainBatchSource, stride: int = 32) -> StreamedTrainingData:
    """Class names and the local validation loader of ``config.data.data``, with ``source`` as the train batches.

    The train split is not read here (the source owns it, ``fraction`` included); the dataset description is, for
    the class names, and the val split when ``val`` is on. ``stride``: the model's largest stride (``rect`` val).
    """
    del context  # every rank validates its share of the same local val loader (see evaluate_on_ranks)
    section = config.data
    check_detection_only(config, task)
    names = dataset_names(section.data)  # an s3:// data.yaml is read alone, the dataset is not mirrored
    if len(check_batch_source(source)) == 0:
        raise ValueError(f"train_batches of '{section.data}' yields no batch per epoch on this rank; check that "
                         "the train split has images and that there are no more ranks than images")
    val_loader = build_val_loader(section.data, task, section.imgsz, section.batch * 2, section.workers,
                                  rect=section.rect, stride=stride) if config.run.val else None
    return StreamedTrainingData(FirstBatchKept(source), val_loader, dict(enumerate(names)))
