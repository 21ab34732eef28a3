"""TensorRT engines: build from our ONNX with the tensorrt (>= 10) Python API, and the self-describing engine file.

File layout (``.engine``)::

    b"YV12TRT\\0"  | uint32 little-endian n | n bytes of UTF-8 JSON header | serialized TensorRT engine

The header (:class:`EngineHeader`) records the TensorRT version and the GPU (name, compute capability) the engine
was built on, plus the :class:`ExportMetadata`. A serialized engine only runs on the TensorRT version and GPU
architecture it was built for, so loading checks both first and says which one differs.

Without an NVIDIA GPU or without ``tensorrt``, building and loading raise :class:`TensorRTUnavailableError` with one
line naming what is missing and ``pip install 'yolov12-platform[gpu]'``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from yolov12.export.metadata import ExportMetadata

logger = logging.getLogger(__name__)

MAGIC = b"YV12TRT\0"
_LENGTH = struct.Struct("<I")
INSTALL_HINT = "pip install 'yolov12-platform[gpu]'"
HEADER_VERSION = 1


class TensorRTUnavailableError(RuntimeError):
    """TensorRT cannot run here: no ``tensorrt`` package and/or no CUDA GPU (one line says which, and the fix)."""


class EngineCompatibilityError(RuntimeError):
    """The engine file was built for another TensorRT version or GPU architecture."""


class EngineFileError(ValueError):
    """The file is not an engine written by ``yolov12 export format=engine``, or it is damaged."""


def missing_requirements() -> list[str]:
    """What TensorRT needs and this machine lacks (empty when export and load can run)."""
    missing = []
    if importlib.util.find_spec("tensorrt") is None:
        missing.append("the 'tensorrt' package is not installed")
    if not torch.cuda.is_available():
        build = "CPU-only torch build" if torch.version.cuda is None else "no CUDA GPU visible"
        missing.append(f"no NVIDIA GPU with CUDA ({build}, torch {torch.__version__})")
    return missing


def require_tensorrt(action: str) -> ModuleType:
    """Import tensorrt for ``action`` (``export`` / ``load``), or raise one clear line saying what is missing."""
    missing = missing_requirements()
    if missing:
        raise TensorRTUnavailableError(
            f"TensorRT {action} needs an NVIDIA GPU and the tensorrt package: {'; '.join(missing)}. "
            f"Install on a CUDA machine with: {INSTALL_HINT}"
        )
    trt = importlib.import_module("tensorrt")
    if int(trt.__version__.split(".")[0]) < 10:
        raise TensorRTUnavailableError(f"tensorrt {trt.__version__} is too old: 10 or newer is needed ({INSTALL_HINT})")
    return trt


# -- the engine file ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineHeader:
    """What an engine file says about where it can run, and about the model."""

    tensorrt_version: str
    compute_capability: tuple[int, int]
    device_name: str
    metadata: ExportMetadata
    header_version: int = HEADER_VERSION

    def to_json(self) -> str:
        return json.dumps({
            "header_version": self.header_version, "tensorrt_version": self.tensorrt_version,
            "compute_capability": list(self.compute_capability), "device_name": self.device_name,
            "metadata": self.metadata.to_dict(),
        })

    @classmethod
    def from_json(cls, text: str, origin: str) -> EngineHeader:
        try:
            data = json.loads(text)
            capability = tuple(int(v) for v in data["compute_capability"])
            return cls(tensorrt_version=str(data["tensorrt_version"]),
                       compute_capability=(capability[0], capability[1]), device_name=str(data["device_name"]),
                       metadata=ExportMetadata.from_dict(data["metadata"], origin),
                       header_version=int(data["header_version"]))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise EngineFileError(f"{origin}: damaged engine header ({exc})") from None


def write_engine_file(path: Path, header: EngineHeader, engine: bytes) -> Path:
    """Header + serialized engine, written to a temporary file and renamed into place."""
    document = header.to_json().encode()
    temporary = path.with_name(f".{path.name}.partial")
    with temporary.open("wb") as handle:
        handle.write(MAGIC)
        handle.write(_LENGTH.pack(len(document)))
        handle.write(document)
        handle.write(engine)
    temporary.replace(path)
    return path


def read_engine_header(path: str | Path) -> tuple[EngineHeader, int]:
    """The header of an engine file and the byte offset where the serialized engine starts."""
    path = Path(path)
    with path.open("rb") as handle:
        start = handle.read(len(MAGIC) + _LENGTH.size)
        if len(start) < len(MAGIC) + _LENGTH.size or start[: len(MAGIC)] != MAGIC:
            raise EngineFileError(
                f"'{path}' is not a yolov12 TensorRT engine (no YV12TRT header); build engines with "
                "yolov12 export format=engine so they record their TensorRT version and GPU"
            )
        (length,) = _LENGTH.unpack(start[len(MAGIC):])
        document = handle.read(length)
    if len(document) != length:
        raise EngineFileError(f"'{path}' is truncated inside its header")
    return EngineHeader.from_json(document.decode(), str(path)), len(MAGIC) + _LENGTH.size + length


def check_compatibility(header: EngineHeader, tensorrt_version: str, compute_capability: tuple[int, int],
                        origin: str = "engine") -> None:
    """Raise :class:`EngineCompatibilityError` when the engine was built for another TensorRT or GPU architecture.

    TensorRT engines are tied to the exact TensorRT release (major.minor.patch) and to the GPU's compute
    capability; rebuilding from the ONNX on the target machine is the fix.
    """
    problems = []
    if _release(header.tensorrt_version) != _release(tensorrt_version):
        problems.append(f"TensorRT {header.tensorrt_version}, this machine has TensorRT {tensorrt_version}")
    if tuple(header.compute_capability) != tuple(compute_capability):
        built = ".".join(map(str, header.compute_capability))
        here = ".".join(map(str, compute_capability))
        problems.append(f"a GPU of compute capability {built} ({header.device_name}), this GPU is {here}")
    if problems:
        raise EngineCompatibilityError(
            f"{origin} was built for {' and '.join(problems)}; rebuild it here with "
            "yolov12 export model=<weights> format=engine"
        )


def _release(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:3])


# -- building ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildOptions:
    """Builder settings: precision, batch profile, workspace and timing cache."""

    half: bool = False
    int8: bool = False
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 1
    workspace_gib: float | None = 4.0
    timing_cache: Path | None = None
    device: int = 0
    verbose: bool = False


CalibrationBatches = Callable[[], Iterable[np.ndarray]]


def build_engine(onnx_path: Path, engine_path: Path, metadata: ExportMetadata, options: BuildOptions,
                 calibration: CalibrationBatches | None = None) -> Path:
    """Build a TensorRT engine from ``onnx_path`` and write it with its header to ``engine_path``.

    Args:
        onnx_path: the fp32 ONNX from :func:`yolov12.export.onnx.export_onnx` (static or dynamic batch).
        engine_path: destination ``.engine``.
        metadata: the artifact's metadata (recorded in the header).
        options: precision (fp16 / int8), batch profile (min/opt/max, used when the ONNX batch is dynamic),
            workspace and timing cache file.
        calibration: for int8, returns the calibration batches, (B, 3, H, W) float32 in [0, 1].
    """
    trt = require_tensorrt("export")
    torch.cuda.set_device(options.device)
    trt_logger = trt.Logger(trt.Logger.VERBOSE if options.verbose else trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    network = builder.create_network(0)  # TensorRT 10: networks are always explicit-batch
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if options.workspace_gib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * (1 << 30)))
    profile = _add_batch_profile(builder, network, config, options)
    if options.half:
        if not builder.platform_has_fast_fp16:
            logger.warning("this GPU has no fast fp16; building fp16 anyway")
        config.set_flag(trt.BuilderFlag.FP16)
    if options.int8:
        if calibration is None:
            raise ValueError("int8=True needs calibration images: pass data=<image folder or data.yaml>")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _make_calibrator(trt, calibration, engine_path.with_suffix(".calib"))
        if profile is not None:
            config.set_calibration_profile(profile)
    cache = _load_timing_cache(config, options.timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    if options.timing_cache is not None and cache is not None:
        options.timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    capability = torch.cuda.get_device_capability(options.device)
    header = EngineHeader(tensorrt_version=trt.__version__, compute_capability=(capability[0], capability[1]),
                          device_name=torch.cuda.get_device_name(options.device), metadata=metadata)
    write_engine_file(engine_path, header, bytes(memoryview(serialized)))
    logger.info("TensorRT %s engine: %s (%s, sm_%d%d)", trt.__version__, engine_path,
                "int8" if options.int8 else "fp16" if options.half else "fp32", *capability)
    return engine_path


def _add_batch_profile(builder: Any, network: Any, config: Any, options: BuildOptions) -> Any:
    """One optimisation profile covering min/opt/max batch when the input's batch dimension is dynamic."""
    tensor = network.get_input(0)
    shape = tuple(tensor.shape)
    if all(d >= 0 for d in shape):
        return None  # static ONNX: the engine is fixed-shape
    if any(d < 0 for d in shape[1:]):
        raise ValueError("TensorRT export supports a dynamic batch only; export with dynamic_imgsz=False")
    profile = builder.create_optimization_profile()
    rest = shape[1:]
    profile.set_shape(tensor.name, (options.min_batch, *rest), (options.opt_batch, *rest), (options.max_batch, *rest))
    config.add_optimization_profile(profile)
    return profile


def _load_timing_cache(config: Any, path: Path | None) -> Any:
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _make_calibrator(trt: ModuleType, calibration: CalibrationBatches, cache_path: Path) -> Any:
    """An entropy calibrator (TensorRT's IInt8EntropyCalibrator2) fed from ``calibration`` batches on the GPU."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self._batches: Iterator[np.ndarray] = iter(calibration())
            self._current: torch.Tensor | None = None
            self._batch_size = 1

        def get_batch_size(self) -> int:
            return self._batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._current = torch.from_numpy(np.ascontiguousarray(batch, np.float32)).cuda()
            self._batch_size = int(batch.shape[0])
            return [int(self._current.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache: bytes) -> None:
            cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()
