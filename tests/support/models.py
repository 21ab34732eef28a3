"""Model helpers shared by the test packages."""

from __future__ import annotations

import torch
from torch import nn


def perturb_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics (seeded), so that a wrong layer mapping or a dropped layer changes
    the outputs; returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) * 0.4 + 0.8)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.05)
    return model.eval()
