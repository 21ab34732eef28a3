"""The per-worker train function of the Ray Train job: the engine's ``fit`` plus three Ray touch points.

1. ``ray.train.get_checkpoint()``: on a restart (worker/node failure, or the same run submitted again) the first
   worker of each node downloads the latest checkpoint, every worker copies it into its local run folder, and
   ``fit`` resumes from ``weights/last.state.pt`` (:mod:`pipelines.checkpoint_transfer`).
2. ``ray.train.report``: every epoch, rank 0 reports its metrics with the resume unit of the run folder as the
   checkpoint (last weights and resume state with their manifest, best weights, results.csv); the final report
   holds the whole run folder; the other ranks report metrics only (every rank must call it equally often).
3. ``ray.train.get_context()``: rank, world size, run name. TorchTrainer has already set up the process group
   (gloo on CPU, NCCL on GPU); the engine reads it, shards the data per rank and wraps the model in DDP.

With ``data.loader=ray_data`` the train batches come from the worker's shard of the run's Ray Data stream
(``ray.train.get_dataset_shard("train")``, :mod:`pipelines.ray_data_ingest`) instead of a local loader.
"""

from __future__ import annotations

import logging
import platform
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import ray.train
import torch

from pipelines.checkpoint_transfer import process_group_barrier, restore_once_per_node, staged_resume_unit
from pipelines.config import PipelineConfig
from yolov12.config.train import TrainConfig
from yolov12.data.remote import fetch_object, is_s3
from yolov12.engine.callbacks import Callback
from yolov12.engine.evaluate import fitness
from yolov12.eval.metric_names import FITNESS, IMAGES_PER_SECOND, short_aliases

logger = logging.getLogger(__name__)
progress = logging.getLogger("pipelines.progress")


def ray_metrics(metrics: dict[str, float], epoch: int, epochs: int, task: str) -> dict[str, float]:
    """Engine metrics plus the flat names checkpoints are ranked by (``fitness``, ``mAP50-95``, ...).

    The flat names are the ``short`` spellings of :mod:`yolov12.eval.metric_names`.
    """
    out = {key: float(value) for key, value in metrics.items()}
    out.update(short_aliases(metrics))
    out.update({"epoch": epoch, "epochs": epochs, FITNESS.short: float(fitness(metrics, task))})
    return out


class RayReport(Callback):
    """Reports each epoch to Ray Train: rank 0 with the run folder as checkpoint, the other ranks metrics only."""

    def __init__(self, rank: int, task: str) -> None:
        self.rank, self.task = rank, task
        self.epochs_done = 0  # epochs finished, counting those of earlier attempts

    def on_fit_start(self, state: Any) -> None:
        self.epochs_done = state.epoch

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        self.epochs_done = state.epoch + 1
        if self.rank != 0:  # rank 0 reports after its checkpoint is written (on_checkpoint)
            ray.train.report(ray_metrics(metrics, state.epoch + 1, state.epochs, self.task))

    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None:
        metrics = ray_metrics(state.history[-1], state.epoch + 1, state.epochs, self.task)
        periodic = [paths["periodic"]] if "periodic" in paths else []  # save_period's epochN.safetensors
        with staged_resume_unit(state.run_dir, periodic) as unit:  # not the whole, growing run folder
            report_checkpoint(unit, metrics, f"epoch_{state.epoch + 1:04d}")


def report_checkpoint(run_dir: Path, metrics: dict[str, float], label: str) -> None:
    """Hand the run folder to Ray Train as a checkpoint and wait until Ray has committed it.

    The upload is synchronous (the folder may change afterwards), but the controller registers a reported checkpoint
    a little later; waiting for the commit means a failure in the next epoch always restarts from this one.
    """
    name = f"checkpoint_{label}_{time.strftime('%Y%m%d-%H%M%S')}"  # unique across restarts of the same epoch
    ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(run_dir)), checkpoint_dir_name=name)
    ray.train.get_all_reported_checkpoints(consistency_mode=ray.train.CheckpointConsistencyMode.COMMITTED)


