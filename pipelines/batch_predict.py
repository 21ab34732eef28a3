"""Offline batch inference on Ray Data: ``yolov12 predict-ray model=... source=... output=...``.

    python -m pipelines.batch_predict model=models:/yolov12n-sample@champion source=s3://bucket/images/ \\
        output=s3://bucket/preds/ backend=onnxruntime imgsz=640 concurrency=1,4 num_cpus=2

When to use it: a folder or bucket prefix of images (thousands to millions) to predict once, with the result as a
table, on a Ray cluster that scales the model out; ``yolov12 predict`` stays the tool for one machine and videos,
``yolov12 serve`` for requests. Steps:

1. the driver pins the model version (an alias is resolved once, so every actor runs the same version), lists the
   source once and plans Parquet parts of ``shard_size`` images (:mod:`pipelines.batch_predict_io`); parts already
   in the output are skipped, and a finished output is left as it is;
2. Ray Data reads the image bytes on CPU tasks, decodes them with the library's safe decoder (a bad image becomes a
   row with an ``error``) and runs the model in an autoscaling actor pool (``concurrency=min,max`` actors of
   ``num_cpus`` CPUs; each loads the model once) (:mod:`pipelines.batch_predict_worker`);
3. the driver writes each part as soon as its images are predicted, then ``_bad_images.txt``, the optional COCO
   results (``coco_json=true``) and ``_SUCCESS`` (:mod:`pipelines.batch_predict_results`);
4. the job is an MLflow run naming the model version it consumed (:mod:`pipelines.batch_predict_tracking`).

Output columns: ``path, width, height, boxes ([x1, y1, x2, y2] in original pixels), scores, classes, model,
version, error`` (``error`` is null for a predicted image; a bad image has its reason there and null boxes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from pipelines.arguments import normalise_options
from pipelines.batch_predict_io import (
    SUCCESS_FILE,
    InputImage,
    OutputFolder,
    Shard,
    claim_output,
    list_source,
    oversized,
    plan_shards,
)
from pipelines.batch_predict_results import ShardCollector, finish_output, output_is_current
from pipelines.batch_predict_tracking import ConsumedModel, fail_batch_run, finish_batch_run, start_batch_run
from pipelines.batch_predict_worker import BACKENDS, BatchPredictError, EngineSpec, choose_backend, first_line
from pipelines.registry import RegistryError, TrackingServerError
from yolov12.cli.arguments import CommandLineError, parse_key_values
from yolov12.cli.commands import Command
from yolov12.config.base import ConfigError, Section
from yolov12.data.errors import DatasetError
from yolov12.data.remote import is_s3

if TYPE_CHECKING:
    import ray.data

logger = logging.getLogger(__name__)

IDENTITY_KEYS = ("backend", "imgsz", "conf", "iou", "max_det", "shard_size")  # what the predictions depend on


class BatchPredictConfig(Section):
    """Settings of a batch prediction job (``key=value`` on the command line).

    Attributes:
        model: ``models:/NAME@alias``, ``models:/NAME/3``, native weights or an exported model (local path).
        source: ``s3://bucket/prefix`` or a local folder of images (read recursively).
        output: ``s3://bucket/prefix`` or a local folder for the Parquet parts and summaries.
        backend: ``auto`` (OpenVINO, else ONNX Runtime, else PyTorch on CPUs; PyTorch with GPUs), ``torch``,
            ``onnxruntime`` or ``openvino``; native weights are exported once per node for the last two.
        imgsz, conf, iou, max_det: as ``yolov12 predict`` takes them.
        batch_size: images per forward pass (and per Ray Data batch).
        concurrency: actors of the pool, ``min,max`` (autoscaling) or one number (a fixed pool).
        num_cpus, num_gpus: resources each actor reserves.
        threads: engine threads per actor (default: ``num_cpus``; more than that lets the engine use CPUs the
            decoding tasks leave idle).
        shard_size: images per Parquet part (the unit a rerun skips when it is complete).
        coco_json: also write ``predictions_coco.json`` (COCO results format).
        address: the Ray cluster (``auto``, ``host:port``, ``ray://...``); default ``RAY_ADDRESS``, else a new local
            instance.
        tracking: record the job as an MLflow run; tracking_uri: the store (default as for training);
            experiment: the MLflow experiment.
    """

    model: str = Field(min_length=1)
    source: str = Field(min_length=1)
    output: str = Field(min_length=1)
    backend: Literal[BACKENDS] = "auto"  # type: ignore[valid-type]
    imgsz: int = Field(640, ge=32, le=8192)
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=30000)
    batch_size: int = Field(8, ge=1, le=1024)
    concurrency: tuple[int, int] = (1, 2)
    num_cpus: float = Field(1.0, gt=0, le=1024)
    num_gpus: float = Field(0.0, ge=0, le=64)
    threads: int | None = Field(None, ge=1, le=1024)
    shard_size: int = Field(1000, ge=1, le=1_000_000)
    coco_json: bool = False
    address: str | None = None
    tracking: bool = True
    tracking_uri: str | None = None
    experiment: str = Field("batch-predict", min_length=1)

    @field_validator("concurrency", mode="before")
    @classmethod
    def _actors(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(","))
        return value

    @field_validator("concurrency")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError("use min,max actors with 1 <= min <= max (e.g. 1,4), or one number for a fixed pool")
        return value

    @field_validator("source", "output")
    @classmethod
    def _location(cls, value: str, info: ValidationInfo) -> str:
        if "://" in value and not is_s3(value):
            raise ValueError("use a local folder or s3://bucket/prefix")
        source = info.data.get("source")
        if info.field_name == "output" and source and _normalised(source) == _normalised(value):
            raise ValueError("this is the source; write the predictions to another folder or prefix")
        return value


def _normalised(location: str) -> str:
    return location.rstrip("/") if is_s3(location) else str(Path(location).expanduser().resolve())


@dataclass(frozen=True)
class BatchPredictResult:
    """What a job did: totals of the whole output (parts of earlier runs included) and what this run wrote."""

    output: str
    model: str
    version: str
    input_digest: str
    images: int
    bad_images: int
    detections: int
    parts: int
    parts_written: int
    seconds: float
    run_id: str | None = None
    was_complete: bool = False  # the output was already complete: nothing was written, no run was made

    def summary(self) -> str:
        """The lines the command prints last."""
        done = "nothing to do: the output is complete" if self.was_complete else \
            f"{self.parts_written} part(s) written in {self.seconds:.1f}s"
        lines = [f"{self.images} image(s), {self.bad_images} bad, {self.detections} detection(s) by {self.model} "
                 f"version {self.version}; {done}", f"  output: {self.output} ({self.parts} part(s))"]
        if self.run_id:
            lines.append(f"  MLflow run: {self.run_id}")
        return "\n".join(lines)


def resolve_model(config: BatchPredictConfig, tracking_uri: str | None) -> tuple[ConsumedModel, str]:
    """The model version this job runs, and what the actors load: ``models:/NAME/VERSION`` (the alias resolved
    now) or the absolute path of a local model.

    Raises:
        RegistryError: unknown model, version or alias. BatchPredictError: a missing local model, or an exported
        model asked to run on another backend.
    """
    if config.model.startswith("models:/"):
        from pipelines.registry import lookup, mlflow_client, model_id_of  # noqa: PLC0415

        version = lookup(config.model, mlflow_client(tracking_uri))
        consumed = ConsumedModel(config.model, version.name, str(version.version), model_id_of(version))
        return consumed, f"models:/{version.name}/{version.version}"
    path = Path(config.model).expanduser().resolve()
    if not path.exists():
        raise BatchPredictError(f"model={config.model} does not exist; give a weights file, an exported model or "
                                "models:/NAME@alias")
    choose_backend(config.backend, path, "cuda" if config.num_gpus else "cpu")  # refuses a mismatch before Ray
    name = path.name.removesuffix("_openvino") if path.is_dir() else path.stem
    return ConsumedModel(str(path), name, _content_digest(path)[:12]), str(path)


def _content_digest(path: Path) -> str:
    """sha256 of a file, or of the relative names and sha256s of a folder's files (an OpenVINO model)."""
    from yolov12.data.digest import file_sha256  # noqa: PLC0415

    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path).as_posix()}\t{file_sha256(item)}\n".encode())
    return digest.hexdigest()


