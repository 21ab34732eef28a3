"""The OpenVINO backend (CPU): an ``*_openvino`` IR folder, a ``.xml`` graph, or an ``.onnx`` file read directly.

An int8 folder (``export(format="openvino", int8=True, data=...)``) is an IR like the others: its quantised ops run
in int8 (VNNI / AMX kernels where the CPU has them) whatever the precision hint, which only sets the precision of the
ops left in float (the detection post-processing); fp32 unless asked, so bf16 is never forced onto an int8 model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from yolov12.engines.base import ArrayLike, BaseEngine, EngineError, EngineInfo, as_numpy
from yolov12.export.onnx import read_onnx_metadata
from yolov12.export.openvino import find_ir, read_openvino_metadata
from yolov12.utils.extras import extra_imports

with extra_imports("openvino", "the OpenVINO engine"):  # the [openvino] extra
    import openvino as ov

logger = logging.getLogger(__name__)

PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_HINT_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


class OpenVINOEngine(BaseEngine):
    """An OpenVINO model compiled for the CPU.

    Args:
        path: ``<stem>_openvino/`` folder (or its ``.xml``), or an ``.onnx`` file.
        device: ``cpu`` (OpenVINO's ``CPU`` plugin); other OpenVINO device names (``GPU``, ``NPU``) pass through.
        precision: inference precision hint ``fp32`` or ``bf16`` (default: the one recorded at export). bf16 is
            native on CPUs with AVX512-BF16 / AMX; elsewhere OpenVINO keeps fp32 (``info.precision`` says which;
            ``int8`` for a quantised model, whose float parts follow the hint).
        threads: CPU inference threads (None: OpenVINO's default, all cores).
        hint: ``latency`` (one stream, all threads on one request; default) or ``throughput`` (several streams).
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        precision: str | None = None,
        threads: int | None = None,
        hint: str = "latency",
    ) -> None:
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            graph, metadata = path, read_onnx_metadata(path)
        elif path.is_dir():
            graph, metadata = find_ir(path), read_openvino_metadata(path)
        elif path.suffix.lower() == ".xml":
            graph, metadata = path, read_openvino_metadata(path.parent)
        else:
            raise EngineError(f"'{path}' is not an OpenVINO folder (*_openvino/), .xml graph or .onnx file")
        if not graph.exists():
            raise FileNotFoundError(f"OpenVINO model '{graph}' does not exist")
        precision = precision or metadata.precision or "fp32"
        if precision not in PRECISION_HINTS:
            raise ValueError(f"precision='{precision}' is not one of {', '.join(PRECISION_HINTS)}")
        if hint not in ("latency", "throughput"):
            raise ValueError(f"hint='{hint}' must be 'latency' or 'throughput'")
        core = ov.Core()
        model = core.read_model(str(graph))
        config: dict[str, object] = {"PERFORMANCE_HINT": hint.upper(),
                                     "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        ov_device = "CPU" if str(device).lower() == "cpu" else str(device).upper()
        self.compiled = core.compile_model(model, ov_device, config)
        self.request = self.compiled.create_infer_request()
        self.metadata = metadata
        in_effect = _precision_in_effect(self.compiled)
        if in_effect != precision:
            logger.info("OpenVINO runs %s here (asked for %s: this CPU has no native %s)", in_effect, precision,
                        precision)
        shape = model.input(0).get_partial_shape()
        batch_dim, *_, height, width = (d.get_length() if d.is_static else None for d in shape)
        dynamic_size = height is None or width is None
        self.info = EngineInfo(
            backend="openvino", task=metadata.task, names=metadata.names, stride=metadata.stride,
            imgsz=metadata.imgsz if dynamic_size else (height, width), dynamic_imgsz=dynamic_size,
            min_batch=batch_dim or 1, max_batch=batch_dim, end2end=metadata.end2end, input_dtype="float32",
            device=ov_device, precision="int8" if metadata.int8 else in_effect, artifact=str(path),
            metadata=metadata.to_dict(),
        )

    def forward(self, images: ArrayLike) -> np.ndarray:
        self.request.infer({0: as_numpy(images)}, share_inputs=True)
        output = self.request.get_output_tensor(0).data
        return np.array(output, dtype=np.float32, copy=True)  # the request's buffer is reused by the next call


def _precision_in_effect(compiled: ov.CompiledModel) -> str:
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except RuntimeError:  # pragma: no cover - devices without the property
        return "fp32"
    name = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
    return _HINT_NAMES.get(name, name)
