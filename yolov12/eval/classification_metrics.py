"""Classification metrics: top-k accuracy and the confusion matrix."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from yolov12.eval.metric_names import ACCURACY_TOP1, ACCURACY_TOP5

logger = logging.getLogger(__name__)

__all__ = ["ClassificationEvaluator", "ClassificationMetrics", "confusion_matrix", "topk_accuracy"]


def topk_accuracy(scores: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Fraction of samples whose target is among the ``k`` highest scores, for each ``k``.

    Args:
        scores: (N, C) logits or probabilities.
        targets: (N,) class indices.
        ks: the ``k`` values; a ``k`` above C counts as C (so top-5 of a 3-class problem is 1.0).

    Returns:
        {k: accuracy}; 0.0 for every k when N == 0.

    Example:
        >>> topk_accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]), ks=(1, 2))
        {1: 0.5, 2: 1.0}
    """
    n, c = scores.shape
    if n == 0:
        return {k: 0.0 for k in ks}
    ranked = scores.topk(min(max(ks), c), dim=1).indices  # (N, k_max)
    hits = ranked == targets.view(-1, 1).to(ranked.device)
    return {k: hits[:, : min(k, c)].any(1).float().mean().item() for k in ks}


def confusion_matrix(predicted: torch.Tensor, targets: torch.Tensor, num_classes: int) -> np.ndarray:
    """(N,) predicted and (N,) true class indices -> (C, C) int64 counts, rows = true class, columns = predicted.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2).tolist()
        [[1, 1], [0, 1]]
    """
    index = targets.view(-1).long().cpu() * num_classes + predicted.view(-1).long().cpu()
    counts = torch.bincount(index, minlength=num_classes * num_classes)
    return counts.view(num_classes, num_classes).numpy().astype(np.int64)


@dataclass
class ClassificationMetrics:
    """Top-1 / top-5 accuracy and the (C, C) confusion matrix (rows true, columns predicted)."""

    top1: float = 0.0
    top5: float = 0.0
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    def results_dict(self) -> dict[str, float]:
        """Flat metrics with the column names users know from results.csv."""
        return {ACCURACY_TOP1.engine: self.top1, ACCURACY_TOP5.engine: self.top5}


class ClassificationEvaluator:
    """Accumulates batches of scores and targets.

    Example:
        >>> evaluator = ClassificationEvaluator(num_classes=2)
        >>> evaluator.update(torch.tensor([[0.1, 0.9]]), torch.tensor([1]))
        >>> evaluator.compute().top1
        1.0
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        """Forget all accumulated samples."""
        self._hits = {1: 0.0, 5: 0.0}
        self._count = 0
        self._confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch: (N, C) scores and (N,) class indices."""
        scores, targets = scores.detach().float().cpu(), targets.detach().view(-1).cpu()
        n = len(targets)
        for k, accuracy in topk_accuracy(scores, targets, ks=(1, 5)).items():
            self._hits[k] += accuracy * n
        self._count += n
        self._confusion += confusion_matrix(scores.argmax(1), targets, self.num_classes)

    def compute(self) -> ClassificationMetrics:
        """Metrics of all accumulated samples."""
        count = max(self._count, 1)
        metrics = ClassificationMetrics(self._hits[1] / count, self._hits[5] / count, self._confusion.copy())
        logger.info("top-1 %.4f, top-5 %.4f over %d samples", metrics.top1, metrics.top5, self._count)
        return metrics
