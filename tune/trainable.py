"""One trial = one call of the engine's ``fit``; every epoch reports metrics and the run folder as a checkpoint.

Two shapes (chosen by ``resources.num_workers``):

- :func:`single_worker_trial` (``num_workers=0``): trains in the trial's own process. A trial that is restarted
  (retry, restored sweep, or a PBT exploit that hands it another trial's checkpoint) gets the checkpoint from
  ``ray.tune.get_checkpoint()``, copies it into its run folder and resumes the engine from ``weights/last.state.pt``
  under its *own* current hyperparameters (PBT perturbs them): ``fit(..., resume_hyperparameters="own")``.
- :func:`train_in_tune_trial` (``num_workers>=1``): the trial is a driver that runs the pipeline's Ray Train job,
  built by :func:`pipelines.driver.build_trainer` from the trial's pipeline config (its scaling, failure and
  checkpoint sections apply as they do to ``python -m pipelines.train``), named ``<sweep>-<trial id>``: a restarted
  trial finds its Train run by that name and resumes it; :class:`TrialReportCallback` forwards each epoch to Tune.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.tune
from ray.tune.integration.ray_train import TuneReportCallback

from pipelines.config import PipelineConfig
from pipelines.tracking import metric_key
from pipelines.worker import ray_metrics
from tune.space import trial_train_config
from yolov12.config.train import TrainConfig
from yolov12.data.augment.policy import AugmentPolicy
from yolov12.engine.callbacks import Callback

logger = logging.getLogger(__name__)

RUN_FOLDER = "run"
POLICY_FILE = "policy.yaml"


@dataclass(frozen=True)
class TrialSetup:
    """What every trial needs besides its sampled values (shipped once with ``tune.with_parameters``)."""

    model: str
    train: dict[str, Any]  # the base TrainConfig, flat
    policy: dict[str, Any] | None  # the base AugmentPolicy as data
    # The trials' PipelineConfig as JSON data (``tune.sweep.trial_pipeline``): its scaling section says how many Ray
    # Train workers a trial runs (0: in-process) and on what; with failure and checkpoint, it drives Train-in-Tune.
    pipeline: dict[str, Any]
    sweep_name: str
    storage_path: str  # where Train-in-Tune trials keep their Ray Train runs

    @property
    def num_workers(self) -> int:
        """Ray Train workers per trial (``scaling.num_workers`` of the trials' pipeline config); 0: in-process."""
        return int(self.pipeline["scaling"]["num_workers"])

    def pipeline_config(self, values: dict[str, Any], trial_dir: Path) -> PipelineConfig:
        """The trial's pipeline config: the sweep's one with this trial's training config (see ``train_config``)."""
        train = self.train_config(values, trial_dir)
        return PipelineConfig.model_validate({**self.pipeline, "train": train.model_dump(mode="json")})

    def train_config(self, values: dict[str, Any], run_dir: Path) -> TrainConfig:
        """The trial's training config; policy values go to ``run_dir/policy.yaml``. Outputs stay quiet."""
        base = TrainConfig.from_overrides(self.train)
        policy = AugmentPolicy.from_dict(self.policy) if self.policy else None
        config = trial_train_config(base, policy, values, run_dir / POLICY_FILE)
        # The trial's own device: the GPU Ray reserved for it, else the CPU (never `auto`: on a GPU box a CPU trial
        # would land on cuda:0 beside the trials that reserved it). Ray Train workers pick theirs the same way.
        device = "cuda" if ray.is_initialized() and ray.get_gpu_ids() else "cpu"
        return config.updated(verbose=False, plots=False, exist_ok=True, resume=False, device=device)


def tune_names(reported: dict[str, float]) -> dict[str, float]:
    """What the pipeline reports to Ray Train (:func:`pipelines.worker.ray_metrics`) as trials report it to Tune.

    Keys take their MLflow/Tune-safe spelling from ``yolov12.eval.metric_names`` (``metrics/mAP50-95(B)`` ->
    ``metrics/mAP50-95_B``, through :func:`pipelines.tracking.metric_key`) and ``loss`` (the table's ``TOTAL_LOSS``:
    the sum of the training loss parts) is added: both trial kinds report the names ``tune.config.OBJECTIVES`` lists.
    """
    out = {metric_key(k): v for k, v in reported.items()}
    out["loss"] = float(sum(v for k, v in reported.items() if k.startswith("train/") and k.endswith("_loss")))
    return out


def trial_metrics(metrics: dict[str, float], epoch: int, epochs: int, task: str) -> dict[str, float]:
    """An epoch's engine metrics under the pipeline's reported names (``mAP50-95``, ``fitness``, ``epoch``...) and
    :func:`tune_names`."""
    return tune_names(ray_metrics(metrics, epoch, epochs, task))


class TuneReport(Callback):
    """Reports each epoch to Tune with the run folder as checkpoint (after the engine wrote it)."""

    def __init__(self, task: str, started: float) -> None:
        self.task = task
        self.started = started  # when the trial process entered the trainable
        self.epoch_started = 0.0
        self.setup_seconds: float | None = None

    def on_epoch_start(self, state: Any) -> None:
        self.epoch_started = time.perf_counter()
        if self.setup_seconds is None:
            self.setup_seconds = self.epoch_started - self.started

    def on_checkpoint(self, state: Any, paths: dict[str, Path]) -> None:
        metrics = trial_metrics(state.history[-1], state.epoch + 1, state.epochs, self.task)
        metrics.update(epoch_seconds=time.perf_counter() - self.epoch_started,
                       setup_seconds=float(self.setup_seconds or 0.0))
        ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint.from_directory(str(state.run_dir)))


