"""``yolov12 benchmark``: one model in every format this machine runs, with size, accuracy and latency per format.

    yolov12 benchmark model=best.safetensors data=sample imgsz=320
    yolov12 benchmark model=yolov12n.yaml data=sample imgsz=64 formats=torch,onnx runs=10

Rows (``formats=``, default all): ``torch`` (eager PyTorch), ``onnx`` (ONNX Runtime), ``openvino`` (fp32),
``openvino-bf16`` (the same IR with bf16 inference; only on CPUs with AVX512-BF16 or AMX, read at run time),
``openvino-int8`` (NNCF post-training quantisation calibrated on the data's train split; ``int8=false`` leaves it
out), ``tensorrt`` (fp16 with ``half=true``; needs an NVIDIA GPU and ``tensorrt``). A format that cannot run here gets
a row saying why; a format that fails gets its error in one line, and the others still run.

Columns: status, size of the artifact (MB), the validation metric (mAP50-95, top-1 for classifiers) of every format
computed the same way (:func:`yolov12.engines.evaluate.evaluate_engine`: the ``yolov12 val`` batches, NMS and
evaluator; only the forward runs in the engine), and the latency of one image through the engine (batch 1, median
of ``runs`` after ``warmup`` runs; pre- and post-processing are not included). The machine (CPU model and SIMD
features, cores, GPU, versions) is printed above the table.

Example:
    >>> report = benchmark(BenchmarkConfig(model="yolov12n.yaml", data="sample", imgsz=64, formats=["torch"]))
    >>> report.rows[0].format, report.rows[0].status  # doctest: +SKIP
    ('torch', 'ok')
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import logging
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from yolov12.config.base import Section

logger = logging.getLogger(__name__)

FORMATS = ("torch", "onnx", "openvino", "openvino-bf16", "openvino-int8", "tensorrt")
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


class BenchmarkConfig(Section):
    """``yolov12 benchmark`` settings.

    Attributes:
        model: native weights (``.safetensors``, ``.pt``) or an architecture (random weights: the metric is ~0,
            the sizes and latencies are real).
        data: the dataset whose ``split`` is scored (int8 calibrates on its train split).
        imgsz: square input size of every format.
        device: ``cpu``, ``cuda``, ``cuda:N``: where torch, ONNX Runtime and TensorRT run (OpenVINO runs on the CPU).
        formats: the rows, a list or comma-separated text (default: all of :data:`FORMATS`).
        half: fp16 for torch and ONNX Runtime on a GPU and for TensorRT (torch on the CPU: bf16 autocast).
        int8: include ``openvino-int8`` in the default rows.
        runs, warmup: timed and untimed forwards per format.
        batch, workers, split: of the validation loader.
    """

    model: str
    data: str = "sample"
    imgsz: int = Field(640, ge=32, le=4096)
    device: str = "cpu"
    formats: list[str] = Field(default_factory=lambda: list(FORMATS))
    half: bool = False
    int8: bool = True
    runs: int = Field(20, ge=1, le=10_000)
    warmup: int = Field(3, ge=0, le=1_000)
    batch: int = Field(16, ge=1, le=1024)
    workers: int = Field(0, ge=0, le=64)
    split: str = "val"

    @field_validator("formats", mode="before")
    @classmethod
    def _split_formats(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        aliases = {"pytorch": "torch", "onnxruntime": "onnx", "ort": "onnx", "ov": "openvino", "trt": "tensorrt",
                   "engine": "tensorrt"}
        value = [aliases.get(name.lower(), name.lower()) for name in value]
        unknown = [name for name in value if name not in FORMATS]
        if unknown:
            raise ValueError(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
        if not value:
            raise ValueError(f"formats is empty; choose from {', '.join(FORMATS)}")
        return list(dict.fromkeys(value))


@dataclass
class BenchmarkRow:
    """One format's outcome; ``size_mb``, ``metric`` and ``latency_ms`` are None unless ``status`` is ``ok``."""

    format: str
    status: str
    size_mb: float | None = None
    metric: float | None = None
    latency_ms: float | None = None
    precision: str = ""


@dataclass
class BenchmarkReport:
    """The rows plus what the table's header needs."""

    config: BenchmarkConfig
    task: str
    random_weights: bool
    rows: list[BenchmarkRow]

    @property
    def metric_name(self) -> str:
        return "top-1" if self.task == "classify" else "mAP50-95"


