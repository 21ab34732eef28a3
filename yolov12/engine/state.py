"""The mutable state of one training run, shared by the loop, callbacks and checkpointing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yolov12.config.train import TrainConfig
from yolov12.engine.ema import ModelEMA
from yolov12.engine.precision import MixedPrecision


@dataclass
class TrainState:
    """Everything the loop needs; ``model`` may be DDP-wrapped, ``ema.ema`` is what gets validated and saved."""

    config: TrainConfig
    model: nn.Module
    ema: ModelEMA
    optimiser: torch.optim.Optimizer
    precision: MixedPrecision
    loss_fn: Any
    device: torch.device
    run_dir: Path
    accumulate: int
    batches_per_epoch: int
    warmup_steps: int
    epochs: int
    epoch: int = 0
    global_step: int = 0  # batches seen since the start of the run
    last_optimiser_step: int = 0
    base_momentum: float = 0.937
    best_fitness: float | None = None
    rank: int = 0
    world_size: int = 1
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    @property
    def weights_dir(self) -> Path:
        return self.run_dir / "weights"
