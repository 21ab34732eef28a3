"""Optimiser construction: parameter groups without weight decay on norms and biases, ``auto`` choice, nbs scaling."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import nn

from yolov12.config.train import OptimSection

logger = logging.getLogger(__name__)

AUTO_SGD_MIN_ITERATIONS = 10_000


@dataclass(frozen=True)
class OptimiserPlan:
    """What was decided: optimiser name, base lr and momentum, gradient accumulation and effective weight decay."""

    name: str
    lr: float
    momentum: float
    accumulate: int
    weight_decay: float


def plan_optimiser(config: OptimSection, batch_size: int, iterations: int, num_classes: int) -> OptimiserPlan:
    """Resolve ``auto`` and the nominal-batch-size rules.

    - ``accumulate = max(round(nbs / batch), 1)`` optimiser steps are merged, so small batches behave like ``nbs``.
    - weight decay is scaled by ``batch * accumulate / nbs``.
    - ``auto``: SGD(lr0) for long schedules (> 10k iterations), else AdamW with lr = 0.002 * 5 / (4 + nc), momentum
      0.9 (the published heuristic), so short fine-tunes converge. When ``lr0`` (or ``momentum``) was given
      explicitly (``config.model_fields_set``) and ``auto`` replaced it, a warning says so and how to keep it.
    """
    accumulate = max(round(config.nbs / batch_size), 1)
    weight_decay = config.weight_decay * batch_size * accumulate / config.nbs
    name, lr, momentum = config.optimizer, config.lr0, config.momentum
    if name == "auto":
        if iterations > AUTO_SGD_MIN_ITERATIONS:
            name = "SGD"
        else:
            name, lr, momentum = "AdamW", round(0.002 * 5 / (4 + num_classes), 6), 0.9
        logger.info("optimizer=auto chose %s(lr=%s, momentum=%s) for %d iterations", name, lr, momentum, iterations)
        ignored = [f"{key}={getattr(config, key)}" for key, used in (("lr0", lr), ("momentum", momentum))
                   if key in config.model_fields_set and getattr(config, key) != used]
        if ignored:
            logger.warning("optimizer=auto chose %s(lr=%s, momentum=%s) and ignored %s; pass optimizer=SGD (or AdamW) "
                           "to use %s", name, lr, momentum, " and ".join(ignored),
                           " and ".join(item.split("=")[0] for item in ignored))
    return OptimiserPlan(name, lr, momentum, accumulate, weight_decay)


def parameter_groups(model: nn.Module) -> tuple[list, list, list]:
    """(weights with decay, norm weights without decay, biases without decay)."""
    decay, no_decay, biases = [], [], []
    norm_types = tuple(v for k, v in vars(nn).items() if "Norm" in k and isinstance(v, type))
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if name == "bias":
                biases.append(param)
            elif isinstance(module, norm_types) or param.ndim <= 1:
                no_decay.append(param)  # norm scales and layer-scale gammas
            else:
                decay.append(param)
    return decay, no_decay, biases


OPTIMISER_FACTORIES = {
    "SGD": lambda groups, lr, momentum: torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True),
    "Adam": lambda groups, lr, momentum: torch.optim.Adam(groups, lr=lr, betas=(momentum, 0.999)),
    "AdamW": lambda groups, lr, momentum: torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999), weight_decay=0.0),
}


def build_optimiser(model: nn.Module, plan: OptimiserPlan) -> torch.optim.Optimizer:
    """Three groups (0: norm weights, 1: weights with decay, 2: biases); each remembers its ``initial_lr``."""
    decay, no_decay, biases = parameter_groups(model)
    groups = [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": plan.weight_decay},
        {"params": biases, "weight_decay": 0.0},
    ]
    optimiser = OPTIMISER_FACTORIES[plan.name](groups, plan.lr, plan.momentum)
    for group in optimiser.param_groups:
        group["initial_lr"] = plan.lr
    return optimiser


def lr_factor(epoch: float, epochs: int, lrf: float, cosine: bool) -> float:
    """Multiplier of the base lr at (fractional) ``epoch``: linear or cosine from 1 to ``lrf``."""
    progress = min(max(epoch / epochs, 0.0), 1.0)
    if cosine:
        return ((1 - math.cos(progress * math.pi)) / 2) * (lrf - 1) + 1
    return (1 - progress) * (1.0 - lrf) + lrf
