"""Where and how much to distil: per-anchor weights, the gradient-aware global weight, and the fade-out schedule."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist


def anchor_weights(teacher_confidence: torch.Tensor, disagreement: torch.Tensor) -> torch.Tensor:
    """(B, A) detached weights ``confidence * (1 - exp(-disagreement))``.

    Large where the teacher is confident (its top class probability) *and* the student disagrees (the per-anchor
    KL), zero where they agree: distillation concentrates where the teacher knows and the student does not.
    """
    return (teacher_confidence * (1 - torch.exp(-disagreement.clamp(min=0)))).detach()


PROBE_SCALE = 2.0**16
"""Loss scale of the gradient probes when no GradScaler is active (GradScaler's own initial scale).

fp16 flushes gradients below 2^-24 (~6e-8) to zero; scaled by 2^16, gradients down to ~1e-12 stay representable.
A power of two, so scaling and dividing back are exact in every floating-point format.
"""


def gradient_norm(loss: torch.Tensor, parameters: Sequence[torch.nn.Parameter], scale: float = 1.0) -> torch.Tensor:
    """L2 norm of d loss / d parameters (graph kept for the real backward; unused parameters count as zero).

    The gradient is taken of ``scale * loss`` and the norm divided by ``scale``: under fp16 autocast the backward
    runs through half-precision activations, where gradients below ~6e-8 become zero unless the loss is scaled
    first (as the real backward is, by the GradScaler). The result is not finite when the scaled backward
    overflowed (``scale`` too large for this loss).

    Example:
        >>> gradient_norm(loss, list(layer.parameters()), scale=PROBE_SCALE)  # doctest: +SKIP
    """
    if not loss.requires_grad:
        return torch.zeros((), device=loss.device)
    grads = torch.autograd.grad(loss * scale, list(parameters), retain_graph=True, allow_unused=True)
    norms = [torch.linalg.vector_norm(g.float()) for g in grads if g is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) / scale if norms else torch.zeros((), device=loss.device)


def average_across_ranks(values: torch.Tensor) -> torch.Tensor:
    """Mean over DDP ranks (identity without a process group), so every rank applies the same weight."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= dist.get_world_size()
    return values


class GradientBalancer:
    """The global distillation weight.

    ``gradient`` mode: the gradient norms at the student's last shared layer, |g_det| and |g_kd|, are each smoothed
    with an EMA (``momentum``) and the weight is ``ratio * ema|g_det| / ema|g_kd|``, clipped to
    ``[min_weight, max_weight]``, so that the weighted distillation gradient stays at ``ratio`` times the detection
    gradient on average (smoothing the norms, not the per-step quotient, avoids the E[x]E[1/x] > 1 bias of noisy
    minibatches). Steps where the distillation gradient vanishes (below ``VANISHING`` times the detection gradient:
    float32 round-off of a KL between equal distributions, ~5e-8 relative when the student matches its teacher) leave
    it unchanged, so that noise is never amplified to the upper clip. ``constant`` mode: ``constant``.
    """

    VANISHING = 1e-6

    def __init__(self, ratio: float, mode: str = "gradient", constant: float = 1.0, momentum: float = 0.9,
                 min_weight: float = 1e-3, max_weight: float = 1e3) -> None:
        if mode not in ("gradient", "constant"):
            raise ValueError(f"weighting must be 'gradient' or 'constant', got {mode!r}")
        self.ratio, self.mode, self.constant, self.momentum = ratio, mode, constant, momentum
        self.min_weight, self.max_weight = min_weight, max_weight
        self.norms: tuple[float, float] | None = None  # EMAs of |g_det| and |g_kd|

    @property
    def weight(self) -> float:
        if self.mode == "constant":
            return self.constant
        if self.norms is None:
            return 0.0
        return min(max(self.ratio * self.norms[0] / self.norms[1], self.min_weight), self.max_weight)

    def update(self, norm_detection: float, norm_distill: float) -> float:
        """Fold one step's gradient norms in; returns the weight to apply this step."""
        vanished = norm_distill <= max(1e-12, self.VANISHING * norm_detection)
        if self.mode == "gradient" and norm_detection > 0 and not vanished:
            if self.norms is None:
                self.norms = (norm_detection, norm_distill)
            else:
                m = self.momentum
                self.norms = (m * self.norms[0] + (1 - m) * norm_detection, m * self.norms[1] + (1 - m) * norm_distill)
        return self.weight

    def state_dict(self) -> dict:
        return {"norms": self.norms}

    def load_state_dict(self, state: dict) -> None:
        norms = state.get("norms")
        self.norms = tuple(norms) if norms is not None else None


def fade_factor(epoch: int, epochs: int, fade_epochs: int) -> float:
    """1 until the last ``fade_epochs`` epochs, then linearly down: (epochs - epoch) / (fade_epochs + 1)."""
    if fade_epochs <= 0:
        return 1.0
    return min(1.0, max(0.0, (epochs - epoch) / (fade_epochs + 1)))
