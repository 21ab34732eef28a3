"""``fit``: the local training driver around :func:`train_one_epoch` (Ray Train workers call the same pieces).

It builds data, loss, optimiser, EMA and precision from one :class:`TrainConfig`, runs the epochs, validates the EMA
model, writes checkpoints and reports through callbacks. It never starts processes: under DDP the launcher has
already initialised the process group and every rank calls ``fit``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yolov12.config.train import TrainConfig
from yolov12.engine.batch_source import TrainBatchSource, TrainingSplits, build_streamed_training_data
from yolov12.engine.callbacks import Callback, CallbackList, ProgressBar, ResultsCSV
from yolov12.engine.checkpoint import (
    ResumeHyperparameters,
    check_resume_hyperparameters,
    load_resume_state,
    restore,
    resume_config,
    save_run_checkpoint,
)
from yolov12.engine.data_setup import build_training_data, stream_seed
from yolov12.engine.distributed import (
    DistributedContext,
    broadcast_object,
    current_context,
    per_rank_batch,
    wrap_model,
)
from yolov12.engine.ema import ModelEMA
from yolov12.engine.evaluate import fitness
from yolov12.engine.freeze import freeze_layers
from yolov12.engine.loop import model_stride, train_one_epoch
from yolov12.engine.losses import build_loss
from yolov12.engine.optim import OptimiserPlan, build_optimiser, plan_optimiser
from yolov12.engine.precision import MixedPrecision
from yolov12.engine.rank_evaluation import broadcast_module, evaluate_on_ranks
from yolov12.engine.run_dir import new_run_dir
from yolov12.engine.run_plots import write_run_plots
from yolov12.engine.schedule import warmup_steps
from yolov12.engine.state import TrainState
from yolov12.engine.time_budget import TimeBudget, follow_time_budget
from yolov12.models import YOLOModel, build_model
from yolov12.models.transfer import load_pretrained, pretrained_path
from yolov12.utils.device import DeviceError, gpu_indices, select_device

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitResult:
    """Where the run went and how it ended."""

    run_dir: Path
    best: Path | None
    last: Path | None
    metrics: dict[str, float]
    model: YOLOModel  # the EMA model of the last epoch
    data: str  # the dataset the run trained on (model.val() defaults to it)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = deterministic  # a flag only: harmless where cuDNN is absent
    if deterministic:
        torch.backends.cudnn.benchmark = False


def adapt_model_to_dataset(model: YOLOModel, names: dict[int, str]) -> YOLOModel:
    """Rebuild the head when the dataset has another class count, keeping every weight whose shape still fits."""
    if model.num_classes == len(names):
        model.names = dict(names)
        return model
    new = build_model(model.config.with_overrides(num_classes=len(names)), names=names)
    own = new.state_dict()
    kept = {k: v for k, v in model.state_dict().items() if k in own and own[k].shape == v.shape}
    new.load_state_dict(kept, strict=False)
    logger.info("model has %d classes, dataset %d: rebuilt the head, kept %d/%d tensors", model.num_classes,
                len(names), len(kept), len(own))
    return new


def check_single_device(device: str) -> None:
    """Resolve ``device`` once (raising :class:`DeviceError`); a GPU list names the launcher that trains on it."""
    if indices := gpu_indices(device):
        raise DeviceError(
            f"device={device} asks for DDP on {len(indices)} GPUs, and fit() runs in one process: use "
            f"YOLO(...).train(device='{device}') or yolov12 train device={device} (one Ray Train worker per GPU; "
            f"needs yolov12-platform[ray]), or yolov12 train-ray scaling.num_workers={len(indices)} "
            "scaling.use_gpu=true"
        )
    select_device(device)


def _resolve_run_dir(config: TrainConfig, context: DistributedContext) -> Path:
    run = config.run
    if run.resume:
        path = Path(run.resume) if isinstance(run.resume, str) else Path(run.project) / run.name
        return path.parent.parent if path.suffix else path  # accept a run folder or its weights/last.state.pt
    path = new_run_dir(run.project, run.name, run.exist_ok) if context.rank == 0 else None
    return Path(broadcast_object(str(path) if path else None, context))


def check_sync_bn(sync_bn: bool, device: str, context: DistributedContext) -> None:
    """Refuse SyncBatchNorm over CPU ranks in one line (DDP accepts SyncBatchNorm on GPU modules only)."""
    if sync_bn and context.is_distributed and select_device(device).type != "cuda":
        raise DeviceError(f"sync_bn=True synchronises BatchNorm statistics over GPU ranks, and these "
                          f"{context.world_size} ranks train on device={device}: train on GPUs (Ray Train: "
                          "scaling.use_gpu=true) or turn sync_bn off")


def prepare_model(model: YOLOModel, names: dict[int, str], config: TrainConfig, pretrained: Path | None) -> YOLOModel:
    """The model as it trains: its head fitted to the dataset's classes, pretrained weights, frozen layers."""
    model = adapt_model_to_dataset(model, names)
    if pretrained is not None:
        load_pretrained(model, pretrained)  # every tensor whose name and shape match
    freeze_layers(model, config.optim.freeze)  # before the optimiser is built: frozen tensors get no slot
    return model


