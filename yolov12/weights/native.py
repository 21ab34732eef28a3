"""The native checkpoint: one ``.safetensors`` file with the state dict and a JSON metadata document.

Layout: the tensors under their state-dict names (the names of published Ultralytics / YOLOv12 checkpoints) and
``__metadata__ = {"yolov12": <CheckpointMetadata JSON>}``. Reading never executes code: safetensors + JSON only.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from yolov12.models.architecture import BatchNormSettings
from yolov12.nn.conv import BN_EPS, BN_MOMENTUM
from yolov12.weights.batch_norm import apply_batch_norms, describe_batch_norms, parse_batch_norm_document
from yolov12.weights.budget import AllocationBudget
from yolov12.weights.errors import CheckpointMetadataError, CorruptCheckpointError
from yolov12.weights.fit import architecture_from_dict, build_checked, check_fits
from yolov12.weights.metadata import CheckpointMetadata, package_version, utc_now
from yolov12.weights.state import load_state_dict_strict

__all__ = ["METADATA_KEY", "CheckpointMetadata", "load_checkpoint", "read_metadata", "save_checkpoint"]

logger = logging.getLogger(__name__)

METADATA_KEY = "yolov12"
LEGACY_BATCH_NORM = BatchNormSettings(eps=BN_EPS, momentum=BN_MOMENTUM)
"""BatchNorm settings of every model saved before the settings were recorded (classifiers included)."""
SUFFIX = ".safetensors"
# metadata fields save_checkpoint takes from the model
MODEL_FIELDS = frozenset({"architecture", "task", "names", "batch_norm"})
# Python objects decoded from JSON take up to ~24x the text (``[{},{},...]``: a 64-byte dict per 3 characters).
JSON_EXPANSION = 32


def save_checkpoint(
    model: nn.Module, path: str | Path, *, metadata: CheckpointMetadata | None = None, overwrite: bool = False,
    **metadata_overrides: Any,
) -> Path:
    """Write ``model`` (a YOLOModel) to a native checkpoint, atomically.

    The file appears complete or not at all: tensors go to a temporary file in the same folder, which is flushed to
    disk and then renamed over ``path``. Architecture, task, class names and BatchNorm ``eps`` / ``momentum`` (which
    no state dict holds) always come from the model;
    ``package_version`` and ``created_at`` describe this write unless given in ``metadata_overrides``.

    Args:
        model: the model to save (any device; tensors are written from CPU, in their own dtype).
        path: destination, normally ending in ``.safetensors``; missing parent folders are created.
        metadata: metadata to start from (e.g. the one returned by ``import_checkpoint``); default: described
            from the model.
        overwrite: replace an existing file.
        **metadata_overrides: fields of :class:`CheckpointMetadata` to set, e.g. ``training_args={...}``,
            ``lineage={"run_id": ...}``, ``image_size=320``.

    Returns:
        The path written.

    Example:
        >>> save_checkpoint(model, "runs/best.safetensors", lineage={"run_id": "abc"})  # doctest: +SKIP
    """
    fixed = MODEL_FIELDS & metadata_overrides.keys()
    if fixed:
        raise TypeError(f"{sorted(fixed)} always come from the model; change the model (e.g. model.names) instead")
    path = Path(path)
    if path.suffix != SUFFIX:
        logger.warning("saving a native checkpoint to '%s'; name it *%s so load_weights recognises it", path, SUFFIX)
    if path.exists() and not overwrite:
        raise FileExistsError(f"'{path}' already exists; pass overwrite=True to replace it, or choose another path")
    base = (metadata or CheckpointMetadata.for_model(model)).replace(
        architecture=model.config.to_dict(), task=model.task, names=dict(model.names),
        batch_norm=describe_batch_norms(model), package_version=package_version(), created_at=utc_now(),
    )
    document = base.replace(**metadata_overrides).to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(_tensors_for_saving(model.state_dict()), path, {METADATA_KEY: document}, overwrite)
    logger.info("saved checkpoint %s", path)
    return path


def _tensors_for_saving(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors that own their memory (safetensors refuses shared or partial storages)."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in state_dict.items():
        tensor = value.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        tensors[key] = tensor
    return tensors


def _atomic_write(tensors: dict[str, torch.Tensor], path: Path, header: dict[str, str], overwrite: bool) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        save_file(tensors, str(temporary), metadata=header)
        with temporary.open("rb+") as handle:
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            _publish_without_overwrite(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _publish_without_overwrite(temporary: Path, path: Path) -> None:
    """Link the finished file into place, failing if another writer created ``path`` meanwhile."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise FileExistsError(f"'{path}' was created while saving; pass overwrite=True to replace it") from None
    except OSError:  # file system without hard links: the earlier existence check has to do
        os.replace(temporary, path)


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def read_metadata(path: str | Path, *, max_bytes: int | None = None) -> CheckpointMetadata:
    """Read only the header of a native checkpoint (no tensors are loaded).

    Args:
        path: the ``.safetensors`` file.
        max_bytes: memory the metadata may take once decoded (default ``max(64 MiB, 4 x file size)``).

    Raises:
        FileNotFoundError: no such file.
        CorruptCheckpointError: not a readable safetensors file (truncated, damaged, another format).
        CheckpointMetadataError: a safetensors file without valid ``yolov12`` metadata.
        CheckpointTooLargeError: a metadata document too large for the file's budget.
    """
    path = _existing(path)
    return _read_header(path, AllocationBudget.for_file(path, max_bytes))[0]