# -- the machine ---------------------------------------------------------------------------------------------------
def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return set()
    for line in cpuinfo.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), read at run time; else OpenVINO would emulate
    bf16 (slower than fp32) or refuse it."""
    from yolov12.engine.precision import cpu_has_native_bf16  # noqa: PLC0415

    return cpu_has_native_bf16()


def machine_description() -> str:
    """``CPU model (features), N logical cores[, GPU]; Python, torch, onnxruntime, openvino versions``."""
    import torch  # noqa: PLC0415

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text(errors="replace").splitlines()
                    if line.startswith("model name")), cpu)
    flags = cpu_flags()
    features = "/".join(f for f in CPU_FEATURES if f in flags) or "no AVX2"
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    versions = [f"Python {platform.python_version()}", f"torch {torch.__version__}"]
    for package in ("onnxruntime", "openvino", "tensorrt"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return f"{cpu} ({features}), {os.cpu_count()} logical cores{gpu}; {', '.join(versions)}"


# -- one row -------------------------------------------------------------------------------------------------------
def unavailable_reason(name: str, config: BenchmarkConfig) -> str | None:
    """Why format ``name`` cannot run on this machine with ``config`` (None: it can)."""
    package = {"onnx": "onnxruntime", "tensorrt": "tensorrt"}.get(name, "openvino" if "openvino" in name else None)
    if package and importlib.util.find_spec(package) is None:
        return f"{package} is not installed"
    if name == "openvino-int8" and importlib.util.find_spec("nncf") is None:
        return "nncf is not installed (pip install 'yolov12-platform[openvino]')"
    if name == "openvino-bf16" and not has_bf16():
        return "this CPU has no AVX512-BF16 or AMX (bf16 would be emulated)"
    if name == "tensorrt":
        import torch  # noqa: PLC0415

        if not torch.cuda.is_available():
            return "no CUDA GPU"
        if not config.device.startswith("cuda"):
            return f"device={config.device} (TensorRT runs on device=cuda)"
    return None


def artifact_for(name: str, model: Any, source: Path | None, metadata: Any, config: BenchmarkConfig,
                 folder: Path, exported: dict[str, Path]) -> Path | None:
    """The file or folder format ``name`` runs (exported into ``folder``; the fp32 IR is shared with bf16)."""
    from yolov12.export import export_model  # noqa: PLC0415

    if name == "torch":
        return source
    key = "openvino" if name == "openvino-bf16" else name
    if key in exported:
        return exported[key]
    settings: dict[str, Any] = {"imgsz": config.imgsz, "source": source, "source_metadata": metadata}
    if key == "onnx":
        settings.update(format="onnx", half=config.half and config.device.startswith("cuda"),
                        device=config.device, output=str(folder / "model.onnx"))
    elif key == "openvino":
        settings.update(format="openvino", output=str(folder / "model_openvino"))
    elif key == "openvino-int8":
        settings.update(format="openvino", int8=True, data=config.data, output=str(folder / "model_int8_openvino"))
    else:
        settings.update(format="engine", half=config.half, device=config.device, output=str(folder / "model.engine"))
    exported[key] = export_model(model, **settings)
    return exported[key]


def load_format(name: str, model: Any, artifact: Path | None, config: BenchmarkConfig) -> Any:
    """The engine that runs format ``name``."""
    from yolov12.engines import load_engine  # noqa: PLC0415

    if name == "torch":  # a copy: the engine fuses (and may move or halve) its model, the exports need the original
        return load_engine(copy.deepcopy(model), backend="torch", device=config.device, imgsz=config.imgsz,
                           half=config.half, fuse=True)
    if name.startswith("openvino"):
        return load_engine(artifact, backend="openvino", device="cpu",
                           precision="bf16" if name == "openvino-bf16" else None)
    backend = "onnxruntime" if name == "onnx" else "tensorrt"
    return load_engine(artifact, backend=backend, device=config.device)


def size_mb(path: Path | None, model: Any) -> float:
    """Size of the artifact (all files of a folder); without a file, of the model's tensors."""
    if path is None:
        return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def latency_ms(engine: Any, runs: int, warmup: int) -> float:
    """Median milliseconds of one forward of a (1, 3, H, W) batch, after ``warmup`` forwards."""
    import numpy as np  # noqa: PLC0415

    height, width = engine.info.imgsz
    batch = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    for _ in range(warmup):
        engine(batch)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        engine(batch)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run_format(name: str, model: Any, source: Path | None, metadata: Any, config: BenchmarkConfig,
               folder: Path, exported: dict[str, Path]) -> BenchmarkRow:
    """Export (when needed), load, score and time one format; failures become the row's status."""
    from yolov12.engine.evaluate import MAP_KEY, TOP1_KEY  # noqa: PLC0415
    from yolov12.engines.evaluate import evaluate_engine  # noqa: PLC0415

    reason = unavailable_reason(name, config)
    if reason:
        return BenchmarkRow(name, f"not available: {reason}")
    try:
        artifact = artifact_for(name, model, source, metadata, config, folder, exported)
        engine = load_format(name, model, artifact, config)
        device = config.device if name in ("torch", "onnx", "tensorrt") else "cpu"
        metrics = evaluate_engine(engine, config.data, split=config.split, batch=config.batch,
                                  workers=config.workers, device=device)
        metric = metrics.get(MAP_KEY, metrics.get(TOP1_KEY, float("nan")))
        return BenchmarkRow(name, "ok", size_mb(artifact, model), metric,
                            latency_ms(engine, config.runs, config.warmup), engine.info.precision)
    except Exception as exc:  # noqa: BLE001 - one format failing must not hide the others
        logger.debug("format %s failed", name, exc_info=True)
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return BenchmarkRow(name, f"error: {type(exc).__name__}: {message}")


