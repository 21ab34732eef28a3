"""TensorRT engines: build from our ONNX with the tensorrt (>= 10) Python API, and the self-describing engine file.

File layout (``.engine``)::

    b"YV12TRT\\0"  | uint32 little-endian n | n bytes of UTF-8 JSON header | serialized TensorRT engine

The header (:class:`EngineHeader`) records the TensorRT version and the GPU (name, compute capability) the engine
was built on, plus the :class:`ExportMetadata`. A serialized engine only runs on the TensorRT version and GPU
architecture it was built for, so loading checks both first and says which one differs.

int8 engines use explicit quantisation only: they are built from a Q/DQ ONNX (QuantizeLinear / DequantizeLinear
pairs made by NNCF, :mod:`yolov12.export.onnx_int8`) as a strongly typed network, so TensorRT runs exactly the
quantised layers in int8 and the rest in the ONNX's fp32. TensorRT's implicit int8 calibrators are deprecated since
TensorRT 10.1 (and gone in 11), so an int8 build from an ONNX without Q/DQ nodes is refused.

Without an NVIDIA GPU or without ``tensorrt``, building and loading raise :class:`TensorRTUnavailableError` with one
line naming what is missing and ``pip install 'yolov12-platform[gpu]'``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import onnx
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


class EngineBuildError(ValueError):
    """The build settings or the ONNX do not fit together (one line: what, and how to fix it)."""


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
def batch_profile(batch: int, dynamic: bool) -> tuple[int, int, int]:
    """(min, opt, max) batch of the optimisation profile: ``1, batch // 2, batch`` for a dynamic batch, else fixed.

    Serve's engine cache keys engines by this profile, so it is computed here only.
    """
    return (1, max(1, batch // 2), batch) if dynamic else (batch, batch, batch)


@dataclass(frozen=True)
class BuildOptions:
    """Builder settings: precision, batch profile, workspace and timing cache.

    ``int8`` builds a strongly typed network from a Q/DQ ONNX: its float layers run in the ONNX's precision, so
    ``half`` cannot be combined with it.
    """

    half: bool = False
    int8: bool = False
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 1
    workspace_gib: float | None = 4.0
    timing_cache: Path | None = None
    device: int = 0
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.half and self.int8:
            raise EngineBuildError("half=True and int8=True do not combine: an int8 engine is built strongly typed "
                                   "from the Q/DQ ONNX, its unquantised layers run in fp32; pass one of the two")
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise EngineBuildError(f"batch profile min {self.min_batch} <= opt {self.opt_batch} <= max "
                                   f"{self.max_batch} does not hold; pass batch=<largest batch> with dynamic=True")

    @property
    def precision(self) -> str:
        """``int8``, ``fp16`` or ``fp32``."""
        return "int8" if self.int8 else "fp16" if self.half else "fp32"


def require_qdq_onnx(onnx_path: Path) -> None:
    """Refuse an int8 build from an ONNX without QuantizeLinear / DequantizeLinear nodes (implicit quantisation)."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    if not any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in graph.node):
        raise EngineBuildError(
            f"'{onnx_path}' has no QuantizeLinear/DequantizeLinear nodes: int8 engines are built from an explicitly "
            "quantised ONNX only (TensorRT's implicit int8 calibrator is deprecated since TensorRT 10.1 and not "
            "used here); export with yolov12 export format=engine int8=True data=<images>, which quantises the "
            "ONNX with NNCF first"
        )


def build_engine(onnx_path: Path, engine_path: Path, metadata: ExportMetadata, options: BuildOptions) -> Path:
    """Build a TensorRT engine from ``onnx_path`` and write it with its header to ``engine_path``.

    Args:
        onnx_path: the ONNX from :func:`yolov12.export.onnx.export_onnx` (static or dynamic batch); for int8 its
            Q/DQ form from :func:`yolov12.export.onnx_int8.quantize_onnx`.
        engine_path: destination ``.engine``.
        metadata: the artifact's metadata (recorded in the header).
        options: precision (fp16 / int8), batch profile (min/opt/max, used when the ONNX batch is dynamic),
            workspace and timing cache file.

    Raises:
        EngineBuildError: int8 from an ONNX without Q/DQ nodes.
        TensorRTUnavailableError: no tensorrt >= 10 or no CUDA GPU here.
    """
    if options.int8:
        require_qdq_onnx(onnx_path)
    trt = require_tensorrt("export")
    torch.cuda.set_device(options.device)
    trt_logger = trt.Logger(trt.Logger.VERBOSE if options.verbose else trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    # TensorRT 10 networks are always explicit-batch; Q/DQ networks are built strongly typed, as TensorRT advises
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if options.int8 else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if options.workspace_gib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gib * (1 << 30)))
    _add_batch_profile(builder, network, config, options)
    if options.half:
        config.set_flag(trt.BuilderFlag.FP16)
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
    logger.info("TensorRT %s engine: %s (%s, sm_%d%d)", trt.__version__, engine_path, options.precision, *capability)
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
