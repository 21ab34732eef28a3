"""Mixed precision with gradient correction: autocast, loss scaling, unscale-before-clip, skip of non-finite steps."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """True when the CPU executes bf16 matmuls natively (AVX512-BF16 or AMX); bf16 autocast is slower otherwise."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def reduced_precision_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype worth using on ``device``: fp16 on CUDA, bf16 on a CPU with native bf16, else None (fp32).

    One rule for training (:class:`MixedPrecision`) and validation (``half=True``).
    """
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def autocast_for(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``, or a no-op for fp32 (``dtype`` None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class MixedPrecision:
    """Autocast + gradient handling for one device.

    - CUDA: fp16 autocast with dynamic loss scaling (``torch.amp.GradScaler``).
    - CPU: bf16 autocast (no scaling needed) when the CPU has native bf16; otherwise fp32, said once in the log.
    ``step`` unscales, clips to ``max_norm``, and skips (never applies) a step whose gradients are not finite,
    counting it in ``skipped_steps``.
    """

    def __init__(self, device: torch.device, enabled: bool = True, max_norm: float = 10.0) -> None:
        self.device = device
        self.max_norm = max_norm
        self.skipped_steps = 0
        self.dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if enabled:
            self.dtype = reduced_precision_dtype(device)
            if self.dtype == torch.float16:
                self.scaler = torch.amp.GradScaler("cuda")
            elif device.type == "cpu" and self.dtype is None:
                logger.info("amp: this CPU has no native bf16 (no AVX512-BF16/AMX), so training runs in fp32")

    @property
    def mode(self) -> str:
        return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.dtype, "fp32")

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast_for(self.dtype, self.device)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, optimiser: torch.optim.Optimizer, parameters: Iterable[torch.nn.Parameter]) -> bool:
        """Apply one optimiser step; returns False (and zeroes the gradients) when the step was skipped."""
        if self.scaler:
            self.scaler.unscale_(optimiser)
        norm = torch.nn.utils.clip_grad_norm_(list(parameters), self.max_norm)
        applied = bool(torch.isfinite(norm))
        if not applied:
            self.skipped_steps += 1
            logger.warning("skipped an optimiser step: gradient norm is %s (total skipped: %d)", norm.item(),
                           self.skipped_steps)
            if self.scaler:
                self.scaler.update()  # lowers the loss scale after the overflow
        elif self.scaler:
            self.scaler.step(optimiser)
            self.scaler.update()
        else:
            optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        return applied

    def state_dict(self) -> dict:
        return {"skipped_steps": self.skipped_steps, "scaler": self.scaler.state_dict() if self.scaler else None}

    def load_state_dict(self, state: dict) -> None:
        self.skipped_steps = int(state.get("skipped_steps", 0))
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