def tracking_uri_of(config: BatchPredictConfig) -> str:
    """The MLflow store of the registry and the run, resolved as for training jobs."""
    from pipelines.tracking import TrackingConfig  # noqa: PLC0415

    return TrackingConfig(tracking_uri=config.tracking_uri, registered_model=None).resolved().tracking_uri


def job_identity(config: BatchPredictConfig, model: ConsumedModel) -> dict[str, Any]:
    """What the predictions in an output depend on (``_job.json``): a rerun must agree with it."""
    return {"source": _normalised(config.source), "model": model.reference,
            **{key: getattr(config, key) for key in IDENTITY_KEYS}}


def engine_spec(config: BatchPredictConfig, model: ConsumedModel, load: str, tracking_uri: str | None) -> EngineSpec:
    """The actors' :class:`EngineSpec` of this job."""
    return EngineSpec(model=load, name=model.name, version=model.version, tracking_uri=tracking_uri,
                      backend=config.backend, imgsz=config.imgsz, conf=config.conf, iou=config.iou,
                      max_det=config.max_det, batch_size=config.batch_size,
                      threads=config.threads or max(1, int(config.num_cpus)),
                      device="cuda" if config.num_gpus else "cpu")


def run_batch_predict(config: BatchPredictConfig) -> BatchPredictResult:
    """Run one batch prediction job (see the module docstring); Ray starts only when there is something to predict.

    Example:
        >>> config = BatchPredictConfig(model="best.safetensors", source="images/", output="preds/")
        >>> run_batch_predict(config).summary()  # doctest: +SKIP
        '14 image(s), 2 bad, 37 detection(s) by best version 3f2a...; 3 part(s) written in 21.4s ...'
    """
    started = time.perf_counter()
    tracking_uri = tracking_uri_of(config) if config.tracking or config.model.startswith("models:/") else None
    model, load = resolve_model(config, tracking_uri)
    listing = list_source(config.source)
    output = OutputFolder(config.output)
    identity = job_identity(config, model)
    claim_output(output, identity)
    plan = plan_shards(listing.images, config.shard_size)
    if output_is_current(output, plan, listing.digest):
        success = output.read_json(SUCCESS_FILE)
        return BatchPredictResult(output.uri, model.name, model.version, listing.digest, success["images"],
                                  success["bad_images"], success["detections"], len(plan), 0, 0.0,
                                  was_complete=True)
    existing = output.names()
    pending = [shard for shard in plan if shard.name not in existing]
    output.delete(SUCCESS_FILE)  # the output is incomplete until this run finishes it
    client, run_id = _open_run(config, model, listing.digest, output.uri, tracking_uri, identity)
    try:
        written = predict_shards(config, engine_spec(config, model, load, tracking_uri), pending, output)
        facts = {"input_digest": listing.digest, "source": config.source, "model": model.name,
                 "version": model.version, "run_id": run_id}
        totals = finish_output(output, plan, config.coco_json, facts)
        seconds = time.perf_counter() - started
        if run_id:
            finish_batch_run(client, run_id, {
                "images": totals.images, "bad_images": totals.bad_images, "detections": totals.detections,
                "parts": totals.parts, "parts_written": len(written),
                "images_per_second": sum(len(s.images) for s in pending) / seconds})
    except BaseException:
        if run_id:
            fail_batch_run(client, run_id)
        raise
    return BatchPredictResult(output.uri, model.name, model.version, listing.digest, totals.images,
                              totals.bad_images, totals.detections, totals.parts, len(written), seconds, run_id)


