"""Prediction heads: anchor-free decoupled Detect (DFL boxes) and Classify."""

from __future__ import annotations

import math

import torch
from torch import nn

from yolov12.nn.blocks import DFL
from yolov12.nn.conv import Conv, DWConv


def make_anchors(
    features: list[torch.Tensor], strides: torch.Tensor, offset: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor points at cell centres and their strides.

    Returns (A, 2) points in feature-cell units (x, y) and (A, 1) strides, levels concatenated in order.
    """
    points, stride_column = [], []
    dtype, device = features[0].dtype, features[0].device
    for feature, stride in zip(features, strides):
        _, _, h, w = feature.shape
        # arange in float32, then cast: the ONNX exporter cannot build a float16 Range (fp16 exports)
        sx = (torch.arange(w, device=device, dtype=torch.float32) + offset).to(dtype)
        sy = (torch.arange(h, device=device, dtype=torch.float32) + offset).to(dtype)
        grid_y, grid_x = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((grid_x, grid_y), -1).view(-1, 2))
        stride_column.append(torch.full((h * w, 1), float(stride), dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_column)


def dist2bbox(distance: torch.Tensor, anchor_points: torch.Tensor, cxcywh: bool = True, dim: int = -1) -> torch.Tensor:
    """Distances (left, top, right, bottom) from anchor points -> boxes (cx, cy, w, h) or (x1, y1, x2, y2)."""
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if cxcywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)
    return torch.cat((x1y1, x2y2), dim)


class Detect(nn.Module):
    """Decoupled anchor-free detection head with DFL box regression (reg_max 16).

    ``legacy=True`` is the YOLOv8 class branch (two 3x3 Convs); otherwise the YOLO11/YOLOv12 branch with depth-wise
    convolutions. Training returns the per-level maps [(B, 4*reg_max + nc, H_i, W_i)]; evaluation returns decoded
    predictions (B, 4 + nc, A): boxes (cx, cy, w, h) in input pixels, then class probabilities.
    """

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (), legacy: bool = False, reg_max: int = 16) -> None:
        super().__init__()
        self.nc = nc
        self.nl = len(ch)
        self.reg_max = reg_max
        self.no = nc + reg_max * 4
        self.legacy = legacy
        self.register_buffer("stride", torch.zeros(self.nl), persistent=False)
        c2 = max(16, ch[0] // 4, reg_max * 4)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(
            nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch
        )
        if legacy:
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        else:
            self.cv3 = nn.ModuleList(
                nn.Sequential(
                    nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)),
                    nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)),
                    nn.Conv2d(c3, nc, 1),
                )
                for x in ch
            )
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
        self._anchor_cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def forward_maps(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per-level raw maps (B, 4*reg_max + nc, H_i, W_i)."""
        return [torch.cat((self.cv2[i](features[i]), self.cv3[i](features[i])), 1) for i in range(self.nl)]

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        maps = self.forward_maps(features)
        return maps if self.training else self.decode(maps)

    def anchors(self, maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchor points (2, A) and strides (1, A) for these map shapes (cached per shape outside tracing)."""
        key = tuple(m.shape[2:] for m in maps) + (maps[0].dtype, maps[0].device)
        tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()
        if tracing or self._anchor_cache is None or self._anchor_cache[0] != key:
            points, strides = (t.transpose(0, 1) for t in make_anchors(maps, self.stride, 0.5))
            if tracing:
                return points, strides
            self._anchor_cache = (key, points, strides)
        return self._anchor_cache[1], self._anchor_cache[2]

    def decode(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Raw maps -> (B, 4 + nc, A) with boxes (cx, cy, w, h) in pixels and sigmoid class scores."""
        b = maps[0].shape[0]
        flat = torch.cat([m.view(b, self.no, -1) for m in maps], 2)
        box, cls = flat.split((self.reg_max * 4, self.nc), 1)
        points, strides = self.anchors(maps)
        boxes = dist2bbox(self.dfl(box), points.unsqueeze(0), cxcywh=True, dim=1) * strides
        return torch.cat((boxes, cls.sigmoid()), 1)

    @torch.no_grad()
    def initialize_biases(self, reference_size: int = 640) -> None:
        """Box bias 1.0; class bias log(5 / nc / (640 / stride)^2) (about 5 objects per image prior)."""
        for box_branch, cls_branch, stride in zip(self.cv2, self.cv3, self.stride.tolist()):
            box_branch[-1].bias.data[:] = 1.0
            cls_branch[-1].bias.data[: self.nc] = math.log(5 / self.nc / (reference_size / stride) ** 2)


class Classify(nn.Module):
    """1x1 Conv to 1280 -> global average pool -> dropout -> linear; softmax probabilities in eval mode.

    Shapes: (B, c1, H, W) -> (B, nc).
    """

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1) -> None:
        super().__init__()
        hidden = 1280
        self.conv = Conv(c1, hidden, k, s, p, g)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(p=0.0, inplace=True)
        self.linear = nn.Linear(hidden, c2)

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        if isinstance(x, list):
            x = torch.cat(x, 1)
        logits = self.linear(self.drop(self.pool(self.conv(x)).flatten(1)))
        return logits if self.training else logits.softmax(1)
