"""Fuzz target: bytes -> a ``.safetensors`` file -> :func:`yolov12.weights.load_weights` (the native loader: the
safetensors header, the ``yolov12`` metadata JSON, the architecture it records, the meta-device check against the
tensor shapes, then the model build and the strict load).

Allowed: :class:`~yolov12.weights.CheckpointError` and its subclasses. Any other exception escaping, or memory over
``MEMORY_BUDGET_MB``, counts as a crash: an input of a few MB has the 64 MiB floor as its budget, and the model its
metadata names must fit that budget before it is built.
"""

from __future__ import annotations

from fuzz.targets._file_input import load_as_file
from yolov12.weights import CheckpointError, load_weights

MEMORY_BUDGET_MB = 384  # 64 MiB counted before the build + a model within 64 MiB + its stride probe + torch's caches
INSTRUMENT = ("yolov12.weights", "yolov12.models")


def fuzz_one_input(data: bytes) -> None:
    """Load ``data`` as a native checkpoint: a CheckpointError is the expected refusal."""
    load_as_file(data, ".safetensors", load_weights, (CheckpointError,))
