"""The GKD gradient probes under fp16 autocast: small gradients must not be flushed to zero.

The probes take ``torch.autograd.grad`` of the task loss and of the distillation loss at the student's last shared
layer. Under fp16 autocast that backward runs through half-precision activations, where gradients below ~6e-8
become zero; without loss scaling the measured norm (and so the distillation weight) is wrong. The tests run the
real code path on CPU: the student's forward under ``torch.autocast("cpu", dtype=torch.float16)``, the loss called
inside it, as the training loop does.
"""

from __future__ import annotations

import copy
import logging

import pytest
import torch

from yolov12.config.train import DistillSection
from yolov12.engine.distill import DistillationLoss, gradient_norm
from yolov12.engine.losses import build_loss
from yolov12.models import build_model, load_architecture

NAMES = {0: "cat", 1: "dog", 2: "emu"}
DETECTION_BATCH = {"batch_index": torch.tensor([0, 1, 1]), "classes": torch.tensor([0, 2, 1]),
                   "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.3], [0.3, 0.6, 0.2, 0.2], [0.7, 0.3, 0.5, 0.5]])}
CLASSIFICATION_BATCH = {"classes": torch.tensor([0, 2])}
TINY_FACTOR = 1e-6  # shrinks the task loss until its activation gradients lie below fp16's smallest subnormal


class Shrunk:
    """A task loss times ``factor`` (a loss whose gradients are tiny, as late in training or with small gains)."""

    def __init__(self, loss, factor: float) -> None:
        self.loss, self.factor = loss, factor

    def __call__(self, outputs, batch: dict) -> tuple[torch.Tensor, dict]:
        value, parts = self.loss(outputs, batch)
        return value * self.factor, parts


def _model(name: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(load_architecture(name).with_overrides(num_classes=3), names=NAMES).train()
    for module in model.modules():  # running statistics: the fp16 and fp32 passes see the same normalisation
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    return model


def _opinionated(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for param in model.head.parameters():
            param.add_(torch.randn_like(param) * 0.5)
    return model


def _task_norm(name: str, batch: dict, fp16: bool, scaler: torch.amp.GradScaler | None = None) -> float:
    """The epoch's ``distill/grad_norm_det`` after one step of a GKD loss whose task loss is tiny."""
    student = _model(name, seed=0)
    teacher = _opinionated(copy.deepcopy(student))
    section = DistillSection(teachers=["<in memory>"], terms=["cls"])
    loss_fn = DistillationLoss.build(student, Shrunk(build_loss(student), TINY_FACTOR), section, teachers=[teacher])
    if scaler is not None:
        loss_fn.use_grad_scaler(scaler)
    with torch.autocast("cpu", dtype=torch.float16, enabled=fp16):
        outputs = student(batch["images"])
        loss_fn(outputs, batch)
    return loss_fn.epoch_metrics()["distill/grad_norm_det"]


@pytest.mark.parametrize(("name", "batch"), [("yolov12n", DETECTION_BATCH), ("yolov12n-cls", CLASSIFICATION_BATCH)])
def test_the_fp16_probe_measures_the_float32_norm(name: str, batch: dict) -> None:
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    batch = {**batch, "images": images}
    reference = _task_norm(name, batch, fp16=False)
    assert 1e-12 < reference < 1e-4  # tiny, and not zero in float32
    measured = _task_norm(name, batch, fp16=True)
    assert measured == pytest.approx(reference, rel=0.05), (measured, reference)


def test_the_probe_uses_the_grad_scalers_scale() -> None:
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    batch = {**CLASSIFICATION_BATCH, "images": images}
    reference = _task_norm("yolov12n-cls", batch, fp16=False)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**20)  # a scale a GradScaler grows to
    assert _task_norm("yolov12n-cls", batch, fp16=True, scaler=scaler) == pytest.approx(reference, rel=0.05)
    unscaled = torch.amp.GradScaler("cpu", init_scale=1.0)  # a scaler at 1: the probe sees what fp16 keeps
    assert _task_norm("yolov12n-cls", batch, fp16=True, scaler=unscaled) < 0.5 * reference


def test_gradient_norm_divides_the_scale_back() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
    images = torch.rand(2, 3, 16, 16)
    probe = list(net[0].parameters())
    reference = float(gradient_norm(net(images).sum() * 1e-8, probe))
    with torch.autocast("cpu", dtype=torch.float16):
        loss = net(images).float().sum() * 1e-8
    assert float(gradient_norm(loss, probe)) == 0.0  # fp16 flushes every activation gradient (~1e-8) to zero
    assert float(gradient_norm(loss, probe, scale=2.0**16)) == pytest.approx(reference, rel=0.02)


def test_an_overflowing_probe_keeps_the_weight(caplog: pytest.LogCaptureFixture) -> None:
    """A non-finite probe norm (the scaled backward overflowed) leaves the balancer as it was, said at debug level."""
    student = _model("yolov12n-cls", seed=0)
    teacher = _opinionated(copy.deepcopy(student))
    section = DistillSection(teachers=["<in memory>"], terms=["cls"])
    loss_fn = DistillationLoss.build(student, build_loss(student), section, teachers=[teacher])
    batch = {**CLASSIFICATION_BATCH, "images": torch.rand(2, 3, 32, 32)}
    loss_fn(student(batch["images"]), batch)
    norms = loss_fn.balancer.norms
    assert norms is not None
    loss_fn.use_grad_scaler(torch.amp.GradScaler("cpu", init_scale=2.0**40))  # 2^40 overflows fp16
    with caplog.at_level(logging.DEBUG, logger="yolov12.engine.distill"), torch.autocast("cpu", dtype=torch.float16):
        loss_fn(student(batch["images"]), batch)
    assert loss_fn.balancer.norms == norms
    lines = [r.getMessage() for r in caplog.records if "not finite" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    metrics = loss_fn.epoch_metrics()
    assert all(value == value and abs(value) != float("inf") for value in metrics.values()), metrics
