"""What one task contributes to GKD: its teachers' outputs, its distillation terms, and any trainable parts.

:class:`~yolov12.engine.distill.loss.DistillationLoss` is task-agnostic (task loss, gradient probes, balancer, fade);
it delegates the per-task part to a :class:`TaskDistiller` from its registry (``loss.DISTILLERS``, keyed by task).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn


class TaskDistiller(ABC):
    """Distillation terms of one task.

    Subclasses set ``TERMS`` (the terms the task has), ``DEFAULT_TERMS`` (used when ``distill.terms`` is empty) and
    ``KIND`` (the model kind in words, e.g. ``"classifier"``), and implement :meth:`teach` and :meth:`compute`.

    Args:
        student: the (unwrapped) student model.
        teachers: frozen teachers, already checked against the student.
        terms: the terms to compute (empty: ``DEFAULT_TERMS``).
        temperature: softening temperature T.
    """

    TERMS: ClassVar[tuple[str, ...]] = ()
    DEFAULT_TERMS: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = ""

    def __init__(self, student: nn.Module, teachers: list[nn.Module], terms: Sequence[str],
                 temperature: float) -> None:
        del student  # subclasses read what they need from it
        self.teachers = teachers
        self.terms = self.resolve_terms(terms)
        self.temperature = temperature

    @classmethod
    def resolve_terms(cls, terms: Sequence[str]) -> tuple[str, ...]:
        """``terms`` checked against ``TERMS`` (``DEFAULT_TERMS`` when empty); ValueError in one line otherwise."""
        if not terms:
            return cls.DEFAULT_TERMS
        for term in terms:
            if term not in cls.TERMS:
                raise ValueError(f"distill.terms: {term!r} is not a term for a {cls.KIND}; allowed: "
                                 f"{list(cls.TERMS)} (an empty list means {list(cls.DEFAULT_TERMS)})")
        if len(set(terms)) != len(terms):
            raise ValueError(f"distill.terms: {list(terms)} names a term twice; give each of {list(cls.TERMS)} once")
        return tuple(terms)

    @abstractmethod
    def teach(self, images: torch.Tensor) -> Any:
        """The frozen teachers' outputs for the student's (augmented) ``images`` (B, 3, H, W), in float32."""

    @abstractmethod
    def compute(self, outputs: Any, taught: Any) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Per-image terms (scalars with gradients, by term name) and their raw values for logging.

        ``outputs``: the student's training output; ``taught``: :meth:`teach`'s result for the same batch.
        """

    def batch_factor(self, outputs: Any) -> int:
        """What the task loss multiplies its per-image parts by: 1 for a batch-mean loss (the default)."""
        del outputs
        return 1

    def parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the distiller (none by default)."""
        return []

    def wrap_trainable(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Call the trainable parts through ``wrap`` (e.g. DistributedDataParallel); nothing by default."""
        del wrap

    def state_dict(self) -> dict | None:
        """Trainable state a resume needs (None when the distiller has none)."""
        return None

    def load_state_dict(self, state: dict | None) -> None:
        """Restore :meth:`state_dict` (nothing by default)."""
        del state


__all__ = ["TaskDistiller"]
