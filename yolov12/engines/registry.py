"""The backend registry: which engine runs which artifact, and what each backend needs installed."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from yolov12.engines.base import Engine, EngineError
from yolov12.utils.extras import install_hint, require

BACKEND_ALIASES = {"pytorch": "torch", "ort": "onnxruntime", "onnx": "onnxruntime", "ov": "openvino",
                   "trt": "tensorrt", "engine": "tensorrt"}
TORCH_SUFFIXES = (".safetensors", ".pt", ".pth")


@dataclass(frozen=True)
class Backend:
    """An engine backend: the class that implements it (imported on first use), the package it needs and the extra
    of ``yolov12-platform`` that installs that package (None: a core dependency)."""

    name: str
    module: str
    class_name: str
    requires: str
    description: str
    needs_cuda: bool = False
    extra: str | None = None

    def is_available(self) -> bool:
        if importlib.util.find_spec(self.requires) is None:
            return False
        return torch.cuda.is_available() if self.needs_cuda else True

    def engine_class(self) -> Callable[..., Engine]:
        return getattr(importlib.import_module(self.module), self.class_name)


BACKENDS: dict[str, Backend] = {
    "torch": Backend("torch", "yolov12.engines.torch_engine", "TorchEngine", "torch",
                     "eager PyTorch (optional torch.compile): .safetensors / .pt checkpoints and live models"),
    "onnxruntime": Backend("onnxruntime", "yolov12.engines.onnxruntime_engine", "OnnxRuntimeEngine", "onnxruntime",
                           ".onnx in ONNX Runtime (CPU; CUDA / TensorRT execution providers when installed)"),
    "openvino": Backend("openvino", "yolov12.engines.openvino_engine", "OpenVINOEngine", "openvino",
                        "*_openvino/ IR folders (or .onnx) in OpenVINO on the CPU: fp32 / bf16, and int8 IRs "
                        "(export int8=True, NNCF)", extra="openvino"),
    "tensorrt": Backend("tensorrt", "yolov12.engines.tensorrt_engine", "TensorRTEngine", "tensorrt",
                        f".engine files on NVIDIA GPUs ({install_hint('gpu')})", needs_cuda=True, extra="gpu"),
}


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend."""
    BACKENDS[backend.name] = backend


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine (package installed; a CUDA GPU for tensorrt)."""
    return [name for name, backend in BACKENDS.items() if backend.is_available()]


def resolve_backend(name: str) -> Backend:
    key = BACKEND_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in BACKENDS:
        raise ValueError(f"unknown engine backend '{name}'; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[key]


def is_exported_artifact(path: str | Path) -> bool:
    """True for an artifact that only an exported-model engine runs (.onnx, .engine, *_openvino/ or its .xml)."""
    path = Path(path)
    return (path.suffix.lower() in (".onnx", ".engine", ".xml") or path.name.endswith("_openvino")
            or (path.is_dir() and any(path.glob("*.xml"))))


def backend_for(artifact: Any) -> str:
    """The backend that runs ``artifact``: a live model or checkpoint -> torch, ``.onnx`` -> onnxruntime,
    ``.engine`` -> tensorrt, an ``*_openvino`` folder or ``.xml`` -> openvino."""
    if isinstance(artifact, torch.nn.Module):
        return "torch"
    path = Path(artifact)
    suffix = path.suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return "torch"
    if suffix == ".onnx":
        return "onnxruntime"
    if suffix == ".engine":
        return "tensorrt"
    if suffix == ".xml" or path.name.endswith("_openvino") or (path.is_dir() and any(path.glob("*.xml"))):
        return "openvino"
    raise EngineError(
        f"no engine for '{artifact}': pass a checkpoint ({', '.join(TORCH_SUFFIXES)}), an .onnx file, a TensorRT "
        ".engine or an *_openvino folder"
    )


def artifact_backend(path: str | Path, preference: str = "auto") -> str:
    """The backend an exported artifact runs on when ``preference`` (``auto`` or a backend name) is asked for: its
    own, or OpenVINO for an ``.onnx`` file (OpenVINO reads ONNX). :class:`EngineError` for any other pairing, since
    an exported artifact cannot be turned into another format."""
    path = Path(path)
    natural = backend_for(path)
    if preference in ("auto", natural) or (preference == "openvino" and path.suffix.lower() == ".onnx"):
        return natural if preference == "auto" else preference
    raise EngineError(f"{path.name} is a {natural} artifact and cannot run on backend={preference}; give the native "
                      "weights (.safetensors) to export for that backend, or backend=auto")


def load_engine(artifact: Any, backend: str | None = None, device: str = "cpu", **options: Any) -> Engine:
    """Load ``artifact`` into an engine.

    Args:
        artifact: a live YOLOModel, a checkpoint path, an ``.onnx`` file, a ``.engine`` file or an ``*_openvino``
            folder.
        backend: force a backend (``torch``, ``onnxruntime``, ``openvino``, ``tensorrt``; aliases ``ort``, ``ov``,
            ``trt``); default: chosen from the artifact (:func:`backend_for`). OpenVINO also reads ``.onnx``.
        device: ``cpu``, ``cuda``, ``cuda:N`` (torch, onnxruntime, tensorrt).
        **options: backend options, e.g. ``threads=2`` (torch / onnxruntime / openvino), ``half=True`` and
            ``compile=True`` (torch), ``precision="bf16"`` and ``hint="throughput"`` (openvino),
            ``optimization="all"`` (onnxruntime).

    Returns:
        An :class:`Engine`: ``engine(batch)`` -> raw output; ``engine.info`` describes it.

    Example:
        >>> engine = load_engine("yolov12n.onnx", threads=2)  # doctest: +SKIP
        >>> engine.info.imgsz, engine.info.task, engine(np.zeros((1, 3, 640, 640), np.float32)).shape  # doctest: +SKIP
        ((640, 640), 'detect', (1, 84, 8400))
    """
    chosen = resolve_backend(backend) if backend else BACKENDS[backend_for(artifact)]
    if not isinstance(artifact, torch.nn.Module) and not Path(artifact).exists():
        raise FileNotFoundError(f"'{artifact}' does not exist")
    if chosen.name != "tensorrt" and importlib.util.find_spec(chosen.requires) is None:  # tensorrt says it itself
        if chosen.extra:
            require(chosen.requires, extra=chosen.extra, feature=f"the {chosen.name} backend")
        raise EngineError(f"the {chosen.name} backend needs the '{chosen.requires}' package: pip install "
                          f"{chosen.requires}")
    engine_class = chosen.engine_class()
    check_engine_options(chosen.name, engine_class, options)
    return engine_class(artifact, device=device, **options)


def check_engine_options(backend: str, engine_class: Callable[..., Engine], options: dict[str, Any]) -> None:
    """Refuse, in one line, options the backend's engine does not take (``compile=True`` on ONNX Runtime, say)."""
    parameters = inspect.signature(engine_class).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        accepted = sorted(name for name in parameters if name not in ("self", "artifact", "model", "path", "device"))
        raise EngineError(f"the {backend} backend takes no option {', '.join(unknown)} (its options: "
                          f"{', '.join(accepted) or 'none'}); remove it, or run the PyTorch weights on backend=torch")
