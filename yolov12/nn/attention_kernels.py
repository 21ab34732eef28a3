"""Scaled dot-product attention kernels shared by the attention blocks.

Three interchangeable implementations of ``softmax(q k^T / sqrt(d)) v`` on tensors shaped (B, heads, N, d):

- ``"sdpa"``: :func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels on CPU and GPU; exports to ONNX).
- ``"flash"``: FlashAttention-2 (``flash_attn``), CUDA with compute capability >= 8 and fp16/bf16 only.
- ``"reference"``: plain matmul + softmax, the numerical reference used by tests.

``"auto"`` picks flash when it applies and sdpa otherwise. While a FLOP count is active, the matmuls are reported
to it, so GFLOPs can optionally include attention.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F

AttentionBackend = Literal["auto", "sdpa", "flash", "reference"]
ATTENTION_BACKENDS: tuple[str, ...] = ("auto", "sdpa", "flash", "reference")

_matmul_flop_listeners: list[Callable[[int], None]] = []


class AttentionBackendUnavailable(RuntimeError):
    """The requested attention backend cannot run on this machine or tensor."""


@contextlib.contextmanager
def count_attention_macs(listener: Callable[[int], None]) -> Iterator[None]:
    """Report the multiply-accumulates of every attention matmul run inside the block to ``listener``."""
    _matmul_flop_listeners.append(listener)
    try:
        yield
    finally:
        _matmul_flop_listeners.remove(listener)


def flash_attention_unavailable_reason(q: torch.Tensor) -> str | None:
    """Return why FlashAttention cannot run on ``q`` (None when it can)."""
    if importlib.util.find_spec("flash_attn") is None:
        return "flash_attn is not installed (pip install 'yolov12-platform[gpu]')"
    if not q.is_cuda:
        return f"FlashAttention needs a CUDA tensor, got device '{q.device}'"
    major, _ = torch.cuda.get_device_capability(q.device)
    if major < 8:
        return f"FlashAttention needs compute capability >= 8.0, this GPU has {major}.x"
    if q.dtype not in (torch.float16, torch.bfloat16):
        return f"FlashAttention needs fp16/bf16 tensors, got {q.dtype} (use half=True or autocast)"
    return None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: AttentionBackend = "auto") -> torch.Tensor:
    """Multi-head attention on (B, heads, N, d) tensors; returns (B, heads, N, d_v)."""
    if _matmul_flop_listeners:
        b, h, n, d = q.shape
        macs = b * h * n * k.shape[2] * d + b * h * n * k.shape[2] * v.shape[-1]
        for listener in _matmul_flop_listeners:
            listener(macs)
    if backend == "auto":
        exporting = torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
        use_flash = not exporting and q.is_cuda and flash_attention_unavailable_reason(q) is None
        backend = "flash" if use_flash else "sdpa"
    if backend == "sdpa":
        return F.scaled_dot_product_attention(q, k, v)
    if backend == "reference":
        return reference_attention(q, k, v)
    if backend == "flash":
        return flash_attention(q, k, v)
    raise ValueError(f"unknown attention backend '{backend}'; choose one of {ATTENTION_BACKENDS}")


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Plain softmax attention in float32, the numerical reference."""
    scores = (q.float() @ k.float().transpose(-2, -1)) * q.shape[-1] ** -0.5
    return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """FlashAttention-2 path; raises :class:`AttentionBackendUnavailable` with the reason when it cannot run."""
    reason = flash_attention_unavailable_reason(q)
    if reason is not None:
        raise AttentionBackendUnavailable(reason)
    from flash_attn.flash_attn_interface import flash_attn_func  # noqa: PLC0415 - optional GPU dependency

    # flash_attn takes (B, N, heads, d) and needs contiguous last dims.
    q, k, v = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    out = flash_attn_func(q, k, v)
    return out.transpose(1, 2)
