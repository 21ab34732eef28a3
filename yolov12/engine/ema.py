"""EMA v2: exponential moving average of the weights with a warm-up ramp on the decay."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel / DataParallel wrappers."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


class ModelEMA:
    """Keeps ``ema = d * ema + (1 - d) * model`` after every optimiser step, d = decay * (1 - exp(-updates / tau)).

    The ramp makes early averages follow the fast-moving weights. Floating-point parameters *and* buffers are
    averaged (BatchNorm running statistics included); integer buffers are copied. The EMA copy is what is validated,
    saved and exported.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0) -> None:
        self.ema = copy.deepcopy(unwrap(model)).eval()
        self.ema.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = updates

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average (call after each optimiser step)."""
        self.updates += 1
        d = self.current_decay()
        source = unwrap(model).state_dict()
        for key, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[key].detach().to(value.dtype), alpha=1 - d)
            else:
                value.copy_(source[key])

    def state_dict(self) -> dict:
        return {"ema": self.ema.state_dict(), "updates": self.updates, "decay": self.decay, "tau": self.tau}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["ema"])
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])
        self.tau = float(state["tau"])
