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


def build_loss(model: torch.nn.Module, section: Any | None = None) -> DetectionLoss | ClassificationLoss:
    """The loss for ``model.task``, configured from a loss config section.

    Args:
        model: a built model with ``task`` (``"detect"`` / ``"classify"``); detection reads its head.
        section: object with ``box``, ``cls``, ``dfl`` gains and ``label_smoothing`` (e.g. the training config's
            ``loss`` section); missing attributes keep the published defaults.
    """
    task = getattr(model, "task", None)
    if task not in LOSSES:
        raise UnknownTaskError(f"no loss for task {task!r}; registered tasks: {sorted(LOSSES)}")
    if task == "classify":
        return ClassificationLoss(label_smoothing=getattr(section, "label_smoothing", 0.0))
    gains = {f"{part}_gain": getattr(section, part) for part in ("box", "cls", "dfl") if hasattr(section, part)}
    return DetectionLoss.from_model(model, **gains)
