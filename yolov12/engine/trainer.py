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

from yolov12.config.train import TrainConfig
from yolov12.engine.callbacks import Callback, CallbackList, ProgressBar, ResultsCSV
from yolov12.engine.checkpoint import (
    ResumeHyperparameters,
    check_resume_hyperparameters,
    load_resume_state,
    restore,
    resume_config,
    save_run_checkpoint,
)
from yolov12.engine.data_setup import TrainingData, build_training_data
from yolov12.engine.distributed import DistributedContext, broadcast_object, current_context, wrap_model
from yolov12.engine.ema import ModelEMA
from yolov12.engine.evaluate import evaluate, fitness
from yolov12.engine.freeze import freeze_layers
from yolov12.engine.loop import model_stride, train_one_epoch
from yolov12.engine.losses import build_loss
from yolov12.engine.optim import build_optimiser, plan_optimiser
from yolov12.engine.precision import MixedPrecision
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


def build_state(model: YOLOModel, config: TrainConfig, data: TrainingData, context: DistributedContext,
                run_dir: Path) -> TrainState:
    """Everything the loop needs, from the config (each builder gets only its section)."""
    device = select_device(config.run.device)
    model = model.to(device)
    batches = len(data.train_loader)
    plan = plan_optimiser(config.optim, config.data.batch, batches * config.run.epochs,  # batch: global
                          model.num_classes)
    optimiser = build_optimiser(model, plan)
    loss_fn = build_loss(model, config.loss, distill=config.distill)  # with GKD when distill.teachers is set
    if extra := list(getattr(loss_fn, "parameters", list)()):  # GKD feature adapters train with the student
        optimiser.add_param_group({"params": extra, "weight_decay": 0.0, "initial_lr": plan.lr})
    return TrainState(
        config=config, model=wrap_model(model, context, device),
        ema=ModelEMA(model, config.run.ema_decay, config.run.ema_tau), optimiser=optimiser,
        precision=MixedPrecision(device, config.run.amp, config.optim.max_grad_norm),
        loss_fn=loss_fn, device=device, run_dir=run_dir, accumulate=plan.accumulate,
        batches_per_epoch=batches, warmup_steps=warmup_steps(config.optim, batches, config.run.epochs),
        epochs=config.run.epochs,
        base_momentum=plan.momentum, rank=context.rank, world_size=context.world_size,
    )


def fit(model: YOLOModel, config: TrainConfig, callbacks: list[Callback] | None = None, *,
        run_dir: str | Path | None = None, resume_hyperparameters: ResumeHyperparameters = "saved") -> FitResult:
    """Train ``model`` as ``config`` says; returns the run folder, checkpoint paths and final metrics.

    ``run_dir``: the run folder chosen by the caller (e.g. each Ray Train worker's local folder), used as is on every
    rank; with ``resume=True`` the run continues from its ``weights/last.state.pt``. Default: ``project/name``.
    ``resume_hyperparameters``: on resume, train with the config saved in that file (``"saved"``) or with ``config``
    (``"own"``: the run's weights, EMA, optimiser moments and epoch, this config's lr0, weight decay, augmentation...).
    The file is only read either way.

    Example:
        >>> fit(model, config.updated(resume=True, lr0=0.002), run_dir="runs/a", resume_hyperparameters="own")
        ... # doctest: +SKIP
    """
    check_resume_hyperparameters(resume_hyperparameters)
    context = current_context()
    run = config.run
    check_single_device(run.device)  # a missing GPU is one line now, not after the data is built
    seed_everything(run.seed, run.deterministic)
    run_dir = Path(run_dir) if run_dir is not None else _resolve_run_dir(config, context)
    saved = load_resume_state(run_dir) if run.resume else None
    if saved is not None:
        config = resume_config(saved, config, resume_hyperparameters)
    pretrained = pretrained_path(model, config.run.pretrained) if saved is None else None  # missing: fail now
    data = build_training_data(config, model.task, context, stride=model_stride(model))
    model = adapt_model_to_dataset(model, data.names)
    if pretrained is not None:
        load_pretrained(model, pretrained)  # every tensor whose name and shape match
    freeze_layers(model, config.optim.freeze)  # before the optimiser is built: frozen tensors get no slot
    state = build_state(model, config, data, context, run_dir)
    if saved is not None:
        restore(state, saved, hyperparameters=resume_hyperparameters)
        logger.info("resuming %s at epoch %d/%d", run_dir, state.epoch + 1, state.epochs)
    hooks = CallbackList([ResultsCSV(run_dir / "results.csv"), *([ProgressBar()] if run.verbose else []),
                          *(callbacks or [])])
    hooks.on_train_data(state, data)
    hooks.on_fit_start(state)
    metrics: dict[str, float] = {}
    paths: dict[str, Path] = {}
    stale_epochs = 0
    budget = TimeBudget(config.run.time)  # time=hours overrides epochs
    while state.epoch < state.epochs:
        seed_everything(run.seed + state.epoch, run.deterministic)  # each epoch is a function of (state, epoch)
        data.set_epoch(state.epoch, state.epochs)
        metrics = train_one_epoch(state, data.train_loader, hooks)
        if run.val and state.is_main_process and data.val_loader is not None:
            metrics.update(evaluate(state.ema.ema, data.val_loader, data.names, state.device, config))
        if context.is_distributed:  # every rank ranks, stops early and reports by rank 0's validation
            metrics.update(broadcast_object({k: v for k, v in metrics.items() if k.startswith("metrics/")}, context))
        score = fitness(metrics, model.task)
        is_best = state.best_fitness is None or score > state.best_fitness
        state.best_fitness = score if is_best else state.best_fitness
        stale_epochs = 0 if is_best else stale_epochs + 1
        state.history.append({"epoch": state.epoch + 1, **metrics})
        hooks.on_epoch_end(state, metrics)
        if state.is_main_process:
            paths = save_run_checkpoint(state, metrics, is_best)
            hooks.on_checkpoint(state, paths)
        state.epoch += 1
        if run.patience and stale_epochs >= run.patience:
            logger.info("early stop: no improvement for %d epochs", run.patience)
            break
        if follow_time_budget(budget, state, context):
            break
    if run.plots and state.is_main_process:
        write_run_plots(run_dir, state.ema.ema, data.train_loader, data.val_loader, data.names, state.device)
    hooks.on_fit_end(state, metrics)
    best = state.weights_dir / "best.safetensors"
    return FitResult(run_dir, best if best.exists() else None, paths.get("last"), metrics, state.ema.ema,
                     config.data.data)
