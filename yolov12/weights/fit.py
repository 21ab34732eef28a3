"""Check a file's tensors against the architecture it records before the model is built for real.

A checkpoint names its architecture as data (native metadata JSON, an Ultralytics ``model.yaml``); building that
model is the largest allocation a loader makes, and a hostile file can name any size. So the model is first built on
the ``meta`` device (shapes, no memory), its state-dict keys and shapes are compared with the file's tensors, and its
size is checked against the file's :class:`~yolov12.weights.budget.AllocationBudget`; only then is it built.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as module_hooks

from yolov12.models.architecture import ArchitectureConfig
from yolov12.models.model import YOLOModel, build_model
from yolov12.models.registry import UnknownLayerError, lookup_layer_type
from yolov12.weights.budget import AllocationBudget
from yolov12.weights.errors import (
    CheckpointArchitectureError,
    CheckpointError,
    StateDictMismatchError,
    UnknownCheckpointLayerError,
)
from yolov12.weights.state import Shapes, check_shapes, state_shapes

__all__ = ["architecture_from_dict", "build_checked", "check_fits", "meta_model"]

# Every zoo model registers about 2.3 modules + parameters + buffers per state-dict tensor; a model registering far
# more cannot be filled by the file's tensors, so its meta build stops there (a layer table can ask for millions).
REGISTRATIONS_PER_TENSOR = 4
REGISTRATION_SLACK = 64


def architecture_from_dict(
    data: Any, origin: str, name: str | None = None, error: type[CheckpointError] = CheckpointArchitectureError,
) -> ArchitectureConfig:
    """:meth:`ArchitectureConfig.from_dict` for a document read from a file: any failure becomes ``error``."""
    try:
        return ArchitectureConfig.from_dict(data, name=name, origin=origin)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        # ValueError covers ArchitectureError; the others come from values of the wrong type (a list as the scale).
        raise error(f"{origin}: the recorded architecture is invalid: {_message(exc)}") from None


def meta_model(config: ArchitectureConfig, names: dict[int, str] | None, origin: str, shapes: Shapes) -> YOLOModel:
    """``config`` built on the meta device (no memory for tensors), stopping early if it is far larger than a model
    whose state dict is ``shapes`` (the file's tensors) could be.

    Raises:
        UnknownCheckpointLayerError: a module the registry lacks.
        CheckpointArchitectureError: the layer table cannot be built (bad arguments, wrong head).
        StateDictMismatchError: more classes than any tensor holds, or far more modules and parameters than
            ``shapes`` has entries.
    """
    with _converted_errors(config, origin):  # an unknown module is the clearest message: named first
        for index, layer in enumerate(config.layers):
            lookup_layer_type(layer.module, f"{config.name} layer {index} ({layer.module}): ")
    largest = max((math.prod(shape) for shape in shapes.values()), default=0)
    if config.num_classes > largest:  # checked before the build: without names, the model would name every class
        raise StateDictMismatchError(
            f"{origin}: the architecture '{config.name}' has {config.num_classes} classes, but the largest tensor in "
            f"the file holds {largest} values, so the weights cannot belong to it")
    limit = REGISTRATIONS_PER_TENSOR * len(shapes) + REGISTRATION_SLACK
    with _converted_errors(config, origin), torch.device("meta"), \
            _registration_limit(limit, config, origin, len(shapes)):
        return YOLOModel(config, names)


def build_checked(config: ArchitectureConfig, names: dict[int, str] | None, origin: str) -> YOLOModel:
    """:func:`build_model` of an architecture that passed :func:`check_fits`; a failure names the file."""
    with _converted_errors(config, origin):
        return build_model(config, names=names)


def check_fits(
    config: ArchitectureConfig, names: dict[int, str] | None, shapes: Shapes, origin: str, budget: AllocationBudget,
) -> None:
    """Refuse the file unless ``shapes`` (its tensors) are exactly the state dict of ``config`` and that model fits
    ``budget``; nothing is allocated for the model's tensors.

    Raises:
        StateDictMismatchError: other keys or shapes (the message lists them), or more classes than any tensor holds.
        CheckpointTooLargeError: the model would need more memory than the file's budget.
        CheckpointArchitectureError: the architecture cannot be built.
    """
    model = meta_model(config, names, origin, shapes)
    check_shapes(state_shapes(model.state_dict()), shapes, config.name, origin)
    tensors = [*model.parameters(), *model.buffers()]
    budget.check_alone(sum(t.numel() * t.element_size() for t in tensors), f"the model '{config.name}' it describes")


@contextmanager
def _converted_errors(config: ArchitectureConfig, origin: str) -> Iterator[None]:
    """Errors of the layer constructors (fed arguments from the file) as checkpoint errors naming the file."""
    try:
        yield
    except CheckpointError:
        raise
    except UnknownLayerError as exc:
        raise UnknownCheckpointLayerError(f"{origin}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the layer table comes from the file: any constructor error means "unbuildable"
        raise CheckpointArchitectureError(
            f"{origin}: the recorded architecture '{config.name}' cannot be built ({_message(exc)}); the file is "
            "damaged or was written for other code") from None


@contextmanager
def _registration_limit(limit: int, config: ArchitectureConfig, origin: str, tensors: int) -> Iterator[None]:
    """Stop a model build on this thread once it registers more than ``limit`` modules, parameters and buffers."""
    thread, count = threading.get_ident(), 0

    def hook(module: nn.Module, name: str, value: Any) -> None:
        nonlocal count
        if threading.get_ident() != thread:
            return
        count += 1
        if count > limit:
            raise StateDictMismatchError(
                f"{origin}: the architecture '{config.name}' has more than {limit} modules, parameters and buffers, "
                f"far more than the file's {tensors} tensors can fill; the weights do not belong to it")

    handles = [module_hooks.register_module_module_registration_hook(hook),
               module_hooks.register_module_parameter_registration_hook(hook),
               module_hooks.register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _message(exc: BaseException, limit: int = 400) -> str:
    """``Type: message``, cut to ``limit`` characters (messages may quote values from the file)."""
    text = str(exc)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
