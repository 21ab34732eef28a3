"""Driver of the Ray Train job: ``yolov12 train-ray config=configs/sample.yaml [key=value ...]`` (or
``python -m pipelines.train config=...``; ``--config PATH`` works too).

Locally it starts a Ray instance; under ``ray job submit`` (or with ``RAY_ADDRESS`` set) it joins that cluster.
Steps: parse the config → check the model, teachers and data (``pipelines.preflight``) → ``ray.init`` → MLflow run
(optional) → ``build_trainer(...).fit()`` → copy the final run folder (weights, results.csv, plots, resume state) out
of the result checkpoint → register the best weights → summary.

Example:
    >>> result = run_pipeline(load_pipeline_config("configs/sample.yaml", ["epochs=1"]))  # doctest: +SKIP
    >>> result.best  # doctest: +SKIP
    PosixPath('runs/train-ray/yolov12n-sample-20260101-120000/weights/best.safetensors')
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import tracking
from pipelines.arguments import parse_pipeline_arguments
from pipelines.config import PipelineConfig, load_pipeline_config
from pipelines.driver import build_trainer, check_checkpoint_ranking, init_ray
from pipelines.preflight import preflight_pipeline
from pipelines.registry import RegistryError, mlflow_client
from pipelines.storage import resolve_storage
from pipelines.teachers import REGISTRY_PREFIX, TeacherRef, resolve_teacher
from yolov12.cli.arguments import CommandLineError
from yolov12.cli.commands import Command
from yolov12.config.base import ConfigError
from yolov12.engine.callbacks import Callback

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineResult:
    """Where the job went: the local run folder, its weights, final metrics and the lineage ids."""

    name: str
    run_dir: Path  # storage.output/name: weights/, results.csv, plots, weights/last.state.pt
    best: Path | None
    last: Path | None
    metrics: dict[str, Any]
    checkpoint: str  # the final Ray Train checkpoint (in storage_path/name)
    resumed: bool  # the run name already existed in storage: training continued from its latest checkpoint
    run_id: str | None = None
    model_version: str | None = None
    onnx: Path | None = None


def default_run_name(config: PipelineConfig) -> str:
    """``<model>-<data>-<timestamp>``; give ``storage.name`` explicitly to be able to resubmit (resume) a run."""
    model = Path(config.model.rstrip("/")).stem
    data = Path(str(config.train.data.data).rstrip("/"))
    data_name = data.parent.name if data.stem in ("data", "dataset") and data.parent.name else data.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model}-{data_name}-{time.strftime('%Y%m%d-%H%M%S')}")


def configured_teachers(config: PipelineConfig) -> list[str]:
    """Teacher checkpoints named by the ``distill`` training section (empty without one)."""
    distill = getattr(config.train, "distill", None)
    return [str(t) for t in (getattr(distill, "teachers", None) or [])]


def resolve_configured_teachers(config: PipelineConfig) -> tuple[PipelineConfig, list[TeacherRef]]:
    """The config to train with and the teachers' identities for the run (see :mod:`pipelines.teachers`).

    A ``models:/`` teacher is pinned to the version its alias names now, downloaded through the registry and given
    to the trainer as that file (on a cluster of several nodes, the registry cache, ``$YOLOV12_CACHE``, must be on
    storage every node shares; ``s3://`` teachers are fetched by each node). Identities are worked out only when
    the run is tracked or a teacher is in the registry.
    """
    specs = configured_teachers(config)
    uses_registry = any(spec.startswith(REGISTRY_PREFIX) for spec in specs)
    if not specs or not (config.tracking.enabled or uses_registry):
        return config, []
    client = mlflow_client(tracking.resolve_tracking_uri(config.tracking))
    try:
        resolved = [resolve_teacher(spec, client) for spec in specs]
    except RegistryError as exc:
        raise ConfigError(f"distill.teachers: {exc}") from None
    if not uses_registry:
        return config, [r.ref for r in resolved]
    distill = config.train.distill.model_copy(update={"teachers": [r.path for r in resolved]})
    training = config.model_copy(update={"train": config.train.model_copy(update={"distill": distill})})
    return training, [r.ref for r in resolved]


def run_pipeline(config: PipelineConfig, callbacks: list[Callback] | None = None) -> PipelineResult:
    """Run one Ray Train job (see the module docstring). ``callbacks``: extra engine callbacks for every worker."""
    name = config.storage.name or default_run_name(config)
    storage = resolve_storage(config.storage.storage_path)
    resumed = storage.run_exists(name)
    if resumed:
        logger.info("run %s exists in %s: resuming from its latest checkpoint", name, storage.uri)
    _check_options(config)
    init_ray()
    if config.tracking.enabled:  # workers log to the same store, wherever they run
        config = config.model_copy(update={"tracking": config.tracking.resolved()})
    training, teachers = resolve_configured_teachers(config)  # the run records the config as given
    run_id = _start_tracking(config, name, teachers) if config.tracking.enabled else None
    trainer = build_trainer(training, name=name, storage=storage, run_id=run_id, engine_callbacks=callbacks or ())
    try:
        result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError(f"run {name} finished without a checkpoint in {storage.run_uri(name)}")
        run_dir = collect_run(result.checkpoint, Path(config.storage.output) / name)
        best, last = run_dir / "weights/best.safetensors", run_dir / "weights/last.safetensors"
        best, last = (best if best.is_file() else None), (last if last.is_file() else None)
        onnx = export_onnx(best or last, config.train.data.imgsz) if config.export_onnx and (best or last) else None
        version = None
        if run_id:
            version = tracking.finish_training_run(config.tracking, run_id, run_dir=run_dir,
                                                   best_weights=best or last, onnx=onnx)
    except BaseException:
        if run_id:  # a resubmission with the same name reopens this run
            tracking.fail_training_run(config.tracking, run_id)
        raise
    return PipelineResult(name, run_dir, best, last, dict(result.metrics or {}), result.checkpoint.path, resumed,
                          run_id, version, onnx)


def collect_run(checkpoint: Any, target: Path) -> Path:
    """Copy the final checkpoint (the complete run folder) to ``target``, replacing an older copy."""
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.to_directory(str(staging))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def export_onnx(weights: Path, imgsz: int) -> Path:
    """ONNX of ``weights`` at the training image size, through the library's exporter."""
    from yolov12 import YOLO  # noqa: PLC0415

    model = YOLO(str(weights))
    if not hasattr(model, "export"):
        raise ConfigError("export_onnx=true needs the exporter (YOLO.export), which this build lacks; "
                          "set export_onnx=false")
    return Path(model.export(format="onnx", imgsz=imgsz))


def _check_options(config: PipelineConfig) -> None:
    if config.export_onnx:
        from yolov12 import YOLO  # noqa: PLC0415

        if not hasattr(YOLO, "export"):
            raise ConfigError("export_onnx=true needs the exporter (YOLO.export), which this build lacks; "
                              "set export_onnx=false")
    check_checkpoint_ranking(config)  # before Ray starts and before the MLflow run opens


def _start_tracking(config: PipelineConfig, name: str, teachers: list[TeacherRef]) -> str:
    """Open (or reopen, for a resubmitted run) the MLflow run with params, dataset, teachers and system info."""
    import ray  # noqa: PLC0415
    import torch  # noqa: PLC0415

    digest, source = dataset_lineage(config.train.data.data)
    system = {"world_size": config.scaling.num_workers or 1, "use_gpu": config.scaling.use_gpu,
              "resources_per_worker": config.scaling.resources_per_worker, "ray_nodes": len(ray.nodes()),
              "ray_version": ray.__version__, "torch_version": torch.__version__, "python": platform.python_version()}
    return tracking.start_training_run(config.tracking, run_name=name, params=config.model_dump(mode="json"),
                                       dataset_digest=digest, dataset_source=source,
                                       teachers=teachers, system=system)


def dataset_lineage(data: str) -> tuple[str, str]:
    """(digest, source) of the training data, for MLflow.

    Data on S3 is identified by the listing of its prefix (keys, ETags, sizes: every split, nothing downloaded but the
    data.yaml), so the driver does not download and hash the dataset before training starts; other data by the
    content digest of the full training split (before ``fraction``). See :mod:`yolov12.data.digest`.
    """
    from yolov12.data.detection_dataset import build_datasets  # noqa: PLC0415
    from yolov12.data.digest import dataset_digest, s3_dataset_digest  # noqa: PLC0415

    source = data if "://" in data or not Path(data).exists() else str(Path(data).resolve())
    digest = s3_dataset_digest(data) if data.startswith("s3://") else None
    if digest is None:
        dataset, _ = build_datasets(data, "train")
        digest = dataset_digest(dataset.records)
    return digest, source


def summary(result: PipelineResult) -> str:
    """What the job printed last: run, epochs, scores, where everything is."""
    metrics = result.metrics
    scores = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("fitness", "mAP50-95", "mAP50", "accuracy_top1")
                       if k in metrics)
    lines = [f"run {result.name}{' (resumed)' if result.resumed else ''}: {int(metrics.get('epoch', 0))} epochs; "
             f"{scores or 'no validation metrics'}",
             f"  run folder: {result.run_dir}", f"  best: {result.best}", f"  last: {result.last}",
             f"  checkpoint: {result.checkpoint}"]
    if result.onnx:
        lines.append(f"  onnx: {result.onnx}")
    if result.run_id:
        lines.append(f"  MLflow run: {result.run_id}; registered version: {result.model_version}")
    return "\n".join(lines)