def restore_run(checkpoint: ray.tune.Checkpoint, run_dir: Path) -> None:
    """Replace ``run_dir`` by the contents of a checkpoint (this trial's own, or another's after a PBT exploit)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    checkpoint.to_directory(str(run_dir))


def show_trial_logs() -> None:
    """A trial process is an entry point: show this package's INFO lines, which Ray forwards to the driver's output
    (without a handler Python prints only warnings, so "trial ... resumes from ..." was never seen)."""
    package = logging.getLogger(__name__.split(".")[0])
    if not package.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        package.addHandler(handler)
        package.setLevel(logging.INFO)


def single_worker_trial(values: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable: build the model, train with the engine, report every epoch."""
    from yolov12.engine.trainer import fit  # noqa: PLC0415
    from yolov12.models import load_model  # noqa: PLC0415 - heavy import inside the trial process

    show_trial_logs()
    started = time.perf_counter()
    run_dir = Path(ray.tune.get_context().get_trial_dir()) / RUN_FOLDER
    checkpoint = ray.tune.get_checkpoint()
    if checkpoint is not None:
        restore_run(checkpoint, run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)  # a retried trial without a checkpoint starts over
    config = setup.train_config(values, run_dir)
    if checkpoint is not None:
        config = config.updated(resume=True)
        logger.info("trial %s resumes from %s", ray.tune.get_context().get_trial_id(), checkpoint.path)
    model = load_model(setup.model)
    # A resumed trial keeps the run's weights, optimiser moments and counters but trains on with this trial's values
    # (after a PBT exploit the checkpoint is the donor's, written under the donor's values).
    fit(model, config, callbacks=[TuneReport(model.task, started)], run_dir=run_dir, resume_hyperparameters="own")


class TrialReportCallback(TuneReportCallback):
    """Ray's ``TuneReportCallback`` (a Ray Train job's reports -> its trial's Tune results) under :func:`tune_names`.

    With Ray's own callback a Train-in-Tune trial reported the pipeline's raw names, without ``loss``: a sweep ranked
    by ``objective.metric=loss`` failed at the first epoch ("did not include the specified metric(s) `loss`").
    ``train_workers`` says how many Ray Train workers reported. Build it inside the trial (it needs the Tune session).
    """

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        rank0 = {**tune_names(metrics[0]), "train_workers": float(len(metrics))}
        super().after_report(run_context, [rank0, *metrics[1:]], checkpoint)


def trial_run_name(setup: TrialSetup, trial_id: str) -> str:
    """The trial's Ray Train run: no timestamp, so a restarted trial finds and resumes its run."""
    return f"{setup.sweep_name}-{trial_id}"


def trial_trainer(setup: TrialSetup, values: dict[str, Any], trial_dir: Path, trial_id: str,
                  ray_callbacks: list[Any] | None = None) -> Any:
    """The ``TorchTrainer`` of one Train-in-Tune trial: the pipeline's own (:func:`pipelines.driver.build_trainer`)
    for the trial's pipeline config, stored under the sweep's Train folder."""
    from pipelines.driver import build_trainer  # noqa: PLC0415
    from pipelines.storage import resolve_storage  # noqa: PLC0415

    return build_trainer(setup.pipeline_config(values, trial_dir), name=trial_run_name(setup, trial_id),
                         storage=resolve_storage(setup.storage_path), ray_callbacks=ray_callbacks or ())


def train_in_tune_trial(values: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable that drives one Ray Train job (``setup.num_workers`` workers) per trial."""
    context = ray.tune.get_context()
    trial_trainer(setup, values, Path(context.get_trial_dir()), context.get_trial_id(),
                  ray_callbacks=[TrialReportCallback()]).fit()


TRIAL_KINDS = {"in-process": single_worker_trial, "train-in-tune": train_in_tune_trial}


def trainable_for(setup: TrialSetup, resources: dict[str, float]) -> Any:
    """The Tune trainable of a sweep: the trial function with its setup and per-trial resources attached."""
    function = TRIAL_KINDS["train-in-tune" if setup.num_workers > 0 else "in-process"]
    if setup.num_workers > 0:
        resources = {"cpu": 1}  # the trial driver; the Ray Train workers ask for their own resources
    return ray.tune.with_resources(ray.tune.with_parameters(function, setup=setup), resources)
