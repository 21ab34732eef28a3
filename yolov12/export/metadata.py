"""What an exported artifact says about itself: task, class names, stride, input size, source and versions.

One JSON document (:class:`ExportMetadata`) describes every format. ONNX stores it in the model's metadata props
(key ``yolov12``, plus flat keys ``names``, ``stride``, ``imgsz``, ``task``, ... for tools that read Ultralytics-style
props), OpenVINO in ``metadata.yaml`` beside the IR, TensorRT in the header of the ``.engine`` file.

Example:
    >>> meta = ExportMetadata.for_model(model, format="onnx", imgsz=(640, 640))  # doctest: +SKIP
    >>> ExportMetadata.from_json(meta.to_json()) == meta  # doctest: +SKIP
    True
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from yolov12.tasks import TASKS
from yolov12.utils.stride import max_stride
from yolov12.weights.metadata import package_version, utc_now

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
METADATA_KEY = "yolov12"


class ExportMetadataError(ValueError):
    """An artifact's metadata is missing or malformed; the message names the artifact and what is wrong."""


@dataclass(frozen=True)
class ExportMetadata:
    """Self-description of an exported model.

    Attributes:
        format: ``onnx``, ``openvino`` or ``engine``.
        task: ``detect`` or ``classify``.
        names: class index -> name.
        stride: largest stride of the model (input sizes must be multiples of it).
        imgsz: (height, width) the artifact was exported for (the only size unless ``dynamic_imgsz``).
        batch: batch size exported for; with ``dynamic`` the largest batch (TensorRT profile) or a hint.
        dynamic: the batch dimension is dynamic.
        dynamic_imgsz: height and width are dynamic (multiples of ``stride``).
        end2end: NMS is inside the graph; the output is (B, max_det, 6) x1, y1, x2, y2, score, class.
        nms: the NMS settings baked into an end-to-end graph (``conf``, ``iou``, ``max_det``, ``agnostic``).
        half: weights/compute in fp16.
        int8: int8 quantised.
        precision: default inference precision hint for OpenVINO (``fp32`` or ``bf16``).
        opset: ONNX opset of the graph (the intermediate ONNX for OpenVINO/TensorRT).
        model_name: architecture name, e.g. ``yolov12n``.
        model_version: YOLOv12 release (``turbo``, ``v1.0``) or family (``yolo11``).
        source: where the weights came from: ``{"file", "sha256"}`` of the checkpoint (when loaded from one) and
            ``weights_sha256``, a digest of the state dict, always.
        package_version: version of yolov12-platform that exported it.
        created_at: UTC ISO 8601 time of export.
        output_layout: one line describing the output tensor.
        format_version: layout version of this document.
    """

    format: str
    task: str
    names: dict[int, str]
    stride: int
    imgsz: tuple[int, int]
    batch: int = 1
    dynamic: bool = False
    dynamic_imgsz: bool = False
    end2end: bool = False
    nms: dict[str, Any] | None = None
    half: bool = False
    int8: bool = False
    precision: str = "fp32"
    opset: int | None = None
    model_name: str = ""
    model_version: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    package_version: str = field(default_factory=package_version)
    created_at: str = field(default_factory=utc_now)
    output_layout: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ExportMetadataError(f"task {self.task!r} is not one of {tuple(TASKS)}")
        object.__setattr__(self, "names", _int_keyed(self.names))
        object.__setattr__(self, "imgsz", _pair(self.imgsz))
        object.__setattr__(self, "stride", int(self.stride))
        object.__setattr__(self, "batch", int(self.batch))
        if not self.output_layout:
            object.__setattr__(self, "output_layout", describe_output(self.task, len(self.names), self.end2end,
                                                                      (self.nms or {}).get("max_det")))
        if self.format_version != FORMAT_VERSION:
            raise ExportMetadataError(
                f"export metadata format_version {self.format_version!r} is not {FORMAT_VERSION}; the artifact was "
                f"written by another yolov12-platform version (this is {package_version()})"
            )

    @classmethod
    def for_model(cls, model: nn.Module, **fields: Any) -> ExportMetadata:
        """Metadata for a YOLOModel about to be exported; ``fields`` set the export settings."""
        config = model.config
        values: dict[str, Any] = {
            "task": model.task, "names": dict(model.names), "stride": max_stride(model),
            "model_name": config.name, "model_version": config.version or config.family,
        }
        values.update(fields)
        return cls(**values)

    def replace(self, **changes: Any) -> ExportMetadata:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["names"] = {str(k): v for k, v in self.names.items()}
        data["imgsz"] = list(self.imgsz)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, origin: str = "<metadata>") -> ExportMetadata:
        if not isinstance(data, dict):
            raise ExportMetadataError(f"{origin}: export metadata must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            logger.warning("%s: ignoring unknown export metadata fields %s", origin, extra)
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise ExportMetadataError(f"{origin}: invalid export metadata ({exc})") from None

    @classmethod
    def from_json(cls, text: str, origin: str = "<metadata>") -> ExportMetadata:
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ExportMetadataError(f"{origin}: export metadata is not valid JSON ({exc})") from None
        return cls.from_dict(data, origin)

    # -- key/value stores (ONNX metadata props, OpenVINO yaml) -----------------------------------------------------
    def to_props(self) -> dict[str, str]:
        """String key/value pairs: the whole document under ``yolov12`` plus readable flat keys."""
        flat = {
            "task": self.task, "names": json.dumps({str(k): v for k, v in self.names.items()}),
            "stride": str(self.stride), "imgsz": json.dumps(list(self.imgsz)), "batch": str(self.batch),
            "dynamic": str(self.dynamic).lower(), "end2end": str(self.end2end).lower(), "model_name": self.model_name,
            "model_version": self.model_version, "source_sha256": str(self.source.get("sha256", "")),
            "weights_sha256": str(self.source.get("weights_sha256", "")), "package": "yolov12-platform",
            "package_version": self.package_version, "created_at": self.created_at,
            "output_layout": self.output_layout,
        }
        return {METADATA_KEY: self.to_json(), **flat}

    @classmethod
    def from_props(cls, props: dict[str, str], origin: str = "<artifact>") -> ExportMetadata:
        """Read our own props; foreign (Ultralytics-style) props are understood as far as they go."""
        if METADATA_KEY in props:
            return cls.from_json(props[METADATA_KEY], origin)
        return _from_foreign_props(props, origin)


def _from_foreign_props(props: dict[str, str], origin: str) -> ExportMetadata:
    """Ultralytics writes ``names`` as a Python dict literal, ``imgsz`` as a list literal, ``stride`` as an int."""
    if "names" not in props:
        raise ExportMetadataError(
            f"{origin} carries no yolov12 metadata and no class names; export it with yolov12 "
            "(YOLO('weights.safetensors').export(format=...)) so it describes its task, names and input size"
        )
    try:
        names = ast.literal_eval(props["names"])
        imgsz = ast.literal_eval(props.get("imgsz", "[640, 640]"))
        stride = int(ast.literal_eval(props.get("stride", "32")))
        batch = int(ast.literal_eval(props.get("batch", "1")))
    except (ValueError, SyntaxError) as exc:
        raise ExportMetadataError(f"{origin}: unreadable metadata props ({exc})") from None
    task = props.get("task", "detect")
    logger.info("%s: no yolov12 metadata; using its foreign props (task=%s, %d classes)", origin, task, len(names))
    return ExportMetadata(format="onnx", task=task, names=names, stride=stride, imgsz=imgsz, batch=batch,
                          model_name=props.get("description", ""), source={"foreign": True},
                          package_version=props.get("version", ""), created_at=props.get("date", ""))


def describe_output(task: str, num_classes: int, end2end: bool, max_det: int | None = None) -> str:
    if task == "classify":
        return f"(B, {num_classes}) class probabilities"
    if end2end:
        return f"(B, {max_det}, 6) x1, y1, x2, y2, score, class in input pixels, zero rows after the last detection"
    return f"(B, 4 + {num_classes}, anchors) cx, cy, w, h in input pixels, then sigmoid class scores"


def weights_digest(model: nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes, bytes in key order): identifies the weights exported."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _int_keyed(names: Any) -> dict[int, str]:
    if isinstance(names, (list, tuple)):
        names = dict(enumerate(names))
    if not isinstance(names, dict):
        raise ExportMetadataError(f"names must be a mapping of class index to name, got {type(names).__name__}")
    try:
        return {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError):
        raise ExportMetadataError(f"class name keys must be integers, got {list(names)[:5]}") from None


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    raise ExportMetadataError(f"imgsz must be an int or (height, width), got {value!r}")
