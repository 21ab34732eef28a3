"""``export_model(model, format=...)``: one typed config, a registry of formats, self-describing artifacts.

Example:
    >>> from yolov12.export import export_model
    >>> export_model(model, format="onnx", imgsz=640, dynamic=True, batch=8)   # doctest: +SKIP
    PosixPath('yolov12n.onnx')
    >>> export_model(model, format="openvino", precision="bf16")                  # doctest: +SKIP
    PosixPath('yolov12n_openvino')
    >>> export_model(model, format="openvino", int8=True, data="sample")          # doctest: +SKIP
    PosixPath('yolov12n_openvino')
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from torch import nn

from yolov12.config.base import Section
from yolov12.export import tensorrt as trt_export
from yolov12.export.calibration import CalibrationImages
from yolov12.export.metadata import ExportMetadata, file_digest, weights_digest
from yolov12.export.onnx import DEFAULT_OPSET, NMSSettings, export_onnx
from yolov12.export.openvino import FOLDER_SUFFIX, export_openvino, openvino_folder
from yolov12.infer.device import select_device
from yolov12.tasks import TASKS
from yolov12.utils.extras import require
from yolov12.utils.stride import max_stride, round_up_to_stride

logger = logging.getLogger(__name__)

FORMAT_ALIASES = {"tensorrt": "engine", "trt": "engine", "ov": "openvino"}
INT8_FORMATS = ("openvino", "engine")


class ExportError(ValueError):
    """The export cannot be done as asked; the message names the setting and what to use instead."""


class ExportConfig(Section):
    """Export settings (``model.export(...)`` keywords and ``yolov12 export key=value``).

    Attributes:
        format: ``onnx``, ``openvino`` or ``engine`` (TensorRT; aliases ``tensorrt``, ``trt``).
        imgsz: input size, an int (square) or [height, width]; multiples of the model's stride. Default 640
            (detection) / 224 (classification).
        batch: batch size of the graph; with ``dynamic`` the largest batch of the TensorRT profile.
        dynamic: dynamic batch dimension.
        dynamic_imgsz: dynamic height/width too (ONNX / OpenVINO).
        half: fp16 (ONNX: the model traced in float16, input and output float16; OpenVINO: fp16 weights;
            TensorRT: fp16 kernels from the fp32 ONNX).
        int8: int8 quantisation calibrated on ``data`` with NNCF, the detection post-processing kept in float:
            OpenVINO (FakeQuantize in the IR) or TensorRT (an explicitly quantised Q/DQ ONNX, written beside the
            engine, built strongly typed; not combinable with ``half``).
        data: calibration images for int8: a folder, glob or list of images, or a dataset (``sample``, a
            data.yaml) whose train split is used; at most 300 images, prepared as predict prepares them.
        opset: ONNX opset (default 17).
        simplify: simplify the ONNX graph with onnxslim.
        nms: end-to-end NMS inside the graph (detection); conf/iou/max_det/agnostic_nms are baked in.
        device: device to trace on (and to build TensorRT engines on).
        precision: OpenVINO default inference precision hint, ``fp32`` or ``bf16`` (for int8: of the float parts).
        workspace: TensorRT builder workspace in GiB.
        timing_cache: TensorRT timing-cache file (read if present, written after the build).
        output: artifact path (default: beside the source checkpoint, else in the current folder, named after the
            model: ``<stem>.onnx``, ``<stem>_openvino/``, ``<stem>.engine``; int8: ``<stem>_int8_openvino/``,
            ``<stem>_int8.engine``).
        attention: attention kernel in the graph: ``sdpa`` (default) or ``reference``; never FlashAttention.
    """

    format: str = "onnx"
    imgsz: int | tuple[int, int] | None = None
    batch: int = Field(1, ge=1, le=1024)
    dynamic: bool = False
    dynamic_imgsz: bool = False
    half: bool = False
    int8: bool = False
    data: str | list[str] | None = None
    opset: int = Field(DEFAULT_OPSET, ge=13, le=20)
    simplify: bool = True
    nms: bool = False
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=30000)
    agnostic_nms: bool = False
    device: str = "cpu"
    precision: Literal["fp32", "bf16"] = "fp32"
    workspace: float | None = Field(4.0, gt=0)
    timing_cache: str | None = None
    output: str | None = None
    attention: Literal["sdpa", "reference"] = "sdpa"

    @field_validator("format", mode="before")
    @classmethod
    def _known_format(cls, value: object) -> str:
        text = FORMAT_ALIASES.get(str(value).strip().lower(), str(value).strip().lower())
        if text not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format '{value}'; choose one of {', '.join(EXPORT_FORMATS)}")
        return text

    @field_validator("imgsz", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        if isinstance(value, (list, tuple)) and len(value) == 1:
            return value[0]
        return value

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: object) -> str:
        text = str(value).strip().lower()
        return f"cuda:{text}" if text.isdigit() else text


@dataclass(frozen=True)
class ExportFormat:
    """A registered export format: ``export(model, config, metadata, path) -> artifact path``."""

    name: str
    suffix: str
    description: str
    export: Callable[[nn.Module, ExportConfig, ExportMetadata, Path], Path]


def _export_onnx(model: nn.Module, config: ExportConfig, metadata: ExportMetadata, path: Path) -> Path:
    return export_onnx(model, path, metadata, opset=config.opset, simplify=config.simplify, nms=_nms(config),
                       device=select_device(config.device), attention=config.attention, fp16=config.half)


def _export_openvino(model: nn.Module, config: ExportConfig, metadata: ExportMetadata, path: Path) -> Path:
    require("openvino", extra="openvino", feature="OpenVINO export")  # fail before spending time on the ONNX
    quantize = None
    if config.int8:
        require("nncf", extra="openvino", feature="int8 OpenVINO export")
        from yolov12.export.openvino_int8 import quantize_openvino  # noqa: PLC0415 - imports nncf

        images = _calibration_images(config, metadata)  # read first: a bad image fails before the ONNX export
        quantize = partial(quantize_openvino, images=images, batch_size=1 if config.dynamic else config.batch,
                           fixed_batch=not config.dynamic, head_scope=head_scope(model))
    with tempfile.TemporaryDirectory(prefix="yolov12-export-") as scratch:
        onnx_path = export_onnx(model, Path(scratch) / f"{path.name.removesuffix(FOLDER_SUFFIX)}.onnx",
                                metadata.replace(format="onnx"), opset=config.opset, simplify=config.simplify,
                                nms=_nms(config), device="cpu", attention=config.attention)
        return export_openvino(onnx_path, openvino_folder(path), metadata, half=config.half, quantize=quantize)


def _export_engine(model: nn.Module, config: ExportConfig, metadata: ExportMetadata, path: Path) -> Path:
    trt_export.require_tensorrt("export")  # fail before spending time on the ONNX
    if config.dynamic_imgsz:
        raise ExportError("TensorRT engines here have a fixed image size; export with dynamic_imgsz=False")
    device = select_device(config.device if config.device != "cpu" else "cuda")
    min_batch, opt_batch, max_batch = trt_export.batch_profile(config.batch, config.dynamic)
    try:
        options = trt_export.BuildOptions(
            half=config.half, int8=config.int8, min_batch=min_batch, opt_batch=opt_batch, max_batch=max_batch,
            workspace_gib=config.workspace, device=device.index or 0,
            timing_cache=Path(config.timing_cache) if config.timing_cache else None)
    except trt_export.EngineBuildError as exc:
        raise ExportError(str(exc)) from None
    images = _calibration_images(config, metadata) if config.int8 else None  # a bad image fails before the ONNX
    onnx_metadata = metadata.replace(format="onnx")
    if images is None:
        onnx_path = export_onnx(model, path.with_suffix(".onnx"), onnx_metadata, opset=config.opset,
                                simplify=config.simplify, nms=_nms(config), device=device, attention=config.attention)
        return trt_export.build_engine(onnx_path, path, metadata, options)
    with tempfile.TemporaryDirectory(prefix="yolov12-export-") as scratch:
        float_onnx = export_onnx(model, Path(scratch) / f"{path.stem}.onnx", onnx_metadata.replace(int8=False),
                                 opset=config.opset, simplify=config.simplify, nms=_nms(config), device="cpu",
                                 attention=config.attention)
        qdq_onnx = quantize_for_tensorrt(float_onnx, path.with_suffix(".onnx"), images, config, head_scope(model))
    return trt_export.build_engine(qdq_onnx, path, metadata, options)


def quantize_for_tensorrt(float_onnx: Path, output: Path, images: CalibrationImages, config: ExportConfig,
                          scope: str | None) -> Path:
    """The Q/DQ int8 ONNX a TensorRT int8 engine is built from (NNCF on ONNX Runtime, head post-processing float)."""
    require("nncf", extra="openvino", feature="int8 TensorRT export (NNCF quantises the ONNX)")
    from yolov12.export.onnx_int8 import quantize_onnx  # noqa: PLC0415 - imports nncf

    return quantize_onnx(float_onnx, output, images, batch_size=1 if config.dynamic else config.batch,
                         fixed_batch=not config.dynamic, head_scope=scope)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat("onnx", ".onnx", "ONNX (ONNX Runtime, OpenVINO, TensorRT)", _export_onnx),
    "openvino": ExportFormat("openvino", FOLDER_SUFFIX, "OpenVINO IR folder for CPUs (fp32 / bf16 / int8)",
                             _export_openvino),
    "engine": ExportFormat("engine", ".engine", "TensorRT engine for NVIDIA GPUs (fp16 / int8)", _export_engine),
}


def register_format(export_format: ExportFormat) -> None:
    """Add (or replace) a format in the registry."""
    EXPORT_FORMATS[export_format.name] = export_format


def export_model(
    model: nn.Module,
    format: str = "onnx",  # noqa: A002 - the Ultralytics keyword
    *,
    source: str | Path | None = None,
    source_metadata: Any = None,
    **settings: Any,
) -> Path:
    """Export a YOLOModel; returns the artifact path (a file, or the ``*_openvino`` folder).

    Args:
        model: a detection or classification YOLOModel (left unchanged: export works on a fused copy).
        format: see :class:`ExportConfig`.
        source: the checkpoint the model was loaded from (its SHA-256 goes into the metadata; the default output
            lies beside it).
        source_metadata: that checkpoint's :class:`CheckpointMetadata` (its ``source`` record is carried over).
        **settings: the other :class:`ExportConfig` keys.

    Raises:
        ConfigError: unknown key or bad value (e.g. an unknown format).
        ExportError: a setting that does not fit the model (imgsz not a multiple of the stride, nms on a classifier).
        TensorRTUnavailableError: ``format="engine"`` without an NVIDIA GPU / tensorrt.
    """
    config = ExportConfig.from_overrides({"format": format, **settings})
    metadata = describe_export(model, config, source, source_metadata)
    export_format = EXPORT_FORMATS[config.format]
    path = output_path(config, export_format, model, source)
    logger.info("exporting %s to %s (%s, imgsz %s, batch %d%s)", metadata.model_name, path, config.format,
                metadata.imgsz, config.batch, ", dynamic" if config.dynamic else "")
    return export_format.export(model, config, metadata, path)


def describe_export(model: nn.Module, config: ExportConfig, source: str | Path | None = None,
                    source_metadata: Any = None) -> ExportMetadata:
    """Check the settings against the model and build the artifact's metadata."""
    task = getattr(model, "task", None)
    if task not in TASKS:
        raise ExportError(f"cannot export a model whose task is {task!r}; supported: {', '.join(TASKS)}")
    spec = TASKS[task]
    stride = max_stride(model)
    imgsz = config.imgsz if config.imgsz is not None else spec.default_image_size
    size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    bad = [s for s in size if s < stride or s % stride]
    if bad:
        fixed = [round_up_to_stride(s, stride) for s in size]
        raise ExportError(f"imgsz={imgsz} is not a multiple of the model's stride {stride}; use e.g. imgsz={fixed[0]}"
                          if size[0] == size[1] else
                          f"imgsz={list(size)} is not a multiple of the model's stride {stride}; use imgsz={fixed}")
    if config.nms and not spec.predicts_boxes:
        raise ExportError(f"nms=True applies to detection models; this is a {spec.description} model")
    if config.int8 and config.format not in INT8_FORMATS:
        raise ExportError(f"int8=True is available for format=openvino (NNCF) and format=engine (TensorRT), not "
                          f"format={config.format}")
    if config.int8 and config.data is None:
        raise ExportError("int8=True needs calibration images: pass data=<image folder, glob, list of images, "
                          "data.yaml or a dataset name such as 'sample'>")
    nms = _nms(config)
    return ExportMetadata.for_model(
        model, format=config.format, imgsz=size, batch=config.batch, dynamic=config.dynamic,
        dynamic_imgsz=config.dynamic_imgsz, end2end=nms is not None, nms=nms.to_dict() if nms else None,
        half=config.half, int8=config.int8, precision=config.precision, opset=config.opset,
        source=source_record(model, source, source_metadata),
    )