def build_state(model: YOLOModel, config: TrainConfig, data: TrainingSplits, context: DistributedContext,
                run_dir: Path, *, sync_bn: bool = False) -> TrainState:
    """Everything the loop needs, from the config (each builder gets only its section).

    ``sync_bn``: train with SyncBatchNorm (statistics over all ranks). The conversion happens here, on the final
    model and right before the DDP wrapping; the EMA copy (validated, saved, returned) keeps plain BatchNorm, with
    the same parameter and buffer names. Trainable parts of the loss (GKD feature adapters) join the optimiser and
    are wrapped like the model, so their gradients are reduced over the ranks too.
    """
    device = select_device(config.run.device)
    model = model.to(device)
    batches = len(data.train_loader)
    plan = plan_optimiser(config.optim, config.data.batch, batches * config.run.epochs,  # batch: global
                          model.num_classes)
    optimiser = build_optimiser(model, plan)
    if context.rank == 0:
        logger.info(optimiser_plan_text(config, plan, context.world_size))
    loss_fn = build_loss(model, config.loss, distill=config.distill)  # with GKD when distill.teachers is set
    if extra := list(getattr(loss_fn, "parameters", list)()):  # GKD feature adapters train with the student
        optimiser.add_param_group({"params": extra, "weight_decay": 0.0, "initial_lr": plan.lr})
    if hasattr(loss_fn, "wrap_trainable"):
        loss_fn.wrap_trainable(lambda module: wrap_model(module, context, device))
    precision = MixedPrecision(device, config.run.amp, config.optim.max_grad_norm)
    if hasattr(loss_fn, "use_grad_scaler"):  # GKD probes its gradients at the loss scale of the real backward
        loss_fn.use_grad_scaler(precision.scaler)
    ema = ModelEMA(model, config.run.ema_decay, config.run.ema_tau)  # before the conversion: plain BatchNorm
    trained = nn.SyncBatchNorm.convert_sync_batchnorm(model) if sync_bn else model  # same parameters, in place
    return TrainState(
        config=config, model=wrap_model(trained, context, device), ema=ema, optimiser=optimiser,
        precision=precision, loss_fn=loss_fn, device=device, run_dir=run_dir, accumulate=plan.accumulate,
        batches_per_epoch=batches, warmup_steps=warmup_steps(config.optim, batches, config.run.epochs),
        epochs=config.run.epochs,
        base_momentum=plan.momentum, rank=context.rank, world_size=context.world_size,
    )


def optimiser_plan_text(config: TrainConfig, plan: OptimiserPlan, world_size: int) -> str:
    """The line logged at start: global batch, its split over ranks, accumulation, and the effective lr and decay.

    Every term comes from the global batch, so the same ``batch`` gives the same plan on any number of ranks.
    """
    batch = config.data.batch
    return (f"batch {batch} global ({per_rank_batch(batch, world_size)} per rank x {world_size} rank"
            f"{'s' if world_size != 1 else ''}), accumulate {plan.accumulate} (nbs {config.optim.nbs}): "
            f"{batch * plan.accumulate} images per optimiser step; {plan.name} lr0 {plan.lr:g}, momentum "
            f"{plan.momentum:g}, weight decay {plan.weight_decay:g} (configured {config.optim.weight_decay:g})")


def validates(state: TrainState) -> bool:
    """Whether the current epoch is validated: every ``val_period``-th, the last, and the first of a run (whose
    metrics later epochs carry until the next validation)."""
    run, epoch = state.config.run, state.epoch + 1
    carried = any(key.startswith("metrics/") for key in (state.history[-1] if state.history else {}))
    return run.val and (epoch % run.val_period == 0 or epoch >= state.epochs or not carried)


def validation_metrics(state: TrainState, data: TrainingSplits, context: DistributedContext) -> dict[str, float]:
    """This epoch's ``metrics/...`` on every rank: a validation of rank 0's EMA spread over the ranks, or, in an
    epoch that is not validated (``val_period``), the last validation's (as Ultralytics carries them; results.csv
    keeps its columns). Empty without validation."""
    if data.val_loader is None:
        return {}
    if validates(state):
        broadcast_module(state.ema.ema, context)  # BatchNorm statistics of the EMA differ a little per rank
        metrics = evaluate_on_ranks(state.ema.ema, data.val_loader, data.names, state.device, context)
    else:
        metrics = {k: v for k, v in (state.history[-1] if state.history else {}).items() if k.startswith("metrics/")}
    return broadcast_object(metrics, context)  # every rank ranks, stops early and reports by the same numbers


@dataclass
class Progress:
    """Early-stopping bookkeeping: best fitness is in the state, epochs without improvement here."""

    stale_epochs: int = 0

    def judge(self, state: TrainState, metrics: dict[str, float], task: str, judged: bool) -> bool:
        """Whether this epoch is the best so far (only judged epochs can be: validated ones, or all without val)."""
        score = fitness(metrics, task)
        is_best = judged and (state.best_fitness is None or score > state.best_fitness)
        state.best_fitness = score if is_best else state.best_fitness
        self.stale_epochs = 0 if is_best else self.stale_epochs + 1
        return is_best