def _open_run(config: BatchPredictConfig, model: ConsumedModel, digest: str, output: str, tracking_uri: str | None,
              identity: dict[str, Any]) -> tuple[Any, str | None]:
    if not config.tracking:
        return None, None
    from pipelines.registry import mlflow_client  # noqa: PLC0415

    client = mlflow_client(tracking_uri)
    job = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    run_name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"batch-predict-{model.name}-{model.version}-{job}")
    params = config.model_dump(mode="json", exclude={"tracking", "tracking_uri", "experiment"})
    run_id = start_batch_run(client, config.experiment, run_name=run_name, model=model, input_source=config.source,
                             input_digest=digest, output=output, params=params)
    return client, run_id


def predict_shards(config: BatchPredictConfig, spec: EngineSpec, shards: Sequence[Shard],
                   output: OutputFolder) -> list[str]:
    """Predict the images of ``shards`` on Ray Data and write their parts; returns the part names written."""
    collector = ShardCollector(shards, output, spec.name, spec.version)
    images = [image for shard in shards for image in shard.images]
    refused = {image.uri: reason for image in images if (reason := oversized(image))}
    collector.add_errors(refused)
    readable = [image for image in images if image.uri not in refused]
    if readable:
        from pipelines.driver import init_ray  # noqa: PLC0415

        started = init_ray(config.address)
        try:
            for table in build_dataset(readable, config, spec).iter_batches(batch_format="pyarrow", batch_size=None):
                collector.add(table)
        finally:
            if started:
                import ray  # noqa: PLC0415

                ray.shutdown()
    collector.finish()
    return collector.written


