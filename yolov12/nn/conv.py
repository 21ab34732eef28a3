"""Convolution primitives: Conv (Conv2d + BatchNorm + SiLU), depth-wise Conv, Concat, and Conv+BN folding."""

from __future__ import annotations

import math

import torch
from torch import nn

# BatchNorm eps / momentum the layers are built with: the detection convention. The model builder then gives every
# BatchNorm its architecture's convention (``yolov12.models.architecture.BATCH_NORM_CONVENTIONS``), which for
# classifiers is PyTorch's defaults.
BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def autopad(kernel_size: int, padding: int | None = None, dilation: int = 1) -> int:
    """Return 'same' padding for an odd kernel unless ``padding`` is given explicitly."""
    if padding is not None:
        return padding
    effective = dilation * (kernel_size - 1) + 1
    return effective // 2


class Conv(nn.Module):
    """Conv2d(bias=False) -> BatchNorm2d(eps=1e-3, momentum=0.03) -> SiLU (or identity when ``act=False``).

    Shapes: (B, c1, H, W) -> (B, c2, H/s, W/s). After :meth:`fuse` the BatchNorm is folded into the conv.
    """

    def __init__(
        self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1, d: int = 1, act: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), groups=g, dilation=d, bias=False)
        self.bn: nn.BatchNorm2d | None = nn.BatchNorm2d(c2, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act: nn.Module = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the BatchNorm into the convolution (inference only; outputs are unchanged up to rounding)."""
        if self.bn is None:
            return
        self.conv = fuse_conv_and_bn(self.conv, self.bn)
        self.bn = None


class DWConv(Conv):
    """Depth-wise convolution: groups = gcd(c1, c2)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, d: int = 1, act: bool = True) -> None:
        super().__init__(c1, c2, k, s, g=math.gcd(c1, c2), d=d, act=act)


class Concat(nn.Module):
    """Concatenate a list of tensors along ``dimension`` (channels by default)."""

    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)


@torch.no_grad()
def fuse_conv_and_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a new Conv2d (with bias) equal to ``bn(conv(x))`` in eval mode."""
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
        dilation=conv.dilation, groups=conv.groups, bias=True,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_(bn.bias + (conv_bias - bn.running_mean) * scale)
    fused.requires_grad_(False)
    return fused
