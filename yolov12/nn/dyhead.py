"""Dynamic Head v3: a Detect-compatible head with multi-path attention, scale-aware routing and shared kernels.

Per level ``i`` (input ``x_i`` with ``ch_i`` channels), with common width ``c``:

1. stem: 1x1 Conv (BN per level) to ``c``;
2. multi-path attention (modules shared across levels), every gate ``2 * sigmoid(.)`` so that it starts at 1:
   scale-aware (one weight per level and image, from the pooled features), spatial-aware (one weight per location,
   depth-wise 3x3 then 1x1), task-aware channel gates that split the features into a box and a class path;
3. one tower per task: ``depth`` full 3x3 convolutions whose kernels all levels share, each followed by a
   BatchNorm of the level's own and SiLU (statistics differ by scale, so normalisation is not shared);
4. scale-aware routing, per task: ``P`` shared paths (depth-wise 3x3 with dilation 1, 2, ... then 1x1, BN per
   level, SiLU) mixed by a soft gate ``softmax(fc(mean(f)) + level_logits[i])`` (sums to 1) and added to ``f``
   (residual);
5. shared-kernel prediction: one 1x1 box conv and one 1x1 class conv for all levels, with a learnable per-level
   scale (and per-level class bias, initialised to the stride prior).

The output contract is :class:`~yolov12.nn.heads.Detect`'s (DFL reg_max 16; training: per-level maps; eval:
(B, 4 + nc, A)), so the loss, decoding, NMS and export are unchanged; decoding is inherited from Detect.
Our own design (not a published Dynamic Head implementation). The first version (1x1 stem, one
depth-wise path, no normalisation, gates starting at ~1/2 each) learned far more slowly than Detect; the towers,
the per-level BatchNorms, the residual routing and the gates starting at 1 are what changed. One tower shared by
both tasks learned boxes as well as Detect but classes worse (docs/benchmarks.md), hence a tower per task, as
Detect keeps its box and class branches apart.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from yolov12.nn.blocks import DFL
from yolov12.nn.conv import BN_EPS, BN_MOMENTUM, Conv, fuse_conv_and_bn
from yolov12.nn.heads import Detect

GATE_INIT_STD = 0.01  # last layer of every gate: small, not zero, so that gradients reach the layers before it


def _pool(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C) global average."""
    return x.mean((2, 3))


def _gate(logits: torch.Tensor) -> torch.Tensor:
    """Gate in (0, 2), exactly 1 at logit 0: features pass unchanged at initialisation."""
    return 2.0 * logits.sigmoid()


def _init_gate_layer(layer: nn.Conv2d | nn.Linear) -> None:
    nn.init.normal_(layer.weight, std=GATE_INIT_STD)
    nn.init.zeros_(layer.bias)


class SharedConvLevelNorm(nn.Module):
    """A Conv2d whose kernel all levels share, then a BatchNorm per level: (B, c1, H, W) -> (B, c2, H, W).

    :meth:`fuse` folds each level's BatchNorm into its own copy of the kernel (inference only).
    """

    def __init__(self, conv: nn.Conv2d, levels: int) -> None:
        super().__init__()
        self.conv: nn.Conv2d | None = conv
        self.norms: nn.ModuleList | None = nn.ModuleList(
            nn.BatchNorm2d(conv.out_channels, eps=BN_EPS, momentum=BN_MOMENTUM) for _ in range(levels))
        self.fused: nn.ModuleList | None = None

    def forward(self, x: torch.Tensor, level: int) -> torch.Tensor:
        if self.fused is not None:
            return self.fused[level](x)
        return self.norms[level](self.conv(x))

    @torch.no_grad()
    def fuse(self) -> None:
        """One folded Conv2d per level; outputs are unchanged up to rounding."""
        if self.fused is not None:
            return
        self.fused = nn.ModuleList(fuse_conv_and_bn(self.conv, norm) for norm in self.norms)
        self.conv = self.norms = None


