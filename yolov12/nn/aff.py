"""Adaptive Feature Fusion (AFF): a drop-in replacement for the neck's Upsample/Conv + Concat fusion nodes.

A fusion node receives feature maps from several pyramid levels and

1. resizes each to the node's scale ("dynamic resizing"): a strided 3x3 Conv per halving for finer inputs; a 1x1
   projection, nearest up-sampling, a fixed depth-wise Gaussian smoothing (sigma configurable) and a light
   depth-wise 3x3 alignment conv for coarser inputs; a 1x1 projection (or nothing) for inputs already at scale;
2. fuses them with learnable non-negative weights normalised to sum to one ("fast normalised fusion",
   w_i = (relu(p_i) + eps) / sum_j (relu(p_j) + eps)).

The A2C2f / C3k2 block of the neck row follows as the next YAML row. YAML row::

    [[8, 6], 1, AFFusion, [512, [2, 1]]]   # c2 (scaled by width), each input's stride relative to the node

Our own definitions; not taken from any published AFF implementation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from yolov12.nn.conv import Conv, DWConv

FUSION_EPS = 1e-4


def gaussian_kernel(sigma: float, radius: int | None = None) -> torch.Tensor:
    """(k, k) 2-D Gaussian with ``k = 2 * radius + 1`` (radius ``ceil(2 sigma)`` by default), summing to 1."""
    if sigma <= 0:
        raise ValueError(f"Gaussian sigma must be > 0, got {sigma}")
    radius = max(1, math.ceil(2 * sigma)) if radius is None else radius
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = torch.outer(g, g)
    return (kernel / kernel.sum()).float()


class GaussianSmooth(nn.Module):
    """Fixed depth-wise Gaussian blur (replicate padding), shape-preserving: (B, C, H, W) -> (B, C, H, W).

    The kernel is a non-trainable buffer rebuilt from ``sigma`` (not stored in checkpoints).
    """

    def __init__(self, channels: int, sigma: float = 1.0) -> None:
        super().__init__()
        self.channels = channels
        self.sigma = float(sigma)
        kernel = gaussian_kernel(self.sigma)
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).clone(), persistent=False)
        self.pad = kernel.shape[-1] // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad,) * 4, mode="replicate")
        return F.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)


def _levels(relative_stride: float) -> int:
    """Relative stride 2**k -> k (raises for anything that is not a power of two)."""
    k = math.log2(float(relative_stride)) if relative_stride > 0 else float("nan")
    if not math.isfinite(k) or abs(k - round(k)) > 1e-6:
        raise ValueError(f"AFFusion relative stride must be a power of two (0.25, 0.5, 1, 2, 4), got {relative_stride}")
    return round(k)


def resize_branch(c1: int, c2: int, relative_stride: float, sigma: float) -> nn.Module:
    """The path that brings one input (``c1`` channels, stride ``relative_stride`` x the node's) to (c2, node scale)."""
    k = _levels(relative_stride)
    if k < 0:  # finer input: one strided 3x3 Conv per halving
        return nn.Sequential(*(Conv(c1 if i == 0 else c2, c2, 3, 2) for i in range(-k)))
    project = Conv(c1, c2, 1) if c1 != c2 else nn.Identity()
    if k == 0:
        return project
    return nn.Sequential(project, nn.Upsample(scale_factor=2**k, mode="nearest"), GaussianSmooth(c2, sigma),
                         DWConv(c2, c2, 3, act=False))


class AFFusion(nn.Module):
    """Fast normalised fusion of resized inputs.

    Args:
        c1: channels of each input (filled in by the model builder).
        c2: output channels.
        relative_strides: per input, its stride divided by the node's stride (2 = one level coarser, 0.5 = finer).
        sigma: standard deviation (pixels at the node's scale) of the smoothing applied to up-sampled inputs.

    Shapes: list of (B, c1_i, H_i, W_i) -> (B, c2, H, W) with (H, W) the node's scale.
    """

    def __init__(self, c1: Sequence[int], c2: int, relative_strides: Sequence[float] = (), sigma: float = 1.0) -> None:
        super().__init__()
        c1 = tuple(c1)
        relative_strides = tuple(relative_strides) or (1.0,) * len(c1)
        if len(relative_strides) != len(c1):
            raise ValueError(f"AFFusion has {len(c1)} inputs but {len(relative_strides)} relative strides "
                             f"{list(relative_strides)}; give one per input")
        self.relative_strides = relative_strides
        self.resize = nn.ModuleList(resize_branch(c, c2, r, sigma) for c, r in zip(c1, relative_strides))
        self.weight = nn.Parameter(torch.ones(len(c1)))

    def fusion_weights(self) -> torch.Tensor:
        """(n,) non-negative weights that sum to one."""
        w = F.relu(self.weight) + FUSION_EPS
        return w / w.sum()

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        w = self.fusion_weights().to(x[0].dtype)
        resized = [branch(t) for branch, t in zip(self.resize, x)]
        out = resized[0] * w[0]
        for i in range(1, len(resized)):
            out = out + resized[i] * w[i]
        return out