# -- the table -----------------------------------------------------------------------------------------------------
def benchmark(config: BenchmarkConfig) -> BenchmarkReport:
    """Check the model and data, then one :class:`BenchmarkRow` per format (see the module docstring)."""
    from yolov12.models import load_model_with_metadata  # noqa: PLC0415
    from yolov12.preflight import check_data, check_model_source  # noqa: PLC0415

    kind = check_model_source(config.model, ("weights", "architecture"),
                              hint="benchmark exports it to each format: pass .safetensors / .pt weights")
    check_data(config.data, (config.split,))
    model, metadata = load_model_with_metadata(config.model)
    model = model.eval()
    source = Path(config.model) if kind == "weights" else None
    names = [name for name in config.formats if config.int8 or name != "openvino-int8"]
    with tempfile.TemporaryDirectory(prefix="yolov12-benchmark-") as folder:
        exported: dict[str, Path] = {}
        rows = [run_format(name, model, source, metadata, config, Path(folder), exported) for name in names]
    return BenchmarkReport(config, model.task, kind == "architecture", rows)


def format_table(report: BenchmarkReport) -> str:
    """The report as text: one line on the run, then a fixed-width table."""
    config = report.config
    header = f"{'format':<14} {'precision':<9} {'size MB':>8} {report.metric_name:>9} {'ms/image':>9}  status"
    lines = [f"model {config.model}{' (random weights)' if report.random_weights else ''}, data {config.data} "
             f"({config.split}), imgsz {config.imgsz}, device {config.device}; latency: batch 1, median of "
             f"{config.runs} runs after {config.warmup} warm-up", header, "-" * len(header)]
    for row in report.rows:
        size = f"{row.size_mb:.1f}" if row.size_mb is not None else "-"
        metric = f"{row.metric:.4f}" if row.metric is not None else "-"
        latency = f"{row.latency_ms:.2f}" if row.latency_ms is not None else "-"
        lines.append(f"{row.format:<14} {row.precision or '-':<9} {size:>8} {metric:>9} {latency:>9}  {row.status}")
    return "\n".join(lines)


def benchmark_command(arguments: list[str]) -> int:
    """``yolov12 benchmark model=... data=... imgsz=... [device=cpu] [formats=torch,onnx] [half=] [int8=]``;
    exit code 1 when no format ran."""
    from yolov12.cli.arguments import CommandLineError, parse_key_values  # noqa: PLC0415

    values = parse_key_values(arguments, list(BenchmarkConfig.model_fields), positional=("model",))
    if "model" not in values:
        raise CommandLineError("benchmark needs a model: yolov12 benchmark model=best.safetensors data=sample "
                               "imgsz=320")
    for key in ("model", "data"):
        if key in values:
            values[key] = str(values[key])
    config = BenchmarkConfig.from_overrides(values)
    print(f"machine: {machine_description()}", flush=True)
    report = benchmark(config)
    print(format_table(report))
    return 0 if any(row.status == "ok" for row in report.rows) else 1
