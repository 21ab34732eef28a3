"""Where engines built from native weights are cached, and what a cached engine is tied to.

An ONNX model or an OpenVINO IR runs on any machine with its runtime, so its cache entry is keyed by the weights, the
backend, the image size and the batch. A serialized TensorRT engine is not portable: it runs only on GPUs of the
compute capability it was built for and only with the TensorRT version that built it (TensorRT 10's documentation,
"engine compatibility"), and an fp16 engine is another engine than an fp32 one. Its key therefore also names the
compute capability, the TensorRT version and the precision, so a replica on another GPU generation or image builds
its own engine instead of failing to deserialize a foreign one.

Example:
    >>> BuildTarget.for_backend("onnxruntime").tag
    'portable'
    >>> BuildTarget.for_backend("tensorrt", capability=(8, 9), tensorrt_version="10.3.0").tag
    'sm89-trt10.3.0-fp16'
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_UNSAFE = re.compile(r"[^0-9A-Za-z.]+")


class EngineTargetError(RuntimeError):
    """The machine cannot build or run the engine asked for (one line: what is missing)."""


@dataclass(frozen=True)
class BuildTarget:
    """What a built engine is bound to beyond its weights and shapes (empty for portable formats)."""

    backend: str
    capability: tuple[int, int] | None = None
    runtime_version: str | None = None
    precision: str | None = None

    @classmethod
    def for_backend(cls, backend: str, *, capability: tuple[int, int] | None = None,
                    tensorrt_version: str | None = None) -> BuildTarget:
        """The target of ``backend``; TensorRT needs the GPU's compute capability and the TensorRT version."""
        if backend not in NON_PORTABLE:
            return cls(backend)
        if capability is None or not tensorrt_version:
            raise EngineTargetError("a TensorRT engine is keyed by the GPU's compute capability and the TensorRT "
                                    "version; both are needed (install tensorrt and run on an NVIDIA GPU)")
        return cls(backend, tuple(capability), tensorrt_version, "fp16")

    @property
    def tag(self) -> str:
        """A folder-name-safe text of the target: ``portable`` or ``sm89-trt10.3.0-fp16``."""
        if self.capability is None:
            return "portable"
        major, minor = self.capability
        version = _UNSAFE.sub("_", self.runtime_version or "")
        return f"sm{major}{minor}-trt{version}-{self.precision}"


def probe_tensorrt_target(device: str) -> BuildTarget:
    """The TensorRT target of this replica's GPU (``device`` ``cuda`` or ``cuda:N``)."""
    if importlib.util.find_spec("tensorrt") is None:
        raise EngineTargetError("backend tensorrt needs the tensorrt package: pip install 'yolov12-platform[gpu]'")
    import tensorrt  # noqa: PLC0415 - GPU machines only
    import torch  # noqa: PLC0415

    if not torch.cuda.is_available():
        raise EngineTargetError("backend tensorrt needs an NVIDIA GPU; this replica sees none (use onnxruntime or "
                                "openvino on the CPU)")
    index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
    return BuildTarget.for_backend("tensorrt", capability=torch.cuda.get_device_capability(index),
                                   tensorrt_version=tensorrt.__version__)


NON_PORTABLE: dict[str, Callable[[str], BuildTarget]] = {"tensorrt": probe_tensorrt_target}
"""Backends whose built engines are bound to the machine, with the probe that reads their target on this replica."""


def build_target(backend: str, device: str) -> BuildTarget:
    """The target an engine built here for ``backend`` on ``device`` is bound to."""
    probe = NON_PORTABLE.get(backend)
    return probe(device) if probe is not None else BuildTarget.for_backend(backend)


def cache_folder(root: Path, weights_digest: str, backend: str, imgsz: int, max_batch: int,
                 target: BuildTarget) -> Path:
    """The cache folder of one engine: weights, backend, size, batch and (for TensorRT) the machine it runs on."""
    suffix = "" if target.capability is None else f"-{target.tag}"
    return root / f"{weights_digest}-{backend}-{imgsz}-b{max_batch}{suffix}"
