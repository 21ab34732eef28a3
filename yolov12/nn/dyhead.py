"""Dynamic Head v3: a Detect-compatible head with multi-path attention, scale-aware routing and shared kernels.

Per level ``i`` (input ``x_i`` with ``ch_i`` channels):

1. stem: 1x1 Conv (BN per level) to a common width ``c``;
2. multi-path attention (modules shared across levels):
   scale-aware ``f = f * hardsigmoid(fc(mean(f)))`` (one weight per level and image),
   spatial-aware ``f = f * sigmoid(1x1(dw3x3(f)))`` (one weight per location),
   task-aware channel gates ``f_box = f * g_box``, ``f_cls = f * g_cls`` from the pooled features;
3. scale-aware routing: ``P`` shared prediction paths per task (depth-wise 3x3 with dilation 1, 2, ... then 1x1);
   a soft gate ``softmax(fc(mean(f)) + level_logits[i])`` (sums to 1) mixes their outputs;
4. shared-kernel prediction: one 1x1 box conv and one 1x1 class conv for all levels, with a learnable per-level
   scale (and per-level class bias, initialised to the stride prior).

The output contract is :class:`~yolov12.nn.heads.Detect`'s (DFL reg_max 16; training: per-level maps; eval:
(B, 4 + nc, A)), so the loss, decoding, NMS and export are unchanged; decoding is inherited from Detect.
Our design after issue 6 (not a published Dynamic Head implementation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from yolov12.nn.blocks import DFL
from yolov12.nn.conv import Conv
from yolov12.nn.heads import Detect


def _pool(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C) global average."""
    return x.mean((2, 3))


class MultiPathAttention(nn.Module):
    """Scale-, spatial- and task-aware attention: (B, c, H, W) -> (f_box, f_cls), each (B, c, H, W)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        hidden = max(c // 4, 8)
        self.scale_fc = nn.Linear(c, 1)
        self.spatial = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, 1, 1))
        self.task = nn.Sequential(nn.Linear(c, hidden), nn.SiLU(), nn.Linear(hidden, 2 * c))

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c = f.shape[:2]
        f = f * F.hardsigmoid(self.scale_fc(_pool(f))).view(b, 1, 1, 1)
        f = f * self.spatial(f).sigmoid()
        gates = self.task(_pool(f)).sigmoid().view(b, 2 * c, 1, 1)
        return f * gates[:, :c], f * gates[:, c:]


class RoutedPaths(nn.Module):
    """``paths`` shared prediction paths mixed per level by a soft gate: (B, c, H, W) -> (B, c, H, W)."""

    def __init__(self, c: int, levels: int, paths: int = 2) -> None:
        super().__init__()
        self.paths = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, c, 3, padding=d, dilation=d, groups=c), nn.Conv2d(c, c, 1), nn.SiLU())
            for d in range(1, paths + 1)
        )
        self.gate_fc = nn.Linear(c, paths)
        self.level_logits = nn.Parameter(torch.zeros(levels, paths))

    def gates(self, f: torch.Tensor, level: int) -> torch.Tensor:
        """(B, paths) mixing weights for level ``level``: non-negative, summing to 1."""
        return (self.gate_fc(_pool(f)) + self.level_logits[level]).softmax(1)

    def forward(self, f: torch.Tensor, level: int) -> torch.Tensor:
        g = self.gates(f, level)
        out = self.paths[0](f) * g[:, 0].view(-1, 1, 1, 1)
        for p in range(1, len(self.paths)):
            out = out + self.paths[p](f) * g[:, p].view(-1, 1, 1, 1)
        return out


class DyHeadV3(Detect):
    """Dynamic Head v3 with the Detect contract.

    Args:
        nc: classes; ch: input channels per level; legacy: accepted for the builder (ignored); reg_max: DFL bins;
        paths: routed prediction paths per task.
    """

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), legacy: bool = False, reg_max: int = 16,
                 paths: int = 2) -> None:
        nn.Module.__init__(self)  # Detect's branches are replaced; its attributes are set here
        self.nc, self.nl, self.reg_max, self.legacy = nc, len(ch), reg_max, False
        self.no = nc + reg_max * 4
        self.register_buffer("stride", torch.zeros(self.nl), persistent=False)
        c = max(ch[0], 4 * reg_max)
        self.stems = nn.ModuleList(Conv(x, c, 1) for x in ch)
        self.attention = MultiPathAttention(c)
        self.box_paths = RoutedPaths(c, self.nl, paths)
        self.cls_paths = RoutedPaths(c, self.nl, paths)
        self.box_pred = nn.Conv2d(c, 4 * reg_max, 1)
        self.cls_pred = nn.Conv2d(c, nc, 1)
        self.box_scale = nn.Parameter(torch.ones(self.nl))
        self.cls_scale = nn.Parameter(torch.ones(self.nl))
        self.cls_bias = nn.Parameter(torch.zeros(self.nl))
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        self._anchor_cache = None

    def forward_maps(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-level raw maps (B, 4*reg_max + nc, H_i, W_i)."""
        maps = []
        for i, x in enumerate(features):
            f_box, f_cls = self.attention(self.stems[i](x))
            box = self.box_pred(self.box_paths(f_box, i)) * self.box_scale[i]
            cls = self.cls_pred(self.cls_paths(f_cls, i)) * self.cls_scale[i] + self.cls_bias[i]
            maps.append(torch.cat((box, cls), 1))
        return maps

    @torch.no_grad()
    def initialize_biases(self, reference_size: int = 640) -> None:
        """Box bias 1.0; per-level class bias log(5 / nc / (640 / stride)^2), as Detect."""
        self.box_pred.bias.data[:] = 1.0
        self.cls_pred.bias.data[:] = 0.0
        for i, stride in enumerate(self.stride.tolist()):
            self.cls_bias.data[i] = math.log(5 / self.nc / (reference_size / stride) ** 2)