def build_dataset(images: Sequence[InputImage], config: BatchPredictConfig, spec: EngineSpec) -> ray.data.Dataset:
    """Read (CPU tasks) -> decode (CPU tasks) -> predict (actor pool), lazily.

    The actors get their own runtime environment (storage and tracking variables, ``OMP_NUM_THREADS``), which also
    keeps Ray Data from fusing the decoding into them: decoding stays on the tasks, the actors only predict.
    """
    import ray.data  # noqa: PLC0415

    from pipelines.batch_predict_worker import ImagePredictor, decode_batch  # noqa: PLC0415
    from pipelines.storage import s3_filesystem, worker_environment  # noqa: PLC0415

    remote = is_s3(config.source)
    dataset = ray.data.read_binary_files([image.read_path for image in images], include_paths=True,
                                         filesystem=s3_filesystem() if remote else None, ignore_missing_paths=True)
    dataset = dataset.map_batches(decode_batch, fn_kwargs={"prefix": "s3://" if remote else ""},
                                  batch_size=config.batch_size, num_cpus=1)
    low, high = config.concurrency
    environment = {**worker_environment(), "OMP_NUM_THREADS": str(spec.threads)}
    return dataset.map_batches(ImagePredictor, fn_constructor_kwargs={"spec": spec}, batch_size=config.batch_size,
                               batch_format="numpy", compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high),
                               num_cpus=config.num_cpus, num_gpus=config.num_gpus or None,
                               runtime_env={"env_vars": environment})


def parse_config(arguments: Sequence[str]) -> BatchPredictConfig:
    """``key=value`` arguments (``--key value`` too; a bare first word is the model) -> a validated config.

    Raises:
        CommandLineError: an unknown key (with the closest one). ConfigError: a bad or missing value.
    """
    values = parse_key_values(normalise_options(arguments), list(BatchPredictConfig.model_fields),
                              positional=("model",), hints={"batch": "batch_size", "workers": "concurrency"})
    missing = [key for key in ("model", "source", "output") if key not in values]
    if missing:
        raise CommandLineError(f"missing {', '.join(f'{key}=' for key in missing)}; e.g. {EXAMPLE}")
    return BatchPredictConfig.from_overrides({k: str(v) if k in ("model", "source", "output") else v
                                              for k, v in values.items()})


EXPECTED_ERRORS = (ConfigError, CommandLineError, BatchPredictError, RegistryError, DatasetError, FileNotFoundError,
                   TrackingServerError)


def main(argv: list[str] | None = None, prog: str = "pipelines.batch_predict") -> int:
    """Entry point: 0 done, 2 a bad argument / model / source / output (one line, before Ray starts), 1 a failed
    job (one line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE.replace("PROG", prog))
        return 0
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = run_batch_predict(parse_config(argv))
    except EXPECTED_ERRORS as exc:
        if os.environ.get("YOLOV12_DEBUG"):
            raise
        print(f"{prog}: error: {first_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a failed job: one line, the details are in the Ray logs above
        if os.environ.get("YOLOV12_DEBUG"):
            raise
        print(f"{prog}: batch prediction failed: {type(exc).__name__}: {first_line(exc)}", file=sys.stderr)
        return 1
    print(result.summary(), flush=True)
    return 0


def predict_ray_command(arguments: list[str]) -> int:
    return main(arguments, prog="yolov12 predict-ray")


EXAMPLE = "model=models:/NAME@champion source=s3://bucket/images/ output=s3://bucket/preds/"
USAGE = (f"usage: PROG {EXAMPLE} [key=value ...]\n  keys: backend=auto|torch|onnxruntime|openvino, imgsz=640, "
         "conf=0.25, iou=0.7, max_det=300, batch_size=8, concurrency=1,4, num_cpus=1, num_gpus=0, threads=N, "
         "shard_size=1000, coco_json=false, address=local|auto|HOST:PORT (default RAY_ADDRESS, else local), "
         "tracking=true, tracking_uri=URI, experiment=batch-predict")
PREDICT_RAY_COMMAND = Command(
    "predict-ray", "batch inference on Ray Data: yolov12 predict-ray model=models:/NAME@champion "
    "source=s3://bucket/images/ output=s3://bucket/preds/", predict_ray_command)

if __name__ == "__main__":
    sys.exit(main())
