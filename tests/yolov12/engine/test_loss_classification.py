"""ClassificationLoss: cross-entropy with label smoothing."""

from __future__ import annotations

import math

import pytest
import torch

from yolov12.engine.losses import ClassificationLoss


def test_uniform_logits_give_log_num_classes() -> None:
    loss, parts = ClassificationLoss()(torch.zeros(4, 5), {"classes": torch.tensor([0, 1, 2, 4])})
    assert loss.item() == pytest.approx(math.log(5), rel=1e-6)
    assert set(parts) == {"cls"} and not parts["cls"].requires_grad


def test_label_smoothing_matches_its_formula() -> None:
    torch.manual_seed(0)
    logits, targets, smoothing = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1]), 0.2
    log_p = logits.log_softmax(1)
    expected = ((1 - smoothing) * -log_p[torch.arange(6), targets] + smoothing * -log_p.mean(1)).mean()
    loss, _ = ClassificationLoss(label_smoothing=smoothing)(logits, {"classes": targets})
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_confident_correct_logits_give_near_zero_loss_and_finite_gradients() -> None:
    logits = (torch.eye(3) * 30).requires_grad_(True)
    loss, _ = ClassificationLoss()(logits, {"classes": torch.arange(3)})
    loss.backward()
    assert loss.item() < 1e-6 and torch.isfinite(logits.grad).all()


def test_rejects_bad_smoothing() -> None:
    with pytest.raises(ValueError, match="label_smoothing"):
        ClassificationLoss(label_smoothing=1.0)