def _read_header(path: Path, budget: AllocationBudget) -> tuple[CheckpointMetadata, dict[str, tuple[int, ...]]]:
    """The metadata and the tensor shapes of a native checkpoint, from its header (no tensor is read)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise _corrupt(path, exc) from None
    if METADATA_KEY not in header:
        raise CheckpointMetadataError(
            f"'{path}' is a safetensors file without '{METADATA_KEY}' metadata, so its architecture is unknown; "
            "it was not written by save_checkpoint. Load its tensors into a model you build yourself"
        )
    document = header[METADATA_KEY]
    budget.charge(JSON_EXPANSION * len(document), "the decoded metadata document")
    return CheckpointMetadata.from_json(document, origin=str(path)), shapes


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", *, max_bytes: int | None = None,
) -> tuple[nn.Module, CheckpointMetadata]:
    """Build the model a native checkpoint describes and load its tensors strictly.

    The model is first built on the meta device and compared with the tensor names and shapes in the file's header;
    it is built for real (and the tensors read) only when they match and it fits the file's memory budget.

    Args:
        path: the ``.safetensors`` file.
        device: where to put the model.
        max_bytes: the memory budget (default ``max(64 MiB, 4 x file size)``, see :mod:`yolov12.weights.budget`).

    Returns:
        ``(model, metadata)``; the model is in eval mode on ``device``, parameters in float32.

    Raises:
        StateDictMismatchError: the tensors are not those of the recorded architecture.
        CheckpointTooLargeError: the recorded model needs more memory than ``max_bytes``.

    Example:
        >>> model, meta = load_checkpoint("runs/best.safetensors")  # doctest: +SKIP
        >>> meta.names[0]  # doctest: +SKIP
        'person'
    """
    path = _existing(path)
    budget = AllocationBudget.for_file(path, max_bytes)
    metadata, shapes = _read_header(path, budget)
    config = architecture_from_dict(metadata.architecture, str(path), error=CheckpointMetadataError)
    check_fits(config, metadata.names, shapes, str(path), budget)
    model = build_checked(config, metadata.names, str(path))
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise _corrupt(path, exc) from None
    load_state_dict_strict(model, tensors, str(path))
    _restore_batch_norms(model, metadata, path)
    return model.to(device).eval(), metadata


def _restore_batch_norms(model: nn.Module, metadata: CheckpointMetadata, path: Path) -> None:
    """The recorded BatchNorm ``eps`` / ``momentum``. A file without them was written before they were recorded,
    when every model was built with :data:`LEGACY_BATCH_NORM`: it loads with those, as it was trained and validated."""
    if metadata.batch_norm is None:
        apply_batch_norms(model, LEGACY_BATCH_NORM, {}, str(path))
        return
    common, by_path = parse_batch_norm_document(metadata.batch_norm)
    apply_batch_norms(model, common, by_path, str(path))


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    return path


def _corrupt(path: Path, exc: Exception) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"'{path}' is not a readable safetensors checkpoint ({exc}); it is truncated, damaged or another format. "
        "Re-save or re-download it"
    )