class EpochLog(Callback):
    """One log line per epoch on rank 0 (visible in ``ray job logs -f``): losses, mAP, throughput, ETA."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.started: float | None = None
        self.durations: list[float] = []

    def on_epoch_start(self, state: Any) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        if not state.is_main_process or self.started is None:
            return
        self.durations.append(time.perf_counter() - self.started)
        remaining = (state.epochs - state.epoch - 1) * sum(self.durations) / len(self.durations)
        losses = " ".join(f"{k.split('/')[1].removesuffix('_loss')} {v:.4f}" for k, v in metrics.items()
                          if k.startswith("train/") and k.endswith("_loss"))
        scores = " ".join(f"{alias} {value:.4f}" for alias, value in short_aliases(metrics).items())
        speed = metrics.get(IMAGES_PER_SECOND.engine, 0.0) * self.world_size
        workers = f"{self.world_size} worker{'s' if self.world_size > 1 else ''}"
        progress.info("epoch %d/%d | %s | %s | %.1f img/s (%s) | %.1f s | ETA %s", state.epoch + 1,
                      state.epochs, losses, scores or "no validation", speed, workers, self.durations[-1],
                      timedelta(seconds=round(remaining)))


def resolve_teachers(train: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """Teacher checkpoints of the ``distill`` section made local on this node (``s3://`` downloaded once per node
    into the shared cache, keyed by ETag); returns the config to train with and the teachers as configured.

    Hook for the GKD section: a config without ``distill`` (or without teachers) trains plainly.
    """
    distill = getattr(train, "distill", None)
    teachers = [str(t) for t in (getattr(distill, "teachers", None) or [])]
    if not teachers:
        return train, []
    local = []
    for teacher in teachers:
        path = str(fetch_object(teacher)) if is_s3(teacher) else teacher
        if (path.endswith((".safetensors", ".pt", ".pth")) or is_s3(teacher)) and not Path(path).is_file():
            raise FileNotFoundError(f"teacher checkpoint {teacher} does not exist on node {platform.node()}; "
                                    "use s3:// or a path on storage shared by every node")
        local.append(path)
    resolved = train.model_copy(update={"distill": distill.model_copy(update={"teachers": local})})
    return resolved, teachers


def build_student(config: PipelineConfig) -> Any:
    """The model to train, the same on every rank (DDP also broadcasts rank 0's weights).

    ``scaling.sync_bn`` is applied by ``fit`` (``sync_bn=``), after it has fitted the head to the dataset's classes:
    a conversion here would be lost when that rebuilds the model.
    """
    from yolov12.models import load_model  # noqa: PLC0415 - the heavy import happens in the worker, not at import

    torch.manual_seed(config.train.run.seed)
    return load_model(str(fetch_object(config.model)) if is_s3(config.model) else config.model)


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train entry of every worker. ``loop_config``: ``pipeline`` (PipelineConfig as a dict), ``run_id`` (MLflow
    run or None), ``callbacks`` (extra engine callbacks, e.g. from tests)."""
    from yolov12.engine.trainer import fit  # noqa: PLC0415

    _configure_logging()
    config = PipelineConfig.model_validate(loop_config["pipeline"])
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    train, teachers = resolve_teachers(config.train)
    overrides: dict[str, Any] = {"verbose": False}  # one log line per epoch (EpochLog) instead of a tqdm bar
    # Ray assigns the devices: each worker its own GPU, or the CPU (never `auto`, which would put every worker of a
    # CPU job on a GPU box on cuda:0).
    overrides["device"] = str(ray.train.torch.get_device()) if config.scaling.use_gpu else "cpu"
    train = train.model_copy(update={"run": train.run.model_copy(update=overrides)})
    run_dir = Path(tempfile.mkdtemp(prefix=f"yolov12-{context.get_experiment_name()}-rank{rank}-"))
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        node = f"{context.get_experiment_name()}-node{context.get_node_rank()}"
        restore_once_per_node(checkpoint, run_dir, node, context.get_local_rank(),
                              process_group_barrier(overrides["device"]))
        train = train.model_copy(update={"run": train.run.model_copy(update={"resume": True})})
        logger.info("rank %d: resuming from checkpoint %s", rank, checkpoint.path)
    if rank == 0:
        logger.info("training %s on %s with %d worker(s); teachers: %s", config.model, train.data.data, world_size,
                    ", ".join(teachers) or "none")
    model = build_student(config)
    reporter = RayReport(rank, model.task)
    callbacks: list[Callback] = [reporter, EpochLog(world_size)]
    if rank == 0 and loop_config.get("run_id"):
        from pipelines.tracking import EpochMetricsCallback  # noqa: PLC0415

        callbacks.append(EpochMetricsCallback(config.tracking, loop_config["run_id"]))
    callbacks += list(loop_config.get("callbacks") or [])
    train_batches = None
    if config.data.loader == "ray_data":
        from pipelines.ray_data_ingest import worker_batch_source  # noqa: PLC0415 - Ray Data only when streaming

        train_batches = worker_batch_source(config, context.get_experiment_name(), world_size)
    try:
        result = fit(model, train, callbacks, run_dir=run_dir, sync_bn=config.scaling.sync_bn and world_size > 1,
                     train_batches=train_batches)
        final = {**ray_metrics(result.metrics, reporter.epochs_done, train.run.epochs, model.task), "final": 1}
        if rank == 0:  # the run folder now also holds the plots: the final checkpoint is the complete run
            report_checkpoint(run_dir, final, f"final_epoch_{reporter.epochs_done:04d}")
        else:
            ray.train.report({**final, "final": 1})
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _configure_logging() -> None:
    """Workers are process entry points: show INFO from our packages (Ray forwards it to the driver/job logs)."""
    for name in ("pipelines", "yolov12"):
        named = logging.getLogger(name)
        if not named.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            named.addHandler(handler)
            named.setLevel(logging.INFO)
            named.propagate = False
    # Ray Train logs every report with all its metrics at INFO ("Reporting training result 3: TrainingReport(...)"),
    # which buries the one progress line per epoch in the job logs. Its logger is named by the module's file path
    # (``logging.getLogger(__file__)`` in Ray 2.60), so it is taken from the module rather than by a dotted name.
    try:
        from ray.train.v2._internal.execution import context as train_context  # noqa: PLC0415
    except ImportError:  # another Ray layout: the reports stay at INFO
        return
    report_logger = getattr(train_context, "logger", None)
    if isinstance(report_logger, logging.Logger):
        report_logger.setLevel(logging.WARNING)
