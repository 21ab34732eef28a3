"""The OpenVINO backend (CPU): an ``*_openvino`` IR folder, a ``.xml`` graph, or an ``.onnx`` file read directly.

An int8 folder (``export(format="openvino", int8=True, data=...)``) is an IR like the others: its quantised ops run
in int8 (VNNI / AMX kernels where the CPU has them) whatever the precision hint, which only sets the precision of the
ops left in float (the detection post-processing); fp32 unless asked, so bf16 is never forced onto an int8 model.

The engine takes the library's uint8 canvas too (``run_canvas``, used by predict and serving): a second compiled
model, made on first use, whose input is (B, H, W, 3) uint8 BGR and whose OpenVINO pre-processing steps (element
type, BGR -> RGB, scale by 255, NHWC -> NCHW) run inside the graph before the first convolution. Its outputs equal
those of the float input (tested); it saves the Python conversion pass (about 1 ms a 640 px image on 2 cores).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from yolov12.engines.base import ArrayLike, BaseEngine, EngineError, EngineInfo, as_numpy
from yolov12.export.onnx import read_onnx_metadata
from yolov12.export.openvino import find_ir, read_openvino_metadata
from yolov12.utils.extras import extra_imports

with extra_imports("openvino", "the OpenVINO engine"):  # the [openvino] extra
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

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
        self._canvas_source = (core, graph, ov_device, config)
        self._canvas_request: ov.InferRequest | None = None
        self._canvas_lock = threading.Lock()
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
            metadata=metadata.to_dict(), canvas_input=True,
        )

    def forward(self, images: ArrayLike) -> np.ndarray:
        self.request.infer({0: as_numpy(images)}, share_inputs=True)
        output = self.request.get_output_tensor(0).data
        return np.array(output, dtype=np.float32, copy=True)  # the request's buffer is reused by the next call

    def forward_canvas(self, canvas: np.ndarray) -> np.ndarray:
        request = self._canvas_model()
        request.infer({0: canvas}, share_inputs=True)
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def _canvas_model(self) -> ov.InferRequest:
        """The request of the uint8-canvas model (compiled on first use; see the module docstring)."""
        with self._canvas_lock:
            if self._canvas_request is None:
                core, graph, device, config = self._canvas_source
                self._canvas_request = core.compile_model(canvas_model(core.read_model(str(graph))), device,
                                                          config).create_infer_request()
            return self._canvas_request


def canvas_model(model: ov.Model) -> ov.Model:
    """``model`` with a (B, H, W, 3) uint8 BGR input: OpenVINO pre-processing steps convert it to the (B, 3, H, W)
    float RGB input in [0, 1] the exported graph takes, as ``PreparedBatch.to_float_nchw`` does in Python."""
    steps = PrePostProcessor(model)
    steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
        ColorFormat.BGR)
    steps.input().model().set_layout(ov.Layout("NCHW"))
    steps.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return steps.build()


def _precision_in_effect(compiled: ov.CompiledModel) -> str:
    try:
        value = compiled.get_property("INFERENCE_PRECISION_HINT")
    except RuntimeError:  # pragma: no cover - devices without the property
        return "fp32"
    name = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
    return _HINT_NAMES.get(name, name)
