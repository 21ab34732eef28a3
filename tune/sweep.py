"""Sweep driver: ``python -m tune.sweep config=configs/sweeps/<name>.yaml [key=value ...]`` (= ``yolov12 tune``).

Steps: load and validate the sweep (search space first: a bad key fails before Ray starts) -> ``ray.init`` (joins
``RAY_ADDRESS`` under ``ray job submit``, else a private local instance) -> a new ``Tuner``, or
``Tuner.restore(storage_path/name, resume_unfinished=True)`` when that sweep exists (finished trials are kept,
unfinished ones continue from their last checkpoint) -> table of trials on stdout, best config YAML, plots, MLflow.

Example:
    >>> result = run_sweep(load_sweep_config("configs/sweeps/sample-asha.yaml"))  # doctest: +SKIP
    >>> result.best_config["train"]  # doctest: +SKIP
    PosixPath('runs/tune/sample-asha/summary/best_train.yaml')
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import PipelineConfig, check_workers_and_devices
from pipelines.driver import check_checkpoint_ranking, init_ray
from pipelines.storage import RunStorage, resolve_storage
from tune.config import ResolvedSweep, SweepConfig
from tune.experiment_files import read_experiment_file, write_experiment_file
from tune.report import (
    format_table,
    plot_metric_vs_epoch,
    plot_parallel_coordinates,
    sort_rows,
    trial_rows,
    write_best_config,
    write_table_csv,
)
from tune.result_logs import result_loggers
from tune.resumable_asha import ResumableASHA
from tune.trainable import TrialSetup, trainable_for
from yolov12.config.base import ConfigError
from yolov12.utils.extras import require

logger = logging.getLogger(__name__)

SWEEP_FILE = "sweep.json"  # in the experiment folder: the sweep id and config, read back on restore


@dataclass(frozen=True)
class SweepResult:
    """Where a finished sweep's outputs are and what won."""

    name: str
    experiment_path: str
    summary_dir: Path
    rows: list  # TrialRow, best first
    best_trial_id: str | None
    best_config: dict[str, Path]
    restored: bool
    wall_seconds: float
    parent_run_id: str | None = None


def trial_dirname(trial: Any) -> str:
    """Short trial folders (Tune's default puts every sampled value in the name)."""
    return f"trial_{trial.trial_id}"


def build_search(resolved: ResolvedSweep) -> Any:
    """Random search (Tune's variant generator) or Optuna TPE in a ``ConcurrencyLimiter``."""
    sweep = resolved.sweep
    search = sweep.search
    points = [resolved.space.check_defaults(resolved.train, resolved.policy)] if search.evaluate_base else None
    if search.algorithm == "optuna":
        require("optuna", extra="ray", feature="search.algorithm=optuna")
        from ray.tune.search import ConcurrencyLimiter  # noqa: PLC0415
        from ray.tune.search.optuna import OptunaSearch  # noqa: PLC0415

        return ConcurrencyLimiter(OptunaSearch(points_to_evaluate=points, seed=search.seed),
                                  max_concurrent=search.max_concurrent)
    from ray.tune.search import BasicVariantGenerator  # noqa: PLC0415

    return BasicVariantGenerator(points_to_evaluate=points, max_concurrent=search.max_concurrent,
                                 random_state=search.seed)


def build_scheduler(resolved: ResolvedSweep, storage: RunStorage) -> Any:
    """ASHA over epochs, PBT over the searched keys (it needs the per-epoch checkpoints trials report), or none."""
    from ray.tune.schedulers import FIFOScheduler, PopulationBasedTraining  # noqa: PLC0415

    scheduler = resolved.sweep.scheduler
    if scheduler.kind == "asha":
        return ResumableASHA(storage_path=storage.uri, name=resolved.sweep.name, time_attr="epoch",
                             max_t=resolved.max_epochs, grace_period=scheduler.grace_period,
                             reduction_factor=scheduler.reduction_factor, brackets=scheduler.brackets)
    if scheduler.kind == "pbt":
        return PopulationBasedTraining(time_attr="epoch", perturbation_interval=scheduler.perturbation_interval,
                                       hyperparam_mutations=resolved.space.to_pbt_mutations(),
                                       custom_explore_fn=resolved.space.clip,  # x1.2 can leave a range
                                       quantile_fraction=scheduler.quantile_fraction,
                                       resample_probability=scheduler.resample_probability, synch=scheduler.synch)
    return FIFOScheduler()


def final_epoch_stop(resolved: ResolvedSweep) -> dict[str, int] | None:
    """PBT: end a trial at its last epoch before the scheduler sees it (Tune checks ``stop`` first).

    Otherwise PBT perturbs there too: an exploiting trial restarts from a finished run and trains nothing (or
    repeats the donor's last epoch). Trials end after their last epoch anyway; ASHA stops them itself.
    """
    return {"epoch": resolved.max_epochs} if resolved.sweep.scheduler.kind == "pbt" else None


