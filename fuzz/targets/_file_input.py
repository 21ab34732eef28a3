"""Shared by the targets whose code under test reads a file path rather than bytes."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


@functools.cache
def input_path(suffix: str) -> Path:
    """The file each input is written to, in a folder of its own that is removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix=f"fuzz-input{suffix.replace('.', '-')}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder / f"input{suffix}"


def load_as_file(data: bytes, suffix: str, load: Callable[[Path], object],
                 refusals: tuple[type[BaseException], ...]) -> None:
    """Write ``data`` to the input file and ``load`` it; the loader's own ``refusals`` are expected."""
    path = input_path(suffix)
    path.write_bytes(data)
    try:
        load(path)
    except refusals:
        return