class SharedTower(nn.Module):
    """``depth`` 3x3 convolutions shared by all levels, BatchNorm per level, SiLU: (B, c, H, W) -> (B, c, H, W)."""

    def __init__(self, c: int, levels: int, depth: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            SharedConvLevelNorm(nn.Conv2d(c, c, 3, padding=1, bias=False), levels) for _ in range(depth))
        self.act = nn.SiLU()

    def forward(self, f: torch.Tensor, level: int) -> torch.Tensor:
        for layer in self.layers:
            f = self.act(layer(f, level))
        return f


class MultiPathAttention(nn.Module):
    """Scale-, spatial- and task-aware attention: (B, c, H, W) -> (f_box, f_cls), each (B, c, H, W).

    Every gate lies in (0, 2) and is ~1 at initialisation.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        hidden = max(c // 4, 8)
        self.scale_fc = nn.Linear(c, 1)
        self.spatial = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, 1, 1))
        self.task = nn.Sequential(nn.Linear(c, hidden), nn.SiLU(), nn.Linear(hidden, 2 * c))
        for layer in (self.scale_fc, self.spatial[-1], self.task[-1]):
            _init_gate_layer(layer)

    def gates(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three gates for ``f``: scale (B, 1, 1, 1), spatial (B, 1, H, W), task (B, 2c, 1, 1)."""
        b, c = f.shape[:2]
        scale = _gate(self.scale_fc(_pool(f))).view(b, 1, 1, 1)
        f = f * scale
        spatial = _gate(self.spatial(f))
        task = _gate(self.task(_pool(f * spatial))).view(b, 2 * c, 1, 1)
        return {"scale": scale, "spatial": spatial, "task": task}

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = f.shape[1]
        g = self.gates(f)
        f = f * g["scale"] * g["spatial"]
        return f * g["task"][:, :c], f * g["task"][:, c:]


class RoutedPaths(nn.Module):
    """``paths`` shared paths mixed per level by a soft gate, added to the input: (B, c, H, W) -> (B, c, H, W)."""

    def __init__(self, c: int, levels: int, paths: int = 2) -> None:
        super().__init__()
        self.spatial = nn.ModuleList(
            nn.Conv2d(c, c, 3, padding=d, dilation=d, groups=c, bias=False) for d in range(1, paths + 1))
        self.pointwise = nn.ModuleList(
            SharedConvLevelNorm(nn.Conv2d(c, c, 1, bias=False), levels) for _ in range(paths))
        self.act = nn.SiLU()
        self.gate_fc = nn.Linear(c, paths)
        _init_gate_layer(self.gate_fc)
        self.level_logits = nn.Parameter(torch.zeros(levels, paths))

    def gates(self, f: torch.Tensor, level: int) -> torch.Tensor:
        """(B, paths) mixing weights for level ``level``: non-negative, summing to 1."""
        return (self.gate_fc(_pool(f)) + self.level_logits[level]).softmax(1)

    def forward(self, f: torch.Tensor, level: int) -> torch.Tensor:
        g = self.gates(f, level)
        out = f
        for p, (spatial, pointwise) in enumerate(zip(self.spatial, self.pointwise)):
            out = out + self.act(pointwise(spatial(f), level)) * g[:, p].view(-1, 1, 1, 1)
        return out


class DyHeadV3(Detect):
    """Dynamic Head v3 with the Detect contract.

    Args:
        nc: classes; ch: input channels per level; legacy: accepted for the builder (ignored); reg_max: DFL bins;
        paths: routed prediction paths per task; depth: 3x3 convolutions in each task's tower.
    """

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), legacy: bool = False, reg_max: int = 16,
                 paths: int = 2, depth: int = 2) -> None:
        nn.Module.__init__(self)  # Detect's branches are replaced; its attributes are set here
        self.nc, self.nl, self.reg_max, self.legacy = nc, len(ch), reg_max, False
        self.no = nc + reg_max * 4
        self.register_buffer("stride", torch.zeros(self.nl), persistent=False)
        c = max(ch[0], 4 * reg_max)
        self.stems = nn.ModuleList(Conv(x, c, 1) for x in ch)
        self.attention = MultiPathAttention(c)
        self.box_tower = SharedTower(c, self.nl, depth)
        self.cls_tower = SharedTower(c, self.nl, depth)
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
            f_box, f_cls = self.box_tower(f_box, i), self.cls_tower(f_cls, i)
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
