"""Epoch time of Ray Train (1 and 2 workers) against the plain local trainer on the same work.

    RAY_AUTH_MODE=token .venv/bin/python benchmarks/ray_train.py --epochs 4 --imgsz 160

Every run trains yolov12n on the offline sample set with the same settings (no validation, no plots, fp32); the
epoch time is measured on rank 0 from the start to the end of each epoch, and the first epoch (warm-up: allocator,
first-touch) is left out of the mean. Ray runs also report the wall time of the whole job (Ray start, worker start,
checkpoint uploads). Ray gives each worker as many threads as CPUs it reserves (OMP_NUM_THREADS), so the local run
runs in a child process with the same ``OMP_NUM_THREADS`` as the 1-worker run reserves CPUs (the variable also
sizes the BLAS and OpenCV pools, so ``torch.set_num_threads`` alone is not the same work); the 2-worker run reserves
one CPU per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray
import torch

from pipelines.config import load_pipeline_config
from pipelines.train import run_pipeline
from yolov12 import YOLO
from yolov12.engine.callbacks import Callback


class EpochTimer(Callback):
    """Appends ``{"epoch", "seconds"}`` per epoch of rank 0 to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path, self.started = str(path), 0.0

    def on_epoch_start(self, state) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, state, metrics) -> None:
        if state.is_main_process:
            with open(self.path, "a") as handle:
                handle.write(json.dumps({"epoch": state.epoch + 1, "seconds": time.perf_counter() - self.started})
                             + "\n")


def train_settings(args: argparse.Namespace) -> dict:
    return {"data": "sample", "imgsz": args.imgsz, "batch": args.batch, "epochs": args.epochs, "workers": 0,
            "val": False, "plots": False, "amp": False, "optimizer": "SGD", "lr0": 0.01, "warmup_epochs": 1,
            "close_mosaic": 0, "seed": 0}


def epoch_times(path: Path) -> list[float]:
    return [json.loads(line)["seconds"] for line in path.read_text().splitlines()]


def run_local(args: argparse.Namespace, folder: Path) -> dict:
    timer = folder / "local.jsonl"
    torch.manual_seed(0)
    started = time.perf_counter()
    YOLO("yolov12n.yaml").train(project=str(folder), name="local", verbose=False, callbacks=[EpochTimer(timer)],
                                **train_settings(args))
    return {"times": epoch_times(timer), "wall": time.perf_counter() - started}


def run_local_in_child(args: argparse.Namespace, folder: Path) -> dict:
    """``run_local`` in a fresh process whose thread pools are sized like a Ray worker's."""
    command = [sys.executable, __file__, "--local-only", str(folder), "--epochs", str(args.epochs), "--imgsz",
               str(args.imgsz), "--batch", str(args.batch)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_ray(args: argparse.Namespace, folder: Path, workers: int, cpus_per_worker: int) -> dict:
    timer = folder / f"ray{workers}.jsonl"
    config = load_pipeline_config(None, {
        **train_settings(args), "scaling.num_workers": workers,
        "scaling.resources_per_worker": {"CPU": cpus_per_worker},
        "storage.storage_path": str(folder / "ray"), "storage.output": str(folder / "out"),
        "storage.name": f"bench-{workers}", "tracking.enabled": False})
    started = time.perf_counter()
    run_pipeline(config, callbacks=[EpochTimer(timer)])
    return {"times": epoch_times(timer), "wall": time.perf_counter() - started}


def row(name: str, result: dict, reference: dict | None) -> str:
    steady, fastest = statistics.mean(result["times"][1:] or result["times"]), min(result["times"])
    versus = (f"{100 * (steady / statistics.mean(reference['times'][1:]) - 1):+.0f}% / "
              f"{100 * (fastest / min(reference['times']) - 1):+.0f}%") if reference else "—"
    times = ", ".join(f"{t:.1f}" for t in result["times"])
    return f"| {name} | {times} | {steady:.2f} | {fastest:.2f} | {versus} | {result['wall']:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="threads of the local run = CPUs of the 1 worker")
    parser.add_argument("--local-only", help=argparse.SUPPRESS)  # child process: the local run into this folder
    args = parser.parse_args()
    if args.local_only:
        print(json.dumps(run_local(args, Path(args.local_only))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        folder = Path(tmp)
        local = run_local_in_child(args, folder)
        ray.init(address="local", num_cpus=2, logging_level="WARNING")
        one = run_ray(args, folder, workers=1, cpus_per_worker=args.threads)
        two = run_ray(args, folder, workers=2, cpus_per_worker=1)
        ray.shutdown()
    print(f"yolov12n, sample (96 images), imgsz {args.imgsz}, batch {args.batch} per worker, {args.epochs} epochs")
    print("| run | epoch times (s) | mean epoch 2+ (s) | fastest epoch (s) | vs local (mean / fastest) | wall (s) |")
    print("|---|---|---:|---:|---:|---:|")
    print(row(f"local fit ({args.threads} thread(s))", local, None))
    print(row(f"Ray Train, 1 worker x {args.threads} CPU(s)", one, local))
    print(row("Ray Train, 2 workers x 1 CPU (DDP, gloo)", two, local))


if __name__ == "__main__":
    main()
