"""``DistillationLoss``: a task loss plus gradient-aware distillation (GKD) from frozen teachers.

Called like any loss, ``loss_fn(outputs, batch) -> (loss, parts)``; ``batch["images"]`` (the augmented batch the
student saw) is what the teachers see. The per-task part is a :class:`~yolov12.engine.distill.base.TaskDistiller`
from :data:`DISTILLERS` (keyed by the student's task); the rest is the same for every task. Per step:

1. the task loss ``L_task`` (detection: parts ``box``, ``cls``, ``dfl``; classification: ``cls``);
2. teachers under ``torch.no_grad``; the distiller's terms (detection: class KL, DFL-bin KL and neck imitation,
   weighted per anchor; classification: logit KL at temperature T), ``L_kd = factor * sum(terms)`` with the task
   loss's batch factor (B for the detection loss, a sum over images; 1 for the batch-mean cross-entropy);
3. gradient norms of ``L_task`` and ``L_kd`` at the student's last shared layer (the deepest layer all head inputs
   depend on: the P3 output of a PAN neck, the last backbone layer of a classifier; a small
   ``torch.autograd.grad`` probe); the :class:`GradientBalancer` turns them into the weight ``lambda``;
4. ``loss = L_task + fade * lambda * L_kd``; parts gain ``distill_<term>`` (weighted, on the task loss's scale, so
   ``sum(parts) * factor == loss``).

The probes differentiate the losses times a loss scale and divide the norms back: the trainer's GradScaler scale
(:meth:`DistillationLoss.use_grad_scaler`), else :data:`~yolov12.engine.distill.weighting.PROBE_SCALE`. Under fp16
autocast an unscaled probe flushes small gradients to zero and measures a wrong ratio. A probe that overflows is
retried once at a smaller scale; a step whose probe norms are still not finite keeps the previous weight.

:meth:`epoch_metrics` returns the epoch means of ``distill/weight``, ``distill/grad_norm_det`` (the task loss's
norm), ``distill/grad_norm_kd``, ``distill/grad_ratio`` (lambda * |g_kd| / |g_task|, before the fade) and the raw
terms. Under DDP the probes see each rank's gradient at ``world_size`` times its value (how
:func:`~yolov12.engine.distributed.wrap_model` sums over ranks), the scale of the summed gradient; the weight
depends only on the ratio of the two norms.

Training state beyond the student (:meth:`DistillationLoss.state_dict`): the balancer's running norms and the
detection feature adapters' weights, saved with the resume state; the fade factor follows from the epoch. The
trainer wraps the adapters like the student (:meth:`DistillationLoss.wrap_trainable`), so under DDP their gradients
are reduced over the ranks.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from yolov12.engine.distill.base import TaskDistiller
from yolov12.engine.distill.classification import ClassificationDistiller
from yolov12.engine.distill.detection import DetectionDistiller, FeatureTap
from yolov12.engine.distill.teachers import load_teachers
from yolov12.engine.distill.weighting import (
    PROBE_SCALE,
    GradientBalancer,
    average_across_ranks,
    fade_factor,
    gradient_norm,
)

logger = logging.getLogger(__name__)

PROBE_BACKOFF = 2.0**8
"""A probe that overflowed at its loss scale is taken once more at the scale divided by this power of two."""

DISTILLERS: dict[str, type[TaskDistiller]] = {"detect": DetectionDistiller, "classify": ClassificationDistiller}
"""The per-task part of GKD, by task name (every task whose ``TaskSpec.supports_distillation`` is set)."""


def distiller_for(task: str | None) -> type[TaskDistiller]:
    """The :class:`TaskDistiller` of ``task``; ValueError naming the tasks that have one."""
    if task not in DISTILLERS:
        raise ValueError(f"distillation is implemented for {', '.join(DISTILLERS)} models, not {task!r}; "
                         "remove distill.teachers")
    return DISTILLERS[task]


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
    layer, which the P4 and P5 outputs are computed from; a classifier's head reads one layer, the last backbone
    layer, which is then the probe.
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
    """Task loss + GKD. Build with :meth:`build`; see the module docstring for the computation."""

    def __init__(self, task_loss: Callable, student: nn.Module, distiller: TaskDistiller,
                 balancer: GradientBalancer, fade_epochs: int = 0) -> None:
        self.task_loss, self.distiller, self.balancer, self.fade_epochs = task_loss, distiller, balancer, fade_epochs
        self.probe = last_shared_parameters(student)
        self.fade = 1.0
        self.scaler: torch.amp.GradScaler | None = None
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    @classmethod
    def build(cls, student: nn.Module, task_loss: Callable, section, teachers: Sequence | None = None
              ) -> DistillationLoss:
        """From a ``DistillSection`` (``teachers`` overrides ``section.teachers`` with specs or built models).

        The terms are checked before any teacher is loaded, so a wrong ``distill.terms`` fails at once.
        """
        distiller_type = distiller_for(getattr(student, "task", None))
        terms = distiller_type.resolve_terms(section.terms)
        device = next(student.parameters()).device
        frozen = load_teachers(list(teachers if teachers is not None else section.teachers), student, device,
                               half=section.teacher_half)
        distiller = distiller_type(student, frozen, terms, section.temperature)
        balancer = GradientBalancer(section.ratio, section.weighting, section.weight)
        return cls(task_loss, student, distiller, balancer, section.fade_epochs)

    @property
    def teachers(self) -> list[nn.Module]:
        return self.distiller.teachers

    @property
    def terms(self) -> tuple[str, ...]:
        return self.distiller.terms

    @property
    def temperature(self) -> float:
        return self.distiller.temperature

    def parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the loss itself (detection feature adapters); the trainer adds them to the
        optimiser."""
        return self.distiller.parameters()

    def wrap_trainable(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Call the trainable parts through ``wrap(module)`` from now on (e.g. DistributedDataParallel, so that
        their gradients are reduced over the ranks like the student's); their parameters stay those of
        :meth:`parameters`."""
        self.distiller.wrap_trainable(wrap)

    def use_grad_scaler(self, scaler: torch.amp.GradScaler | None) -> None:
        """Probe gradients at ``scaler``'s current scale (the scale of the real backward) from now on."""
        self.scaler = scaler

    def probe_scale(self) -> float:
        """The loss scale of the gradient probes: the GradScaler's current one when active, else PROBE_SCALE."""
        if self.scaler is not None and self.scaler.is_enabled():
            return float(self.scaler.get_scale())
        return PROBE_SCALE

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Set the fade-out factor for this epoch and reset the epoch metrics."""
        self.fade = fade_factor(epoch, epochs, self.fade_epochs)
        self._sums.clear()
        self._counts.clear()

    def __call__(self, outputs: Any, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        base, parts = self.task_loss(outputs, batch)
        images = batch["images"]
        taught = self.distiller.teach(images)  # under the caller's autocast, like the student's forward
        with torch.autocast(device_type=images.device.type, enabled=False):
            terms, raw = self.distiller.compute(outputs, taught)
        distill = sum(terms.values()) * self.distiller.batch_factor(outputs)
        norms = self._probe(base, distill) if torch.is_grad_enabled() else None
        weight = self._weight(norms)
        applied = self.fade * weight
        self._record(applied, weight, norms, raw)
        parts = {**parts, **{f"distill_{name}": value.detach() * applied for name, value in terms.items()}}
        return base + applied * distill, parts

    def _probe(self, base: torch.Tensor, distill: torch.Tensor) -> tuple[float, float]:
        """|d base / d probe| and |d distill / d probe|, averaged over the ranks (non-finite after an overflow).

        Each loss is probed at the scale the real backward carries it: the task loss at the loss scale, the
        distillation loss at the loss scale times the current weight (at most 1), since the balancer keeps the
        weighted distillation gradient near ``ratio`` times the task gradient, while unweighted it can be far
        larger and overflow fp16 where the real backward does not.
        """
        scale, weight = self.probe_scale(), self.balancer.weight
        distill_scale = scale * min(weight, 1.0) if weight > 0 else scale
        norms = torch.stack([self._probe_norm(base, scale), self._probe_norm(distill, distill_scale)])
        norm_task, norm_kd = (float(v) for v in average_across_ranks(norms.detach()))
        return norm_task, norm_kd

    def _probe_norm(self, loss: torch.Tensor, scale: float) -> torch.Tensor:
        """:func:`gradient_norm` at ``scale``; after an overflow once more at ``scale / PROBE_BACKOFF`` (e.g. the
        first steps, before the weight is known)."""
        norm = gradient_norm(loss, self.probe, scale)
        if not bool(torch.isfinite(norm)):
            norm = gradient_norm(loss, self.probe, scale / PROBE_BACKOFF)
        return norm

    def _weight(self, norms: tuple[float, float] | None) -> float:
        """The balancer's weight after folding in ``norms``; unchanged without norms or when they are not finite."""
        if norms is None:
            return self.balancer.weight
        if not all(math.isfinite(v) for v in norms):
            logger.debug("GKD gradient probe norms %s are not finite at loss scale %g nor %g times less (the loss "
                         "or its scaled backward overflowed): the distillation weight stays %g this step", norms,
                         self.probe_scale(), PROBE_BACKOFF, self.balancer.weight)
            return self.balancer.weight
        return self.balancer.update(*norms)

    def _record(self, applied: float, weight: float, norms: tuple[float, float] | None, raw: dict) -> None:
        values = {"weight": applied, "fade": self.fade, **{f"raw_{name}": value for name, value in raw.items()}}
        if norms is not None and all(math.isfinite(v) for v in norms):
            norm_task, norm_kd = norms
            values.update(grad_norm_det=norm_task, grad_norm_kd=norm_kd,
                          grad_ratio=weight * norm_kd / norm_task if norm_task > 0 else 0.0)
        for name, value in values.items():
            self._sums[name] += value
            self._counts[name] += 1

    def epoch_metrics(self) -> dict[str, float]:
        """Means over the steps since :meth:`start_epoch`: ``distill/weight``, ``distill/grad_norm_det``, ...

        Gradient norms average over the steps that measured them (finite probes, gradients enabled)."""
        return {f"distill/{name}": value / self._counts[name] for name, value in self._sums.items()}

    def state_dict(self) -> dict:
        """The training state a resume needs: the balancer's running norms and the adapters' weights (if any)."""
        return {"balancer": self.balancer.state_dict(), "adapters": self.distiller.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (in place: the adapters keep their parameters, so the optimiser's hold)."""
        self.balancer.load_state_dict(state.get("balancer", {}))
        self.distiller.load_state_dict(state.get("adapters"))


__all__ = ["DISTILLERS", "DistillationLoss", "FeatureTap", "distiller_for", "last_shared_layer",
           "last_shared_parameters"]
