"""Export to ONNX, OpenVINO and TensorRT: self-describing artifacts that :mod:`yolov12.engines` loads.

Example:
    >>> from yolov12 import YOLO
    >>> YOLO("yolov12n.yaml").export(format="onnx", imgsz=640, dynamic=True)  # doctest: +SKIP
    PosixPath('yolov12n.onnx')
"""

from yolov12.export.api import (
    EXPORT_FORMATS,
    ExportConfig,
    ExportError,
    ExportFormat,
    describe_export,
    export_model,
    register_format,
)
from yolov12.export.metadata import ExportMetadata, ExportMetadataError
from yolov12.export.onnx import NMSSettings, read_onnx_metadata
from yolov12.export.openvino import read_openvino_metadata
from yolov12.export.tensorrt import EngineCompatibilityError, EngineFileError, TensorRTUnavailableError

__all__ = [
    "EXPORT_FORMATS", "EngineCompatibilityError", "EngineFileError", "ExportConfig", "ExportError", "ExportFormat",
    "ExportMetadata", "ExportMetadataError", "NMSSettings", "TensorRTUnavailableError", "describe_export",
    "export_model", "read_onnx_metadata", "read_openvino_metadata", "register_format",
]
