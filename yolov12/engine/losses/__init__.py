"""Losses by task. Each loss is called as ``loss_fn(model_output, batch) -> (scalar, {part: detached tensor})``.

``LOSSES`` maps a model task to its loss class; :func:`build_loss` builds the one a model needs.
"""

from __future__ import annotations

from typing import Any

import torch

from yolov12.engine.losses.classification import ClassificationLoss
from yolov12.engine.losses.detection import DetectionLoss

__all__ = ["LOSSES", "ClassificationLoss", "DetectionLoss", "UnknownTaskError", "build_loss"]

LOSSES: dict[str, type] = {"detect": DetectionLoss, "classify": ClassificationLoss}


class UnknownTaskError(KeyError):
    """No loss is registered for this task."""


def build_loss(model: torch.nn.Module, section: Any | None = None, distill: Any | None = None) -> Any:
    """The loss for ``model.task``, configured from a loss config section.

    Args:
        model: a built model with ``task`` (``"detect"`` / ``"classify"``); detection reads its head.
        section: object with ``box``, ``cls``, ``dfl`` gains and ``label_smoothing`` (e.g. the training config's
            ``loss`` section); missing attributes keep the published defaults.
        distill: the training config's ``distill`` section; when it names teachers, the detection loss is wrapped
            in a :class:`~yolov12.engine.distill.DistillationLoss` (teachers are loaded onto the model's device).
    """
    task = getattr(model, "task", None)
    if task not in LOSSES:
        raise UnknownTaskError(f"no loss for task {task!r}; registered tasks: {sorted(LOSSES)}")
    if task == "classify" and distill is not None and getattr(distill, "teachers", None):
        raise ValueError("distillation (distill.teachers) is implemented for detection models; remove the teachers")
    if task == "classify":
        return ClassificationLoss(label_smoothing=getattr(section, "label_smoothing", 0.0))
    gains = {f"{part}_gain": getattr(section, part) for part in ("box", "cls", "dfl") if hasattr(section, part)}
    loss = DetectionLoss.from_model(model, **gains)
    if distill is not None and getattr(distill, "teachers", None):
        from yolov12.engine.distill import DistillationLoss  # noqa: PLC0415 - only distillation runs need it

        return DistillationLoss.build(model, loss, distill)
    return loss
