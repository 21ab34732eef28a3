"""One trial = one call of the engine's ``fit``; every epoch reports metrics and the run folder as a checkpoint.

Two shapes (chosen by ``resources.num_workers``):

- :func:`single_worker_trial` (``num_workers=0``): trains in the trial's own process. A trial that is restarted
  (retry, restored sweep, or a PBT exploit that hands it another trial's checkpoint) gets the checkpoint from
  ``ray.tune.get_checkpoint()``, copies it into its run folder and resumes the engine from ``weights/last.state.pt``
  under its *own* current hyperparameters (PBT perturbs them).
- :func:`train_in_tune_trial` (``num_workers>=1``): the trial is a driver that runs the pipeline's Ray Train job
  (``pipelines.worker.train_loop_per_worker``) with ``RunConfig(name=<sweep>-<trial id>)``: a restarted trial finds
  its Train run by that name and resumes it; ``TuneReportCallback`` forwards each epoch's report to Tune.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray.tune
import torch
from ray.tune.integration.ray_train import TuneReportCallback

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
    pipeline: dict[str, Any]  # the base PipelineConfig as JSON data (Train-in-Tune)
    sweep_name: str
    storage_path: str  # where Train-in-Tune trials keep their Ray Train runs
    num_workers: int = 0
    use_gpu: bool = False
    max_failures: int = 0

    def train_config(self, values: dict[str, Any], run_dir: Path) -> TrainConfig:
        """The trial's training config; policy values go to ``run_dir/policy.yaml``. Outputs stay quiet."""
        base = TrainConfig.from_overrides(self.train)
        policy = AugmentPolicy.from_dict(self.policy) if self.policy else None
        config = trial_train_config(base, policy, values, run_dir / POLICY_FILE)
        return config.updated(verbose=False, plots=False, exist_ok=True, resume=False)


