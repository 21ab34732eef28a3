"""The Ray driver side of every job: joining or starting Ray, and the ``TorchTrainer`` of a pipeline config.

:func:`init_ray` is the one place that calls ``ray.init`` (the train job, sweeps, ``yolov12 serve`` and the end-to-end
demo all use it). :func:`build_trainer` maps a :class:`~pipelines.config.PipelineConfig` onto Ray Train's configs, so
a Ray Train job and a Train-in-Tune trial run the same job for the same config:

- ``scaling.num_workers`` (a count, or a ``(min, max)`` range for elastic training), ``resources_per_worker``,
  ``placement_strategy`` -> ``ScalingConfig``;
- ``scaling.use_gpu`` -> ``ScalingConfig(use_gpu)`` and the backend, ``TorchConfig(backend="nccl" | "gloo")``;
  ``scaling.timeout_s`` -> ``TorchConfig(timeout_s)`` (``scaling.sync_bn`` is read by the workers, who get the
  whole config);
- ``scaling.env`` (NCCL_*, FI_*, TORCH_NCCL_*, GLOO_*) -> ``RunConfig(worker_runtime_env)``, next to the storage
  variables: set when Ray starts each worker process, so before ``TorchConfig`` creates the process group there;
- ``failure.max_failures`` -> ``FailureConfig``; ``checkpoint.*`` -> ``CheckpointConfig(num_to_keep,
  checkpoint_score_attribute, checkpoint_score_order)``;
- the run's name and storage -> ``RunConfig(name, storage_path, storage_filesystem)``: usually ``storage.name`` and
  ``storage.storage_path``, given explicitly because a Tune trial keeps its run under the sweep instead.

Example:
    >>> from pipelines.config import load_pipeline_config
    >>> from pipelines.storage import resolve_storage
    >>> config = load_pipeline_config("configs/sample.yaml", ["checkpoint.num_to_keep=3"])
    >>> trainer = build_trainer(config, name="r1", storage=resolve_storage("runs/ray"))  # doctest: +SKIP
    >>> trainer.run_config.checkpoint_config.num_to_keep  # doctest: +SKIP
    3
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pipelines.config import PipelineConfig, ScalingSection
from pipelines.local_stack import free_port
from pipelines.storage import RunStorage, worker_environment
from yolov12.config.base import ConfigError

if TYPE_CHECKING:  # Ray is imported where a driver runs, not when this module is imported
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from yolov12.engine.callbacks import Callback

logger = logging.getLogger(__name__)

LOCAL_START_ATTEMPTS = 3  # tries to start a local Ray instance whose raylet missed Ray's 30 s to register

LOCAL = "local"
# ray.init options that only a new local instance takes (Ray refuses most of them when it joins a cluster).
LOCAL_ONLY_OPTIONS = frozenset({"num_gpus", "resources", "labels", "object_store_memory", "include_dashboard",
                                "dashboard_host", "dashboard_port", "_system_config"})
DEFAULT_OPTIONS: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
RAY_OWNER_POLL_S = 1.0  # how often the thread that started Ray off the main thread checks that Ray still runs


def resolve_address(address: str | None = None, *, join_running: bool = False) -> str | None:
    """Where :func:`init_ray` connects: ``address``, else ``RAY_ADDRESS`` (set by ``ray job submit``), else ``local``.

    With ``join_running`` the last fallback is ``None`` instead: Ray's own choice, the cluster ``ray start`` left
    running on this machine if any, else a new local instance.
    """
    if address:
        return address
    return os.environ.get("RAY_ADDRESS") or (None if join_running else LOCAL)


def init_ray(address: str | None = None, *, num_cpus: int | None = None, join_running: bool = False,
             **options: Any) -> bool:
    """Join a Ray cluster or start a private local instance (see :func:`resolve_address` for which).

    Args:
        address: ``local`` (a new private instance), ``auto``, ``host:port`` or ``ray://host:10001``; default:
            ``RAY_ADDRESS``, else ``local``.
        num_cpus: CPUs of a new local instance (ignored when joining a cluster).
        join_running: without ``address``/``RAY_ADDRESS``, join the cluster ``ray start`` left running on this
            machine when there is one (what ``yolov12 serve`` does).
        **options: more ``ray.init`` keywords; defaults ``logging_level=WARNING``, ``log_to_driver=True``.
            Options only a new instance takes (``include_dashboard``, ``resources``...) are dropped when joining.

    Returns:
        True when this call connected the process to Ray (the caller owns ``ray.shutdown()``), False when Ray was
        already initialised (the call does nothing then).
    """
    import ray  # noqa: PLC0415 - Ray only where a driver runs

    if ray.is_initialized():
        return False
    target = resolve_address(address, join_running=join_running)
    options = {**DEFAULT_OPTIONS, **options}
    if target != LOCAL:  # joining (or, with join_running and nothing running, Ray's own local start)
        _ray_init_owned(address=target, **{k: v for k, v in options.items() if k not in LOCAL_ONLY_OPTIONS})
        return True
    # A local instance started with include_dashboard=False still advertises an API-server address in its GCS,
    # on dashboard_port (8265 by default), though nothing of its own listens there. Ray Train's placement-group
    # cleaner asks that address whether the run's controller lives: where another Ray instance's dashboard owns 8265
    # on this machine, the answer is "no such actor" and the cleaner removes the placement group of a run in progress
    # ("Destroying worker since its placement group was removed"). On a free port of its own the question fails
    # instead, and the cleaner keeps the group.
    if options.get("include_dashboard") is False and "dashboard_port" not in options:
        options["dashboard_port"] = free_port()
    # Ray gives a local raylet 30 s to register (a constant in Ray 2.60): a busy machine can miss it, and on a
    # 2-core machine running three test workers it missed twice in a row once
    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            _ray_init_owned(address=LOCAL, num_cpus=num_cpus, **options)
            return True
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for this timeout
            if attempt == LOCAL_START_ATTEMPTS or "timed out during startup" not in str(exc):
                raise
            logger.warning("local Ray did not start in time (%s); trying again (%d of %d attempts)", exc,
                           attempt + 1, LOCAL_START_ATTEMPTS)
            ray.shutdown()
    return True


def _ray_init_owned(**options: Any) -> None:
    """``ray.init(**options)``, called from a thread that outlives the Ray instance it may start.

    Ray ties the processes of a local instance (GCS, raylet, workers) to their parent with Linux's
    ``PR_SET_PDEATHSIG``, which fires when the parent *thread* exits: an instance started from a short-lived thread
    (a web handler, an executor, a notebook's background task) loses its GCS and raylet the moment that thread ends,
    and about 60 s later Ray ends the whole process ("Failed to connect to GCS within 60 seconds"). From the main
    thread the call is direct; from any other thread it runs in a daemon thread that lives until Ray is shut down.
    """
    import ray  # noqa: PLC0415

    if threading.current_thread() is threading.main_thread():
        ray.init(**options)
        return
    started = threading.Event()
    failure: list[BaseException] = []

    def own() -> None:
        try:
            ray.init(**options)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(exc)
            return
        finally:
            started.set()
        while ray.is_initialized():  # the instance's processes live as long as this thread
            time.sleep(RAY_OWNER_POLL_S)

    threading.Thread(target=own, name="ray-instance-owner", daemon=True).start()
    started.wait()
    if failure:
        raise failure[0]


def check_checkpoint_ranking(config: PipelineConfig) -> None:
    """Checkpoints ranked by a validation metric need validation (``fitness`` falls back to the losses)."""
    if not config.train.run.val and config.checkpoint.score_attribute != "fitness":
        raise ConfigError(f"checkpoint.score_attribute={config.checkpoint.score_attribute} needs validation; "
                          "set val=true or checkpoint.score_attribute=fitness")


def torch_config(scaling: ScalingSection) -> TorchConfig:
    """The process group: the backend follows ``scaling.use_gpu`` (NCCL on GPUs, gloo on CPUs), and a collective
    that waits longer than ``scaling.timeout_s`` fails the workers (Ray Train then restarts them)."""
    from ray.train.torch import TorchConfig  # noqa: PLC0415

    return TorchConfig(backend="nccl" if scaling.use_gpu else "gloo", timeout_s=scaling.timeout_s)


def scaling_config(scaling: ScalingSection) -> ray.train.ScalingConfig:
    """``ray.train.ScalingConfig`` of the ``scaling`` section (``sync_bn`` is the workers' business)."""
    import ray.train  # noqa: PLC0415

    return ray.train.ScalingConfig(num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
                                   resources_per_worker=scaling.resources_per_worker,
                                   placement_strategy=scaling.placement_strategy)


def run_config(config: PipelineConfig, *, name: str, storage: RunStorage,
               callbacks: Sequence[Any] = ()) -> ray.train.RunConfig:
    """``ray.train.RunConfig``: the run's name and storage, the failure and checkpoint sections, Ray callbacks."""
    import ray.train  # noqa: PLC0415

    checkpoint = config.checkpoint
    return ray.train.RunConfig(
        name=name, storage_path=storage.storage_path, storage_filesystem=storage.filesystem,
        failure_config=ray.train.FailureConfig(max_failures=config.failure.max_failures),
        checkpoint_config=ray.train.CheckpointConfig(
            num_to_keep=checkpoint.num_to_keep, checkpoint_score_attribute=checkpoint.score_attribute,
            checkpoint_score_order=checkpoint.score_order),
        callbacks=list(callbacks), worker_runtime_env={"env_vars": worker_env_vars(config.scaling)},
        logging_config=ray.train.LoggingConfig(log_level="WARNING"))  # the workers' EpochLog is the progress line


def worker_env_vars(scaling: ScalingSection) -> dict[str, str]:
    """Environment of every worker process: the driver's storage/tracking variables and ``scaling.env``.

    Ray sets a runtime env's variables when it starts the worker process, before ``TorchConfig`` creates the
    process group in it, so NCCL and gloo read them at their initialisation. The two sets share no name
    (``scaling.env`` only takes process-group prefixes).
    """
    return {**worker_environment(), **scaling.env}


def train_loop_config(config: PipelineConfig, *, run_id: str | None = None,
                      callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """What ``pipelines.worker.train_loop_per_worker`` receives: the same config the trainer was built from."""
    return {"pipeline": config.model_dump(mode="json"), "run_id": run_id, "callbacks": list(callbacks)}


def build_trainer(config: PipelineConfig, *, name: str, storage: RunStorage, run_id: str | None = None,
                  engine_callbacks: Sequence[Callback] = (), ray_callbacks: Sequence[Any] = ()) -> TorchTrainer:
    """The ``TorchTrainer`` of one Ray Train job of ``config`` (see the module docstring for the mapping).

    Args:
        config: the job; its scaling, failure and checkpoint sections become Ray's configs, and the workers get it
            whole (so they read ``scaling.use_gpu`` from the same place the backend was chosen from).
        name: the Ray Train run name (the same name in the same storage resumes that run).
        storage: where Ray Train keeps the run (usually ``resolve_storage(config.storage.storage_path)``).
        run_id: the MLflow run the workers log epochs to, or None.
        engine_callbacks: extra engine callbacks for every worker (pickled to the workers).
        ray_callbacks: ``ray.train.UserCallback`` s on the driver (a Tune trial's report callback).
    """
    from ray.train.torch import TorchTrainer  # noqa: PLC0415

    from pipelines.ray_data_ingest import train_datasets  # noqa: PLC0415
    from pipelines.worker import train_loop_per_worker  # noqa: PLC0415

    check_checkpoint_ranking(config)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=train_loop_config(config, run_id=run_id, callbacks=engine_callbacks),
        torch_config=torch_config(config.scaling), scaling_config=scaling_config(config.scaling),
        run_config=run_config(config, name=name, storage=storage, callbacks=ray_callbacks),
        datasets=train_datasets(config, name))  # data.loader=ray_data: the train stream, sharded per worker
