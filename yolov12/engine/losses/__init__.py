"""Losses by task. Each loss is called as ``loss_fn(model_output, batch) -> (scalar, {part: detached tensor})``.

:func:`build_loss` builds the loss a model needs: the task's ``build_loss`` in :data:`yolov12.tasks.TASKS`
(:func:`build_detection_loss` or :func:`build_classification_loss`), wrapped for distillation when teachers are set.
"""

from __future__ import annotations

from typing import Any

import torch

from yolov12.engine.losses.classification import ClassificationLoss
from yolov12.engine.losses.detection import DetectionLoss
from yolov12.tasks import UnknownTaskError, task_spec

__all__ = ["ClassificationLoss", "DetectionLoss", "UnknownTaskError", "build_classification_loss",
           "build_detection_loss", "build_loss"]


def build_detection_loss(model: torch.nn.Module, section: Any | None = None) -> DetectionLoss:
    """:class:`DetectionLoss` for the model's head; ``section``'s ``box``, ``cls``, ``dfl`` gains when present."""
    gains = {f"{part}_gain": getattr(section, part) for part in ("box", "cls", "dfl") if hasattr(section, part)}
    return DetectionLoss.from_model(model, **gains)


def build_classification_loss(model: torch.nn.Module, section: Any | None = None) -> ClassificationLoss:
    """:class:`ClassificationLoss` with ``section``'s ``label_smoothing`` (0 when absent)."""
    del model
    return ClassificationLoss(label_smoothing=getattr(section, "label_smoothing", 0.0))


def build_loss(model: torch.nn.Module, section: Any | None = None, distill: Any | None = None) -> Any:
    """The loss for ``model.task``, configured from a loss config section.

    Args:
        model: a built model with ``task`` (``"detect"`` / ``"classify"``); detection reads its head.
        section: object with ``box``, ``cls``, ``dfl`` gains and ``label_smoothing`` (e.g. the training config's
            ``loss`` section); missing attributes keep the published defaults.
        distill: the training config's ``distill`` section; when it names teachers, the task's loss is wrapped in
            a :class:`~yolov12.engine.distill.DistillationLoss` (teachers are loaded onto the model's device).

    Raises:
        UnknownTaskError: the model's task is not in the task table.
    """
    spec = task_spec(getattr(model, "task", None))
    teachers = distill is not None and getattr(distill, "teachers", None)
    if teachers and not spec.supports_distillation:
        raise ValueError(f"distillation (distill.teachers) is not implemented for {spec.description} models; "
                         "remove the teachers")
    loss = spec.build_loss(model, section)
    if teachers:
        from yolov12.engine.distill import DistillationLoss  # noqa: PLC0415 - only distillation runs need it

        return DistillationLoss.build(model, loss, distill)
    return loss