def source_record(model: nn.Module, source: str | Path | None, source_metadata: Any = None) -> dict[str, Any]:
    """``{"file", "sha256"}`` of the checkpoint file (when there is one), the weights digest, the import record."""
    record: dict[str, Any] = {"weights_sha256": weights_digest(model)}
    if source is not None and Path(source).is_file():
        record.update(file=Path(source).name, sha256=file_digest(source))
    elif source is not None:
        record["file"] = str(source)
    imported = getattr(source_metadata, "source", None)
    if isinstance(imported, dict) and imported:
        record["checkpoint_source"] = imported
    return record


def output_path(config: ExportConfig, export_format: ExportFormat, model: nn.Module,
                source: str | Path | None) -> Path:
    if config.output:
        path = Path(config.output)
        if export_format.name == "openvino":
            return openvino_folder(path)
        return path
    stem = Path(source).with_suffix("") if source is not None and Path(source).is_file() else \
        Path.cwd() / model.config.name
    variant = "_int8" if config.int8 else ""  # an int8 export never replaces the float one next to it
    return stem.with_name(stem.name + variant + export_format.suffix)


def _nms(config: ExportConfig) -> NMSSettings | None:
    if not config.nms:
        return None
    return NMSSettings(conf=config.conf, iou=config.iou, max_det=config.max_det, agnostic=config.agnostic_nms)


def _calibration_images(config: ExportConfig, metadata: ExportMetadata) -> CalibrationImages:
    assert config.data is not None  # describe_export checked it
    return CalibrationImages.from_data(config.data, metadata.imgsz, metadata.task, metadata.stride)


def head_scope(model: nn.Module) -> str | None:
    """Module path of a detection model's head (``model.21``), as the ONNX exporter names its ops; None otherwise."""
    spec = TASKS.get(getattr(model, "task", None))
    if spec is None or not spec.predicts_boxes:
        return None
    return next(name for name, module in model.named_modules() if module is model.head)
