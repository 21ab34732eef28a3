"""Exception types for reading and writing checkpoints; every message names the file and the fix."""

from __future__ import annotations


class CheckpointError(Exception):
    """Base class: a checkpoint could not be read, written or matched to a model."""


class CorruptCheckpointError(CheckpointError):
    """The file is truncated, damaged or not in the format its name claims."""


class UnsafeCheckpointError(CheckpointError):
    """A foreign pickle references a global that could execute code; nothing from it was run."""


class UnsupportedCheckpointError(CheckpointError):
    """The file is readable but holds something this package cannot turn into a model."""


class UnsupportedTaskError(UnsupportedCheckpointError):
    """The checkpoint is a YOLO model for a task we do not build yet (segment, pose, obb)."""


class CheckpointMetadataError(CheckpointError):
    """The ``yolov12`` metadata document is missing or malformed."""


class UnsupportedFormatVersionError(CheckpointMetadataError):
    """The checkpoint was written by a newer (or unknown) checkpoint format."""


class StateDictMismatchError(CheckpointError):
    """The tensors do not fit the architecture: missing, unexpected or differently shaped keys."""
