"""MLflow tracking of a Ray Tune sweep: one parent run, one child run per trial, the best trial marked.

:class:`SweepTracker` is a ``ray.tune.Callback`` (it runs in the sweep driver, so trials need no MLflow access):
the parent run is opened at setup, a child run (tag ``mlflow.parentRunId``) when a trial starts, each result is
logged at ``step`` = the trial's epoch, and the child ends FINISHED / FAILED with the trial. Runs are found again by
tags (``yolov12.sweep.id``, ``yolov12.trial.id``), so a restored sweep keeps logging into the same runs.
:func:`finish_sweep` marks the best child, logs the summary files to the parent and closes it.

Example:
    >>> tracker = SweepTracker(tracking.resolved(), sweep_id="3f2a...", sweep_name="lr-aug", params={...})
    >>> # Tuner(..., run_config=RunConfig(callbacks=[tracker]))  then  finish_sweep(tracker, best_trial_id, files)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from ray.tune import Callback

from pipelines.registry import mlflow_client
from pipelines.tracking import TrackingConfig, ensure_experiment, flatten_params, metric_key

logger = logging.getLogger(__name__)

TAG_SWEEP_ID = "yolov12.sweep.id"
TAG_SWEEP_NAME = "yolov12.sweep.name"
TAG_TRIAL_ID = "yolov12.trial.id"
TAG_BEST_TRIAL = "yolov12.best_trial"
TAG_STOPPED_EARLY = "yolov12.stopped_early"
SKIPPED_RESULT_KEYS = frozenset({"epoch", "epochs", "training_iteration", "timestamp", "time_this_iter_s",
                                 "time_total_s", "time_since_restore", "iterations_since_restore", "pid", "done",
                                 "should_checkpoint", "final"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
        return None
    number = float(value.item() if hasattr(value, "item") else value)
    return number if math.isfinite(number) else None


class SweepTracker(Callback):
    """Logs a sweep to MLflow from the Tune driver (see the module docstring). Picklable: Tune stores it."""

    def __init__(self, tracking: TrackingConfig, *, sweep_id: str, sweep_name: str, params: Mapping[str, Any],
                 max_epochs: int | None = None) -> None:
        self.tracking = tracking
        self.sweep_id = sweep_id
        self.sweep_name = sweep_name
        self.params = dict(params)
        self.max_epochs = max_epochs
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._children: dict[str, str] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self.parent_run_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None, "_experiment_id": None, "_children": {}, "_configs": {},
                "parent_run_id": None}

    # -- runs ---------------------------------------------------------------------------------------------------------
    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = mlflow_client(self.tracking.tracking_uri)
            self._experiment_id = ensure_experiment(self._client, self.tracking.experiment)
        return self._client

    def _find(self, extra: str = "") -> Any:
        query = f"tags.`{TAG_SWEEP_ID}` = '{self.sweep_id}'" + extra
        runs = self.client.search_runs([self._experiment_id], query, max_results=1,
                                       order_by=["attributes.start_time DESC"])
        return runs[0] if runs else None

    def parent(self) -> str:
        """The parent run id (created on the first call of a new sweep, found again after a restore)."""
        if self.parent_run_id is None:
            run = self._find(f" and tags.`{TAG_TRIAL_ID}` = 'parent'")
            if run is None:
                run = self.client.create_run(self._experiment_id, run_name=self.sweep_name, tags={
                    TAG_SWEEP_ID: self.sweep_id, TAG_SWEEP_NAME: self.sweep_name, TAG_TRIAL_ID: "parent"})
                self._log_params(run.info.run_id, flatten_params(self.params), {})
                logger.info("MLflow sweep run %s (%s) at %s", self.sweep_name, run.info.run_id,
                            self.client.tracking_uri)
            elif run.info.status != "RUNNING":
                self.client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            self.parent_run_id = run.info.run_id
        return self.parent_run_id

    def child(self, trial_id: str, trial_name: str, config: Mapping[str, Any]) -> str:
        """The child run of a trial (created with the trial's sampled values as params)."""
        if trial_id in self._children:
            return self._children[trial_id]
        parent = self.parent()
        run = self._find(f" and tags.`{TAG_TRIAL_ID}` = '{trial_id}'")
        if run is None:
            run = self.client.create_run(self._experiment_id, run_name=trial_name, tags={
                MLFLOW_PARENT_RUN_ID: parent, TAG_SWEEP_ID: self.sweep_id, TAG_TRIAL_ID: trial_id})
        elif run.info.status != "RUNNING":
            self.client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        self._log_params(run.info.run_id, flatten_params(config), run.data.params)
        self._children[trial_id] = run.info.run_id
        self._configs[trial_id] = dict(config)
        return run.info.run_id

    def _log_params(self, run_id: str, params: dict[str, str], existing: Mapping[str, str]) -> None:
        from mlflow.entities import Param  # noqa: PLC0415

        new = [Param(k, v) for k, v in params.items() if k not in existing]
        for start in range(0, len(new), 100):
            self.client.log_batch(run_id, params=new[start:start + 100])

    # -- Tune hooks (driver side) -------------------------------------------------------------------------------------
    def setup(self, **info: Any) -> None:
        if self.tracking.enabled:
            self.parent()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.tracking.enabled:
            self.child(trial.trial_id, f"{self.sweep_name}-{trial.trial_id}", trial.config)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if not self.tracking.enabled:
            return
        run_id = self.child(trial.trial_id, f"{self.sweep_name}-{trial.trial_id}", trial.config)
        step = int(result.get("epoch") or result.get("training_iteration") or 0)
        now = int(time.time() * 1000)
        metrics = [Metric(metric_key(k), n, now, step) for k, v in result.items()
                   if k not in SKIPPED_RESULT_KEYS and (n := _number(v)) is not None]
        if trial.config != self._configs.get(trial.trial_id):  # PBT changed hyperparameters: log their new values
            self._configs[trial.trial_id] = dict(trial.config)
            metrics += [Metric(metric_key(f"hparam/{k}"), n, now, step) for k, v in trial.config.items()
                        if (n := _number(v)) is not None]
        try:
            self.client.log_batch(run_id, metrics=metrics)
        except Exception as exc:  # noqa: BLE001 - a tracking hiccup must not stop the sweep
            logger.warning("could not log trial %s epoch %d to MLflow: %s", trial.trial_id, step, exc)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end_child(trial, RunStatus.FINISHED)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end_child(trial, RunStatus.FAILED)

    def _end_child(self, trial: Any, status: int) -> None:
        if not self.tracking.enabled:
            return
        run_id = self.child(trial.trial_id, f"{self.sweep_name}-{trial.trial_id}", trial.config)
        epochs = (trial.last_result or {}).get("epoch")
        if self.max_epochs and epochs is not None and status == RunStatus.FINISHED:
            self.client.set_tag(run_id, TAG_STOPPED_EARLY, str(int(epochs) < self.max_epochs).lower())
        self.client.set_terminated(run_id, RunStatus.to_string(status))

    # -- reading back -------------------------------------------------------------------------------------------------
    def children(self) -> dict[str, str]:
        """``{trial_id: run_id}`` of every child run of this sweep (from the store)."""
        parent = self.parent()
        runs = self.client.search_runs([self._experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent}'",
                                       max_results=10000)
        return {run.data.tags[TAG_TRIAL_ID]: run.info.run_id for run in runs if TAG_TRIAL_ID in run.data.tags}


def finish_sweep(tracker: SweepTracker, best_trial_id: str | None, files: Iterable[Path],
                 metrics: Mapping[str, float] | None = None) -> str | None:
    """Tag the best child (and the parent with its id), upload ``files`` to the parent, end the parent FINISHED.

    Returns:
        The parent run id, or None when tracking is disabled.
    """
    if not tracker.tracking.enabled:
        return None
    client, parent = tracker.client, tracker.parent()
    children = tracker.children()
    for trial_id, run_id in children.items():
        client.set_tag(run_id, TAG_BEST_TRIAL, str(trial_id == best_trial_id).lower())
    if best_trial_id is not None:
        client.set_tag(parent, "yolov12.best_trial_id", best_trial_id)
        if best_trial_id in children:
            client.set_tag(parent, "yolov12.best_run_id", children[best_trial_id])
    client.set_tag(parent, "yolov12.num_trials", str(len(children)))
    now = int(time.time() * 1000)
    batch = [Metric(metric_key(f"best/{k}"), n, now, 0) for k, v in (metrics or {}).items()
             if (n := _number(v)) is not None]
    if batch:
        client.log_batch(parent, metrics=batch)
    for path in files:
        client.log_artifact(parent, str(path), "sweep")
    client.set_terminated(parent, RunStatus.to_string(RunStatus.FINISHED))
    return parent
