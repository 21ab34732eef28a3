"""Files that appear whole or not at all: write a temporary sibling, then rename it onto the target.

A reader (another rank, a resumed run, a second process) never sees a half-written checkpoint, cache or settings
file, and a failed write leaves the previous file as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb", *, durable: bool = True,
                 encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``, on error it is removed.

    Args:
        path: the file to (re)place; its folder is created.
        mode: ``"wb"`` or ``"w"``.
        durable: flush and fsync before the rename (checkpoints, settings); off for caches that can be rebuilt.
        encoding: of a text ``mode`` (default UTF-8).

    Example:
        >>> with atomic_write(tmp_path / "a.json", "w") as stream:  # doctest: +SKIP
        ...     stream.write("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        text = "b" not in mode
        with os.fdopen(handle, mode, encoding=(encoding or "utf-8") if text else None) as stream:
            yield stream
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
