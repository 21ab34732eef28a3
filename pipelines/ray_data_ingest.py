"""Streaming train ingest on Ray Data (``data.loader=ray_data``): no node holds the train split whole.

The stream, per epoch:

1. **Listing** (driver, once): the train split's records (image location + label rows, a few hundred bytes each,
   read through the library's label cache; ``fraction`` applied with the local loader's rule). An ``s3://``
   dataset is listed in place (:func:`yolov12.data.s3_split.list_s3_split`): keys, ETags and sizes, and only the
   label files read (on threads); no image is downloaded and nothing is mirrored.
2. **Epoch order** (:class:`EpochListing`, a Ray Data datasource): each time the dataset executes (once per epoch)
   it reads the epoch the workers announced on the run's :class:`EpochBoard` actor and lists the records in that
   epoch's order: a permutation seeded by ``(seed, epoch)``, padded to a multiple of the world size by repeating
   its head (as ``DistributedSampler`` pads). A resumed run announces its saved epoch, so the stream starts that
   epoch's shuffle.
3. **Decode + augment** (:func:`decode_augment_batch`, ``map_batches`` on up to ``data.decode_tasks`` concurrent
   CPU tasks that may run on other nodes; ``data.decode_resources`` pins them to nodes with a custom resource): the
   image is read (an ``s3://`` image: one GET per image per epoch, with the process's own client from the node's
   AWS environment) and decoded in memory with the dataset image checks, resized to the long side, then put through
   the library's own training pipeline (:func:`~yolov12.data.augment.build_detection_transforms`), seeded per image
   by ``(seed, epoch, position)``. Tasks, not an actor pool: Ray Data starts a map's actors anew each time a dataset
   executes, once per epoch here (5-6 s to the first batch of every epoch on a quiet 2-core machine, 18-20 s on a
   loaded one), while task worker processes stay alive between executions with the library imported; the state an
   actor would hold (the :class:`DecodeAugment` with its mixing buffer) is kept per process instead, by stream
   (:func:`process_decoder`).
4. **Shards** (Ray Train's ``DataConfig``: ``streaming_split(world_size, equal=True)``): each worker reads its
   shard with ``ray.train.get_dataset_shard("train")`` and :class:`RayDataBatchSource` collates the rows into the
   loop's batch dicts (:func:`~yolov12.data.augment.collate_detection`), handed to ``fit(train_batches=...)``.

Mosaic and mixup partners come from the library's :class:`~yolov12.data.augment.partners.MixingBuffer`, the last
``train.data.mixing_buffer`` images (unset: min(images, 8 x batch, 1000)) that the decoding process decoded for this
stream (across epochs), not from the whole split: at the start of a run, and with few images per process, the
partners repeat more, and which partners an image gets depends on which process decoded what before it. See
docs/architecture.md ("Streaming training ingest") for what is exactly repeatable and when to use which loader.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections import OrderedDict
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import ray
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from yolov12.config.base import ConfigError
from yolov12.config.train import AugmentSection
from yolov12.data.augment import build_detection_transforms, collate_detection, resize_long_side, to_training_arrays
from yolov12.data.augment.compose import replace_sample
from yolov12.data.augment.partners import MixingBuffer, partner_buffer_size
from yolov12.data.detection_dataset import DetectionDataset, build_datasets, record_to_sample
from yolov12.data.errors import DatasetError
from yolov12.data.images import read_image_bgr
from yolov12.data.label_cache import record_from_json, record_to_json
from yolov12.data.remote import is_s3, s3_client
from yolov12.data.s3_objects import ListedImage
from yolov12.data.s3_split import dataset_names, fetch_image_bgr, list_s3_split
from yolov12.data.types import Sample
from yolov12.engine.data_setup import seed_augmentation, stream_seed
from yolov12.engine.distributed import per_rank_batch

if TYPE_CHECKING:
    from pipelines.config import PipelineConfig
    from yolov12.config.train import TrainConfig

logger = logging.getLogger(__name__)

ROWS_PER_READ_TASK = 256  # listing rows per block: small blocks start decoding early


# -- listing and epoch order ------------------------------------------------------------------------------------------
def train_listing(data: str, fraction: float, seed: int) -> list[str]:
    """The train split of ``data`` as JSON records (image path + label rows), ``fraction`` kept as locally.

    An ``s3://`` dataset's records name ``s3://`` images and carry no image size (the decoder reads it from the
    pixels); see :func:`s3_train_listing`.

    Raises:
        ConfigError: a classification dataset, an ``s3://`` dataset that cannot be read in place, or an empty split.
    """
    if str(data).startswith("s3://"):
        return s3_train_listing(str(data), fraction, seed)
    dataset, _ = build_datasets(data, "train")
    if not isinstance(dataset, DetectionDataset):
        raise ConfigError(f"data.loader=ray_data streams detection datasets; '{data}' is a classification "
                          "dataset: use data.loader=local")
    records = subset(dataset.records, fraction, seed)
    if not records:
        raise ConfigError(f"the train split of '{data}' has no usable images")
    return [json.dumps(record_to_json(record)) for record in records]


def s3_train_listing(data: str, fraction: float, seed: int) -> list[str]:
    """The train split of the ``s3://`` dataset ``data`` as JSON records, listed in place (nothing downloaded but
    the data.yaml and the label files, nothing written to the mirror); logs the listing's digest.

    Raises:
        ConfigError: the dataset cannot be read in place (see :mod:`yolov12.data.s3_split`) or lists no image.
    """
    try:
        listing = list_s3_split(data, "train")
        dataset_names(data)  # what every worker reads: a COCO data.yaml without names fails here, not on them
    except DatasetError as exc:
        raise ConfigError(f"data.loader=ray_data cannot stream {data}: {exc}") from None
    images = subset(listing.images, fraction, seed)
    logger.info("ray_data ingest: %s train split listed in place: %d images (%d used), %d keys refused, listing "
                "digest %s", data, len(listing.images), len(images), len(listing.refused), listing.digest)
    return [json.dumps(s3_record_json(image)) for image in images]


def s3_record_json(image: ListedImage) -> dict[str, Any]:
    """The stream record of a listed ``s3://`` image: :func:`record_to_json`'s fields but the image size."""
    rows = image.rows
    return {"path": image.uri, "classes": rows.classes.tolist(), "boxes": rows.boxes_xywhn.tolist(),
            "segments": None if rows.segments is None else [s.tolist() for s in rows.segments],
            "difficult": None if rows.difficult is None else rows.difficult.tolist()}


