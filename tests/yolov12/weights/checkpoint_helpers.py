"""Helpers for the checkpoint tests: small models and synthetic Ultralytics-style ``.pt`` files."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from support.models import perturb_batchnorm
from torch import nn

from yolov12.models import ArchitectureConfig, build_model, load_architecture

ULTRALYTICS_YAML_KEYS = ("nc", "scales", "backbone", "head", "scale")


def make_model(name: str, num_classes: int, seed: int = 0) -> nn.Module:
    config = load_architecture(name).with_overrides(num_classes=num_classes)
    names = {i: f"thing{i}" for i in range(num_classes)}
    torch.manual_seed(seed)
    return perturb_batchnorm(build_model(config, names=names), seed)


def ultralytics_yaml(config: ArchitectureConfig, *, keep_scale: bool = True) -> dict[str, Any]:
    """The ``model.yaml`` dict an Ultralytics model records (no family/version/task keys)."""
    data = config.to_dict()
    yaml = {key: data[key] for key in ULTRALYTICS_YAML_KEYS if key in data}
    yaml["channels"] = data["ch"]
    yaml["yaml_file"] = f"{config.name}.yaml"
    if not keep_scale:
        yaml.pop("scale")
    return yaml


def generic_module_tree(module: nn.Module, half: bool = False) -> nn.Module:
    """Copy a module tree into plain ``torch.nn.Module`` objects (pickled as ``torch.nn.modules.module.Module``).

    This is how a foreign checkpoint looks to the restricted unpickler: classes it does not know holding
    ``_parameters``, ``_buffers`` and ``_modules``.
    """
    generic = nn.Module()
    cast = (lambda t: t.half() if t is not None and t.is_floating_point() else t) if half else (lambda t: t)
    generic._parameters = OrderedDict(
        (k, None if v is None else nn.Parameter(cast(v.detach().clone()), requires_grad=v.requires_grad))
        for k, v in module._parameters.items())
    generic._buffers = OrderedDict((k, None if v is None else cast(v.clone())) for k, v in module._buffers.items())
    generic._non_persistent_buffers_set = set(module._non_persistent_buffers_set)
    generic._modules = OrderedDict((k, generic_module_tree(v, half)) for k, v in module._modules.items())
    return generic


def save_ultralytics_style(
    path: Path, model: nn.Module, yaml: dict[str, Any], *, half: bool = True, extra: dict[str, Any] | None = None,
) -> Path:
    """Write a ``.pt`` shaped like an Ultralytics release: ``{"model": <module>, "ema": None, "train_args": ...}``."""
    root = generic_module_tree(model, half=half)
    root.yaml = yaml
    if hasattr(model, "names"):
        root.names = dict(model.names)
    root.task = getattr(model, "task", "detect")
    checkpoint = {
        "date": "2025-02-18T10:00:00", "version": "8.3.0", "model": root, "ema": None,
        "train_args": {"imgsz": 320, "epochs": 3, "data": Path("datasets/toy.yaml"), "lr0": 0.01},
    }
    checkpoint.update(extra or {})
    torch.save(checkpoint, path)
    return path


def model_outputs(model: nn.Module, size: int = 64) -> torch.Tensor:
    """Eval-mode outputs of ``model`` on a fixed random (2, 3, size, size) input."""
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model.eval()(x)