def tune_names(reported: dict[str, float]) -> dict[str, float]:
    """What the pipeline reports to Ray Train (:func:`pipelines.worker.ray_metrics`) as trials report it to Tune.

    Keys are made MLflow/TensorBoard-safe (``metrics/mAP50-95(B)`` -> ``metrics/mAP50-95_B``) and ``loss`` (the sum
    of the training loss parts) is added: both trial kinds report the names ``tune.config.OBJECTIVES`` lists.
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


def restore_run_config(run_dir: Path, config: TrainConfig) -> None:
    """Make the restored resume state train on with this trial's current config.

    The engine resumes with the config stored in ``weights/last.state.pt``; PBT changes hyperparameters between
    epochs, so the stored config is replaced by this trial's one (same epochs, its learning rate, augmentation and
    policy file inside ``run_dir``). The optimiser groups' own copies are reset by :class:`KeepTrialHyperparameters`.
    """
    state_path = run_dir / "weights" / "last.state.pt"
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    state["config"] = config.updated(resume=False).to_flat()
    torch.save(state, state_path)


class KeepTrialHyperparameters(Callback):
    """After a resume, the optimiser's parameter groups take this trial's ``lr0`` and weight decay again.

    Loading the resume state's optimiser state dict also loads its groups' hyperparameters (``initial_lr``,
    ``weight_decay``...), those of the run that wrote it: after a PBT exploit, another trial's. The schedule sets each
    step's lr from ``initial_lr``, so without this the exploiting trial trains at the donor's learning rate. The moment
    buffers stay; the groups get the values a fresh optimiser for this config has (the same builder the engine uses).
    """

    def on_fit_start(self, state: Any) -> None:
        from yolov12.engine.ema import unwrap  # noqa: PLC0415
        from yolov12.engine.optim import build_optimiser, plan_optimiser  # noqa: PLC0415

        model = unwrap(state.model)
        config = state.config
        plan = plan_optimiser(config.optim, config.data.batch * state.world_size,
                              state.batches_per_epoch * state.epochs, model.num_classes)
        fresh = build_optimiser(model, plan)  # its groups only: no optimiser step is taken
        for group, own in zip(state.optimiser.param_groups, fresh.param_groups):
            group.update({key: value for key, value in own.items() if key != "params"})


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
    from yolov12 import YOLO  # noqa: PLC0415 - heavy import inside the trial process
    from yolov12.engine.trainer import fit  # noqa: PLC0415

    show_trial_logs()
    started = time.perf_counter()
    run_dir = Path(ray.tune.get_context().get_trial_dir()) / RUN_FOLDER
    checkpoint = ray.tune.get_checkpoint()
    if checkpoint is not None:
        restore_run(checkpoint, run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)  # a retried trial without a checkpoint starts over
    config = setup.train_config(values, run_dir)
    callbacks: list[Callback] = []
    if checkpoint is not None:
        restore_run_config(run_dir, config)
        config = config.updated(resume=True)
        callbacks.append(KeepTrialHyperparameters())
        logger.info("trial %s resumes from %s", ray.tune.get_context().get_trial_id(), checkpoint.path)
    model = YOLO(setup.model).model
    fit(model, config, callbacks=[*callbacks, TuneReport(model.task, started)], run_dir=run_dir)


class TrialReportCallback(TuneReportCallback):
    """Ray's ``TuneReportCallback`` (a Ray Train job's reports -> its trial's Tune results) under :func:`tune_names`.

    With Ray's own callback a Train-in-Tune trial reported the pipeline's raw names, without ``loss``: a sweep ranked
    by ``objective.metric=loss`` failed at the first epoch ("did not include the specified metric(s) `loss`").
    ``train_workers`` says how many Ray Train workers reported. Build it inside the trial (it needs the Tune session).
    """

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        rank0 = {**tune_names(metrics[0]), "train_workers": float(len(metrics))}
        super().after_report(run_context, [rank0, *metrics[1:]], checkpoint)


def train_in_tune_trial(values: dict[str, Any], setup: TrialSetup) -> None:
    """Ray Tune function trainable that drives one Ray Train job (``setup.num_workers`` workers) per trial."""
    import ray.train  # noqa: PLC0415
    from ray.train.torch import TorchConfig, TorchTrainer  # noqa: PLC0415

    from pipelines.config import PipelineConfig  # noqa: PLC0415
    from pipelines.storage import resolve_storage, worker_environment  # noqa: PLC0415
    from pipelines.worker import train_loop_per_worker  # noqa: PLC0415

    context = ray.tune.get_context()
    trial_dir = Path(context.get_trial_dir())
    train = setup.train_config(values, trial_dir)
    pipeline = PipelineConfig.model_validate({**setup.pipeline, "train": train.model_dump(mode="json")})
    storage = resolve_storage(setup.storage_path)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"pipeline": pipeline.model_dump(mode="json"), "run_id": None, "callbacks": []},
        torch_config=TorchConfig(backend="nccl" if setup.use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(num_workers=setup.num_workers, use_gpu=setup.use_gpu),
        run_config=ray.train.RunConfig(
            name=f"{setup.sweep_name}-{context.get_trial_id()}",  # no timestamp: a restarted trial resumes its run
            storage_path=storage.storage_path, storage_filesystem=storage.filesystem,
            failure_config=ray.train.FailureConfig(max_failures=setup.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=[TrialReportCallback()], worker_runtime_env={"env_vars": worker_environment()}),
    )
    trainer.fit()


TRIAL_KINDS = {"in-process": single_worker_trial, "train-in-tune": train_in_tune_trial}


def trainable_for(setup: TrialSetup, resources: dict[str, float]) -> Any:
    """The Tune trainable of a sweep: the trial function with its setup and per-trial resources attached."""
    function = TRIAL_KINDS["train-in-tune" if setup.num_workers > 0 else "in-process"]
    if setup.num_workers > 0:
        resources = {"cpu": 1}  # the trial driver; the Ray Train workers ask for their own resources
    return ray.tune.with_resources(ray.tune.with_parameters(function, setup=setup), resources)
