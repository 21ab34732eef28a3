"""The engine a replica serves, as data: an :class:`~pipelines.engine_records.EngineRecord` built from the loaded
engine, and its write on the registered model version the replica serves.

The record says what actually answers requests: the artifact's format and sha256 (an OpenVINO folder hashed over its
files), the precision in effect, the device (and the GPU's name on CUDA), the runtime's version and the exporter's.
Writing it is best effort by design: a registry that refuses (read-only credentials, a server gone, a version
deleted) costs one warning line, and the write runs in a daemon thread so a slow registry never holds up a replica.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import platform
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.engine_records import EngineRecord
from yolov12.data.digest import file_sha256
from yolov12.engines import EngineInfo, resolve_backend
from yolov12.weights.metadata import utc_now

if TYPE_CHECKING:
    from serve.runtime import ModelSource

logger = logging.getLogger(__name__)


def is_registry_source(source: ModelSource) -> bool:
    """The source is a registered model version (``models:/``), which engines are recorded against."""
    return source.uri.startswith("models:/")


def engine_record(info: EngineInfo, *, imgsz: int, max_batch: int) -> EngineRecord:
    """What an engine is, for responses and the registry (see :class:`~pipelines.engine_records.EngineRecord`)."""
    artifact = Path(info.artifact)
    metadata = info.metadata or {}  # an exported artifact's ExportMetadata; empty for native weights (torch)
    sha256 = artifact_sha256(artifact)
    library = resolve_backend(info.backend).requires
    builder = {library: module_version(library)}
    if metadata.get("package_version"):
        builder["yolov12"] = str(metadata["package_version"])
    weights = (metadata.get("source") or {}).get("sha256") if metadata else sha256
    device = str(info.device).lower()
    return EngineRecord(
        backend=info.backend, format=str(metadata.get("format") or artifact.suffix.lstrip(".").lower() or info.backend),
        precision=info.precision, sha256=sha256, device=device, builder=builder, imgsz=imgsz,
        batch=min(max_batch, info.max_batch) if info.max_batch else max_batch, gpu=gpu_name(device),
        artifact=artifact.name, weights_sha256=weights or None, host=platform.node(), loaded_at=utc_now())


def artifact_sha256(path: Path) -> str:
    """sha256 of an engine file; of a folder (OpenVINO IR), over its files' relative names and digests; "" when
    there is no file (a live model)."""
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return ""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def module_version(module: str) -> str:
    """``module.__version__`` (the engine's library is already imported), or ``unknown``."""
    try:
        return str(getattr(importlib.import_module(module), "__version__", "unknown"))
    except ImportError:
        return "unknown"


def gpu_name(device: str) -> str | None:
    """The CUDA GPU's name for ``cuda`` / ``cuda:N``, else None."""
    if not device.startswith("cuda"):
        return None
    import torch  # noqa: PLC0415

    index = int(device.split(":", 1)[1]) if ":" in device else 0
    try:
        return torch.cuda.get_device_name(index)
    except (RuntimeError, AssertionError, ValueError):
        return None


def register_engine(source: ModelSource, record: EngineRecord, tracking_uri: str | None = None) -> bool:
    """Write ``record`` on the model version ``source`` names; False when it is not a registry source or the
    write failed (logged as one warning: recording must never stop a replica from serving)."""
    if not is_registry_source(source):
        return False
    try:
        from pipelines.engine_records import record_engine  # noqa: PLC0415
        from pipelines.registry import mlflow_client  # noqa: PLC0415

        key = record_engine(mlflow_client(tracking_uri), source.name, source.version, record)
    except Exception as exc:  # noqa: BLE001 - any registry failure: warn and keep serving
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.warning("could not record the %s engine of %s version %s in the registry (%s: %s); serving goes on",
                       record.backend, source.name, source.version, type(exc).__name__, reason)
        return False
    logger.info("recorded engine %s on %s version %s", key, source.name, source.version)
    return True


def register_engine_in_background(source: ModelSource, record: EngineRecord,
                                  tracking_uri: str | None = None) -> threading.Thread:
    """:func:`register_engine` in a daemon thread, so a slow registry does not hold up the replica's start."""
    thread = threading.Thread(target=register_engine, args=(source, record, tracking_uri), daemon=True,
                              name=f"engine-record-{source.name}-{source.version}")
    thread.start()
    return thread
