"""MLflow tracking of a training job: one run with params, per-epoch metrics, dataset input, artifacts, registration.

The driver calls :func:`start_training_run` before training (a resubmitted job with the same run name reuses its
unfinished run), hands :class:`EpochMetricsCallback` to the rank-0 worker, and calls :func:`finish_training_run`
at the end (artifacts, registration with alias ``candidate``, run FINISHED) or :func:`fail_training_run`.

Where it goes: ``tracking_uri``, else ``$MLFLOW_TRACKING_URI`` (e.g. the local stack's ``mlflow server``), else an
embedded sqlite store ``<cwd>/mlruns/mlflow.db`` with artifacts in ``<cwd>/mlruns/artifacts``. Pass
``tracking.resolved()`` to code that runs elsewhere (Ray workers have another working folder).

Example:
    >>> run_id = start_training_run(tracking, run_name="sample-1", params=config, dataset_digest=digest,
    ...     dataset_source="s3://data/sample", teachers=[], system={"world_size": 2})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_GIT_COMMIT
from mlflow.utils.validation import (
    MAX_DATASET_DIGEST_SIZE,
    MAX_ENTITY_KEY_LENGTH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)

from pipelines.registry import CANDIDATE_ALIAS, mlflow_client, register_weights, resolve_uri, sqlite_path
from pipelines.teachers import TeacherRef, resolve_teacher
from yolov12.config.base import Section
from yolov12.engine.callbacks import Callback
from yolov12.eval.metric_names import safe_name
from yolov12.settings import load_settings
from yolov12.weights.metadata import package_version

logger = logging.getLogger(__name__)

TAG_DATASET_DIGEST = "yolov12.dataset.digest"
TAG_DATASET_SOURCE = "yolov12.dataset.source"
TAG_TEACHERS = "yolov12.teachers"
TAG_CODE_VERSION = "yolov12.code_version"
TAG_ATTEMPTS = "yolov12.attempts"
SYSTEM_TAG_PREFIX = "system."
CONFIG_ARTIFACT = "config/params.json"
TRUNCATED = "...[truncated; full value in config/params.json]"


class TrackingConfig(Section):
    """Where and whether a training job is tracked.

    Attributes:
        enabled: track the job in MLflow at all.
        tracking_uri: MLflow tracking URI; None: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<cwd>/mlruns/mlflow.db``.
        experiment: experiment name.
        registered_model: registered model that receives the best weights as a new version (None: no registration).
    """

    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str = "yolov12"
    registered_model: str | None = "yolov12n-sample"

    def resolved(self) -> TrackingConfig:
        """A copy with the tracking URI fixed now (environment and working folder), safe to ship to Ray workers."""
        return self.updated(tracking_uri=resolve_tracking_uri(self))


class TrackingError(RuntimeError):
    """The tracking store cannot serve the job (missing run, deleted experiment, ...); the message says the fix."""


def resolve_tracking_uri(tracking: TrackingConfig) -> str:
    """``tracking.tracking_uri``, else the ``mlflow_uri`` setting (``$MLFLOW_TRACKING_URI``, else the settings file,
    see ``yolov12 settings``), else the embedded sqlite store (working folder)."""
    return resolve_uri(tracking.tracking_uri or load_settings().mlflow_uri)


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created when missing (embedded stores keep artifacts beside the database)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        database = sqlite_path(client.tracking_uri)
        location = (database.parent / "artifacts").as_uri() if database is not None else None
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:  # another process created it meanwhile
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage != "active":
        raise TrackingError(f"experiment {name!r} is deleted; restore it (mlflow experiments restore "
                            f"--experiment-id {experiment.experiment_id}) or set tracking.experiment to another name")
    return experiment.experiment_id


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"train.lr0": "0.01", ...}`` as MLflow param strings (lists as JSON, long values cut)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
            continue
        text = json.dumps(value, default=str) if isinstance(value, (list, tuple, Mapping)) else str(value)
        if len(text) > MAX_PARAM_VAL_LENGTH:
            text = text[: MAX_PARAM_VAL_LENGTH - len(TRUNCATED)] + TRUNCATED
        flat[metric_key(name)[:MAX_ENTITY_KEY_LENGTH]] = text
    return flat


def metric_key(name: str) -> str:
    """An MLflow-valid key: ``metrics/mAP50-95(B)`` -> ``metrics/mAP50-95_B`` (only ``[\\w\\-. :/]`` allowed).

    Metrics take their ``safe`` spelling from :mod:`yolov12.eval.metric_names`, whose character rule also applies to
    every other name (params, ``hparam/*``).
    """
    return safe_name(name)


def code_version(root: Path | None = None) -> dict[str, str]:
    """``{"commit": sha, "dirty": "true"|"false"}`` of the git checkout at ``root``; ``$YOLOV12_GIT_SHA`` wins.

    A job submitted with ``ray job submit --working-dir .`` runs in an uploaded copy without ``.git``: set
    ``YOLOV12_GIT_SHA`` in its runtime env to keep the code version. Without either: ``{"commit": "unknown"}``.
    """
    if os.environ.get("YOLOV12_GIT_SHA"):
        return {"commit": os.environ["YOLOV12_GIT_SHA"], "dirty": "unknown"}
    root = root or Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return {"commit": "unknown"}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown"}  # no git on this machine
    return {"commit": sha.stdout.strip(), "dirty": str(bool(status.stdout.strip())).lower()}


def dataset_input(digest: str, source: str, name: str | None = None) -> DatasetInput:
    """The dataset as an MLflow input: a metadata-only dataset (source + digest), context ``training``.

    MLflow caps a dataset digest at 36 characters: the input carries the first 36 hex digits, and the full sha256
    is an input tag (``digest_sha256``) and the run tag ``yolov12.dataset.digest``.
    """
    with warnings.catch_warnings():  # "can be interpreted in multiple ways" for plain local paths
        warnings.simplefilter("ignore")
        try:
            resolved = resolve_dataset_source(source)
            source_type, source_json = resolved._get_source_type(), resolved.to_json()
        except MlflowException:
            source_type, source_json = "external", json.dumps({"uri": source})
    dataset = Dataset(name=name or dataset_name(source), digest=digest[:MAX_DATASET_DIGEST_SIZE],
                      source_type=source_type, source=source_json)
    tags = [InputTag(MLFLOW_DATASET_CONTEXT, "training"), InputTag("digest_sha256", digest)]
    return DatasetInput(dataset, tags=tags)


def dataset_name(source: str) -> str:
    """A short name for a dataset source: the folder of a ``data.yaml``, else the last path part."""
    parts = [p for p in re.split(r"[/\\]", source.rstrip("/")) if p]
    if not parts:
        return "dataset"
    if parts[-1].endswith((".yaml", ".yml", ".json")) and len(parts) > 1:
        return parts[-2] if parts[-1].startswith("data.") else Path(parts[-1]).stem
    return parts[-1]


def start_training_run(tracking: TrackingConfig, *, run_name: str, params: dict, dataset_digest: str,
                       dataset_source: str, teachers: Sequence[str | TeacherRef], system: dict) -> str:
    """Create (or reuse the unfinished run named ``run_name``) and log everything known before training.

    Logs the flattened config as params (and untruncated as ``config/params.json``), the dataset input, the code
    version, the teachers by identity (tag ``yolov12.teachers``, see :mod:`pipelines.teachers`; a plain spec is
    identified here) and ``system`` info (tags ``system.*``; they may change when a job resumes elsewhere).

    Returns:
        The run id ("" when tracking is disabled).
    """
    if not tracking.enabled:
        return ""
    if "'" in run_name:
        raise TrackingError(f"run name {run_name!r} contains a quote; use letters, digits, '-', '_' or '.'")
    client = mlflow_client(tracking.tracking_uri)
    teachers_text = teachers_tag(client, teachers)  # before the run opens: a teacher that does not resolve leaves none
    experiment_id = ensure_experiment(client, tracking.experiment)
    run = find_unfinished_run(client, experiment_id, run_name)
    if run is None:
        run = client.create_run(experiment_id, run_name=run_name)
        attempts = 1
        logger.info("MLflow run %s (%s) at %s", run_name, run.info.run_id, client.tracking_uri)
    else:
        client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        attempts = int(run.data.tags.get(TAG_ATTEMPTS, "1")) + 1
        logger.info("resuming MLflow run %s (%s), attempt %d", run_name, run.info.run_id, attempts)
    run_id = run.info.run_id
    _log_params(client, run_id, flatten_params(params), existing=run.data.params)
    client.log_dict(run_id, json.loads(json.dumps(params, default=str)), CONFIG_ARTIFACT)
    logged = run.inputs.dataset_inputs if run.inputs is not None else []
    if not any(i.dataset.digest == dataset_digest[:MAX_DATASET_DIGEST_SIZE] for i in logged):
        client.log_inputs(run_id, datasets=[dataset_input(dataset_digest, dataset_source)])
    version = code_version()
    tags = {TAG_DATASET_DIGEST: dataset_digest, TAG_DATASET_SOURCE: dataset_source,
            TAG_TEACHERS: teachers_text, TAG_CODE_VERSION: version["commit"],
            "yolov12.code_dirty": version.get("dirty", "unknown"), "yolov12.package_version": package_version(),
            TAG_ATTEMPTS: str(attempts), **{f"{SYSTEM_TAG_PREFIX}{k}": _tag_text(v) for k, v in system.items()}}
    if version["commit"] != "unknown":
        tags[MLFLOW_GIT_COMMIT] = version["commit"]
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    return run_id


def teachers_tag(client: MlflowClient, teachers: Sequence[str | TeacherRef]) -> str:
    """The ``yolov12.teachers`` tag: a JSON list of :class:`~pipelines.teachers.TeacherRef` objects."""
    refs = [t if isinstance(t, TeacherRef) else resolve_teacher(str(t), client).ref for t in teachers]
    text = json.dumps([ref.to_dict() for ref in refs])
    if len(text) > MAX_TAG_VAL_LENGTH:
        raise TrackingError(f"the teachers' record is {len(text)} characters, over the {MAX_TAG_VAL_LENGTH} an MLflow "
                            "tag holds; give fewer teachers (distill.teachers) or shorter paths")
    return text


def _tag_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def find_unfinished_run(client: MlflowClient, experiment_id: str, run_name: str):
    """The latest run named ``run_name`` whose status is not FINISHED (RUNNING, FAILED, KILLED), or None."""
    runs = client.search_runs([experiment_id], f"attributes.run_name = '{run_name}' and attributes.status != "
                              "'FINISHED'", max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


def _log_params(client: MlflowClient, run_id: str, params: dict[str, str], existing: Mapping[str, str]) -> None:
    """Log params not logged yet; a resumed job whose value changed keeps the first value (params are immutable)."""
    changed = {k: v for k, v in params.items() if k in existing and existing[k] != v}
    for key, value in changed.items():
        logger.warning("param %s changed on resume (%r -> %r); MLflow keeps the first value", key, existing[key], value)
    new = [Param(k, v) for k, v in params.items() if k not in existing]
    for start in range(0, len(new), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=new[start:start + MAX_PARAMS_TAGS_PER_BATCH])


class EpochMetricsCallback(Callback):
    """Logs each epoch's metrics to the run with ``step`` = the 1-based epoch number (``results.csv``'s ``epoch``).

    Meant for the rank-0 worker (other ranks are ignored). Build it on the driver with ``tracking.resolved()``
    so a worker with another working folder writes to the same store. A failed upload is logged, not raised:
    a tracking hiccup must not stop a long training job.
    """

    def __init__(self, tracking: TrackingConfig, run_id: str) -> None:
        self.tracking = tracking
        self.run_id = run_id
        self._client: MlflowClient | None = None
        self.failures = 0

    def __getstate__(self) -> dict[str, Any]:  # sent to Ray workers: the client is rebuilt there
        return {**self.__dict__, "_client": None}

    @property
    def active(self) -> bool:
        return self.tracking.enabled and bool(self.run_id)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = mlflow_client(self.tracking.tracking_uri)
        return self._client

    def on_fit_start(self, state: Any) -> None:
        if not (self.active and state.is_main_process):
            return
        try:
            self.client.get_run(self.run_id)
        except MlflowException as exc:
            raise TrackingError(f"MLflow run {self.run_id} not found at {self.client.tracking_uri}; build the "
                                "callback with tracking.resolved() on the driver") from exc

    def on_epoch_end(self, state: Any, metrics: dict[str, float]) -> None:
        if not (self.active and state.is_main_process):
            return
        now = int(time.time() * 1000)
        step = int(state.epoch) + 1
        batch = [Metric(metric_key(k), float(v), now, step) for k, v in metrics.items() if _is_number(v)]
        try:
            self.client.log_batch(self.run_id, metrics=batch)
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            self.failures += 1
            logger.warning("could not log epoch %d metrics to MLflow run %s: %s", step, self.run_id, exc)


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def log_run_artifacts(client: MlflowClient, run_id: str, run_dir: Path, best_weights: Path,
                      onnx: Path | None) -> list[str]:
    """Upload weights (best, last), ``results.csv``, plots and the ONNX export; returns the artifact paths."""
    run_dir = Path(run_dir)
    files: list[tuple[Path, str | None]] = [(Path(best_weights), "weights")]
    last = run_dir / "weights" / "last.safetensors"
    if last.is_file() and last.resolve() != Path(best_weights).resolve():
        files.append((last, "weights"))
    if (run_dir / "results.csv").is_file():
        files.append((run_dir / "results.csv", None))
    files += [(p, "plots") for p in sorted(run_dir.glob("*")) if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    if onnx is not None:
        files.append((Path(onnx), "export"))
    uploaded = []
    for path, folder in files:
        if not path.is_file():
            raise FileNotFoundError(f"artifact to log not found: {path}")
        client.log_artifact(run_id, str(path), folder)
        uploaded.append(f"{folder}/{path.name}" if folder else path.name)
    return uploaded


def finish_training_run(tracking: TrackingConfig, run_id: str, *, run_dir: Path, best_weights: Path,
                        onnx: Path | None) -> str | None:
    """Log the artifacts, register the best weights (alias ``candidate``) and end the run as FINISHED.

    Returns:
        The new model version, or None when tracking is disabled or ``tracking.registered_model`` is None.
    """
    if not (tracking.enabled and run_id):
        return None
    client = mlflow_client(tracking.tracking_uri)
    try:
        log_run_artifacts(client, run_id, run_dir, best_weights, onnx)
        version = None
        if tracking.registered_model:
            tags = client.get_run(run_id).data.tags
            lineage = {"dataset_digest": tags.get(TAG_DATASET_DIGEST, ""),
                       "dataset_source": tags.get(TAG_DATASET_SOURCE, "")}
            version = register_weights(client, name=tracking.registered_model, run_id=run_id, weights=best_weights,
                                       tags=lineage, alias=CANDIDATE_ALIAS).version
    except Exception:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return version


def fail_training_run(tracking: TrackingConfig, run_id: str) -> None:
    """End the run as FAILED (the driver calls this when training raised); a resubmission resumes it."""
    if tracking.enabled and run_id:
        mlflow_client(tracking.tracking_uri).set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
