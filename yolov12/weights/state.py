"""Load a flat state dict into a model strictly, with an error that lists what does not fit."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from yolov12.weights.errors import StateDictMismatchError

SHOWN_KEYS = 5  # how many offending keys an error message lists


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], origin: str) -> None:
    """``model.load_state_dict(state_dict, strict=True)``, checked first so a mismatch names the keys.

    Tensors are copied into the model's own parameters (so an fp16 checkpoint fills an fp32 model).

    Raises:
        StateDictMismatchError: keys missing from ``state_dict``, keys the model does not have, or shapes that
            differ; the message lists the first few of each.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    reshaped = [f"{k} {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
                for k, v in state_dict.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if missing or unexpected or reshaped:
        name = getattr(getattr(model, "config", None), "name", type(model).__name__)
        problems = (("missing", missing), ("unexpected", unexpected), ("with another shape", reshaped))
        parts = [f"{len(items)} {label} (e.g. {', '.join(items[:SHOWN_KEYS])})" for label, items in problems if items]
        raise StateDictMismatchError(
            f"{origin}: the tensors do not fit the architecture '{name}': {'; '.join(parts)}. The weights belong to "
            "another architecture, scale, YOLOv12 version or class count; build the model from the checkpoint's own "
            "architecture"
        )
    model.load_state_dict(dict(state_dict), strict=True)
