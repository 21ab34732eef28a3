"""YOLOv12 area attention, ABlock and A2C2f (R-ELAN), in the paper (v1.0) and turbo layouts.

Area attention splits the row-major token sequence of an (H, W) map into ``area`` equal horizontal stripes and
runs multi-head self-attention (head dim 32) inside each stripe.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from yolov12.nn.attention_kernels import AttentionBackend, attention
from yolov12.nn.blocks import C3k
from yolov12.nn.conv import Conv

AttentionLayout = Literal["v1.0", "turbo"]
ATTENTION_HEAD_DIM = 32


class AreaAttention(nn.Module):
    """Multi-head self-attention within ``area`` stripes of the feature map, plus a depth-wise position term.

    Layout ``"v1.0"`` (paper, Ultralytics YOLO12): one 1x1 ``qkv`` conv C->3C with channels per head [q k v],
    position term = 7x7 depth-wise conv on v. Layout ``"turbo"``: ``qk`` conv C->2C (all q, then all k) and ``v``
    conv C->C, position term = 5x5 depth-wise conv on v. Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, dim: int, num_heads: int, area: int = 1, layout: AttentionLayout = "v1.0") -> None:
        super().__init__()
        self.area = area
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.layout = layout
        self.backend: AttentionBackend = "auto"
        inner = self.head_dim * num_heads
        if layout == "v1.0":
            self.qkv = Conv(dim, inner * 3, 1, act=False)
            self.pe = Conv(inner, dim, 7, 1, 3, g=dim, act=False)
        elif layout == "turbo":
            self.qk = Conv(dim, inner * 2, 1, act=False)
            self.v = Conv(dim, inner, 1, act=False)
            self.pe = Conv(inner, dim, 5, 1, 2, g=dim, act=False)
        else:
            raise ValueError(f"unknown area-attention layout '{layout}'; use 'v1.0' or 'turbo'")
        self.proj = Conv(inner, dim, 1, act=False)
        # pe and proj read channels-last views of the attention's tensors (the permute in forward, no copy), so their
        # weight gradients come back channels-last. A parameter with other strides than its gradient costs DDP a copy
        # per step ("Grad strides do not match bucket view strides"). Both weights have one input channel per group
        # or a 1x1 kernel: channels-last is the same memory, only the strides change.
        for conv in (self.pe.conv, self.proj.conv):
            conv.weight.data = conv.weight.data.to(memory_format=torch.channels_last)

    def _to_heads(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B*area, N/area, C) -> (B*area, heads, N/area, head_dim)."""
        b, n, _ = tokens.shape
        return tokens.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def _split_areas(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N, C') -> (B*area, N/area, C'): stripes of consecutive row-major tokens."""
        b, n, c = tokens.shape
        if self.area <= 1:
            return tokens
        if n % self.area:
            raise ValueError(
                f"area attention cannot split {n} tokens into {self.area} equal areas; "
                "use an image size that is a multiple of 32"
            )
        return tokens.reshape(b * self.area, n // self.area, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.layout == "v1.0":
            qkv = self._split_areas(self.qkv(x).flatten(2).transpose(1, 2))
            bb, n, _ = qkv.shape
            q, k, v = qkv.view(bb, n, self.num_heads, 3 * self.head_dim).split(self.head_dim, dim=3)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            v_image = v.transpose(1, 2).reshape(b, h, w, c).permute(0, 3, 1, 2)
            position = self.pe(v_image)
        else:
            v_image = self.v(x)
            position = self.pe(v_image)
            qk = self._split_areas(self.qk(x).flatten(2).transpose(1, 2))
            q, k = (self._to_heads(t) for t in qk.split(c, dim=2))
            v = self._to_heads(self._split_areas(v_image.flatten(2).transpose(1, 2)))
        out = attention(q, k, v, self.backend)  # (B*area, heads, N/area, head_dim)
        out = out.transpose(1, 2).reshape(b, h, w, c).permute(0, 3, 1, 2)
        return self.proj(out + position)


class ABlock(nn.Module):
    """Area-attention block: ``x + attn(x)`` then ``x + mlp(x)`` with a 1x1-conv MLP of ratio ``mlp_ratio``."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: float = 1.2, area: int = 1, layout: AttentionLayout = "v1.0"
    ) -> None:
        super().__init__()
        self.attn = AreaAttention(dim, num_heads=num_heads, area=area, layout=layout)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(Conv(dim, hidden, 1), Conv(hidden, dim, 1, act=False))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.constant_(module.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class A2C2f(nn.Module):
    """R-ELAN: residual efficient layer aggregation with area-attention (``a2``) or C3k inner blocks.

    y0 = cv1(x); y_i = m_i(y_{i-1}); z = cv2(cat(y0..yn)); returns ``x + gamma * z`` when ``a2 and residual``.
    Hidden width c_ = c2*e must be a multiple of 32 (heads of 32 channels).
    """

    def __init__(
        self,
        c1: int,
        c2: int,
        n: int = 1,
        a2: bool = True,
        area: int = 1,
        residual: bool = False,
        mlp_ratio: float = 2.0,
        e: float = 0.5,
        g: int = 1,
        shortcut: bool = True,
        layout: AttentionLayout = "v1.0",
    ) -> None:
        super().__init__()
        hidden = int(c2 * e)
        if hidden % ATTENTION_HEAD_DIM:
            raise ValueError(f"A2C2f hidden width {hidden} (c2={c2} x e={e}) must be a multiple of 32")
        num_heads = hidden // ATTENTION_HEAD_DIM
        self.cv1 = Conv(c1, hidden, 1, 1)
        self.cv2 = Conv((1 + n) * hidden, c2, 1)
        self.gamma = nn.Parameter(0.01 * torch.ones(c2)) if a2 and residual else None
        self.m = nn.ModuleList(
            nn.Sequential(*(ABlock(hidden, num_heads, mlp_ratio, area, layout) for _ in range(2)))
            if a2
            else C3k(hidden, hidden, 2, shortcut, g)
            for _ in range(n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for block in self.m:
            y.append(block(y[-1]))
        z = self.cv2(torch.cat(y, 1))
        if self.gamma is not None:
            return x + self.gamma.view(1, -1, 1, 1) * z
        return z
