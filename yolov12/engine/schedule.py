"""Per-iteration learning rate, momentum and gradient accumulation: a warm-up ramp, then per-epoch linear or cosine
decay. The recipe is the current Ultralytics one (8.4): warm-up lasts ``warmup_epochs`` epochs (no 100-batch floor,
which on small datasets stretched warm-up over most of the run) but never into the last epoch, and accumulation
ramps from 1 batch to ``round(nbs / batch)`` during warm-up."""

from __future__ import annotations

import numpy as np
import torch

from yolov12.config.train import OptimSection
from yolov12.engine.optim import lr_factor

BIAS_GROUP = 2  # index of the bias parameter group (see build_optimiser)


def warmup_steps(config: OptimSection, batches_per_epoch: int, epochs: int) -> int:
    """Warm-up iterations: ``warmup_epochs`` epochs, at most ``epochs - 1`` of them (0 when warm-up is off)."""
    warmup_epochs = min(config.warmup_epochs, max(epochs - 1, 0))
    return round(warmup_epochs * batches_per_epoch) if warmup_epochs > 0 else 0


def accumulation_at(step: int, warmup: int, accumulate: int) -> int:
    """Batches per optimiser step at iteration ``step``: from 1 up to ``accumulate`` over the warm-up."""
    if warmup and step <= warmup:
        return max(1, int(np.round(np.interp(step, [0, warmup], [1, accumulate]))))
    return accumulate


def apply_schedule(optimiser: torch.optim.Optimizer, config: OptimSection, step: int, epoch: int, epochs: int,
                   warmup: int, base_momentum: float) -> None:
    """Set each group's lr (and momentum during warm-up) for iteration ``step`` of epoch ``epoch``.

    During warm-up the bias lr falls from ``warmup_bias_lr`` and the other groups rise from 0 to the scheduled lr,
    and momentum rises from ``warmup_momentum``; afterwards lr = initial_lr x factor(epoch).
    """
    factor = lr_factor(epoch, epochs, config.lrf, config.cos_lr)
    for index, group in enumerate(optimiser.param_groups):
        target = group["initial_lr"] * factor
        momentum = base_momentum
        if step < warmup:
            start = config.warmup_bias_lr if index == BIAS_GROUP else 0.0
            target = float(np.interp(step, [0, warmup], [start, target]))
            momentum = float(np.interp(step, [0, warmup], [config.warmup_momentum, base_momentum]))
        group["lr"] = target
        if "momentum" in group:
            group["momentum"] = momentum
        elif "betas" in group:
            group["betas"] = (momentum, group["betas"][1])
