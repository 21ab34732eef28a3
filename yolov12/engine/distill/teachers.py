"""Frozen teachers for distillation: loading, consistency checks, and their forwards (detector maps and features,
classifier logits)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from yolov12.models.loading import ARCHITECTURE_SUFFIXES, load_model
from yolov12.tasks import TASKS

logger = logging.getLogger(__name__)


class TeacherError(ValueError):
    """A teacher cannot distil into this student (another task, other classes or strides, missing file)."""


@dataclass
class TeacherOutput:
    """Raw head maps [(B, 4*reg_max + nc, H_i, W_i)] and the head's input features [(B, C_i, H_i, W_i)]."""

    maps: list[torch.Tensor]
    features: list[torch.Tensor]


def _build(spec: str | Path | nn.Module) -> nn.Module:
    """A built teacher as given, else :func:`yolov12.models.load_model` of the checkpoint, zoo name or YAML."""
    if isinstance(spec, nn.Module):
        return spec
    path = Path(spec)
    if path.suffix.lower() in ARCHITECTURE_SUFFIXES or not path.suffix:
        logger.warning("teacher '%s' is built from its architecture: random weights teach nothing useful", spec)
    try:
        return load_model(spec)
    except (OSError, ValueError) as exc:
        raise TeacherError(f"cannot load teacher '{spec}': {exc}") from None


TEACHER_EXAMPLES = {"detect": "detectors (e.g. a larger yolov12s trained on the same classes)",
                    "classify": "classifiers (e.g. a larger yolov12s-cls trained on the same classes)"}
"""What a student of each task distils from, for messages."""


def check_compatible(teacher: nn.Module, student: nn.Module, label: str) -> None:
    """Raise :class:`TeacherError` unless ``teacher`` has the student's task and classes (and a detector's strides)."""
    task, student_task = getattr(teacher, "task", None), getattr(student, "task", None)
    if task != student_task or task not in TASKS or not TASKS[task].supports_distillation:
        wanted = TEACHER_EXAMPLES.get(student_task, f"{_kind(student_task)} models")
        raise TeacherError(f"teacher {label} is a {_kind(task)} model and the student a {_kind(student_task)} "
                           f"model; the student distils from {wanted}")
    if list(teacher.names.values()) != list(student.names.values()):
        raise TeacherError(f"teacher {label} predicts classes {list(teacher.names.values())[:10]} but the student "
                           f"has {list(student.names.values())[:10]}; use a teacher trained on the same class set")
    if check := TASK_CHECKS.get(task):
        check(teacher, student, label)


def _kind(task: object) -> str:
    return TASKS[task].description if isinstance(task, str) and task in TASKS else repr(task)


def check_detection_geometry(teacher: nn.Module, student: nn.Module, label: str) -> None:
    """Detectors: the teacher's anchors must coincide with the student's (same strides) and it needs DFL bins."""
    if not torch.equal(teacher.stride.cpu().float(), student.stride.cpu().float()):
        raise TeacherError(f"teacher {label} has strides {teacher.stride.tolist()}, the student "
                           f"{student.stride.tolist()}; anchors must coincide, so pick a teacher with the same strides")
    if teacher.head.reg_max < 2:
        raise TeacherError(f"teacher {label} has no DFL bins (reg_max {teacher.head.reg_max}); the box term needs them")


TASK_CHECKS: dict[str, Callable[[nn.Module, nn.Module, str], None]] = {"detect": check_detection_geometry}
"""Checks beyond task and classes, by task (a classifier's logits need nothing more)."""


def load_teachers(specs: Sequence[str | Path | nn.Module], student: nn.Module, device: torch.device | str,
                  half: bool = False) -> list[nn.Module]:
    """Frozen teachers (eval mode, no gradients) on ``device``; fp16 when ``half`` and the device is CUDA.

    Args:
        specs: checkpoint paths, zoo names or built models.
        student: the (unwrapped) student model, already adapted to the dataset's classes.
        device: where the student trains.
    """
    if not specs:
        raise TeacherError("distillation needs at least one teacher: set distill={'teachers': ['teacher.safetensors']}")
    device = torch.device(device)
    teachers = []
    for spec in specs:
        teacher = _build(spec)
        check_compatible(teacher, student, f"'{spec}'" if not isinstance(spec, nn.Module) else type(spec).__name__)
        teacher = teacher.to(device).eval().requires_grad_(False)
        if half and device.type == "cuda":
            teacher = teacher.half()
        teachers.append(teacher)
    if half and device.type != "cuda":
        logger.info("teacher_half is ignored on %s: teachers run in fp32", device)
    return teachers


@torch.no_grad()
def teacher_forward(teacher: nn.Module, images: torch.Tensor) -> TeacherOutput:
    """One forward of a frozen teacher on the student's (augmented) batch; outputs in float32."""
    dtype = next(teacher.parameters()).dtype
    _, outputs = teacher.run_layers(images.to(dtype), stop=-1)
    source = teacher.layers[-1].source
    features = [outputs[s] for s in (source if isinstance(source, tuple) else (source,))]
    maps = teacher.head.forward_maps(features)
    return TeacherOutput([m.float() for m in maps], [f.float() for f in features])


@contextlib.contextmanager
def _head_returns_logits(head: nn.Module) -> Iterator[None]:
    """Within the block, a classifier head in eval mode returns logits rather than softmax probabilities.

    The :class:`~yolov12.nn.heads.Classify` head applies softmax when its own ``training`` flag is off; only that
    flag changes here, so its BatchNorm and dropout children stay in eval mode. Logits, not log-probabilities of
    the softmax output, keep a confident fp16 teacher's small probabilities (which underflow to 0) usable at T > 1.
    """
    was_training = head.training
    head.training = True
    try:
        yield
    finally:
        head.training = was_training


@torch.no_grad()
def teacher_logits(teacher: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, nc) float32 logits of a frozen classifier teacher on the student's (augmented) batch."""
    dtype = next(teacher.parameters()).dtype
    features = teacher.forward_layers(images.to(dtype), stop=-1)
    with _head_returns_logits(teacher.head):
        return teacher.head(features).float()