def subset(records: list[Any], fraction: float, seed: int) -> list[Any]:
    """A seeded random ``fraction`` of ``records`` in their original order (the local loader's ``fraction`` rule)."""
    if fraction >= 1.0:
        return list(records)
    keep = max(1, round(len(records) * fraction))
    chosen = np.sort(np.random.default_rng(seed).permutation(len(records))[:keep])
    return [records[i] for i in chosen]


def epoch_order(size: int, seed: int, epoch: int, world_size: int) -> np.ndarray:
    """Record indices of one epoch: a permutation seeded by ``(seed, epoch)``, padded with its head to a multiple of
    ``world_size`` so that every rank gets as many rows (and batches) as the others."""
    order = np.random.default_rng(np.random.SeedSequence([seed & (2**64 - 1), epoch])).permutation(size)
    padded = math.ceil(size / world_size) * world_size
    return np.concatenate([order, order[: padded - size]]) if padded > size else order


def batches_per_epoch(size: int, world_size: int, rank_batch: int) -> int:
    """Batches each rank reads per epoch from a listing of ``size`` records (see :func:`epoch_order`)."""
    return math.ceil(math.ceil(size / world_size) / rank_batch)


class EpochBoard:
    """The run's small shared state (a Ray actor): the listing size and the epoch the workers train next."""

    def __init__(self, size: int, world_size: int) -> None:
        self.size, self.epoch, self.total_epochs, self.world_size = size, 0, 1, world_size

    def reset(self, size: int, world_size: int) -> None:
        self.__init__(size, world_size)

    def announce(self, epoch: int, total_epochs: int, world_size: int) -> None:
        self.epoch, self.total_epochs, self.world_size = epoch, total_epochs, world_size

    def current(self) -> tuple[int, int, int]:
        return self.epoch, self.total_epochs, self.world_size

    def listing_size(self) -> int:
        return self.size


