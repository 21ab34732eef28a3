"""YOLO11 position-sensitive attention: Attention, PSABlock and C2PSA."""

from __future__ import annotations

import torch
from torch import nn

from yolov12.nn.attention_kernels import attention
from yolov12.nn.conv import Conv


class PositionSensitiveAttention(nn.Module):
    """Global multi-head self-attention with key dim ``head_dim * attn_ratio`` and a 3x3 depth-wise position term.

    Shapes: (B, C, H, W) -> (B, C, H, W). Checkpoint names: ``qkv``, ``proj``, ``pe``.
    """

    def __init__(self, dim: int, num_heads: int = 8, attn_ratio: float = 0.5) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.qkv = Conv(dim, dim + self.key_dim * num_heads * 2, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(x).view(b, self.num_heads, self.key_dim * 2 + self.head_dim, h * w)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.head_dim], dim=2)  # (B, heads, d, N)
        # Keys are narrower than values here; scale is key_dim**-0.5 as with SDPA's default.
        out = attention(q.transpose(-2, -1), k.transpose(-2, -1), v.transpose(-2, -1), "sdpa")  # (B, heads, N, dv)
        out = out.transpose(-2, -1).reshape(b, c, h, w)
        return self.proj(out + self.pe(v.reshape(b, c, h, w)))


class PSABlock(nn.Module):
    """``x + attn(x)`` then ``x + ffn(x)`` (2x expansion 1x1-conv feed-forward)."""

    def __init__(self, c: int, attn_ratio: float = 0.5, num_heads: int = 4, shortcut: bool = True) -> None:
        super().__init__()
        self.attn = PositionSensitiveAttention(c, attn_ratio=attn_ratio, num_heads=num_heads)
        self.ffn = nn.Sequential(Conv(c, c * 2, 1), Conv(c * 2, c, 1, act=False))
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x) if self.add else self.attn(x)
        return x + self.ffn(x) if self.add else self.ffn(x)


class C2PSA(nn.Module):
    """CSP block whose second half runs ``n`` PSABlocks (YOLO11 layer 10). Requires c1 == c2."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5) -> None:
        super().__init__()
        if c1 != c2:
            raise ValueError(f"C2PSA needs equal input and output channels, got {c1} and {c2}")
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, attn_ratio=0.5, num_heads=self.c // 64) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))
