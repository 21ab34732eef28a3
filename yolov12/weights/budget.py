"""How much memory reading a weights file may take, in proportion to its size.

A loader reads untrusted bytes: a few hundred bytes of pickle or JSON can ask for gigabytes (a storage grown to fit
a view, a zip member that inflates 1000-fold, a metadata document naming a huge model). Every loader therefore
counts what it is about to allocate against one :class:`AllocationBudget` *before* allocating it, and refuses the
file with :class:`~yolov12.weights.errors.CheckpointTooLargeError` when the count passes

    ``max(MIN_BUDGET_BYTES, BUDGET_FACTOR x file size)``

``BUDGET_FACTOR = 4``: a file's own bytes are read once (1x); the tensor views over them span as much again (1x);
an fp16 release becomes an fp32 model, which doubles it (2x; the model is checked against the budget on the meta
device before it is built). The 64 MiB floor lets small files hold their pickle, JSON and bookkeeping.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from yolov12.weights.errors import CheckpointTooLargeError

__all__ = ["BUDGET_FACTOR", "MAX_NESTING_DEPTH", "MIN_BUDGET_BYTES", "AllocationBudget", "short_repr"]

MIN_BUDGET_BYTES = 64 * 2**20
BUDGET_FACTOR = 4
MAX_NESTING_DEPTH = 32  # plain data (training arguments, architecture, metadata JSON) nests at most this deep

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = _SHORT.maxfrozenset = 4


def short_repr(value: Any) -> str:
    """A bounded ``repr`` for error messages: untrusted values may be huge, deep or shared many times over."""
    try:
        return _SHORT.repr(value)
    except Exception:  # noqa: BLE001 - a foreign object's repr may fail in any way; the type name is enough then
        return f"<{type(value).__name__}>"


class AllocationBudget:
    """Counts the bytes a loader allocates for one file and refuses the file once they pass ``limit``.

    Args:
        limit: bytes allowed in total.
        origin: the file, named in the error.
        rule: how ``limit`` was chosen, named in the error.

    Example:
        >>> budget = AllocationBudget.for_file("yolo12n.pt")  # doctest: +SKIP
        >>> budget.charge(4 * 1024, "storage record 'archive/data/0'")  # doctest: +SKIP
    """

    def __init__(self, limit: int, origin: str, rule: str = "max_bytes") -> None:
        self.limit, self.origin, self.rule, self.used = int(limit), origin, rule, 0

    @classmethod
    def for_file(cls, path: str | Path, max_bytes: int | None = None) -> AllocationBudget:
        """The budget of ``path``: ``max_bytes`` when given, else ``max(MIN_BUDGET_BYTES, BUDGET_FACTOR x size)``."""
        path = Path(path)
        if max_bytes is not None:
            if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
                raise ValueError(f"max_bytes must be a positive int (bytes), got {max_bytes!r}")
            return cls(max_bytes, str(path))
        limit = max(MIN_BUDGET_BYTES, BUDGET_FACTOR * path.stat().st_size)
        return cls(limit, str(path), f"max(64 MiB, {BUDGET_FACTOR} x file size)")

    @property
    def left(self) -> int:
        """Bytes still allowed."""
        return self.limit - self.used

    def charge(self, nbytes: int, what: str) -> None:
        """Count ``nbytes`` for ``what``; raise :class:`CheckpointTooLargeError` if they do not fit in what is left."""
        if nbytes > self.left:
            raise self._error(f"{what} needs {_mib(nbytes)}, more than the {_mib(self.left)} left of")
        self.used += nbytes

    def check_alone(self, nbytes: int, what: str) -> None:
        """Refuse ``what`` if it alone needs more than the whole budget (used for the model a file describes)."""
        if nbytes > self.limit:
            raise self._error(f"{what} needs {_mib(nbytes)}, more than")

    def _error(self, head: str) -> CheckpointTooLargeError:
        return CheckpointTooLargeError(
            f"{self.origin}: {head} this file's memory budget ({_mib(self.limit)}: {self.rule}); the file is damaged "
            "or hostile. If you trust it, pass a larger max_bytes"
        )


def _mib(nbytes: int) -> str:
    """Bytes in MiB, or in KiB / bytes when smaller (so small amounts do not read as 0.0 MiB)."""
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:.1f} MiB"
    return f"{nbytes / 2**10:.1f} KiB" if nbytes >= 2**10 else f"{nbytes} bytes"