def board_name(run_name: str) -> str:
    """The named actor of one run's :class:`EpochBoard`."""
    return f"yolov12-ray-data-{run_name}"


def _listing_block(records: list[str], positions: list[int], epoch: int, total_epochs: int) -> list[pa.Table]:
    return [pa.table({"record": records, "position": pa.array(positions, pa.int64()),
                      "epoch": pa.array([epoch] * len(records), pa.int64()),
                      "total_epochs": pa.array([total_epochs] * len(records), pa.int64())})]


class EpochListing(Datasource):
    """Ray Data source of the listing in the order of the epoch announced on the :class:`EpochBoard`.

    Ray Data asks for read tasks each time the dataset executes; Ray Train executes it once per epoch, after every
    worker has announced that epoch and started iterating.
    """

    def __init__(self, records: list[str], board: Any, seed: int) -> None:
        self.records, self.board, self.seed = records, board, seed

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(len(record) for record in self.records)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        epoch, total_epochs, world_size = ray.get(self.board.current.remote())
        order = epoch_order(len(self.records), self.seed, epoch, world_size)
        chunks = max(1, min(parallelism, math.ceil(len(order) / ROWS_PER_READ_TASK)))
        tasks = []
        for positions in np.array_split(np.arange(len(order)), chunks):
            records = [self.records[i] for i in order[positions]]
            metadata = BlockMetadata(num_rows=len(records), size_bytes=sum(len(r) for r in records) + 24 * len(records),
                                     exec_stats=None, input_files=None)
            tasks.append(ReadTask(partial(_listing_block, records, positions.tolist(), epoch, total_epochs), metadata,
                                  per_task_row_limit=per_task_row_limit))
        return tasks


# -- decode and augment -----------------------------------------------------------------------------------------------
def sample_seed(seed: int, epoch: int, position: int) -> int:
    """The seed of the augmentation of the image at ``position`` of epoch ``epoch``'s order."""
    return stream_seed(seed, epoch, position)


class DecodeAugment:
    """Listing rows -> augmented training arrays, with the mixing buffer of one stream in one process.

    Output columns: ``image`` (B, 3, S, S) uint8 RGB, ``labels`` (bytes of an (n, 5) float32 array: class, cx, cy,
    w, h normalised), ``path``, ``position`` and ``epoch``.
    """

    def __init__(self, augment: dict[str, Any], imgsz: int, buffer_size: int, seed: int) -> None:
        self.params, self.imgsz, self.seed = AugmentSection(**augment), imgsz, seed
        self.buffer = MixingBuffer(buffer_size)
        self.pipeline: Any = None
        self.epoch: tuple[int, int] | None = None
        self.client: Any = None  # this actor's S3 client, made on its first s3:// image

    def _pipeline_for(self, epoch: int, total_epochs: int) -> Any:
        """The training pipeline over the buffer (built once the buffer holds an image), set to ``epoch``."""
        if self.pipeline is None:
            self.pipeline = build_detection_transforms(self.params, self.imgsz, self.buffer, training=True)
        if self.epoch != (epoch, total_epochs):
            self.pipeline.set_epoch(epoch, total_epochs)
            self.epoch = (epoch, total_epochs)
        return self.pipeline

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        samples = [self.decode(str(record)) for record in batch["record"]]
        for sample in samples:
            self.buffer.add(sample)
        outputs = []
        for sample, position, epoch, total in zip(samples, batch["position"], batch["epoch"], batch["total_epochs"]):
            pipeline = self._pipeline_for(int(epoch), int(total))
            seed_augmentation(sample_seed(self.seed, int(epoch), int(position)), pipeline)
            outputs.append(to_training_arrays(pipeline(replace_sample(sample, image=sample.image.copy()))))
        return {"image": np.stack([item["image"] for item in outputs]),
                "labels": np.array([label_bytes(item) for item in outputs], dtype=object),
                "path": np.array([item["path"] for item in outputs], dtype=object),
                "position": np.asarray(batch["position"], np.int64), "epoch": np.asarray(batch["epoch"], np.int64)}

    def decode(self, record_json: str) -> Sample:
        """The listed image decoded (BGR) and resized to the training long side, its labels in its pixels.

        An ``s3://`` image is fetched with this actor's client and decoded in memory; its record gets the size of
        the decoded pixels.
        """
        data = json.loads(record_json)
        if is_s3(data["path"]):
            image = fetch_image_bgr(data["path"], self._s3_client())
            data = {**data, "height": image.shape[0], "width": image.shape[1]}
        else:
            image = read_image_bgr(data["path"])
        return resize_long_side(record_to_sample(record_from_json(data, check_values=False), image), self.imgsz)

    def _s3_client(self) -> Any:
        if self.client is None:
            self.client = s3_client()
        return self.client


