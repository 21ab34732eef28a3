"""The ONNX Runtime backend: CPU provider, or CUDA / TensorRT execution providers when installed and asked for."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from yolov12.engines.base import ArrayLike, BaseEngine, EngineError, EngineInfo, as_numpy
from yolov12.export.metadata import ExportMetadata

logger = logging.getLogger(__name__)

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


class OnnxRuntimeEngine(BaseEngine):
    """An exported ``.onnx`` model in an ONNX Runtime session.

    Args:
        path: the ``.onnx`` file (its metadata props describe task, names, stride and size).
        device: ``cpu``, or ``cuda`` / ``cuda:N`` for the CUDA (and TensorRT, if present) execution providers.
        threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
        providers: explicit execution providers, overriding ``device``.
        optimization: graph optimisation level: ``all`` (default), ``extended``, ``basic`` or ``disable``.
        spin: let idle intra-op threads spin (lower latency on a quiet machine; wasteful on a busy one).
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        threads: int | None = None,
        providers: list[str] | None = None,
        optimization: str = "all",
        spin: bool | None = None,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model '{path}' does not exist")
        options = ort.SessionOptions()
        options.graph_optimization_level = _optimization_level(optimization)
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        if spin is not None:
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        chosen, device_id = _providers(device, providers)
        self.session = ort.InferenceSession(str(path), options, providers=chosen)
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ExportMetadata.from_props(props, origin=str(path))
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_dtype = np.float16 if "float16" in model_input.type else np.float32
        batch_dim, *_, height, width = model_input.shape
        static_batch = batch_dim if isinstance(batch_dim, int) else None
        dynamic_size = not (isinstance(height, int) and isinstance(width, int))
        meta = self.metadata
        self.info = EngineInfo(
            backend="onnxruntime", task=meta.task, names=meta.names, stride=meta.stride,
            imgsz=meta.imgsz if dynamic_size else (height, width), dynamic_imgsz=dynamic_size,
            min_batch=static_batch or 1, max_batch=static_batch, end2end=meta.end2end,
            input_dtype="float16" if self.input_dtype == np.float16 else "float32",
            device=f"cuda:{device_id}" if self.session.get_providers()[0] in GPU_PROVIDERS else "cpu",
            precision="fp16" if meta.half else "fp32", artifact=str(path), metadata=meta.to_dict(),
        )
        logger.info("ONNX Runtime %s: %s with %s", ort.__version__, path, self.session.get_providers())

    def forward(self, images: ArrayLike) -> np.ndarray:
        output = self.session.run([self.output_name], {self.input_name: as_numpy(images, self.input_dtype)})[0]
        return output if output.dtype == np.float32 else output.astype(np.float32)


def _optimization_level(name: str) -> ort.GraphOptimizationLevel:
    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
    if name not in levels:
        raise ValueError(f"unknown ONNX Runtime optimization level '{name}'; use one of {', '.join(levels)}")
    return levels[name]


def _providers(device: str, explicit: list[str] | None) -> tuple[list, int]:
    """Execution providers for ``device``; a GPU request without a GPU provider is one clear error."""
    available = ort.get_available_providers()
    if explicit:
        missing = [p for p in explicit if p not in available]
        if missing:
            raise EngineError(f"ONNX Runtime providers {missing} are not available here; available: {available}")
        return list(explicit), 0
    text = str(device).strip().lower()
    if text == "auto":  # the GPU provider when this onnxruntime has one and a GPU is there, else the CPU
        gpu = [p for p in GPU_PROVIDERS if p in available]
        return ([(p, {"device_id": 0}) for p in gpu] + ["CPUExecutionProvider"], 0) if gpu else (
            ["CPUExecutionProvider"], 0)
    if text == "cpu":
        return ["CPUExecutionProvider"], 0
    if text.isdigit() or text.startswith("cuda"):
        index = int(text.rpartition(":")[2]) if ":" in text else int(text) if text.isdigit() else 0
        gpu = [p for p in GPU_PROVIDERS if p in available]
        if not gpu:
            raise EngineError(
                f"device '{device}' needs ONNX Runtime's CUDA execution provider, but this onnxruntime has only "
                f"{available}; install onnxruntime-gpu on a CUDA machine, or use device=cpu"
            )
        return [(p, {"device_id": index}) for p in gpu] + ["CPUExecutionProvider"], index
    raise EngineError(f"unknown device '{device}' for ONNX Runtime; use 'cpu' or 'cuda:N'")
