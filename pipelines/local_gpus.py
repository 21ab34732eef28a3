"""``YOLO.train(device="0,1")`` / ``yolov12 train device=0,1``: the Ray Train job on this machine's GPUs.

Registered as the core library's ``gpus`` launcher (entry point group ``yolov12.launchers``). It runs the same job
as ``yolov12 train-ray`` (:func:`pipelines.train.run_pipeline`): a local Ray that sees only the chosen GPUs, one DDP
worker per GPU (NCCL), the global ``batch`` split evenly over them, MLflow tracking as configured by the
environment, and the run folder under ``project/`` as a local ``fit`` would write it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig, ScalingSection, StorageSection, check_workers_and_devices
from yolov12.config.train import TrainConfig
from yolov12.engine.trainer import FitResult
from yolov12.models.loading import load_model

logger = logging.getLogger(__name__)


def gpu_pipeline_config(model_source: str, config: TrainConfig, gpus: list[int]) -> PipelineConfig:
    """The pipeline config of a local multi-GPU run: one worker per GPU, outputs under ``config.run.project``."""
    train = config.updated(device="cuda")  # each worker trains on the GPU Ray assigns it
    pipeline = PipelineConfig(
        model=model_source, train=train,
        scaling=ScalingSection(num_workers=len(gpus), use_gpu=True, resources_per_worker={"GPU": 1}),
        storage=StorageSection(storage_path=str(Path(config.run.project) / "ray"), output=config.run.project),
    )
    check_workers_and_devices(pipeline)
    return pipeline


def train_on_local_gpus(model_source: str, config: TrainConfig, gpus: list[int],
                        callbacks: list[Any] | None = None) -> FitResult:
    """Run the Ray Train job on ``gpus`` of this machine; returns what a local ``fit`` returns."""
    import ray  # noqa: PLC0415 - Ray only where a job runs

    from pipelines.driver import init_ray  # noqa: PLC0415
    from pipelines.train import run_pipeline  # noqa: PLC0415

    pipeline = gpu_pipeline_config(model_source, config, gpus)
    if not ray.is_initialized():  # a private local Ray that sees only the chosen GPUs
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
        init_ray("local", num_gpus=len(gpus))
    logger.info("device=%s: DDP on %d GPUs through Ray Train (one worker per GPU, %d images per worker and step)",
                ",".join(map(str, gpus)), len(gpus), config.data.batch // len(gpus))
    result = run_pipeline(pipeline, callbacks=callbacks)
    weights = result.best or result.last
    if weights is None:
        raise RuntimeError(f"the Ray Train run {result.name} finished without weights in {result.run_dir}")
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    return FitResult(result.run_dir, result.best, result.last, metrics, load_model(str(weights)), config.data.data)