STREAMS_PER_PROCESS = 2  # decoders (each with its mixing buffer) one process keeps: runs sharing its workers
_process_decoders: OrderedDict[str, DecodeAugment] = OrderedDict()  # this process's, least recently used first


def process_decoder(stream: str, augment: dict[str, Any], imgsz: int, buffer_size: int, seed: int) -> DecodeAugment:
    """This process's :class:`DecodeAugment` of ``stream``, made on its first batch and kept for the next ones
    (the next epochs' too); the least recently used one leaves when more than :data:`STREAMS_PER_PROCESS` are kept.
    """
    decoder = _process_decoders.get(stream)
    if decoder is None:
        decoder = _process_decoders[stream] = DecodeAugment(augment, imgsz, buffer_size, seed)
        while len(_process_decoders) > STREAMS_PER_PROCESS:
            _process_decoders.popitem(last=False)
    _process_decoders.move_to_end(stream)
    return decoder


def decode_augment_batch(batch: dict[str, np.ndarray], *, stream: str, augment: dict[str, Any], imgsz: int,
                         buffer_size: int, seed: int) -> dict[str, Any]:
    """``map_batches`` task function: the batch through this process's decoder of ``stream``
    (see :class:`DecodeAugment` for the columns)."""
    return process_decoder(stream, augment, imgsz, buffer_size, seed)(batch)


def label_bytes(arrays: dict[str, Any]) -> bytes:
    """Training arrays' labels as the bytes of an (n, 5) float32 array: class, cx, cy, w, h."""
    classes = np.asarray(arrays["classes"], np.float32).reshape(-1, 1)
    return np.hstack([classes, np.asarray(arrays["boxes"], np.float32).reshape(-1, 4)]).tobytes()


