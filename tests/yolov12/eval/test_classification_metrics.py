"""Classification metrics: top-k accuracy and the confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yolov12.eval import ClassificationEvaluator, confusion_matrix, topk_accuracy


def test_topk_accuracy_by_hand() -> None:
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5]])
    targets = torch.tensor([0, 1, 1, 0])  # top-1 hits: 1; in top-2: 3; in top-3: all
    assert topk_accuracy(scores, targets, ks=(1, 2, 3, 5)) == pytest.approx({1: 0.25, 2: 0.75, 3: 1.0, 5: 1.0})
    assert topk_accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == {1: 0.0, 5: 0.0}


def test_confusion_matrix_rows_are_true_classes() -> None:
    matrix = confusion_matrix(torch.tensor([0, 2, 2, 1, 0]), torch.tensor([0, 2, 1, 1, 2]), num_classes=3)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 1], [1, 0, 1]])
    assert matrix.dtype == np.int64 and matrix.sum() == 5


def test_evaluator_accumulates_batches() -> None:
    torch.manual_seed(0)
    scores, targets = torch.randn(50, 7), torch.randint(0, 7, (50,))
    evaluator = ClassificationEvaluator(num_classes=7)
    for start in range(0, 50, 16):
        evaluator.update(scores[start:start + 16], targets[start:start + 16])
    metrics = evaluator.compute()
    expected = topk_accuracy(scores, targets)
    assert metrics.top1 == pytest.approx(expected[1]) and metrics.top5 == pytest.approx(expected[5])
    np.testing.assert_array_equal(metrics.confusion, confusion_matrix(scores.argmax(1), targets, 7))
    assert metrics.results_dict() == {"metrics/accuracy_top1": metrics.top1, "metrics/accuracy_top5": metrics.top5}
    evaluator.reset()
    assert evaluator.compute().top1 == 0.0
