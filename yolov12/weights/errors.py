"""Exception types for reading and writing checkpoints; every message names the file and the fix."""

from __future__ import annotations

from yolov12.models.architecture import ArchitectureError
from yolov12.models.registry import UnknownLayerError


class CheckpointError(Exception):
    """Base class: a checkpoint could not be read, written or matched to a model."""


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, damaged or not in the format its name claims."""


class UnsafeCheckpointError(CheckpointError):
    """A foreign pickle references a global that could execute code; nothing from it was run."""


class CheckpointTooLargeError(UnsafeCheckpointError):
    """Reading the file would allocate far more memory than its size justifies (see ``yolov12.weights.budget``)."""


class UnsupportedCheckpointError(CheckpointError):
    """The file is readable but holds something this package cannot turn into a model."""


class UnsupportedTaskError(UnsupportedCheckpointError):
    """The checkpoint is a YOLO model for a task we do not build yet (segment, pose, obb)."""


class CheckpointArchitectureError(UnsupportedCheckpointError, ArchitectureError):
    """The architecture the checkpoint records is malformed or cannot be built (also an ``ArchitectureError``)."""


class UnknownCheckpointLayerError(CheckpointArchitectureError, UnknownLayerError):
    """The recorded architecture names a module the layer registry lacks (also an ``UnknownLayerError``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CheckpointMetadataError(CheckpointError):
    """The ``yolov12`` metadata document is missing or malformed."""


class UnsupportedFormatVersionError(CheckpointMetadataError):
    """The checkpoint was written by a newer (or unknown) checkpoint format."""


class StateDictMismatchError(CheckpointError):
    """The tensors do not fit the architecture: missing, unexpected or differently shaped keys."""
