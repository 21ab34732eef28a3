"""Streaming ingest benchmark: images/s and peak RSS of ``data.loader=ray_data`` against the local loader, one node.

Both sides run the same work: the sample dataset's train split (96 images, or the same files listed ``--repeat``
times), decode, the library's training augmentation (``--mosaic``, the other keys at their defaults), batch
``--batch`` at ``--imgsz``, collated into the loop's batch dicts, for ``--epochs`` epochs. The consumer only counts
images (no model), so the figures are the ingest's ceiling.

- ``local``: the engine's ``build_training_data`` DataLoader with ``--workers`` processes (started anew each epoch,
  as the trainer's loader does).
- ``ray_data``: a private local Ray (``--workers`` CPUs for the decode tasks, plus one for the listing), the stream
  of :mod:`pipelines.ray_data_ingest` (up to ``--workers`` decode tasks at once), executed once per epoch after the
  epoch is announced, read by one consumer as a Ray Train worker reads its shard.

images/s is end to end, per epoch: the epoch's images over the time from asking for its first batch to its last, so
each epoch's start-up (the local loader's worker processes; the stream's listing, decode processes starting, first
blocks) counts, as it does in a run; the start-up column is the time to the epoch's first batch. Starting Ray itself
is not timed. Peak RSS is the largest sum, sampled every 50 ms over all epochs, of the resident memory of this
process and all its descendants (the DataLoader workers; the raylet, Ray workers), the object store's shared pages
counted where they are touched.

Usage: ``python -m benchmarks.ray_data_ingest [--imgsz 160] [--batch 16] [--workers 2] [--repeat 1 10] [--epochs 3]``
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil
import ray

from benchmarks.bench_common import machine_line
from pipelines.config import load_pipeline_config
from pipelines.ray_data_ingest import EpochBoard, collate_stream_batch, stream_dataset, train_listing
from yolov12.config.train import TrainConfig
from yolov12.engine.data_setup import build_training_data
from yolov12.engine.distributed import current_context

os.environ.setdefault("OMP_NUM_THREADS", "1")


@dataclass
class Measured:
    """One benchmark row: one epoch of one loader."""

    loader: str
    epoch: int
    images: int
    startup_s: float
    images_per_second: float
    peak_rss_mb: float


class PeakRSS:
    """Samples the resident memory of this process tree in a thread; ``peak`` is the largest sum in MB."""

    def __init__(self, period: float = 0.05) -> None:
        self.period, self.peak, self._stop = period, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total / 2**20)
            time.sleep(self.period)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(name: str, epochs: Iterable[Iterable[dict]]) -> list[Measured]:
    """Iterate each epoch's batches once, under one :class:`PeakRSS` sampler (its peak is over all epochs)."""
    timings = []
    with PeakRSS() as rss:
        for batches in epochs:
            began = time.perf_counter()
            batches = iter(batches)
            images = next(batches)["images"].shape[0]
            first = time.perf_counter()
            for batch in batches:
                images += batch["images"].shape[0]
            timings.append((images, first - began, images / (time.perf_counter() - began)))
    return [Measured(name, epoch + 1, images, startup, rate, rss.peak)
            for epoch, (images, startup, rate) in enumerate(timings)]


def local_epochs(args: argparse.Namespace, repeat: int) -> Iterable[Iterable[dict]]:
    """The engine's local train loader over the split listed ``repeat`` times, one epoch after another."""
    config = TrainConfig.from_overrides(data="sample", imgsz=args.imgsz, batch=args.batch, workers=args.workers,
                                        mosaic=args.mosaic, close_mosaic=0, val=False, seed=0)
    data = build_training_data(config, "detect", current_context())
    data.train_loader.dataset.records = data.train_loader.dataset.records * repeat
    for epoch in range(args.epochs):
        data.set_epoch(epoch, args.epochs)
        yield data.train_loader


def ray_data_epochs(args: argparse.Namespace, repeat: int) -> Iterable[Iterable[dict]]:
    """The ray_data stream of the split listed ``repeat`` times, one epoch after another, read by one consumer."""
    config = load_pipeline_config(None, {"data": "sample", "imgsz": args.imgsz, "batch": args.batch, "seed": 0,
                                         "mosaic": args.mosaic, "close_mosaic": 0, "data.loader": "ray_data",
                                         "data.decode_tasks": args.workers, "scaling.num_workers": 1})
    records = train_listing("sample", 1.0, 0) * repeat
    board = ray.remote(num_cpus=0)(EpochBoard).remote(len(records), 1)
    stream = stream_dataset(records, board, config)
    for epoch in range(args.epochs):
        ray.get(board.announce.remote(epoch, args.epochs, 1))
        yield (collate_stream_batch(batch) for batch in
               stream.iter_batches(batch_size=args.batch, batch_format="numpy", prefetch_batches=2))


def run(args: argparse.Namespace) -> list[Measured]:
    rows = []
    for repeat in args.repeat:
        rows += timed(f"local, {repeat}x", local_epochs(args, repeat))
        ray.init(num_cpus=args.workers + 1, include_dashboard=False, logging_level="ERROR")  # not timed
        try:
            rows += timed(f"ray_data, {repeat}x", ray_data_epochs(args, repeat))
        finally:
            ray.shutdown()
    return rows


def table(rows: list[Measured], args: argparse.Namespace) -> str:
    lines = [f"{machine_line()}; imgsz {args.imgsz}, batch {args.batch}, {args.workers} decode processes, mosaic "
             f"{args.mosaic}", "",
             "| loader, listing | epoch | images | start-up s | images/s | vs local | peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    local = {(row.loader.split(",")[1], row.epoch): row.images_per_second for row in rows
             if row.loader.startswith("local")}
    for row in rows:
        base = local.get((row.loader.split(",")[1], row.epoch))
        ratio = row.images_per_second / base if base else 0.0
        lines.append(f"| {row.loader} | {row.epoch} | {row.images} | {row.startup_s:.1f} | "
                     f"{row.images_per_second:.1f} | {ratio:.2f}x | {row.peak_rss_mb:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mosaic", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    print(table(run(args), args))


if __name__ == "__main__":
    main()
