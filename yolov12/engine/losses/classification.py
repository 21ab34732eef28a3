"""Classification loss: cross-entropy with optional label smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ClassificationLoss"]


class ClassificationLoss:
    """Mean cross-entropy over the batch.

    Args:
        label_smoothing: mass spread uniformly over the classes (0 = hard targets).

    Example:
        >>> loss, parts = ClassificationLoss(label_smoothing=0.1)(torch.zeros(4, 3), {"classes": torch.zeros(4)})
        >>> round(parts["cls"].item(), 4)  # log(3)
        1.0986
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def __call__(
        self, logits: torch.Tensor | list[torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B, nc) logits and ``batch["classes"]`` (B,) -> (scalar loss, {"cls": detached loss})."""
        if isinstance(logits, (list, tuple)):  # some heads return [logits, ...]
            logits = logits[0]
        targets = batch["classes"].to(device=logits.device, dtype=torch.long).view(-1)
        loss = F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)
        return loss, {"cls": loss.detach()}