def fit(model: YOLOModel, config: TrainConfig, callbacks: list[Callback] | None = None, *,
        run_dir: str | Path | None = None, resume_hyperparameters: ResumeHyperparameters = "saved",
        sync_bn: bool = False, train_batches: TrainBatchSource | None = None) -> FitResult:
    """Train ``model`` as ``config`` says; returns the run folder, checkpoint paths and final metrics.

    ``run_dir``: the run folder chosen by the caller (e.g. each Ray Train worker's local folder), used as is on every
    rank; with ``resume=True`` the run continues from its ``weights/last.state.pt``. Default: ``project/name``.
    ``resume_hyperparameters``: on resume, train with the config saved in that file (``"saved"``) or with ``config``
    (``"own"``: the run's weights, EMA, optimiser moments and epoch, this config's lr0, weight decay, augmentation...).
    The file is only read either way; runtime keys (device, workers, paths: ``checkpoint.RUNTIME_KEYS``) are always
    this config's. ``sync_bn``: SyncBatchNorm while training (DDP on GPUs; see :func:`build_state`).
    ``train_batches``: train on the batches this source yields instead of a local train loader (a streaming ingest,
    see :mod:`yolov12.engine.batch_source`); the val split is still read locally.

    Example:
        >>> fit(model, config.updated(resume=True, lr0=0.002), run_dir="runs/a", resume_hyperparameters="own")
        ... # doctest: +SKIP
    """
    check_resume_hyperparameters(resume_hyperparameters)
    context = current_context()
    check_single_device(config.run.device)  # a missing GPU is one line now, not after the data is built
    check_sync_bn(sync_bn, config.run.device, context)
    seed_everything(config.run.seed, config.run.deterministic)
    run_dir = Path(run_dir) if run_dir is not None else _resolve_run_dir(config, context)
    saved = load_resume_state(run_dir) if config.run.resume else None
    if saved is not None:
        config = resume_config(saved, config, resume_hyperparameters)
    pretrained = pretrained_path(model, config.run.pretrained) if saved is None else None  # missing: fail now
    data = (build_training_data(config, model.task, context, stride=model_stride(model)) if train_batches is None
            else build_streamed_training_data(config, model.task, context, train_batches, model_stride(model)))
    model = prepare_model(model, data.names, config, pretrained)
    state = build_state(model, config, data, context, run_dir, sync_bn=sync_bn)
    if saved is not None:
        restore(state, saved, hyperparameters=resume_hyperparameters)
        logger.info("resuming %s at epoch %d/%d", run_dir, state.epoch + 1, state.epochs)
    hooks = CallbackList([ResultsCSV(run_dir / "results.csv"), *([ProgressBar()] if config.run.verbose else []),
                          *(callbacks or [])])
    hooks.on_train_data(state, data)
    hooks.on_fit_start(state)
    metrics, paths = _train_epochs(state, data, hooks, context, model.task)
    preview = data.train_loader if train_batches is None else data.preview_batches()  # a stream is not re-read
    if config.run.plots and state.is_main_process and preview:  # no preview: a resumed run had no epoch left
        write_run_plots(run_dir, state.ema.ema, preview, data.val_loader, data.names, state.device)
    hooks.on_fit_end(state, metrics)
    best = state.weights_dir / "best.safetensors"
    return FitResult(run_dir, best if best.exists() else None, paths.get("last"), metrics, state.ema.ema,
                     config.data.data)


def _train_epochs(state: TrainState, data: TrainingSplits, hooks: CallbackList, context: DistributedContext,
                  task: str) -> tuple[dict[str, float], dict[str, Path]]:
    """The epochs from ``state.epoch`` on: train, validate, checkpoint; returns the last metrics and paths."""
    run = state.config.run
    metrics: dict[str, float] = {}
    paths: dict[str, Path] = {}
    progress = Progress()
    budget = TimeBudget(run.time)  # time=hours overrides epochs
    while state.epoch < state.epochs:
        # Each epoch is a function of (state, epoch, rank): ranks draw their own dropout, multi-scale sizes, and
        # (set_epoch) augmentation.
        seed_everything(stream_seed(run.seed, state.epoch, context.rank), run.deterministic)
        data.set_epoch(state.epoch, state.epochs)
        metrics = train_one_epoch(state, data.train_loader, hooks)
        judged = validates(state) or not run.val
        metrics.update(validation_metrics(state, data, context))
        is_best = progress.judge(state, metrics, task, judged)
        state.history.append({"epoch": state.epoch + 1, **metrics})
        hooks.on_epoch_end(state, metrics)
        if state.is_main_process:
            paths = save_run_checkpoint(state, metrics, is_best)
            hooks.on_checkpoint(state, paths)
        state.epoch += 1
        if judged and run.patience and progress.stale_epochs >= run.patience:
            logger.info("early stop: no improvement for %d epochs", run.patience)
            break
        if follow_time_budget(budget, state, context):
            break
    return metrics, paths
