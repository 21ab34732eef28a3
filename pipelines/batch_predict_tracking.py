"""Lineage of batch prediction jobs: each job is an MLflow run that names the model version it consumed.

Run tags: ``yolov12.consumer.model`` = ``NAME/VERSION`` and ``yolov12.consumer.kind`` = ``batch_predict`` (so
:func:`batch_runs_for_version` finds every job a registered version took part in), the input's listing digest and
source (``yolov12.input.digest``, ``yolov12.input.source``; also a dataset input of context ``inference``), the
output location (``yolov12.output``) and the code version. A ``models:/`` model is also logged as the run's model
input (its LoggedModel). Params: the job's settings; metrics: ``images``, ``bad_images``, ``detections``, ``parts``,
``parts_written``, ``images_per_second``.

A job run again after a failure reopens its unfinished run (same run name), as a resubmitted training job does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, LoggedModelInput, Param, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_GIT_COMMIT

from pipelines.tracking import code_version, dataset_input, ensure_experiment, find_unfinished_run, flatten_params

logger = logging.getLogger(__name__)

TAG_CONSUMER_MODEL = "yolov12.consumer.model"
TAG_CONSUMER_KIND = "yolov12.consumer.kind"
CONSUMER_KIND = "batch_predict"
TAG_INPUT_DIGEST = "yolov12.input.digest"
TAG_INPUT_SOURCE = "yolov12.input.source"
TAG_OUTPUT = "yolov12.output"
TAG_MODEL_SOURCE = "yolov12.model.source"


@dataclass(frozen=True)
class ConsumedModel:
    """The model a job ran: ``name``/``version`` (registry), or a file's stem and sha256 prefix; ``model_id`` is the
    registry version's LoggedModel (None for a file)."""

    source: str
    name: str
    version: str
    model_id: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class BatchRun:
    """A batch prediction job found by :func:`batch_runs_for_version`."""

    run_id: str
    run_name: str
    status: str
    start_time: int  # ms since the epoch
    experiment_id: str
    input_source: str
    input_digest: str
    output: str
    metrics: dict[str, float]


def start_batch_run(client: MlflowClient, experiment: str, *, run_name: str, model: ConsumedModel,
                    input_source: str, input_digest: str, output: str, params: dict[str, Any]) -> str:
    """Open the job's run (reopening an unfinished one of the same name) and log what is known before it runs."""
    experiment_id = ensure_experiment(client, experiment)
    run = find_unfinished_run(client, experiment_id, run_name)
    if run is None:
        run = client.create_run(experiment_id, run_name=run_name)
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in flatten_params(params).items()])
        inference = dataset_input(input_digest, input_source).dataset
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, "inference"), InputTag("digest_sha256", input_digest)]
        models = [LoggedModelInput(model.model_id)] if model.model_id else None
        client.log_inputs(run.info.run_id, datasets=[DatasetInput(inference, tags=tags)], models=models)
    else:
        client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        logger.info("reopening MLflow run %s (%s)", run_name, run.info.run_id)
    version = code_version()
    tags = {TAG_CONSUMER_MODEL: model.reference, TAG_CONSUMER_KIND: CONSUMER_KIND, TAG_MODEL_SOURCE: model.source,
            TAG_INPUT_DIGEST: input_digest, TAG_INPUT_SOURCE: input_source, TAG_OUTPUT: output,
            "yolov12.code_version": version["commit"]}
    if version["commit"] != "unknown":
        tags[MLFLOW_GIT_COMMIT] = version["commit"]
    for key, value in tags.items():
        client.set_tag(run.info.run_id, key, value)
    return run.info.run_id


def finish_batch_run(client: MlflowClient, run_id: str, metrics: dict[str, float]) -> None:
    """Log the job's counts and mark the run FINISHED."""
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value))
    client.set_terminated(run_id, "FINISHED")


def fail_batch_run(client: MlflowClient, run_id: str) -> None:
    """Mark the run FAILED (a rerun of the same job reopens it); never raises over the job's own error."""
    try:
        client.set_terminated(run_id, "FAILED")
    except Exception as exc:  # noqa: BLE001 - the job's failure is what the user must see
        logger.warning("could not mark MLflow run %s as failed: %s", run_id, exc)


def batch_runs_for_version(client: MlflowClient, name: str, version: str | int) -> list[BatchRun]:
    """Every batch prediction job (in any experiment) that ran registered model ``name`` version ``version``,
    newest first.

    Example:
        >>> runs = batch_runs_for_version(mlflow_client(), "yolov12n-sample", 3)  # doctest: +SKIP
        >>> runs[0].output, runs[0].metrics["images"]  # doctest: +SKIP
        ('s3://bucket/preds/', 1200.0)
    """
    reference = f"{name}/{version}"
    if "'" in reference or "\\" in reference:
        raise ValueError(f"model name {name!r}: quotes and backslashes cannot appear in a registered model's name")
    experiments = _pages(lambda token: client.search_experiments(page_token=token))
    if not experiments:
        return []
    query = f"tags.`{TAG_CONSUMER_MODEL}` = '{reference}' and tags.`{TAG_CONSUMER_KIND}` = '{CONSUMER_KIND}'"
    ids = [e.experiment_id for e in experiments]
    runs = _pages(lambda token: client.search_runs(ids, query, order_by=["attributes.start_time DESC"],
                                                   page_token=token))
    return [_batch_run(run) for run in runs]


def _pages(search: Any) -> list[Any]:
    """Every item of a paged MLflow search (``search(page_token)`` returns a PagedList)."""
    items: list[Any] = []
    token = None
    while True:
        page = search(token)
        items += list(page)
        token = page.token
        if not token:
            return items


def _batch_run(run: Any) -> BatchRun:
    tags = run.data.tags
    return BatchRun(run.info.run_id, run.info.run_name, run.info.status, int(run.info.start_time or 0),
                    run.info.experiment_id, tags.get(TAG_INPUT_SOURCE, ""), tags.get(TAG_INPUT_DIGEST, ""),
                    tags.get(TAG_OUTPUT, ""), dict(run.data.metrics))