def collate_stream_batch(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    """A batch of stream rows -> the loop's detection batch (:func:`~yolov12.data.augment.collate_detection`)."""
    items = []
    for image, labels, path in zip(batch["image"], batch["labels"], batch["path"]):
        rows = np.frombuffer(labels, np.float32).reshape(-1, 5)
        items.append({"image": image, "boxes": rows[:, 1:], "classes": rows[:, 0].astype(np.int64), "path": str(path)})
    return collate_detection(items)


# -- driver and worker sides ------------------------------------------------------------------------------------------
def train_datasets(config: PipelineConfig, run_name: str) -> dict[str, Any]:
    """The ``datasets`` of the run's ``TorchTrainer``: ``{"train": stream}`` with ``data.loader=ray_data``, else
    empty. Lists the train split here (on the driver) and starts the run's :class:`EpochBoard`."""
    if config.data.loader != "ray_data":
        return {}
    train = config.train
    records = train_listing(train.data.data, train.data.fraction, train.run.seed)
    if is_s3(train.data.data) and train.run.val:
        logger.warning("ray_data ingest: the train split of %s streams from S3, but val=true reads the val split "
                       "with the local loader, which mirrors the dataset onto every worker's node first; set "
                       "val=false to keep the nodes free of the dataset", train.data.data)
    world_size = max(config.scaling.min_workers, 1)
    board = ray.remote(num_cpus=0)(EpochBoard).options(name=board_name(run_name), get_if_exists=True).remote(
        len(records), world_size)
    ray.get(board.reset.remote(len(records), world_size))
    logger.info("ray_data ingest: %d train images listed; up to %d decode task(s) of %g CPU%s", len(records),
                config.data.decode_tasks, config.data.decode_cpus,
                f", resources {config.data.decode_resources}" if config.data.decode_resources else "")
    return {"train": stream_dataset(records, board, config)}


def stream_dataset(records: list[str], board: Any, config: PipelineConfig, stream: str | None = None) -> Any:
    """The Ray Dataset of the stream: the epoch's listing, decoded and augmented by up to ``data.decode_tasks``
    concurrent tasks. ``stream`` names this stream's decoders in the task processes (default: a new unique name, so
    that no other run's mixing buffer is drawn from)."""
    ingest, train = config.data, config.train
    listing = ray.data.read_datasource(EpochListing(records, board, train.run.seed))
    return listing.map_batches(
        decode_augment_batch,
        fn_kwargs={"stream": stream or f"stream-{uuid.uuid4().hex}", "augment": train.augment.model_dump(),
                   "imgsz": train.data.imgsz, "buffer_size": stream_buffer_size(len(records), train),
                   "seed": train.run.seed},
        batch_size=ingest.decode_batch, batch_format="numpy",
        compute=ray.data.TaskPoolStrategy(size=ingest.decode_tasks), num_cpus=ingest.decode_cpus,
        resources=dict(ingest.decode_resources) or None)


def stream_buffer_size(images: int, train: TrainConfig) -> int:
    """The mixing buffer of each decoding process: ``train.data.mixing_buffer``, unset: min(images, 8 x batch,
    1000) (0 is refused by the pipeline config: the stream has no random access to draw partners from)."""
    size = train.data.mixing_buffer
    return partner_buffer_size(images, train.data.batch) if size is None else size


class RayDataBatchSource:
    """A :class:`~yolov12.engine.batch_source.TrainBatchSource` over this worker's shard of the stream."""

    def __init__(self, shard: Any, board: Any, world_size: int, rank_batch: int) -> None:
        self.shard, self.board, self.world_size, self.rank_batch = shard, board, world_size, rank_batch
        self.size = int(ray.get(board.listing_size.remote()))
        self.epoch: int | None = None

    def __len__(self) -> int:
        return batches_per_epoch(self.size, self.world_size, self.rank_batch)

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Announce the epoch (every rank does, before iterating; the stream starts when all have)."""
        ray.get(self.board.announce.remote(epoch, total_epochs, self.world_size))
        self.epoch = epoch

    def __iter__(self):
        for batch in self.shard.iter_batches(batch_size=self.rank_batch, batch_format="numpy", drop_last=False,
                                             prefetch_batches=2):
            check_stream_epoch(batch["epoch"], self.epoch)
            yield collate_stream_batch(batch)


def check_stream_epoch(row_epochs: np.ndarray, expected: int | None) -> None:
    """Refuse rows listed for another epoch than the one training (0-based): a stream that did not restart at the
    announced epoch (after a worker restart, say) would otherwise train silently on another epoch's order."""
    if expected is None:
        raise RuntimeError("ray_data ingest: the stream was iterated before set_epoch announced an epoch")
    wrong = np.unique(row_epochs[row_epochs != expected])
    if len(wrong):
        raise RuntimeError(f"ray_data ingest: training epoch {expected + 1} received rows listed for epoch(s) "
                           f"{', '.join(str(int(e) + 1) for e in wrong)}; the stream and the trainer disagree on the "
                           "epoch (restart the run; if it recurs, report it with the driver log)")


def worker_batch_source(config: PipelineConfig, run_name: str, world_size: int) -> RayDataBatchSource | None:
    """This worker's train batches with ``data.loader=ray_data`` (None with ``local``)."""
    if config.data.loader != "ray_data":
        return None
    import ray.train  # noqa: PLC0415 - only inside a Ray Train worker

    return RayDataBatchSource(ray.train.get_dataset_shard("train"), ray.get_actor(board_name(run_name)), world_size,
                              per_rank_batch(config.train.data.batch, world_size))
