"""The metadata document stored beside the tensors of a native checkpoint (safetensors ``__metadata__['yolov12']``)."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from torch import nn

from yolov12.tasks import TASKS
from yolov12.weights.batch_norm import describe_batch_norms, parse_batch_norm_document
from yolov12.weights.budget import MAX_NESTING_DEPTH
from yolov12.weights.errors import CheckpointMetadataError, UnsupportedFormatVersionError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when a reader of the previous version could misread a new file
PACKAGE_NAME = "yolov12-platform"


def package_version() -> str:
    """Installed version of this package, ``0+unknown`` when it runs from a source tree without metadata."""
    try:
        return importlib.metadata.version(PACKAGE_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def utc_now() -> str:
    """Current UTC time in ISO 8601 with seconds, e.g. ``2025-02-18T10:04:05+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a native checkpoint says about its tensors.

    Attributes:
        architecture: ``ArchitectureConfig.to_dict()`` of the model.
        task: ``detect`` or ``classify``.
        names: class index -> class name (stored with string keys in JSON).
        image_size: square input size the weights were trained / meant for.
        model_version: YOLOv12 release (``v1.0``, ``turbo``) or the family (``yolo11``, ``yolov8``).
        package_version: version of yolov12-platform that wrote the file.
        created_at: UTC ISO 8601 time of writing.
        training_args: training settings (plain data) or None.
        lineage: ids that tie the weights to data and runs (dataset digest, run id, registry ids).
        source: where imported weights came from: ``{"format", "file", "sha256", ...}``; None for native training.
        batch_norm: the BatchNorm ``eps`` / ``momentum`` of the model (``{"eps", "momentum", "modules": {path:
            {"eps", "momentum"}}}``, see :mod:`yolov12.weights.batch_norm`); None in files written before it was
            recorded, whose models load with the values every model was then built with (1e-3, 0.03).
        format_version: version of this document's layout.

    Example:
        >>> meta = CheckpointMetadata.for_model(build_model(load_architecture("yolov12n")))  # doctest: +SKIP
        >>> CheckpointMetadata.from_json(meta.to_json()) == meta  # doctest: +SKIP
        True
    """

    architecture: dict[str, Any]
    task: str
    names: dict[int, str]
    image_size: int
    model_version: str
    package_version: str
    created_at: str
    training_args: dict[str, Any] | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] | None = None
    batch_norm: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        _check_format_version(self.format_version)
        _expect(isinstance(self.architecture, dict), "architecture must be a mapping (ArchitectureConfig.to_dict())")
        _expect(isinstance(self.task, str) and self.task in TASKS,
                f"task {self.task!r:.80} is not one of {tuple(TASKS)}")
        object.__setattr__(self, "names", _int_keyed_names(self.names))
        num_classes = self.architecture.get("nc")
        _expect(num_classes is None or len(self.names) == num_classes,
                f"{len(self.names)} class names for an architecture with nc={num_classes}")
        _expect(isinstance(self.image_size, int) and not isinstance(self.image_size, bool) and self.image_size > 0,
                f"image_size must be a positive int, got {self.image_size!r}")
        for name in ("model_version", "package_version", "created_at"):
            _expect(isinstance(getattr(self, name), str), f"{name} must be a string, got {getattr(self, name)!r}")
        _expect(self.training_args is None or isinstance(self.training_args, dict), "training_args must be a dict")
        _expect(isinstance(self.lineage, dict), f"lineage must be a dict, got {type(self.lineage).__name__}")
        _expect(self.source is None or isinstance(self.source, dict), "source must be a dict or None")
        if self.batch_norm is not None:
            parse_batch_norm_document(self.batch_norm)

    @classmethod
    def for_model(cls, model: nn.Module, **overrides: Any) -> CheckpointMetadata:
        """Metadata describing ``model`` (a YOLOModel) now; ``overrides`` replace any field."""
        config = model.config
        spec = TASKS.get(model.task)
        fields = {
            "architecture": config.to_dict(), "task": model.task, "names": dict(model.names),
            "image_size": spec.default_image_size if spec else 640, "model_version": config.version or config.family,
            "package_version": package_version(), "created_at": utc_now(),
            "batch_norm": describe_batch_norms(model),
        }
        return cls(**fields).replace(**overrides)

    def replace(self, **changes: Any) -> CheckpointMetadata:
        """A copy with some fields changed; unknown field names raise with the closest valid name."""
        known = [f.name for f in dataclasses.fields(self)]
        for name in changes:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; valid fields: {', '.join(known)}"
                raise TypeError(f"unknown checkpoint metadata field '{name}'{hint}")
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (names with string keys, as JSON requires)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["names"] = {str(k): v for k, v in self.names.items()}
        return {"format_version": data.pop("format_version"), **data}

    def to_json(self) -> str:
        """The JSON document stored under ``__metadata__['yolov12']``."""
        data = self.to_dict()
        if _nests_deeper(data, MAX_NESTING_DEPTH):
            raise CheckpointMetadataError(
                f"checkpoint metadata nests deeper than {MAX_NESTING_DEPTH} levels, which readers refuse; flatten "
                "training_args, lineage and source")
        try:
            return json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise CheckpointMetadataError(
                f"checkpoint metadata is not plain JSON data ({exc}); pass only dicts, lists, strings, numbers, "
                "booleans and None in training_args, lineage and source"
            ) from exc

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<metadata>") -> CheckpointMetadata:
        """Validate a decoded document; unknown ``format_version`` or missing fields raise with the fix."""
        if not isinstance(data, dict):
            raise CheckpointMetadataError(f"{origin}: metadata must be a JSON object, got {type(data).__name__}")
        _check_format_version(data.get("format_version"), origin)
        known = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - data.keys())
        if missing:
            raise CheckpointMetadataError(f"{origin}: metadata lacks {missing}; the file was not written by "
                                          "save_checkpoint or was edited by hand")
        extra = sorted(data.keys() - known)
        if extra:
            logger.warning("%s: ignoring unknown metadata fields %s", origin, extra)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except CheckpointMetadataError as exc:
            raise type(exc)(f"{origin}: {exc}") from None

    @classmethod
    def from_json(cls, text: str, origin: str = "<metadata>") -> CheckpointMetadata:
        """Parse and validate the stored JSON document (at most ``MAX_NESTING_DEPTH`` levels deep)."""
        too_deep = False
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise CheckpointMetadataError(f"{origin}: the yolov12 metadata is not valid JSON ({exc})") from None
        except RecursionError:  # nested thousands of levels deep: refused like any document over the limit
            too_deep = True
        if too_deep or _nests_deeper(data, MAX_NESTING_DEPTH):
            raise CheckpointMetadataError(
                f"{origin}: the yolov12 metadata nests deeper than {MAX_NESTING_DEPTH} levels; the file is damaged or "
                "hostile")
        return cls.from_dict(data, origin)


def _nests_deeper(value: Any, limit: int) -> bool:
    """True when lists and dicts in ``value`` nest more than ``limit`` levels (walked without recursion)."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckpointMetadataError(message)


def _check_format_version(version: Any, origin: str = "<metadata>") -> None:
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise UnsupportedFormatVersionError(
            f"{origin}: checkpoint format_version {version} is newer than this yolov12-platform "
            f"({package_version()}) reads (up to {FORMAT_VERSION}); upgrade yolov12-platform to load it"
        )
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise UnsupportedFormatVersionError(
            f"{origin}: unknown checkpoint format_version {version!r}; this yolov12-platform reads format_version "
            f"{FORMAT_VERSION}. The file is damaged or was not written by save_checkpoint"
        )


def _int_keyed_names(names: Any) -> dict[int, str]:
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    _expect(isinstance(names, dict), f"names must be a mapping of class index to name, got {type(names).__name__}")
    try:
        result = {int(k): v for k, v in names.items()}
    except (TypeError, ValueError, OverflowError):
        raise CheckpointMetadataError(f"class name keys must be integers, got {list(names)[:5]!r:.200}") from None
    _expect(all(isinstance(v, str) for v in result.values()), "class names must be strings")
    _expect(sorted(result) == list(range(len(result))), "class indices must be 0..n-1 without gaps")
    return result
