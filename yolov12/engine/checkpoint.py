"""Run checkpoints: ``weights/{last,best}.safetensors`` (EMA model, native format) + ``last.state.pt`` to resume.

The resume file holds only tensors and plain data (model, EMA, optimiser and scaler state, counters, config) and is
read with ``torch.load(weights_only=True)``. Every file is written to a temporary name and renamed into place.

A resume takes the run's hyper-parameters from that file (``"saved"``, the default: the run goes on as it started)
or from the caller's config (``"own"``: the weights, EMA, optimiser moments and counters are the run's, while the
config, and with it the optimiser groups' ``initial_lr``/``weight_decay``/momentum, is the caller's; a Tune trial
that continues another trial's run under perturbed values needs this). The file itself is only read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from yolov12.config.base import ConfigError
from yolov12.config.train import TrainConfig
from yolov12.engine.ema import unwrap
from yolov12.engine.state import TrainState
from yolov12.utils.atomic import atomic_write
from yolov12.weights import save_checkpoint

logger = logging.getLogger(__name__)

STATE_FORMAT_VERSION = 1

ResumeHyperparameters = Literal["saved", "own"]  # whose hyper-parameters a resumed run trains with (see above)


class ResumeError(RuntimeError):
    """The run cannot be resumed from what is on disk; the message says what is missing."""


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save(obj, handle)


def save_run_checkpoint(state: TrainState, metrics: dict[str, float], is_best: bool) -> dict[str, Path]:
    """Write last (and best) weights plus the resume state; returns the written paths (rank 0 only)."""
    weights = state.weights_dir
    weights.mkdir(parents=True, exist_ok=True)
    training = {"epoch": state.epoch + 1, "epochs": state.epochs, "metrics": metrics,
                "args": state.config.to_flat()}
    paths = {"last": save_checkpoint(state.ema.ema, weights / "last.safetensors", overwrite=True,
                                     training_args=training)}
    if is_best:
        paths["best"] = save_checkpoint(state.ema.ema, weights / "best.safetensors", overwrite=True,
                                        training_args=training)
    period = state.config.run.save_period
    if period > 0 and (state.epoch + 1) % period == 0:
        paths["periodic"] = save_checkpoint(state.ema.ema, weights / f"epoch{state.epoch + 1}.safetensors",
                                            overwrite=True, training_args=training)
    resume = {
        "format_version": STATE_FORMAT_VERSION,
        "epoch": state.epoch + 1,  # the next epoch to run
        "global_step": state.global_step,
        "last_optimiser_step": state.last_optimiser_step,
        "best_fitness": state.best_fitness,
        "model": unwrap(state.model).state_dict(),
        # Gradients still being accumulated towards the next optimiser step (accumulation spans epochs).
        "pending_gradients": {name: p.grad.detach().clone() for name, p in unwrap(state.model).named_parameters()
                              if p.grad is not None},
        "ema": state.ema.state_dict(),
        "optimiser": state.optimiser.state_dict(),
        "precision": state.precision.state_dict(),
        "config": state.config.to_flat(),
        "history": state.history,
    }
    paths["state"] = weights / "last.state.pt"
    _atomic_torch_save(resume, paths["state"])
    return paths


def load_resume_state(run_dir: Path) -> dict[str, Any]:
    """Read ``weights/last.state.pt`` of a run (tensors and plain data only)."""
    path = run_dir / "weights" / "last.state.pt"
    if not path.is_file():
        raise ResumeError(f"cannot resume: {path} does not exist (was the run started with this project/name?)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format_version") != STATE_FORMAT_VERSION:
        raise ResumeError(f"cannot resume from {path}: state format {state.get('format_version')} is not supported")
    return state


def check_resume_hyperparameters(value: str) -> None:
    """Raise :class:`ConfigError` unless ``value`` is ``"saved"`` or ``"own"``."""
    if value not in get_args(ResumeHyperparameters):
        raise ConfigError(f"resume_hyperparameters={value!r}: use 'saved' (the run's own config) or 'own' (the "
                          "config passed in)")


def resume_config(saved: dict[str, Any], config: TrainConfig, hyperparameters: ResumeHyperparameters) -> TrainConfig:
    """The config a resumed run trains with: the one in the resume state (``"saved"``) or ``config`` (``"own"``).

    ``"own"`` needs the optimiser the run was written with (its moment buffers are loaded): ``ResumeError`` else.
    """
    check_resume_hyperparameters(hyperparameters)
    if hyperparameters == "saved":
        return TrainConfig.from_overrides({**saved["config"], "resume": config.run.resume})
    written_with = saved["config"].get("optimizer")
    if written_with != config.optim.optimizer:
        raise ResumeError(f"cannot resume a run written with optimizer={written_with} under optimizer="
                          f"{config.optim.optimizer}: its optimiser state does not fit; keep optimizer={written_with} "
                          "or start a new run")
    return config


def restore(state: TrainState, saved: dict[str, Any], *, hyperparameters: ResumeHyperparameters = "saved") -> None:
    """Load a resume dict into a freshly built state (same model; the config per :func:`resume_config`).

    With ``hyperparameters="own"`` the optimiser's parameter groups keep the values ``state`` was built with
    (``initial_lr``, ``lr``, ``weight_decay``, momentum or betas...): only the per-parameter state (moments, step
    counts) comes from ``saved``; the schedule then sets each step's lr from this config's ``initial_lr``.
    """
    check_resume_hyperparameters(hyperparameters)
    own_groups = [{key: value for key, value in group.items() if key != "params"}
                  for group in state.optimiser.param_groups]
    model = unwrap(state.model)
    model.load_state_dict(saved["model"])
    pending = saved.get("pending_gradients", {})
    for name, parameter in model.named_parameters():
        parameter.grad = pending[name].to(parameter.device) if name in pending else None
    state.ema.load_state_dict(saved["ema"])
    state.optimiser.load_state_dict(saved["optimiser"])  # also loads the groups' hyper-parameters of the saved run
    if hyperparameters == "own":
        for group, own in zip(state.optimiser.param_groups, own_groups, strict=True):
            group.update(own)
    state.precision.load_state_dict(saved["precision"])
    state.epoch = int(saved["epoch"])
    state.global_step = int(saved["global_step"])
    state.last_optimiser_step = int(saved["last_optimiser_step"])
    state.best_fitness = saved["best_fitness"]
    state.history = list(saved.get("history", []))
