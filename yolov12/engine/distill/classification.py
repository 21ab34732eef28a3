"""GKD terms for classifiers: the KL between the teachers' and the student's class distributions at temperature T.

Teachers are classifiers with the student's class names (a larger YOLOv12-cls, or any zoo classifier); their
softened probabilities ``softmax(z_t / T)`` are averaged, and the term is
:func:`~yolov12.engine.distill.terms.logit_kl` (times T^2) averaged over the batch, like the cross-entropy it is
balanced against.
"""

from __future__ import annotations

import math

import torch

from yolov12.engine.distill.base import TaskDistiller
from yolov12.engine.distill.teachers import teacher_logits
from yolov12.engine.distill.terms import logit_kl


class ClassificationDistiller(TaskDistiller):
    """The one term ``cls``: logit KL at temperature T (the student's training output is (B, nc) logits)."""

    TERMS = ("cls",)
    DEFAULT_TERMS = ("cls",)
    KIND = "classifier"

    def teach(self, images: torch.Tensor) -> torch.Tensor:
        """(B, nc) log of the teachers' mean softened probabilities ``mean_k softmax(z_k / T)``."""
        log_probs = torch.stack([(teacher_logits(t, images) / self.temperature).log_softmax(-1)
                                 for t in self.teachers])
        return torch.logsumexp(log_probs, 0) - math.log(len(self.teachers))  # exact for one teacher

    def compute(self, outputs: torch.Tensor | list[torch.Tensor], taught: torch.Tensor
                ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        logits = outputs[0] if isinstance(outputs, (list, tuple)) else outputs  # as ClassificationLoss accepts
        term = logit_kl(logits, taught, self.temperature).mean()
        return {"cls": term}, {"cls": float(term.detach())}


__all__ = ["ClassificationDistiller"]
