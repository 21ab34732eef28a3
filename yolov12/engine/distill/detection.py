"""GKD terms for detectors: class KL and DFL-bin KL per anchor, neck-feature imitation, per-anchor weights.

Per step, on the head maps of the student and of each frozen teacher (same classes and strides): per-anchor terms
averaged over teachers and weighted by :func:`~yolov12.engine.distill.weighting.anchor_weights` (where teachers are
confident and the student disagrees); the feature term imitates the teachers' neck features through trainable 1x1
adapters (:class:`~yolov12.engine.distill.terms.FeatureAdapters`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from yolov12.engine.distill.base import TaskDistiller
from yolov12.engine.distill.teachers import TeacherOutput, teacher_forward
from yolov12.engine.distill.terms import (
    FeatureAdapters,
    bin_distribution,
    bin_kl,
    class_kl,
    feature_imitation,
    split_maps,
)
from yolov12.engine.distill.weighting import anchor_weights


class FeatureTap:
    """Forward pre-hook keeping the student head's input features of the last training forward.

    Copies (the EMA model is a deep copy of the student) are disabled no-ops, so they never hold tensors.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.features: list[torch.Tensor] | None = None

    def __call__(self, module: nn.Module, args: tuple) -> None:
        if self.enabled and module.training:
            self.features = list(args[0])

    def __deepcopy__(self, memo: dict) -> FeatureTap:
        return FeatureTap(enabled=False)


class DetectionDistiller(TaskDistiller):
    """Terms ``cls`` (class KL), ``box`` (DFL-bin KL) and ``feat`` (neck imitation) on the head maps.

    ``compute`` takes the student's per-level maps [(B, 4*reg_max + nc, H_i, W_i)] and returns per-image terms;
    the detection loss sums over images, so :meth:`batch_factor` is B.
    """

    TERMS = ("cls", "box", "feat")
    DEFAULT_TERMS = ("cls", "box")
    KIND = "detector"

    def __init__(self, student: nn.Module, teachers: list[nn.Module], terms: Sequence[str],
                 temperature: float) -> None:
        super().__init__(student, teachers, terms, temperature)
        self.num_classes, self.reg_max = student.head.nc, student.head.reg_max
        self.adapters: FeatureAdapters | None = None
        self._adapt: nn.Module | None = None  # the adapters as called: wrapped for DDP by wrap_trainable
        self.tap: FeatureTap | None = None
        if "feat" in self.terms:
            self.tap = FeatureTap()
            self._hook = student.head.register_forward_pre_hook(self.tap)
            self.adapters = FeatureAdapters(head_input_channels(student),
                                            [head_input_channels(t) for t in teachers])
            self.adapters.to(next(student.parameters()).device)
            self._adapt = self.adapters

    def teach(self, images: torch.Tensor) -> list[TeacherOutput]:
        return [teacher_forward(t, images) for t in self.teachers]

    def batch_factor(self, outputs: list[torch.Tensor]) -> int:
        return outputs[0].shape[0]

    def compute(self, outputs: list[torch.Tensor], taught: list[TeacherOutput]
                ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        t = self.temperature
        box_s, cls_s = split_maps(outputs, self.num_classes)
        teacher_split = [split_maps(o.maps, self.num_classes) for o in taught]
        teacher_probs = torch.stack([(c / t).sigmoid() for _, c in teacher_split]).mean(0)
        confidence = torch.stack([c.sigmoid().amax(-1) for _, c in teacher_split]).mean(0)
        per_anchor: dict[str, torch.Tensor] = {}
        if "cls" in self.terms:
            per_anchor["cls"] = class_kl(cls_s, teacher_probs, t)
        if "box" in self.terms:
            bins = torch.stack([bin_distribution(b, self.reg_max, t) for b, _ in teacher_split]).mean(0)
            per_anchor["box"] = bin_kl(box_s, bins, t)
        disagreement = sum(per_anchor.values()) if per_anchor else class_kl(cls_s.detach(), teacher_probs, t)
        weights = anchor_weights(confidence, disagreement)
        total = weights.sum().clamp(min=1e-9)
        terms = {name: (weights * value).sum() / total for name, value in per_anchor.items()}
        if "feat" in self.terms:
            terms["feat"] = self._feature_term(taught, weights)
        return terms, {name: float(value.detach()) for name, value in terms.items()}

    def _feature_term(self, taught: list[TeacherOutput], weights: torch.Tensor) -> torch.Tensor:
        if self.tap is None or self.tap.features is None:
            raise RuntimeError("the feature term needs the student's neck features: run the student forward in "
                               "training mode right before calling the loss")
        student_features, self.tap.features = self.tap.features, None
        adapted = self._adapt(student_features)  # one call for all teachers: [teacher][level]
        losses = [feature_imitation(levels, o.features, weights) for levels, o in zip(adapted, taught)]
        return torch.stack(losses).mean()

    def parameters(self) -> list[nn.Parameter]:
        """The feature adapters' parameters (the trainer adds them to the optimiser)."""
        return list(self.adapters.parameters()) if self.adapters is not None else []

    def wrap_trainable(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        if self.adapters is not None:
            self._adapt = wrap(self.adapters)

    def state_dict(self) -> dict | None:
        return self.adapters.state_dict() if self.adapters is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        """Restore the adapters in place (they keep their parameters, so the optimiser's hold)."""
        if self.adapters is not None and state is not None:
            self.adapters.load_state_dict(state)


def head_input_channels(model: nn.Module) -> list[int]:
    """Channels of each layer feeding the model's head."""
    source = model.layers[-1].source
    return [model.layers[s].out_channels for s in (source if isinstance(source, tuple) else (source,))]


__all__ = ["DetectionDistiller", "FeatureTap", "head_input_channels"]
