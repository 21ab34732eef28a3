"""``load_model(spec)``: one way to get a PyTorch YOLO model from an architecture name or file, or from weights.

A spec is one of:

- a zoo name or a model YAML: ``"yolov12n"``, ``"yolov12n.yaml"``, ``"yolov12s-cls.yaml"``, ``"path/to/model.yaml"``
  (built with random weights);
- native weights, a ``.safetensors`` file with the JSON metadata :func:`yolov12.weights.save_checkpoint` writes;
- an Ultralytics / official YOLOv12 ``.pt`` / ``.pth`` checkpoint, read by the restricted importer
  (:func:`yolov12.weights.import_checkpoint`; no code in the pickle runs);
- an already built :class:`YOLOModel`, returned as is.

Exported models (ONNX, OpenVINO, TensorRT) are not PyTorch models: :func:`yolov12.engines.load_engine` or
``YOLO(path)`` run them. Nothing is ever downloaded.

Example:
    >>> from yolov12.models import load_model
    >>> model = load_model("yolov12n.yaml")
    >>> model.task, model.num_classes
    ('detect', 80)
    >>> model = load_model("runs/train/exp/weights/best.safetensors", device="cuda")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from yolov12.models.architecture import ArchitectureConfig
from yolov12.models.model import YOLOModel, build_model
from yolov12.models.zoo import UnknownModelError, load_architecture

if TYPE_CHECKING:
    from yolov12.weights.metadata import CheckpointMetadata

__all__ = ["ARCHITECTURE_SUFFIXES", "ModelLoadError", "load_model", "load_model_with_metadata"]

logger = logging.getLogger(__name__)

ARCHITECTURE_SUFFIXES = (".yaml", ".yml")
ACCEPTED = ("a zoo name or model YAML (yolov12n, yolov12n.yaml, yolov12s-cls.yaml, path/to/model.yaml), native "
            "weights (.safetensors saved by this library), or an Ultralytics / YOLOv12 checkpoint (.pt, .pth)")

ModelSpec = str | Path | YOLOModel


class ModelLoadError(ValueError):
    """The spec is not something a model can be loaded from; the message says what was given and what is accepted."""


def load_model(spec: ModelSpec, *, device: str | torch.device | None = None) -> YOLOModel:
    """The PyTorch model ``spec`` names (see the module docstring for the accepted specs).

    Args:
        spec: zoo name, model YAML, ``.safetensors`` / ``.pt`` / ``.pth`` weights, or a built model.
        device: where to put the model; None keeps loaded weights and new models on the CPU and a given model
            where it is.

    Returns:
        The model: in eval mode when loaded from weights, in train mode when built from an architecture.

    Raises:
        ModelLoadError: ``spec`` is none of the accepted kinds, or names a weights file that does not exist.
        CheckpointError: the weights file is unreadable, unsafe or does not fit its recorded architecture.
        ArchitectureError: the model YAML is malformed.
    """
    return load_model_with_metadata(spec, device=device)[0]


def load_model_with_metadata(spec: ModelSpec, *, device: str | torch.device | None = None
                             ) -> tuple[YOLOModel, CheckpointMetadata | None]:
    """:func:`load_model` plus the checkpoint's metadata (None for an architecture or a built model)."""
    if isinstance(spec, YOLOModel):
        return (spec if device is None else spec.to(device)), None
    if not isinstance(spec, (str, Path)):
        raise ModelLoadError(f"cannot load a model from a {type(spec).__name__} ({spec!r:.80}); pass {ACCEPTED}")
    from yolov12.weights import LOADERS, load_weights  # noqa: PLC0415 - yolov12.weights builds on this package

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in LOADERS:
        if not path.is_file():
            raise ModelLoadError(
                f"weights file '{path}' does not exist. This platform never downloads weights: pass a local "
                f"checkpoint, or build an untrained model from its architecture, e.g. '{path.stem}.yaml'")
        model, metadata = load_weights(path, device=device or "cpu")
        return model, metadata
    if suffix in ARCHITECTURE_SUFFIXES or (not suffix and not path.exists()):
        model = build_model(_architecture(spec))
        return (model if device is None else model.to(device)), None
    raise ModelLoadError(f"cannot load a model from '{spec}': {_describe(path)}; pass {ACCEPTED}")


def _architecture(spec: str | Path) -> ArchitectureConfig:
    try:
        return load_architecture(spec)
    except UnknownModelError as exc:
        raise ModelLoadError(f"{exc}. Besides zoo names and model YAMLs, load_model accepts native weights "
                             "(.safetensors) and Ultralytics / YOLOv12 checkpoints (.pt, .pth)") from None


def _describe(path: Path) -> str:
    """What ``path`` is, for the error message of a spec no loader accepts."""
    from yolov12.engines.registry import is_exported_artifact  # noqa: PLC0415 - only on the error path

    if is_exported_artifact(path):
        return ("it is an exported model, which runs through an inference engine, not PyTorch: use YOLO(path) or "
                "yolov12.engines.load_engine(path) to predict with it")
    if path.is_dir():
        return "it is a folder"
    return f"unknown model file type '{path.suffix}'"
