"""``DistillationLoss``: the detection loss plus gradient-aware distillation from frozen teachers.

Called like any loss, ``loss_fn(student_maps, batch) -> (loss, parts)``; ``batch["images"]`` (the augmented batch
the student saw) is what the teachers see. Per step:

1. detection loss ``L_det`` (parts ``box``, ``cls``, ``dfl``);
2. teachers under ``torch.no_grad``; per-anchor terms averaged over teachers, weighted by
   :func:`~yolov12.engine.distill.weighting.anchor_weights`; ``L_kd = B * (cls + box + feat)``;
3. gradient norms of ``L_det`` and ``L_kd`` at the student's last shared layer (the deepest layer all head inputs
   depend on: the P3 output of a PAN neck; a small ``torch.autograd.grad`` probe); the :class:`GradientBalancer`
   turns them into the weight ``lambda``;
4. ``loss = L_det + fade * lambda * L_kd``; parts gain ``distill_cls``, ``distill_box``, ``distill_feat`` (weighted,
   per image, so ``sum(parts) * B == loss`` as for the detection loss).

:meth:`epoch_metrics` returns the epoch means of ``distill/weight``, ``distill/grad_norm_det``,
``distill/grad_norm_kd``, ``distill/grad_ratio`` (lambda * |g_kd| / |g_det|, before the fade) and the raw terms.
Under DDP the probes see each rank's gradient at ``world_size`` times its value (how
:func:`~yolov12.engine.distributed.wrap_model` sums over ranks), the scale of the summed gradient; the weight
depends only on the ratio of the two norms.

Training state beyond the student (:meth:`DistillationLoss.state_dict`): the balancer's running norms and the
feature adapters' weights, saved with the resume state. The trainer wraps the adapters like the student
(:meth:`DistillationLoss.wrap_trainable`), so under DDP their gradients are reduced over the ranks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from yolov12.engine.distill.teachers import load_teachers, teacher_forward
from yolov12.engine.distill.terms import (
    FeatureAdapters,
    bin_distribution,
    bin_kl,
    class_kl,
    feature_imitation,
    split_maps,
)
from yolov12.engine.distill.weighting import (
    GradientBalancer,
    anchor_weights,
    average_across_ranks,
    fade_factor,
    gradient_norm,
)

TERMS = ("cls", "box", "feat")


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


def _sources(layers, index: int) -> tuple[int, ...]:
    """Absolute indices of the layers feeding layer ``index`` (``-1`` is the previous layer; none for the input)."""
    source = layers[index].source
    resolved = (s if s >= 0 else index + s for s in (source if isinstance(source, tuple) else (source,)))
    return tuple(s for s in resolved if s >= 0)


def last_shared_layer(student: nn.Module) -> int:
    """Index of the deepest layer with trainable parameters that *every* head input depends on.

    Only there do the gradients of all head outputs meet (the detection loss's and the distillation loss's at every
    level). The last neck layer itself (the P5 output) is not such a layer: it feeds the P5 head only, so with small
    objects the distillation gradient there is nearly zero while the detection gradient is not (seen: |g_kd| 1e-6
    against |g_det| 1e-3, which pinned the adapted weight at its upper clip). In YOLO PAN necks this is the P3 output
    layer, which the P4 and P5 outputs are computed from.
    """
    layers = student.layers
    ancestry: list[set[int]] = []
    for index in range(len(layers)):
        ancestry.append({index}.union(*(ancestry[s] for s in _sources(layers, index))))
    head_inputs = _sources(layers, len(layers) - 1)
    common = set.intersection(*(ancestry[s] for s in head_inputs))
    for index in sorted(common, reverse=True):
        if any(p.requires_grad for p in student.model[index].parameters()):
            return index
    raise ValueError("the student has no trainable layer that all its head inputs share, to probe gradients at")


def last_shared_parameters(student: nn.Module) -> list[nn.Parameter]:
    """Trainable parameters of :func:`last_shared_layer` (where the two losses' gradient norms are compared)."""
    return [p for p in student.model[last_shared_layer(student)].parameters() if p.requires_grad]


class DistillationLoss:
    """Detection loss + GKD. Build with :meth:`build`; see the module docstring for the computation."""

    def __init__(self, detection_loss, student: nn.Module, teachers: list[nn.Module], terms: Sequence[str],
                 temperature: float, balancer: GradientBalancer, fade_epochs: int = 0) -> None:
        unknown = set(terms) - set(TERMS)
        if unknown or not terms:
            raise ValueError(f"distillation terms must be a non-empty subset of {TERMS}, got {list(terms)}")
        self.detection, self.teachers, self.terms = detection_loss, teachers, tuple(terms)
        self.temperature, self.balancer, self.fade_epochs = temperature, balancer, fade_epochs
        self.num_classes, self.reg_max = student.head.nc, student.head.reg_max
        self.probe = last_shared_parameters(student)
        self.fade = 1.0
        self.adapters: FeatureAdapters | None = None
        self._adapt: nn.Module | None = None  # the adapters as called: wrapped for DDP by wrap_trainable
        self.tap: FeatureTap | None = None
        if "feat" in self.terms:
            self.tap = FeatureTap()
            self._hook = student.head.register_forward_pre_hook(self.tap)
            self.adapters = FeatureAdapters(_head_input_channels(student),
                                            [_head_input_channels(t) for t in teachers])
            self.adapters.to(next(student.parameters()).device)
            self._adapt = self.adapters
        self._sums: dict[str, float] = defaultdict(float)
        self._steps = 0

    @classmethod
    def build(cls, student: nn.Module, detection_loss, section, teachers: Sequence | None = None) -> DistillationLoss:
        """From a ``DistillSection`` (``teachers`` overrides ``section.teachers`` with specs or built models)."""
        device = next(student.parameters()).device
        frozen = load_teachers(list(teachers if teachers is not None else section.teachers), student, device,
                               half=section.teacher_half)
        balancer = GradientBalancer(section.ratio, section.weighting, section.weight)
        return cls(detection_loss, student, frozen, section.terms, section.temperature, balancer, section.fade_epochs)

    def parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the loss itself (the feature adapters); the trainer adds them to the optimiser."""
        return list(self.adapters.parameters()) if self.adapters is not None else []

    def wrap_trainable(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Call the feature adapters through ``wrap(adapters)`` from now on (e.g. DistributedDataParallel, so that
        their gradients are reduced over the ranks like the student's); their parameters stay those of
        :meth:`parameters`."""
        if self.adapters is not None:
            self._adapt = wrap(self.adapters)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Set the fade-out factor for this epoch and reset the epoch metrics."""
        self.fade = fade_factor(epoch, epochs, self.fade_epochs)
        self._sums.clear()
        self._steps = 0

    def __call__(self, maps: list[torch.Tensor], batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        detection, parts = self.detection(maps, batch)
        outputs = [teacher_forward(t, batch["images"]) for t in self.teachers]
        with torch.autocast(device_type=maps[0].device.type, enabled=False):
            terms, raw = self._terms(maps, outputs)
        batch_size = maps[0].shape[0]
        distill = sum(terms.values()) * batch_size
        if torch.is_grad_enabled():
            norms = average_across_ranks(torch.stack([gradient_norm(detection, self.probe),
                                                      gradient_norm(distill, self.probe)]).detach())
            norm_det, norm_kd = (float(v) for v in norms)
        else:
            norm_det = norm_kd = 0.0
        weight = self.balancer.update(norm_det, norm_kd)
        applied = self.fade * weight
        self._record(applied, weight, norm_det, norm_kd, raw)
        parts = {**parts, **{f"distill_{name}": value.detach() * applied for name, value in terms.items()}}
        return detection + applied * distill, parts

    def _terms(self, maps: list[torch.Tensor], outputs: list) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Weighted per-image terms (scalars with gradients) and their raw values for logging."""
        t = self.temperature
        box_s, cls_s = split_maps(maps, self.num_classes)
        teacher_split = [split_maps(o.maps, self.num_classes) for o in outputs]
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
            terms["feat"] = self._feature_term(outputs, weights)
        return terms, {name: float(value.detach()) for name, value in terms.items()}

    def _feature_term(self, outputs: list, weights: torch.Tensor) -> torch.Tensor:
        if self.tap is None or self.tap.features is None:
            raise RuntimeError("the feature term needs the student's neck features: run the student forward in "
                               "training mode right before calling the loss")
        student_features, self.tap.features = self.tap.features, None
        adapted = self._adapt(student_features)  # one call for all teachers: [teacher][level]
        losses = [feature_imitation(levels, o.features, weights) for levels, o in zip(adapted, outputs)]
        return torch.stack(losses).mean()

    def _record(self, applied: float, weight: float, norm_det: float, norm_kd: float, raw: dict) -> None:
        self._steps += 1
        values = {"weight": applied, "grad_norm_det": norm_det, "grad_norm_kd": norm_kd,
                  "grad_ratio": weight * norm_kd / norm_det if norm_det > 0 else 0.0, "fade": self.fade}
        values.update({f"raw_{name}": value for name, value in raw.items()})
        for name, value in values.items():
            self._sums[name] += value

    def epoch_metrics(self) -> dict[str, float]:
        """Means over the steps since :meth:`start_epoch`: ``distill/weight``, ``distill/grad_norm_det``, ..."""
        return {f"distill/{name}": value / max(self._steps, 1) for name, value in self._sums.items()}

    def state_dict(self) -> dict:
        """The training state a resume needs: the balancer's running norms and the adapters' weights."""
        return {"balancer": self.balancer.state_dict(),
                "adapters": self.adapters.state_dict() if self.adapters is not None else None}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (in place: the adapters keep their parameters, so the optimiser's hold)."""
        self.balancer.load_state_dict(state.get("balancer", {}))
        if self.adapters is not None and state.get("adapters") is not None:
            self.adapters.load_state_dict(state["adapters"])


def _head_input_channels(model: nn.Module) -> list[int]:
    source = model.layers[-1].source
    return [model.layers[s].out_channels for s in (source if isinstance(source, tuple) else (source,))]


__all__ = ["DistillationLoss", "FeatureTap", "last_shared_layer", "last_shared_parameters"]
