"""Small JSON files kept in a sweep's experiment folder (local or ``s3://``), read back when the sweep restarts."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.fs

from pipelines.storage import RunStorage


def _filesystem(storage: RunStorage) -> pyarrow.fs.FileSystem:
    return storage.filesystem or pyarrow.fs.LocalFileSystem()


def read_experiment_file(storage: RunStorage, name: str, filename: str) -> dict[str, Any] | None:
    """The JSON document ``filename`` of sweep ``name``, or None when it was never written."""
    path = f"{storage.storage_path.rstrip('/')}/{name}/{filename}"
    filesystem = _filesystem(storage)
    if filesystem.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return None
    with filesystem.open_input_stream(path) as handle:
        return json.loads(handle.read().decode())


def write_experiment_file(storage: RunStorage, name: str, filename: str, content: dict[str, Any]) -> None:
    """Write ``content`` as ``filename`` of sweep ``name`` (the folder is created when missing)."""
    folder = f"{storage.storage_path.rstrip('/')}/{name}"
    filesystem = _filesystem(storage)
    filesystem.create_dir(folder, recursive=True)
    with filesystem.open_output_stream(f"{folder}/{filename}") as handle:
        handle.write(json.dumps(content, indent=2, default=str).encode())
