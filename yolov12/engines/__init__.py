"""Inference engines: one interface over PyTorch, ONNX Runtime, OpenVINO and TensorRT, used by predict and serving.

Public API:

- :func:`load_engine` ``(artifact, backend=None, device="cpu", **options) -> Engine``: a live model, a checkpoint,
  an ``.onnx`` file, a TensorRT ``.engine`` or an ``*_openvino`` folder; the backend follows the artifact.
- :class:`Engine` (protocol): ``engine(batch) -> np.ndarray`` on a (B, 3, H, W) float RGB batch in [0, 1] (numpy or
  torch), returning the raw output in the PyTorch head's layout; ``engine.info`` (:class:`EngineInfo`) gives the
  backend, task, class names, stride, input size (static or dynamic), batch limits, end-to-end NMS, device and
  precision; ``engine.warmup()``.
- :func:`available_backends`, :func:`backend_for`, :func:`artifact_backend`, :data:`BACKENDS`, :func:`register_backend`.

Pre- and post-processing live in :mod:`yolov12.infer` (``letterbox_batch``, ``non_max_suppression``) and are
applied by :class:`yolov12.infer.Predictor`, so one implementation serves predict and the serving layer.

Example:
    >>> from yolov12.engines import load_engine
    >>> engine = load_engine("yolov12n.onnx", threads=2)  # doctest: +SKIP
    >>> engine.info.backend, engine.info.imgsz, engine.info.fixed_batch  # doctest: +SKIP
    ('onnxruntime', (640, 640), 1)
"""

from yolov12.engines.base import BaseEngine, Engine, EngineError, EngineInfo, EngineInputError, run_on_canvas
from yolov12.engines.registry import (
    BACKENDS,
    Backend,
    artifact_backend,
    available_backends,
    backend_for,
    is_exported_artifact,
    load_engine,
    register_backend,
    resolve_backend,
)

__all__ = [
    "BACKENDS", "Backend", "BaseEngine", "Engine", "EngineError", "EngineInfo", "EngineInputError",
    "artifact_backend", "available_backends", "backend_for", "is_exported_artifact", "load_engine", "register_backend",
    "resolve_backend", "run_on_canvas",
]
