"""Engines recorded against a registered model version: what actually serves ``models:/NAME@alias``.

A version's native weights are exported per machine (ONNX, an OpenVINO IR, a TensorRT plan built for one GPU) and
served from that artifact. Each engine a replica builds or loads is written to the version as one model-version tag,
``yolov12.engine.<backend>.<first 12 hex of the engine's sha256>``, whose value is a JSON :class:`EngineRecord`
(format, precision, the artifact's sha256, builder versions, device and GPU, image size, batch). The same engine
loaded again overwrites its own tag (``loaded_at`` moves); another engine gets another tag.
``yolov12 lineage models:/NAME@champion`` lists them.

Example:
    >>> record_engine(client, "yolov12n-sample", "3", record)  # doctest: +SKIP
    >>> registered_engines(client.get_model_version("yolov12n-sample", "3").tags)  # doctest: +SKIP
    [EngineRecord(backend='onnxruntime', format='onnx', precision='fp32', ...)]
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

logger = logging.getLogger(__name__)

ENGINE_TAG_PREFIX = "yolov12.engine."
TAG_VALUE_LIMIT = 5000  # characters; a small fraction of MLflow's model-version tag limit, readable on any store
TEXT_LIMIT = 200  # characters per text field (GPU and host names, file names, versions)
SHORT_SHA = 12


class EngineRecordError(ValueError):
    """An engine record cannot be written as a tag (bad digest, a value too large); the message names the field."""


@dataclass(frozen=True)
class EngineRecord:
    """One engine serving a model version.

    Attributes:
        backend: runtime that runs it: ``onnxruntime``, ``openvino``, ``tensorrt`` or ``torch``.
        format: artifact format: ``onnx``, ``openvino``, ``engine`` (TensorRT plan), ``safetensors``, ``pt``.
        precision: compute precision in effect (``fp32``, ``fp16``, ``bf16``, ``int8``).
        sha256: of the artifact file (an OpenVINO folder: of its files' names and digests).
        device: where it runs: ``cpu``, ``cuda:N``.
        builder: library -> version: the runtime's own (``onnxruntime``, ``openvino``, ``tensorrt``, ``torch``) and
            ``yolov12`` (the exporter) when the artifact says so.
        imgsz: the input size the replica serves by default.
        batch: the largest batch the replica sends (the engine's own limit when it has one).
        gpu: the GPU's name on CUDA devices, else None.
        artifact: the artifact's file or folder name.
        weights_sha256: the sha256 of the native weights it was exported from (from the artifact's metadata).
        host: the machine that loaded it.
        loaded_at: UTC ISO 8601 time it was last loaded.
    """

    backend: str
    format: str
    precision: str
    sha256: str
    device: str
    builder: dict[str, str] = field(default_factory=dict)
    imgsz: int = 0
    batch: int = 0
    gpu: str | None = None
    artifact: str = ""
    weights_sha256: str | None = None
    host: str = ""
    loaded_at: str = ""

    @property
    def tag_key(self) -> str:
        """``yolov12.engine.<backend>.<short sha256>``: one tag per distinct engine."""
        return f"{ENGINE_TAG_PREFIX}{self.backend}.{self.sha256[:SHORT_SHA]}"

    def summary(self) -> dict[str, Any]:
        """What a replica reports about its engine: format, precision, sha256, device (and GPU), builder."""
        return {"format": self.format, "precision": self.precision, "sha256": self.sha256, "device": self.device,
                "gpu": self.gpu, "builder": dict(self.builder)}

    def tag_value(self) -> str:
        """Compact JSON, text fields cut to :data:`TEXT_LIMIT`; :class:`EngineRecordError` past the tag limit."""
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise EngineRecordError(f"engine record: sha256 {self.sha256[:80]!r} is not a lower-case hex sha256; "
                                    "pass the artifact's file_sha256")
        data = {key: _cut(value) for key, value in asdict(self).items()}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        if len(text) > TAG_VALUE_LIMIT:
            raise EngineRecordError(f"engine record of {self.artifact!r} is {len(text)} characters, over the "
                                    f"{TAG_VALUE_LIMIT} a tag holds; shorten its builder entries")
        return text

    @classmethod
    def from_tag(cls, value: str) -> EngineRecord:
        """The record a tag value holds (unknown keys ignored: records written by newer code still read)."""
        data = json.loads(value)
        if not isinstance(data, dict):
            raise EngineRecordError(f"engine tag value is a JSON {type(data).__name__}, not an object")
        known = {f.name for f in fields(cls)}
        missing = {"backend", "format", "precision", "sha256", "device"} - set(data)
        if missing:
            raise EngineRecordError(f"engine tag value lacks {', '.join(sorted(missing))}")
        record = cls(**{k: v for k, v in data.items() if k in known})
        if not isinstance(record.builder, dict):
            raise EngineRecordError("engine tag value: builder is not an object of library -> version")
        return record


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return value[:TEXT_LIMIT]
    if isinstance(value, dict):
        return {str(k)[:TEXT_LIMIT]: _cut(v) for k, v in value.items()}
    return value


def record_engine(client: Any, name: str, version: str, record: EngineRecord) -> str:
    """Write ``record`` on model version ``name``/``version`` (``client``: an ``MlflowClient``); returns the tag key.

    Raises whatever the registry raises (permission, server down): callers that must not fail catch it.
    """
    key = record.tag_key
    client.set_model_version_tag(name, str(version), key, record.tag_value())
    return key


def registered_engines(tags: Mapping[str, str]) -> list[EngineRecord]:
    """The engine records among a version's tags, oldest load first; an unreadable one is skipped with a warning."""
    records = []
    for key, value in tags.items():
        if not key.startswith(ENGINE_TAG_PREFIX):
            continue
        try:
            records.append(EngineRecord.from_tag(value))
        except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
            logger.warning("model-version tag %s is not an engine record (%s); skipped", key, exc)
    return sorted(records, key=lambda r: (r.loaded_at, r.backend, r.sha256))


def without_engine_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The version's other tags (engine records are listed on their own)."""
    return {k: v for k, v in tags.items() if not k.startswith(ENGINE_TAG_PREFIX)}
