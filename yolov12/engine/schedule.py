"""Per-iteration learning-rate and momentum: warm-up ramp, then a per-epoch linear or cosine decay."""

from __future__ import annotations

import numpy as np
import torch

from yolov12.config.train import OptimSection
from yolov12.engine.optim import lr_factor

MIN_WARMUP_STEPS = 100
BIAS_GROUP = 2  # index of the bias parameter group (see build_optimiser)


def warmup_steps(config: OptimSection, batches_per_epoch: int) -> int:
    """Number of warm-up iterations: ``warmup_epochs`` epochs but at least 100 batches (0 when warm-up is off)."""
    if config.warmup_epochs <= 0:
        return 0
    return max(round(config.warmup_epochs * batches_per_epoch), MIN_WARMUP_STEPS)


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
