"""Fuzz target: bytes -> a ``.pt`` file -> :func:`yolov12.weights.load_weights` (the restricted unpickler, then the
Ultralytics importer: module tree, recorded architecture, meta-device check, model build).

Allowed: :class:`~yolov12.weights.CheckpointError` and its subclasses, the loaders' only documented refusals. Any
other exception escaping, or memory over ``MEMORY_BUDGET_MB``, counts as a crash: a fuzz input is at most a few MB, so
its budget is the 64 MiB floor (see :mod:`yolov12.weights.budget`), and the model it may then build must fit that
budget too.
"""

from __future__ import annotations

from fuzz.targets._file_input import load_as_file
from yolov12.weights import CheckpointError, load_weights

MEMORY_BUDGET_MB = 384  # 64 MiB counted before the build + a model within 64 MiB + its stride probe + torch's caches
INSTRUMENT = ("yolov12.weights", "yolov12.models")


def fuzz_one_input(data: bytes) -> None:
    """Load ``data`` as an Ultralytics / YOLOv12 ``.pt`` checkpoint: a CheckpointError is the expected refusal."""
    load_as_file(data, ".pt", load_weights, (CheckpointError,))