def trial_pipeline(resolved: ResolvedSweep) -> PipelineConfig:
    """The pipeline config every trial runs: the base one with the sweep's ``resources`` in its scaling section.

    ``resources.num_workers`` becomes ``scaling.num_workers`` (0: in-process trials; else each trial is a Ray Train
    job of that many workers) and ``resources.gpu > 0`` becomes ``scaling.use_gpu`` (GPU workers and NCCL). The rest
    of the base config's scaling (``resources_per_worker``, ``placement_strategy``, ``sync_bn``) and its ``failure``
    and ``checkpoint`` sections apply to each Train-in-Tune trial's Ray Train run as they do to a Ray Train job
    (``failure.max_failures`` restarts the trial's workers in place; the sweep's own ``failure`` retries the trial).
    """
    base, resources = resolved.pipeline, resolved.sweep.resources
    use_gpu = resources.gpu > 0
    if resources.num_workers > 0 and base.scaling.use_gpu != use_gpu:
        logger.warning("sweep resources.gpu=%s: Train-in-Tune workers use_gpu=%s (the base config says "
                       "scaling.use_gpu=%s)", resources.gpu, use_gpu, base.scaling.use_gpu)
    scaling = base.scaling.model_copy(update={"num_workers": resources.num_workers, "use_gpu": use_gpu})
    pipeline = base.model_copy(update={"scaling": scaling})
    check_workers_and_devices(pipeline)  # the global batch splits over the trial's workers, before any trial runs
    return pipeline


def trial_setup(resolved: ResolvedSweep) -> TrialSetup:
    pipeline = trial_pipeline(resolved)
    return TrialSetup(
        model=pipeline.model, train=resolved.train.to_flat(),
        policy=resolved.policy.to_dict() if resolved.policy else None,
        pipeline=pipeline.model_dump(mode="json"), sweep_name=resolved.sweep.name,
        storage_path=f"{resolved.sweep.storage_path.rstrip('/')}/{resolved.sweep.name}-train",
    )


def read_sweep_file(storage: RunStorage, name: str) -> dict[str, Any] | None:
    return read_experiment_file(storage, name, SWEEP_FILE)


def write_sweep_file(storage: RunStorage, name: str, content: dict[str, Any]) -> None:
    write_experiment_file(storage, name, SWEEP_FILE, content)


def build_tracker(resolved: ResolvedSweep, sweep_id: str) -> Any:
    from pipelines.sweep_tracking import SweepTracker  # noqa: PLC0415

    sweep = resolved.sweep
    tracking = sweep.tracking.resolved() if sweep.tracking.enabled else sweep.tracking
    params = {"sweep": sweep.model_dump(mode="json", exclude={"train", "tracking"}),
              "base": {"model": resolved.pipeline.model, **resolved.train.to_flat()}}
    return SweepTracker(tracking, sweep_id=sweep_id, sweep_name=sweep.name, params=params,
                        max_epochs=resolved.max_epochs)


def build_tuner(resolved: ResolvedSweep, storage: RunStorage, restore: bool, tracker: Any) -> Any:
    """A new ``Tuner`` or the restored one (``restart_errored`` reruns errored trials from scratch)."""
    from ray import tune  # noqa: PLC0415

    sweep = resolved.sweep
    resources = {"cpu": sweep.resources.cpu, "gpu": sweep.resources.gpu}
    trainable = trainable_for(trial_setup(resolved), resources)
    path = f"{storage.uri.rstrip('/')}/{sweep.name}"
    if restore:
        return tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                  restart_errored=sweep.failure.restart_errored,
                                  storage_filesystem=storage.filesystem)
    objective = sweep.objective
    return tune.Tuner(
        trainable,
        param_space=resolved.space.to_tune(),
        tune_config=tune.TuneConfig(
            metric=objective.metric, mode=objective.direction, search_alg=build_search(resolved),
            scheduler=build_scheduler(resolved, storage), num_samples=sweep.search.num_samples,
            max_concurrent_trials=sweep.search.max_concurrent, trial_dirname_creator=trial_dirname,
            reuse_actors=sweep.reuse_actors and sweep.resources.num_workers == 0),
        run_config=tune.RunConfig(
            name=sweep.name, storage_path=storage.storage_path, storage_filesystem=storage.filesystem,
            stop=final_epoch_stop(resolved),
            failure_config=tune.FailureConfig(max_failures=sweep.failure.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=sweep.checkpoints_kept),
            callbacks=[tracker, *result_loggers()], verbose=1),
    )


