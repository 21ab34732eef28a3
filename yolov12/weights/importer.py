"""Import Ultralytics (YOLOv8, YOLO11, YOLO12) and official YOLOv12 (v1.0, turbo) ``.pt`` checkpoints.

Both pickle a whole model object (the official repository is a fork of Ultralytics). The pickle is read with the
restricted unpickler, so no foreign code runs; what we use is data: the recorded architecture (``model.yaml``), the
class names, the tensors and the training arguments. Our models keep the published state-dict key names, so the
tensors load strictly once the architecture matches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yolov12.models.architecture import ArchitectureConfig
from yolov12.models.model import YOLOModel
from yolov12.tasks import TASKS
from yolov12.weights.batch_norm import apply_batch_norms
from yolov12.weights.budget import AllocationBudget, short_repr
from yolov12.weights.errors import StateDictMismatchError, UnsupportedCheckpointError, UnsupportedTaskError
from yolov12.weights.fit import architecture_from_dict, build_checked, check_fits, meta_model
from yolov12.weights.metadata import CheckpointMetadata
from yolov12.weights.native import SUFFIX, load_checkpoint, save_checkpoint
from yolov12.weights.placeholders import (
    Placeholder,
    is_module_placeholder,
    placeholder_batch_norms,
    placeholder_state_dict,
    plain_data,
)
from yolov12.weights.state import load_state_dict_strict, state_shapes
from yolov12.weights.unpickler import load_foreign

__all__ = ["LOADERS", "convert_checkpoint", "import_checkpoint", "load_weights"]

logger = logging.getLogger(__name__)

SOURCE_FORMAT = "ultralytics-pt"
HEAD_TASKS = {"Detect": "detect", "Classify": "classify", "Segment": "segment", "Pose": "pose", "OBB": "obb"}
UNSUPPORTED_TASK_NAMES = {
    "segment": "segmentation models", "pose": "pose-estimation models", "obb": "oriented-box (OBB) models",
}
MODEL_CLASS_TASKS = {"SegmentationModel": "segment", "PoseModel": "pose", "OBBModel": "obb"}
MAX_SCALES = 16  # scales tried when the yaml records none (each is a model built on the meta device)


def import_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, max_bytes: int | None = None,
) -> tuple[YOLOModel, CheckpointMetadata]:
    """Build our model from an Ultralytics / official YOLOv12 ``.pt`` checkpoint.

    Uses ``ckpt["ema"]`` when present, else ``ckpt["model"]``. The recorded architecture is built on the meta device
    and compared with the tensors before the model is built; the tensors are then loaded strictly (as float32).
    Each BatchNorm takes the ``eps`` and ``momentum`` its source module recorded (Ultralytics detectors use 1e-3 /
    0.03, its classifiers PyTorch's 1e-5 / 0.1); one that records none keeps the architecture's convention.

    Args:
        path: the ``.pt`` / ``.pth`` file.
        device: where to put the model.
        max_bytes: memory the import may allocate before the model is built (default ``max(64 MiB, 4 x file
            size)``, see :mod:`yolov12.weights.budget`); the model itself must fit it too.

    Returns:
        ``(model, metadata)``: the model in eval mode on ``device``; metadata with the training arguments and
        ``source = {"format": "ultralytics-pt", "file", "sha256", ...}``.

    Raises:
        UnsafeCheckpointError: the pickle references code (nothing was run).
        CheckpointTooLargeError: the file asks for more memory than ``max_bytes``.
        UnsupportedCheckpointError: no YOLO model in the file, or class names that do not fit the model.
        UnsupportedTaskError: a segmentation, pose or OBB model.
        UnknownCheckpointLayerError: the architecture uses a module we do not implement (also an
            ``UnknownLayerError``).
        StateDictMismatchError: the tensors do not fit the recorded architecture.

    Example:
        >>> model, meta = import_checkpoint("yolo12n.pt")  # doctest: +SKIP
        >>> meta.model_version, meta.source["sha256"][:8]  # doctest: +SKIP
        ('v1.0', '...')
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    budget = AllocationBudget.for_file(path, max_bytes)
    checkpoint = load_foreign(path, budget)
    entry, module = _model_entry(checkpoint, path)
    architecture = _recorded_architecture(module, path, budget)
    _check_task(architecture, module, path)
    state_dict = placeholder_state_dict(module, budget=budget, origin=str(path))
    config = _resolve_config(architecture, state_dict, path)
    names = _class_names(module, config.num_classes, path)
    check_fits(config, names, state_shapes(state_dict), str(path), budget)
    model = build_checked(config, names, str(path))
    load_state_dict_strict(model, state_dict, str(path))  # copies fp16 tensors into the float32 parameters
    batch_norms = placeholder_batch_norms(module, budget=budget, origin=str(path))
    apply_batch_norms(model, None, batch_norms, str(path), error=StateDictMismatchError)  # eps is in no state dict
    metadata = _metadata(model, checkpoint, path, entry, module, budget)
    logger.info("imported %s (%s %s, %d classes) from %s", config.name, config.family, config.version or "",
                config.num_classes, path)
    return model.to(device).eval(), metadata


def _metadata(
    model: YOLOModel, checkpoint: dict, path: Path, entry: str, module: Placeholder, budget: AllocationBudget,
) -> CheckpointMetadata:
    """The metadata of an imported model: its training arguments (plain data) and where it came from."""
    train_args = checkpoint.get("train_args")
    training_args = plain_data(train_args, budget=budget, origin=str(path)) if isinstance(train_args, dict) else None
    image_size = (training_args or {}).get("imgsz")
    return CheckpointMetadata.for_model(
        model, training_args=training_args, source=_source(path, checkpoint, entry, module),
        image_size=image_size if isinstance(image_size, int) and not isinstance(image_size, bool) and image_size > 0
        else TASKS[model.task].default_image_size,
    )


def _model_entry(checkpoint: Any, path: Path) -> tuple[str, Placeholder]:
    if not isinstance(checkpoint, dict):
        raise UnsupportedCheckpointError(
            f"'{path}' holds a {type(checkpoint).__name__}, not a YOLO training checkpoint (a dict with 'model')")
    for entry in ("ema", "model"):
        if is_module_placeholder(checkpoint.get(entry)):
            return entry, checkpoint[entry]
    if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise UnsupportedCheckpointError(
            f"'{path}' is a bare state dict with no recorded architecture; build the model with build_model("
            "load_architecture(...)) and load the tensors into it, or import the full Ultralytics checkpoint")
    raise UnsupportedCheckpointError(
        f"'{path}' is not a YOLO checkpoint: it has no 'model' or 'ema' entry holding a model (keys: "
        f"{short_repr(list(checkpoint))}); expected an Ultralytics or YOLOv12 '.pt' file")


def _recorded_architecture(module: Placeholder, path: Path, budget: AllocationBudget) -> dict[str, Any]:
    architecture = module.attribute("yaml")
    if not isinstance(architecture, dict) or "backbone" not in architecture or "head" not in architecture:
        raise UnsupportedCheckpointError(
            f"'{path}': the model ({module.qualified_name}) records no architecture ('yaml' with backbone and "
            "head); only Ultralytics-style YOLO models can be imported")
    return plain_data(architecture, budget=budget, origin=str(path))


def _check_task(architecture: dict[str, Any], module: Placeholder, path: Path) -> None:
    head = architecture["head"]
    last = head[-1] if isinstance(head, list) and head else None
    head_module = str(last[2]) if isinstance(last, list) and len(last) == 4 else ""
    task = HEAD_TASKS.get(head_module.rsplit(".", 1)[-1])
    task = task or MODEL_CLASS_TASKS.get(module.qualified_name.rsplit(".", 1)[-1])
    if task in UNSUPPORTED_TASK_NAMES:
        raise UnsupportedTaskError(
            f"'{path}': {UNSUPPORTED_TASK_NAMES[task]} are not supported yet; supported tasks: "
            f"{', '.join(TASKS)}")


def _resolve_config(
    architecture: dict[str, Any], state_dict: dict[str, torch.Tensor], path: Path,
) -> ArchitectureConfig:
    """Architecture from the recorded yaml; the scale and the YOLOv12 version are confirmed by the tensors."""
    name = Path(str(architecture.get("yaml_file") or path.stem)).stem
    config = architecture_from_dict(architecture, str(path), name=name)
    key_version = _version_from_keys(state_dict)
    if config.family == "yolov12" and key_version and key_version != config.version:
        logger.warning("%s: the yaml implies YOLOv12 %s but the tensors have the %s attention layout; using %s",
                       path, config.version, key_version, key_version)
        config = dataclasses.replace(config, version=key_version)
    if config.scales and not architecture.get("scale"):
        config = config.with_overrides(scale=_infer_scale(config, state_dict, path))
    return config


def _version_from_keys(state_dict: dict[str, torch.Tensor]) -> str | None:
    """``attn.qk`` + ``attn.v`` convolutions -> turbo; one fused ``attn.qkv`` -> v1.0; no attention -> None."""
    if any(".attn.qk." in key for key in state_dict):
        return "turbo"
    if any(".attn.qkv." in key for key in state_dict):
        return "v1.0"
    return None


def _infer_scale(config: ArchitectureConfig, state_dict: dict[str, torch.Tensor], path: Path) -> str:
    """The scale whose model has exactly these tensor names and shapes (models are built on the meta device)."""
    if len(config.scales) > MAX_SCALES:
        raise UnsupportedCheckpointError(
            f"'{path}': the recorded architecture has no scale and {len(config.scales)} candidate scales (at most "
            f"{MAX_SCALES} are tried); record the scale in the checkpoint's yaml")
    shapes = state_shapes(state_dict)
    matches = []
    for scale in config.scales:
        try:
            candidate = meta_model(config.with_overrides(scale=scale), None, str(path), shapes)
        except StateDictMismatchError:  # far too large (or too many classes) for these tensors: not this scale
            continue
        if state_shapes(candidate.state_dict()) == shapes:
            matches.append(scale)
    if not matches:
        raise UnsupportedCheckpointError(
            f"'{path}': the recorded architecture has no scale and the tensors match none of its scales "
            f"{sorted(config.scales)}; the checkpoint's yaml and weights disagree")
    logger.info("%s: the yaml records no scale; the tensors match scale '%s'", path, matches[0])
    return matches[0]


def _class_names(module: Placeholder, num_classes: int, path: Path) -> dict[int, str] | None:
    """The recorded class names (a list, or a dict keyed by index), checked against the class count."""
    names = module.attribute("names")
    if names is None:
        return None
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or len(names) != num_classes:
        raise UnsupportedCheckpointError(
            f"'{path}': the model records {len(names) if isinstance(names, dict) else short_repr(names)} class names "
            f"for {num_classes} classes; fix 'names' in the checkpoint")
    indices = {_class_index(key): value for key, value in names.items()}
    numbered = None not in indices and sorted(indices) == list(range(num_classes))
    if not numbered or not all(isinstance(v, str) for v in indices.values()):
        raise UnsupportedCheckpointError(
            f"'{path}': the recorded class names {short_repr(names)} are not strings numbered 0..{num_classes - 1}; "
            "fix 'names' in the checkpoint")
    return indices


def _class_index(key: Any) -> int | None:
    """A class index from a names key (an int, or the digits of one); None when it is neither."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.isdigit() and len(key) <= 9:
        return int(key)
    return None


def _source(path: Path, checkpoint: dict, entry: str, module: Placeholder) -> dict[str, Any]:
    source: dict[str, Any] = {"format": SOURCE_FORMAT, "file": path.name, "sha256": sha256_of(path),
                              "entry": entry, "model_class": module.qualified_name}
    for key, label in (("version", "ultralytics_version"), ("date", "date")):
        if isinstance(checkpoint.get(key), str):
            source[label] = checkpoint[key]
    return source


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


Loader = Callable[..., tuple[nn.Module, CheckpointMetadata]]
LOADERS: dict[str, Loader] = {SUFFIX: load_checkpoint, ".pt": import_checkpoint, ".pth": import_checkpoint}


def load_weights(
    path: str | Path, device: str | torch.device = "cpu", *, max_bytes: int | None = None,
) -> tuple[nn.Module, CheckpointMetadata]:
    """Load any supported weights file, chosen by suffix (see :data:`LOADERS`).

    ``max_bytes`` overrides the file's memory budget (default ``max(64 MiB, 4 x file size)``, see
    :mod:`yolov12.weights.budget`).

    Example:
        >>> model, meta = load_weights("yolov12n.pt")  # doctest: +SKIP
    """
    path = Path(path)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise UnsupportedCheckpointError(
            f"'{path}': unknown weights format '{path.suffix}'; supported: {SUFFIX} (native) and .pt / .pth "
            "(Ultralytics / YOLOv12 checkpoints)")
    return loader(path, device=device, max_bytes=max_bytes)


def convert_checkpoint(src: str | Path, dst: str | Path | None = None, overwrite: bool = False) -> Path:
    """Import a ``.pt`` checkpoint and save it as a native checkpoint (default: ``src`` with ``.safetensors``).

    Example:
        >>> convert_checkpoint("yolo12n.pt")  # doctest: +SKIP
        PosixPath('yolo12n.safetensors')
    """
    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_suffix(SUFFIX)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"'{dst}' already exists; pass overwrite=True to replace it, or choose another path")
    model, metadata = import_checkpoint(src)
    return save_checkpoint(model, dst, metadata=metadata, overwrite=overwrite)
