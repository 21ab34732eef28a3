"""Load a flat state dict into a model strictly, with an error that lists what does not fit."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from yolov12.weights.errors import StateDictMismatchError

SHOWN_KEYS = 5  # how many offending keys an error message lists

Shapes = Mapping[str, tuple[int, ...]]


def check_shapes(expected: Shapes, given: Shapes, architecture: str, origin: str) -> None:
    """Raise :class:`StateDictMismatchError` unless ``given`` has exactly the keys and shapes of ``expected``.

    Args:
        expected: the model's state-dict shapes (e.g. of a model built on the meta device).
        given: the checkpoint's tensor shapes.
        architecture: the model's name, shown in the message.
        origin: the checkpoint, shown in the message.
    """
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    reshaped = [f"{k} {tuple(v)} vs model {tuple(expected[k])}"
                for k, v in given.items() if k in expected and tuple(v) != tuple(expected[k])]
    if missing or unexpected or reshaped:
        problems = (("missing", missing), ("unexpected", unexpected), ("with another shape", reshaped))
        parts = [f"{len(items)} {label} (e.g. {', '.join(items[:SHOWN_KEYS])})" for label, items in problems if items]
        raise StateDictMismatchError(
            f"{origin}: the tensors do not fit the architecture '{architecture}': {'; '.join(parts)}. The weights "
            "belong to another architecture, scale, YOLOv12 version or class count; build the model from the "
            "checkpoint's own architecture"
        )


def state_shapes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key -> shape of every tensor in ``state_dict``."""
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], origin: str) -> None:
    """``model.load_state_dict(state_dict, strict=True)``, checked first so a mismatch names the keys.

    Tensors are copied into the model's own parameters (so an fp16 checkpoint fills an fp32 model).

    Raises:
        StateDictMismatchError: keys missing from ``state_dict``, keys the model does not have, or shapes that
            differ; the message lists the first few of each.
    """
    name = getattr(getattr(model, "config", None), "name", type(model).__name__)
    check_shapes(state_shapes(model.state_dict()), state_shapes(state_dict), name, origin)
    model.load_state_dict(dict(state_dict), strict=True)
