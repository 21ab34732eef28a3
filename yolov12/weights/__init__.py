"""Checkpoints: the native safetensors format, and safe import of Ultralytics / official YOLOv12 ``.pt`` files.

Example:
    >>> from yolov12.weights import convert_checkpoint, load_weights, save_checkpoint
    >>> model, meta = load_weights("yolo12n.pt")  # doctest: +SKIP
    >>> save_checkpoint(model, "yolo12n.safetensors", metadata=meta)  # doctest: +SKIP
"""

from yolov12.weights.budget import BUDGET_FACTOR, MIN_BUDGET_BYTES
from yolov12.weights.errors import (
    CheckpointArchitectureError,
    CheckpointError,
    CheckpointMetadataError,
    CheckpointTooLargeError,
    CorruptCheckpointError,
    StateDictMismatchError,
    UnknownCheckpointLayerError,
    UnsafeCheckpointError,
    UnsupportedCheckpointError,
    UnsupportedFormatVersionError,
    UnsupportedTaskError,
)
from yolov12.weights.importer import LOADERS, convert_checkpoint, import_checkpoint, load_weights
from yolov12.weights.metadata import FORMAT_VERSION, CheckpointMetadata
from yolov12.weights.native import load_checkpoint, read_metadata, save_checkpoint
from yolov12.weights.placeholders import Placeholder, placeholder_state_dict
from yolov12.weights.unpickler import RestrictedUnpickler, read_foreign_checkpoint

__all__ = [
    "BUDGET_FACTOR", "FORMAT_VERSION", "LOADERS", "MIN_BUDGET_BYTES", "CheckpointArchitectureError", "CheckpointError",
    "CheckpointMetadata", "CheckpointMetadataError", "CheckpointTooLargeError", "CorruptCheckpointError",
    "Placeholder", "RestrictedUnpickler", "StateDictMismatchError", "UnknownCheckpointLayerError",
    "UnsafeCheckpointError", "UnsupportedCheckpointError", "UnsupportedFormatVersionError", "UnsupportedTaskError",
    "convert_checkpoint", "import_checkpoint", "load_checkpoint", "load_weights", "placeholder_state_dict",
    "read_foreign_checkpoint", "read_metadata", "save_checkpoint",
]
