"""Operation counts: parameters and GFLOPs of a model, the way published YOLO tables count them.

Convention (as in the YOLO papers and Ultralytics' tables): multiply-accumulates of Conv2d and Linear layers of the
Conv+BN-fused model, times two; activations, pooling, upsampling, element-wise ops and (by default) the attention
matmuls are not counted. ``include_attention=True`` adds the QK^T and AV matmuls of every attention layer.

``extrapolate_from=32`` reproduces how the published tables were produced (Ultralytics' ``get_flops``): count at a
32x32 input and scale by (size / 32)^2. That is exact for convolutions but multiplies the classifier's Linear layer
by (224 / 32)^2 = 49, which is why the published YOLOv12-cls GFLOPs are ~0.12 higher than the true count.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from yolov12.nn.attention_kernels import count_attention_macs


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those that require gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _layer_macs(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        cin = inputs[0].shape[1]
        kh, kw = module.kernel_size
        return output.numel() * (cin // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


@torch.no_grad()
def count_gflops(
    model: nn.Module, image_size: int | tuple[int, int] = 640, input_channels: int = 3,
    include_attention: bool = False, fuse: bool = True, extrapolate_from: int | None = None,
) -> float:
    """GFLOPs (2 x MACs / 1e9) of one forward pass at batch 1 on a copy of ``model`` (fused first by default)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    if extrapolate_from:
        small = count_gflops(model, extrapolate_from, input_channels, include_attention, fuse)
        return small * (h / extrapolate_from) * (w / extrapolate_from)
    probe = copy.deepcopy(model).float().cpu().eval()
    if fuse and hasattr(probe, "fuse"):
        probe.fuse()
    total = [0]

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        total[0] += _layer_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in probe.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        x = torch.zeros(1, input_channels, h, w)
        if include_attention:
            with count_attention_macs(lambda macs: total.__setitem__(0, total[0] + macs)):
                probe(x)
        else:
            probe(x)
    finally:
        for handle in handles:
            handle.remove()
    return 2 * total[0] / 1e9
