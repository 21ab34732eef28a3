"""GKD for classifiers: logit KL at temperature T, classifier-only teachers and terms, resumable balancer state."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F

from yolov12.config.train import DistillSection
from yolov12.engine.distill import DistillationLoss, TeacherError
from yolov12.engine.distill.loss import DISTILLERS, last_shared_layer
from yolov12.engine.distill.terms import logit_kl
from yolov12.engine.losses import build_loss
from yolov12.models import build_model, load_architecture
from yolov12.tasks import TASKS

NAMES = {0: "cat", 1: "dog", 2: "emu"}
BATCH = {"classes": torch.tensor([0, 2, 1, 1])}


def _classifier(name: str = "yolov12n-cls", seed: int = 0, names: dict[int, str] = NAMES) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(load_architecture(name).with_overrides(num_classes=len(names)), names=names).train()
    for module in model.modules():  # running statistics, so that a frozen copy computes the same logits
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    return model


def _opinionated(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """An untrained head predicts nearly uniform classes; give this one confident, different opinions."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.head.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def _loss(student: torch.nn.Module, teacher: torch.nn.Module, **section) -> DistillationLoss:
    config = DistillSection(teachers=["<in memory>"], **section)
    return DistillationLoss.build(student, build_loss(student), config, teachers=[teacher])


def _batch(seed: int = 1) -> dict:
    return {**BATCH, "images": torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(seed))}


def test_logit_kl_is_zero_for_equal_logits_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 7) * 3
    teacher = (logits / 2.0).log_softmax(-1)
    assert torch.equal(logit_kl(logits, teacher, 2.0), torch.zeros(5))
    other = (torch.randn(5, 7) * 3 / 2.0).log_softmax(-1)
    assert (logit_kl(logits, other, 2.0) > 0).all()


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_logit_kl_is_the_softened_kl_times_t_squared(temperature: float) -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 5) * 2, torch.randn(6, 5) * 2
    softened = F.kl_div((student / temperature).log_softmax(-1), (teacher / temperature).softmax(-1),
                        reduction="none").sum(-1)
    expected = softened * temperature**2
    torch.testing.assert_close(logit_kl(student, (teacher / temperature).log_softmax(-1), temperature), expected)


def test_t_squared_keeps_the_gradient_scale_at_high_temperature() -> None:
    """Without T^2 the gradient would shrink like 1/T; with it, it tends to (z_s - z_t) / nc for zero-mean logits."""
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 5) * 2, torch.randn(6, 5) * 2
    student, teacher = student - student.mean(-1, keepdim=True), teacher - teacher.mean(-1, keepdim=True)
    z = student.clone().requires_grad_(True)
    logit_kl(z, (teacher / 1000.0).log_softmax(-1), 1000.0).sum().backward()
    torch.testing.assert_close(z.grad, (student - teacher) / 5, rtol=0.02, atol=5e-3)


def test_a_teacher_equal_to_the_student_adds_nothing() -> None:
    student = _classifier()
    loss_fn = _loss(student, copy.deepcopy(student))
    assert loss_fn.terms == ("cls",)  # the classifier default, from an empty distill.terms
    batch = _batch()
    logits = student(batch["images"])
    total, parts = loss_fn(logits, batch)
    base, _ = loss_fn.task_loss(logits, batch)
    assert float(parts["distill_cls"]) == 0.0 and set(parts) == {"cls", "distill_cls"}
    assert float((total - base).detach()) == 0.0


def test_a_different_teacher_pulls_the_student_and_is_weighted_by_the_balancer() -> None:
    student = _classifier()
    teacher = _opinionated(_classifier("yolov12s-cls", seed=1), seed=1)  # a larger classifier, same classes
    loss_fn = _loss(student, teacher, ratio=0.5, temperature=2.0)
    batch = _batch()
    logits = student(batch["images"])
    total, parts = loss_fn(logits, batch)
    base, _ = loss_fn.task_loss(logits, batch)
    assert float(parts["distill_cls"]) > 0
    probe = [p for p in student.model[last_shared_layer(student)].parameters() if p.requires_grad]
    grads = torch.autograd.grad(total - base, probe, retain_graph=True)
    assert max(float(g.abs().max()) for g in grads) > 0
    metrics = loss_fn.epoch_metrics()
    assert metrics["distill/grad_norm_kd"] > 0 and metrics["distill/grad_norm_det"] > 0
    # first step: the weight sets the weighted distillation gradient to ratio x the task gradient at the probe
    assert metrics["distill/grad_ratio"] == pytest.approx(0.5)
    raw = metrics["distill/raw_cls"]
    assert float(parts["distill_cls"]) == pytest.approx(raw * metrics["distill/weight"], rel=1e-5)


def test_the_classifier_probe_is_the_layer_feeding_the_head() -> None:
    student = _classifier()
    assert last_shared_layer(student) == len(student.layers) - 2  # the head's input (the last backbone layer)


def test_a_detection_teacher_is_refused_for_a_classifier_in_one_line() -> None:
    detector = build_model(load_architecture("yolov12n").with_overrides(num_classes=3), names=NAMES)
    with pytest.raises(TeacherError, match="detection model.*classifiers") as caught:
        _loss(_classifier(), detector)
    assert "\n" not in str(caught.value)


def test_a_classifier_teacher_is_refused_for_a_detector_in_one_line() -> None:
    detector = build_model(load_architecture("yolov12n").with_overrides(num_classes=3), names=NAMES).train()
    section = DistillSection(teachers=["<in memory>"])
    with pytest.raises(TeacherError, match="classification model.*detectors") as caught:
        DistillationLoss.build(detector, build_loss(detector), section, teachers=[_classifier()])
    assert "\n" not in str(caught.value)


def test_a_classifier_teacher_with_other_classes_is_refused() -> None:
    other = _classifier(names={0: "cat", 1: "dog", 2: "yak"})
    with pytest.raises(TeacherError, match="same class set"):
        _loss(_classifier(), other)


@pytest.mark.parametrize("term", ["box", "feat"])
def test_detection_terms_are_refused_for_a_classifier_in_one_line(term: str) -> None:
    student = _classifier()
    with pytest.raises(ValueError, match=rf"distill.terms: '{term}'.*\['cls'\]") as caught:
        _loss(student, copy.deepcopy(student), terms=["cls", term])
    assert "\n" not in str(caught.value)


def test_every_task_that_supports_distillation_has_a_distiller() -> None:
    supported = {name for name, spec in TASKS.items() if spec.supports_distillation}
    assert supported == set(DISTILLERS)


def test_balancer_and_fade_state_round_trip_through_a_saved_state() -> None:
    student = _classifier()
    teacher = _opinionated(_classifier(seed=1), seed=1)
    loss_fn = _loss(student, teacher, fade_epochs=2)
    loss_fn.start_epoch(8, 10)
    batch = _batch()
    for _ in range(2):
        loss_fn(student(batch["images"]), batch)
    buffer = io.BytesIO()
    torch.save(loss_fn.state_dict(), buffer)  # as the resume state is written and read
    buffer.seek(0)
    resumed = _loss(student, teacher, fade_epochs=2)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.balancer.norms == loss_fn.balancer.norms and resumed.balancer.norms is not None
    resumed.start_epoch(8, 10)
    assert resumed.fade == loss_fn.fade == pytest.approx(2 / 3)
    assert resumed.balancer.weight == loss_fn.balancer.weight > 0
    assert math.isfinite(resumed.balancer.weight)
