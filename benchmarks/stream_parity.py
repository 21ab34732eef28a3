"""Training-quality parity of the streaming ingest: the same 2-worker Ray Train run with ``data.loader=local`` and
``data.loader=ray_data``, over several seeds, each run's final weights validated on the sample val split.

The training keys are the CI parity test's (``PARITY_TRAIN`` in ``tests/pipelines/test_ray_data_ingest.py``: 16
epochs at 128 px, global batch 16, mosaic closed for the last 5 epochs, ``val=false``); the stream reads the sample
folder with ``--decode-tasks`` decode tasks on the same node. Runs one after another on a private local Ray of
``--cpus`` CPUs; prints one markdown table (train seconds exclude starting Ray, include Ray Train's start).

Usage: ``python -m benchmarks.stream_parity [--seeds 0 1 2] [--epochs 16] [--imgsz 128] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ray

from benchmarks.bench_common import machine_line
from pipelines.config import load_pipeline_config
from pipelines.train import run_pipeline
from yolov12 import YOLO

LOADERS = ("local", "ray_data")


def train_keys(args: argparse.Namespace, seed: int) -> dict:
    """The parity test's training keys at ``seed``."""
    return {"data": "sample", "imgsz": args.imgsz, "batch": 16, "nbs": 16, "workers": 0, "optimizer": "AdamW",
            "lr0": 0.01, "warmup_epochs": 1, "close_mosaic": 5, "mosaic": args.mosaic, "amp": False, "seed": seed,
            "plots": False, "epochs": args.epochs, "val": False, "scaling.num_workers": 2, "tracking.enabled": False}


def one_run(args: argparse.Namespace, loader: str, seed: int, workdir: Path, index: int) -> tuple[float, float]:
    """(train seconds, val mAP50) of run ``index`` (its own run name: a repeated seed is a new run, not a resume)."""
    values = {**train_keys(args, seed), "data.loader": loader, "data.decode_tasks": args.decode_tasks,
              "storage.storage_path": str(workdir / "ray"), "storage.output": str(workdir / "out"),
              "storage.name": f"{loader}-seed{seed}-{index}"}
    began = time.perf_counter()
    result = run_pipeline(load_pipeline_config(None, values))
    seconds = time.perf_counter() - began
    metrics = YOLO(str(result.last)).val(data="sample", imgsz=args.imgsz, batch=16)
    return seconds, float(metrics["metrics/mAP50(B)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--decode-tasks", type=int, default=1)
    parser.add_argument("--mosaic", type=float, default=1.0)
    parser.add_argument("--cpus", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="stream-parity-"))
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="ERROR")
    results: dict[str, list[tuple[float, float]]] = {loader: [] for loader in LOADERS}
    try:
        for index, seed in enumerate(args.seeds):
            for loader in LOADERS:
                results[loader].append(one_run(args, loader, seed, workdir, index))
    finally:
        ray.shutdown()
    print(f"{machine_line()}; 2 workers, {args.epochs} epochs at {args.imgsz} px\n")
    print("| seed | local: train s | local mAP50 | ray_data: train s | ray_data mAP50 | difference |")
    print("|---:|---:|---:|---:|---:|---:|")
    for seed, (local, stream) in zip(args.seeds, zip(results["local"], results["ray_data"])):
        print(f"| {seed} | {local[0]:.1f} | {local[1]:.3f} | {stream[0]:.1f} | {stream[1]:.3f} | "
              f"{stream[1] - local[1]:+.3f} |")
    means = {loader: statistics.fmean(m for _, m in runs) for loader, runs in results.items()}
    print(f"| mean | | {means['local']:.3f} | | {means['ray_data']:.3f} | {means['ray_data'] - means['local']:+.3f} |")


if __name__ == "__main__":
    main()