def parse_arguments(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    """``config=PATH`` (or ``--config PATH``) and the typed ``key=value`` overrides; an unknown key raises
    :class:`~yolov12.cli.arguments.CommandLineError` naming the closest one."""
    return parse_pipeline_arguments(argv)


def main(argv: list[str] | None = None, prog: str = "pipelines.train") -> int:
    """Entry point; a configuration or input error prints one line and returns 2, a failed run returns 1.

    The config, the model source and the data are checked (:func:`pipelines.preflight.preflight_pipeline`) before
    Ray starts, so a bad one fails within seconds.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE.replace("PROG", prog))
        return 0
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = False
    try:
        path, overrides = parse_arguments(argv)
        config = load_pipeline_config(path, overrides)
        preflight_pipeline(config)
        started = init_ray()
        result = run_pipeline(config)
    except (ConfigError, CommandLineError, FileNotFoundError) as exc:
        if os.environ.get("YOLOV12_DEBUG"):
            raise
        print(f"{prog}: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a failed run: one line, details are in the worker logs above
        if os.environ.get("YOLOV12_DEBUG"):
            raise
        print(f"{prog}: training failed: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return 1
    finally:
        if started:  # leave nothing behind (a job driver must exit for `ray job status` to say SUCCEEDED)
            import ray  # noqa: PLC0415

            ray.shutdown()
    print(summary(result), flush=True)
    return 0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def train_ray_command(arguments: list[str]) -> int:
    return main(arguments, prog="yolov12 train-ray")


USAGE = ("usage: PROG config=configs/sample.yaml [key=value ...]  (--config PATH works too)\n"
         "  keys: model=, export_onnx=, training keys (epochs=3, lr0=0.01, data=sample), sections "
         "(scaling.num_workers=2, storage.name=run1, tracking.enabled=true); see docs/configuration.md")
TRAIN_RAY_COMMAND = Command(
    "train-ray", "train on Ray: yolov12 train-ray config=configs/sample.yaml epochs=3 scaling.num_workers=2",
    train_ray_command)

if __name__ == "__main__":
    sys.exit(main())
