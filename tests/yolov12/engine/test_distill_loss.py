"""DistillationLoss on real models: zero-disagreement teachers, incompatible teachers, DDP-wrapped students."""

from __future__ import annotations

import copy
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from yolov12.config.train import DistillSection
from yolov12.engine.distill import DistillationLoss, TeacherError
from yolov12.engine.distill.loss import last_shared_layer, last_shared_parameters
from yolov12.engine.losses import build_loss
from yolov12.models import build_model, load_architecture

NAMES = {0: "cat", 1: "dog", 2: "emu"}
BATCH = {"batch_index": torch.tensor([0, 1, 1]), "classes": torch.tensor([0, 2, 1]),
         "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.3], [0.3, 0.6, 0.2, 0.2], [0.7, 0.3, 0.5, 0.5]])}


def _student(name: str = "yolov12n", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(load_architecture(name).with_overrides(num_classes=3), names=NAMES).train()
    for module in model.modules():  # BatchNorm on running statistics, so a frozen copy computes the same maps
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    return model


def _trained_like(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Freshly initialised heads all predict the same prior; give this one confident, different opinions."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.head.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def _extra_gradient(student, teacher, terms) -> tuple[dict, list[torch.Tensor]]:
    section = DistillSection(teachers=["<in memory>"], terms=terms, temperature=2.0)
    loss_fn = DistillationLoss.build(student, build_loss(student), section, teachers=[teacher])
    batch = {**BATCH, "images": torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))}
    maps = student(batch["images"])
    total, parts = loss_fn(maps, batch)
    detection, _ = loss_fn.task_loss(maps, batch)
    params = [p for p in student.parameters() if p.requires_grad]
    grads = torch.autograd.grad(total - detection, params, allow_unused=True)
    return parts, [g for g in grads if g is not None]


def test_a_teacher_identical_to_the_student_contributes_zero_gradient() -> None:
    student = _student()
    parts, grads = _extra_gradient(student, copy.deepcopy(student), ["cls", "box", "feat"])
    assert {"distill_cls", "distill_box", "distill_feat", "box", "cls", "dfl"} <= set(parts)
    assert all(float(parts[f"distill_{t}"]) == 0.0 for t in ("cls", "box", "feat"))
    assert max(float(g.abs().max()) for g in grads) < 1e-7


def test_a_different_teacher_does_pull_the_student() -> None:
    student = _student()
    teacher = _trained_like(_student("yolov12n", seed=1), seed=1)  # same architecture, other weights
    parts, grads = _extra_gradient(student, teacher, ["cls", "box"])
    assert float(parts["distill_cls"]) > 0 and float(parts["distill_box"]) > 0
    assert max(float(g.abs().max()) for g in grads) > 1e-6


def test_a_wider_teacher_and_feature_adapters() -> None:
    student, teacher = _student(), _trained_like(_student("yolov12s-dyhead", seed=2), seed=2)
    section = DistillSection(teachers=["<in memory>"], terms=["cls", "feat"])
    loss_fn = DistillationLoss.build(student, build_loss(student), section, teachers=[teacher])
    assert loss_fn.parameters() and all(p.requires_grad for p in loss_fn.parameters())
    assert not any(p.requires_grad for p in loss_fn.teachers[0].parameters()) and not loss_fn.teachers[0].training
    batch = {**BATCH, "images": torch.rand(2, 3, 64, 64)}
    total, parts = loss_fn(student(batch["images"]), batch)
    total.backward()
    assert any(float(p.grad.abs().sum()) > 0 for p in loss_fn.parameters())
    copied = copy.deepcopy(student)  # e.g. the EMA model: its copy of the feature hook stays empty
    copied(batch["images"])
    assert all(not getattr(h, "enabled", False) for h in copied.head._forward_pre_hooks.values())
    metrics = loss_fn.epoch_metrics()
    assert {"distill/weight", "distill/grad_norm_det", "distill/grad_norm_kd", "distill/grad_ratio"} <= set(metrics)
    assert metrics["distill/grad_norm_kd"] > 0 and metrics["distill/weight"] > 0


def test_incompatible_teachers_are_refused_with_the_reason(tmp_path: Path) -> None:
    student = _student()
    other_classes = build_model(load_architecture("yolov12n").with_overrides(num_classes=3),
                                names={0: "cat", 1: "dog", 2: "yak"})
    section = DistillSection(teachers=["x"])
    with pytest.raises(TeacherError, match="same class set"):
        DistillationLoss.build(student, build_loss(student), section, teachers=[other_classes])
    other_strides = copy.deepcopy(student)
    other_strides.head.stride = torch.tensor([4.0, 8.0, 16.0])
    with pytest.raises(TeacherError, match="strides"):
        DistillationLoss.build(student, build_loss(student), section, teachers=[other_strides])
    with pytest.raises(TeacherError, match="does not exist"):
        DistillationLoss.build(student, build_loss(student), section, teachers=[str(tmp_path / "missing.safetensors")])
    classifier = build_model(load_architecture("yolov12n-cls").with_overrides(num_classes=3), names=NAMES)
    with pytest.raises(TeacherError, match="classification model.*detectors"):
        DistillationLoss.build(student, build_loss(student), section, teachers=[classifier])


def _ddp_worker(rank: int, port: int, out: Path) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        student = _student()
        teacher = _trained_like(_student(seed=1), seed=1)
        ddp = torch.nn.parallel.DistributedDataParallel(student)
        section = DistillSection(teachers=["<in memory>"], terms=["cls", "box"])
        loss_fn = DistillationLoss.build(student, build_loss(student), section, teachers=[teacher])
        images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(10 + rank))  # per-rank data
        batch = {**BATCH, "images": images}
        total, _ = loss_fn(ddp(images), batch)
        total.backward()
        grad = torch.cat([p.grad.flatten() for p in student.parameters() if p.grad is not None])
        torch.save({"weight": loss_fn.balancer.weight, "grad": grad}, out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_gradient_probe_under_distributed_data_parallel(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, tmp_path), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[0]["weight"] > 0 and ranks[0]["weight"] == ranks[1]["weight"]  # norms averaged across ranks
    torch.testing.assert_close(ranks[0]["grad"], ranks[1]["grad"])  # DDP still all-reduced the real backward


@pytest.mark.parametrize(("name", "expected"), [("yolov12n", 14), ("yolov12n-aff-dyhead", 12), ("yolo11n", 16)])
def test_the_gradient_probe_sits_where_every_head_level_passes(name: str, expected: int) -> None:
    """Each level's output alone has a gradient at the probe (the P5 output layer would see only the P5 level)."""
    student = _student(name)
    assert last_shared_layer(student) == expected
    probe = last_shared_parameters(student)
    maps = student(torch.rand(1, 3, 64, 64))
    for level, level_map in enumerate(maps):
        grads = torch.autograd.grad(level_map.sum(), probe, retain_graph=True, allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads), f"level {level} never reaches the probe"
    head_inputs = student.layers[-1].source
    for later in range(expected + 1, len(student.layers) - 1):  # no deeper layer feeds all of them
        assert not all(later == s or later in _ancestors(student, s) for s in head_inputs), later


def _ancestors(student: torch.nn.Module, index: int) -> set[int]:
    """Every layer whose output ``index`` is computed from (``-1`` in a source: the previous layer)."""
    found, todo = set(), [index]
    while todo:
        current = todo.pop()
        source = student.layers[current].source
        for s in source if isinstance(source, tuple) else (source,):
            s = s if s >= 0 else current + s
            if s >= 0 and s not in found:
                found.add(s)
                todo.append(s)
    return found
