"""Typed architecture description parsed from model YAML (Ultralytics layout: ``scales``, ``backbone``, ``head``).

A YAML row is ``[from, repeats, module, args]``. Strings in ``args`` are never evaluated: ``nc`` means the number of
classes, ``None`` means None, anything else stays a string (e.g. ``"nearest"``).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from yolov12.nn.conv import BN_EPS, BN_MOMENTUM
from yolov12.tasks import TASKS

Task = Literal["detect", "classify"]
Family = Literal["yolov8", "yolo11", "yolov12"]
Version = Literal["v1.0", "turbo"]
VERSIONS: tuple[str, ...] = ("v1.0", "turbo")


class ArchitectureError(ValueError):
    """The model description is malformed; the message names the file, the row and the fix."""


@dataclass(frozen=True)
class Scale:
    """Compound scaling: repeats x ``depth``, channels x ``width`` capped at ``max_channels``."""

    depth: float
    width: float
    max_channels: int


def _finite_float(value: Any) -> float | None:
    """``value`` as a float when it is a finite int or float (not a bool); None otherwise."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) else None


def _shown(value: Any) -> str:
    """A short repr of a value read from a file (a huge int's repr is slow and long: only its size is shown)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class BatchNormSettings:
    """``eps`` and ``momentum`` of BatchNorm layers: what changes their output but no state dict holds.

    Attributes:
        eps: added to the running variance before normalising (a positive finite number).
        momentum: weight of a new batch in the running statistics, in [0, 1]; None means a cumulative average
            (PyTorch's meaning).

    Raises:
        ValueError: a value of the wrong type or out of range (the message names it).
    """

    eps: float
    momentum: float | None

    def __post_init__(self) -> None:
        eps = _finite_float(self.eps)
        if eps is None or eps <= 0:
            raise ValueError(f"BatchNorm eps must be a positive finite number, got {_shown(self.eps)}")
        momentum = None if self.momentum is None else _finite_float(self.momentum)
        if self.momentum is not None and (momentum is None or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"BatchNorm momentum must be a number in [0, 1] or None, got {_shown(self.momentum)}")
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "momentum", momentum)


# How each task's source builds its BatchNorms. Ultralytics' detection models set eps 1e-3 and momentum 0.03 on
# every BatchNorm (its ``initialize_weights``); its classification models, like the official YOLOv12 classifiers,
# keep PyTorch's defaults. eps is not in a state dict, so a classifier built with the detection values gives other
# outputs from the same weights.
BATCH_NORM_CONVENTIONS: dict[str, BatchNormSettings] = {
    "detect": BatchNormSettings(eps=BN_EPS, momentum=BN_MOMENTUM),
    "classify": BatchNormSettings(eps=1e-5, momentum=0.1),
}


@dataclass(frozen=True)
class LayerDef:
    """One row of the layer table."""

    source: int | tuple[int, ...]
    repeats: int
    module: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class ArchitectureConfig:
    """A model architecture at one scale, ready to build.

    Attributes:
        name: display name, e.g. ``"yolov12n"``.
        family: ``yolov8`` | ``yolo11`` | ``yolov12`` (decides which scale rules apply).
        version: YOLOv12 release, ``v1.0`` (paper / Ultralytics YOLO12) or ``turbo``; None for other families.
        task: ``detect`` or ``classify``.
        num_classes: classes the head predicts.
        scale: key into ``scales`` (``n``..``x``); None when the YAML has no scales.
        input_channels: image channels the first conv takes.
    """

    name: str
    family: Family
    task: Task
    num_classes: int
    backbone: tuple[LayerDef, ...]
    head: tuple[LayerDef, ...]
    scales: dict[str, Scale] = field(default_factory=dict)
    scale: str | None = None
    version: Version | None = None
    input_channels: int = 3

    @property
    def layers(self) -> tuple[LayerDef, ...]:
        return self.backbone + self.head

    @property
    def batch_norm(self) -> BatchNormSettings:
        """The BatchNorm ``eps`` / ``momentum`` every layer of this architecture is built with (by task)."""
        return BATCH_NORM_CONVENTIONS[self.task]

    @property
    def scale_factors(self) -> Scale:
        if not self.scales:
            return Scale(1.0, 1.0, 1 << 30)
        if self.scale not in self.scales:
            raise ArchitectureError(
                f"{self.name}: scale '{self.scale}' is not defined; available scales: {sorted(self.scales)}"
            )
        return self.scales[self.scale]

    def with_overrides(
        self, num_classes: int | None = None, input_channels: int | None = None, scale: str | None = None
    ) -> ArchitectureConfig:
        """Return a copy with another class count, input channel count or scale."""
        changes: dict[str, Any] = {}
        if num_classes is not None:
            changes["num_classes"] = _positive_int(num_classes, "num_classes")
        if input_channels is not None:
            changes["input_channels"] = _positive_int(input_channels, "input_channels")
        if scale is not None:
            changes["scale"] = scale
            changes["name"] = _scaled_name(self.name, scale)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (YAML/JSON-safe) that :meth:`from_dict` reads back."""
        row = lambda layer: [list(layer.source) if isinstance(layer.source, tuple) else layer.source,  # noqa: E731
                             layer.repeats, layer.module, list(layer.args)]
        return {
            "name": self.name, "family": self.family, "task": self.task, "version": self.version,
            "nc": self.num_classes, "ch": self.input_channels, "scale": self.scale,
            "scales": {k: [s.depth, s.width, s.max_channels] for k, s in self.scales.items()},
            "backbone": [row(layer) for layer in self.backbone], "head": [row(layer) for layer in self.head],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, name: str | None = None, origin: str = "<dict>") -> ArchitectureConfig:
        """Validate a YAML-style dict (ours or an Ultralytics/official ``model.yaml``)."""
        if not isinstance(data, dict):
            raise ArchitectureError(
                f"{origin}: expected a mapping with 'backbone' and 'head', got {type(data).__name__}"
            )
        data = copy.deepcopy(data)
        for key in ("backbone", "head"):
            if not isinstance(data.get(key), list) or not data[key]:
                raise ArchitectureError(f"{origin}: '{key}' must be a non-empty list of [from, repeats, module, args]")
        backbone = tuple(_parse_row(row, origin, f"backbone[{i}]") for i, row in enumerate(data["backbone"]))
        head = tuple(_parse_row(row, origin, f"head[{i}]") for i, row in enumerate(data["head"]))
        modules = {layer.module.removeprefix("nn.") for layer in backbone + head}
        task: Task = data.get("task") or ("classify" if "Classify" in modules else "detect")
        if task not in TASKS:
            raise ArchitectureError(f"{origin}: task '{task}' is not one of {tuple(TASKS)}")
        family = data.get("family") or _infer_family(modules)
        version = data.get("version")
        if family == "yolov12" and version is None:
            version = _infer_yolov12_version(backbone)
        if version is not None and version not in VERSIONS:
            raise ArchitectureError(f"{origin}: version '{version}' is not one of {VERSIONS}")
        scales = {k: _parse_scale(v, origin, k) for k, v in (data.get("scales") or {}).items()}
        scale = data.get("scale") or (next(iter(scales)) if scales else None)
        nc = _positive_int(data.get("nc", 80), f"{origin}: nc")
        return cls(
            name=name or str(data.get("name") or "model"), family=family, task=task, num_classes=nc,
            backbone=backbone, head=head, scales=scales, scale=scale, version=version,
            input_channels=_positive_int(data.get("ch", data.get("channels", 3)), f"{origin}: ch"),
        )

    @classmethod
    def from_yaml(cls, path: str | Path, *, scale: str | None = None) -> ArchitectureConfig:
        """Read a model YAML file. ``scale`` overrides the one implied by the file name (``yolov12s.yaml`` -> s)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ArchitectureError(f"model file '{path}' does not exist") from None
        except yaml.YAMLError as exc:
            raise ArchitectureError(f"model file '{path}' is not valid YAML: {exc}") from None
        config = cls.from_dict(data, name=path.stem, origin=str(path))
        return config.with_overrides(scale=scale) if scale else config


def _scaled_name(name: str, scale: str) -> str:
    match = re.match(r"^(yolov?\d+)([nsmlx])?(.*)$", name)
    return f"{match.group(1)}{scale}{match.group(3)}" if match else name


def _infer_yolov12_version(backbone: tuple[LayerDef, ...]) -> Version:
    """Turbo YAMLs give the P2 conv (layer 1) explicit padding and groups: ``[128, 3, 2, 1, 2]``."""
    return "turbo" if len(backbone) > 1 and len(backbone[1].args) >= 5 else "v1.0"


def _infer_family(modules: set[str]) -> Family:
    if "A2C2f" in modules:
        return "yolov12"
    if "C3k2" in modules:
        return "yolo11"
    return "yolov8"


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArchitectureError(f"{what} must be a positive integer, got {value!r}")
    return value


def _parse_scale(value: Any, origin: str, key: str) -> Scale:
    if not (isinstance(value, (list, tuple)) and len(value) == 3):
        raise ArchitectureError(f"{origin}: scale '{key}' must be [depth, width, max_channels], got {value!r}")
    return Scale(float(value[0]), float(value[1]), int(value[2]))


def _parse_row(row: Any, origin: str, where: str) -> LayerDef:
    if not (isinstance(row, (list, tuple)) and len(row) == 4):
        raise ArchitectureError(f"{origin}: {where} must be [from, repeats, module, args], got {row!r}")
    source, repeats, module, args = row
    if isinstance(source, list):
        source = tuple(source)
    if not (isinstance(source, int) or (isinstance(source, tuple) and all(isinstance(s, int) for s in source))):
        raise ArchitectureError(f"{origin}: {where}: 'from' must be an int or a list of ints, got {source!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ArchitectureError(f"{origin}: {where}: repeats must be a positive int, got {repeats!r}")
    if not isinstance(module, str):
        raise ArchitectureError(f"{origin}: {where}: module must be a name, got {module!r}")
    if not isinstance(args, (list, tuple)):
        raise ArchitectureError(f"{origin}: {where}: args must be a list, got {args!r}")
    return LayerDef(source, repeats, module, tuple(args))