def run_sweep(sweep: SweepConfig, *, ray_address: str | None = None, num_cpus: int | None = None) -> SweepResult:
    """Run (or continue) a sweep to the end; see the module docstring."""
    from ray import tune  # noqa: PLC0415

    storage = resolve_storage(sweep.storage_path)
    saved = read_sweep_file(storage, sweep.name)
    restore = saved is not None and tune.Tuner.can_restore(f"{storage.uri.rstrip('/')}/{sweep.name}",
                                                           storage_filesystem=storage.filesystem)
    if restore:
        previous = SweepConfig.model_validate(saved["config"])
        if previous.model_dump(exclude={"failure"}) != sweep.model_dump(exclude={"failure"}):
            logger.warning("sweep %s exists: continuing it with its original config (the search space and trial "
                           "settings of a started sweep cannot change; use a new name for a new sweep)", sweep.name)
        sweep = previous.model_copy(update={"failure": sweep.failure})
    resolved = sweep.resolve()  # every check before Ray starts
    if sweep.resources.num_workers > 0:  # Train-in-Tune trials rank their Ray Train checkpoints
        check_checkpoint_ranking(resolved.pipeline)
    sweep_id = saved["sweep_id"] if restore else uuid.uuid4().hex
    # Train-in-Tune trials need the State API that the dashboard serves: Ray Train's placement-group cleaner asks it
    # every second whether a run's controller lives. In-process trials skip the dashboard (about 1 GB of processes).
    init_ray(ray_address, num_cpus=num_cpus, include_dashboard=sweep.resources.num_workers > 0)
    if not restore:
        write_sweep_file(storage, sweep.name, {"sweep_id": sweep_id, "config": sweep.model_dump(mode="json")})
    logger.info("%s sweep %s in %s/%s", "continuing" if restore else "starting", sweep.name, storage.uri, sweep.name)
    started = time.perf_counter()
    results = build_tuner(resolved, storage, restore, build_tracker(resolved, sweep_id)).fit()
    wall = time.perf_counter() - started
    return summarise(resolved, results, sweep_id, restore, wall, storage)


def summarise(resolved: ResolvedSweep, results: Any, sweep_id: str, restored: bool, wall: float,
              storage: RunStorage) -> SweepResult:
    """Table on stdout, ``trials.csv``, best config files, plots, ``summary.json``; everything to the MLflow parent."""
    from pipelines.sweep_tracking import finish_sweep  # noqa: PLC0415

    sweep, objective = resolved.sweep, resolved.sweep.objective
    metric, mode, max_epochs = objective.metric, objective.direction, resolved.max_epochs
    rows = sort_rows(trial_rows(results, metric), mode)
    out = sweep.summary_dir
    out.mkdir(parents=True, exist_ok=True)
    print(format_table(rows, metric, mode, max_epochs))
    best = next((row for row in rows if row.best(mode) is not None and not row.error), None)
    files = [write_table_csv(rows, metric, mode, max_epochs, out / "trials.csv"),
             plot_metric_vs_epoch(rows, metric, out / f"{metric}_vs_epoch.png"),
             plot_parallel_coordinates(rows, metric, mode, out / "parallel_coordinates.png")]
    best_config = write_best_config(best.config, resolved.pipeline, resolved.policy, out, sweep.name) if best else {}
    files += list(best_config.values())
    stats = {"sweep_seconds": wall, "trials": len(rows), "restored": restored,
             "trial_epoch_seconds": sum(r.epoch_seconds for r in rows),
             "trial_setup_seconds": sum(r.setup_seconds for r in rows),
             "epochs_trained": sum(len(r.epochs) for r in rows),
             "stopped_early": sum(r.status(max_epochs) == "STOPPED" for r in rows),
             "errored": sum(bool(r.error) for r in rows),
             "best_trial_id": best.trial_id if best else None, f"best_{metric}": best.best(mode) if best else None}
    (out / "summary.json").write_text(json.dumps(stats, indent=2))
    files.append(out / "summary.json")
    parent = finish_sweep(build_tracker(resolved, sweep_id), best.trial_id if best else None, files,
                          {metric: best.best(mode)} if best else None)
    if best:
        print(f"best trial {best.trial_id}: {metric}={best.best(mode):.4f}; config: {best_config['train']}")
    else:
        print("no trial reported a value for the objective; see the errors above")
    print(f"summary, plots and best config in {out}; {stats['epochs_trained']} epochs trained, "
          f"{stats['stopped_early']} trial(s) stopped early, {wall:.1f} s")
    return SweepResult(sweep.name, f"{storage.uri.rstrip('/')}/{sweep.name}", out, rows,
                       best.trial_id if best else None, best_config, restored, wall, parent)


def main(argv: list[str] | None = None) -> int:
    """``python -m tune.sweep config=... [key=value ...]``: the arguments of ``yolov12 tune`` (see :mod:`tune.cli`);
    a bad argument, config, model or data prints one line and returns 2 before Ray starts."""
    from tune.cli import tune_command  # noqa: PLC0415
    from yolov12.cli.arguments import CommandLineError  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return tune_command(list(sys.argv[1:] if argv is None else argv))
    except (ConfigError, CommandLineError, FileNotFoundError) as exc:
        if os.environ.get("YOLOV12_DEBUG"):
            raise
        print(f"tune.sweep: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
