"""A tracked "training run" without training: a real run folder (tiny yolov12n checkpoint, results.csv, a plot)
logged through the real tracking API, for the tracking, registry and lineage tests."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from pipelines.tracking import EpochMetricsCallback, TrackingConfig, finish_training_run, start_training_run
from yolov12.config.train import TrainConfig
from yolov12.models import build_model, load_architecture
from yolov12.weights import save_checkpoint

DATASET_SOURCE = "s3://yolov12-test/datasets/sample/data.yaml"
TEACHERS = ["s3://yolov12-test/teachers/yolov12s.safetensors"]
SYSTEM = {"world_size": 2, "devices": ["cpu", "cpu"], "num_nodes": 2}


def digest_for(label: str) -> str:
    """A distinct sha256-shaped dataset digest per test (the real one comes from yolov12.data.digest)."""
    return hashlib.sha256(label.encode()).hexdigest()


def training_params(epochs: int = 2) -> dict:
    """The full resolved config a pipeline would log: model + the engine's TrainConfig, nested."""
    return {"model": "yolov12n.yaml", "train": TrainConfig.from_overrides(epochs=epochs, imgsz=64).model_dump(),
            "scaling": {"num_workers": 2, "use_gpu": False}}


def make_run_dir(root: Path, seed: int = 0) -> Path:
    """``root/weights/{best,last}.safetensors`` (yolov12n, different weights), results.csv, results.png."""
    model = build_model(load_architecture("yolov12n"))
    weights = root / "weights"
    save_checkpoint(model, weights / "last.safetensors")
    generator = np.random.default_rng(seed)
    first = next(model.parameters())
    first.data.add_(float(generator.normal()))  # best differs from last, and from other runs' weights
    save_checkpoint(model, weights / "best.safetensors")
    with (root / "results.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "train/box_loss", "metrics/mAP50-95(B)"])
        writer.writerows([[1, 3.0, 0.01], [2, 2.5, 0.02]])
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(root / "results.png")
    (root / "export").mkdir()
    (root / "export" / "best.onnx").write_bytes(b"stand-in")  # tracking logs files; export is tested elsewhere
    return root


@dataclass
class TrackedRun:
    tracking: TrackingConfig
    run_id: str
    version: str | None
    run_dir: Path
    params: dict
    digest: str


def tracked_run(root: Path, tracking: TrackingConfig, *, run_name: str, digest: str, epochs: int = 2,
                seed: int = 0) -> TrackedRun:
    """Start a run, log ``epochs`` epochs of metrics through the callback, finish (artifacts + registration)."""
    run_dir = make_run_dir(root, seed)
    params = training_params(epochs)
    run_id = start_training_run(tracking, run_name=run_name, params=params, dataset_digest=digest,
                                dataset_source=DATASET_SOURCE, teachers=TEACHERS, system=SYSTEM)
    callback = EpochMetricsCallback(tracking, run_id)
    state = SimpleNamespace(is_main_process=True, epoch=0)
    callback.on_fit_start(state)
    for epoch in range(epochs):
        state.epoch = epoch
        callback.on_epoch_end(state, {"train/box_loss": 3.0 - epoch, "metrics/mAP50-95(B)": 0.01 * (epoch + 1)})
    version = finish_training_run(tracking, run_id, run_dir=run_dir, best_weights=run_dir / "weights" /
                                  "best.safetensors", onnx=run_dir / "export" / "best.onnx")
    return TrackedRun(tracking, run_id, version, run_dir, params, digest)
