"""The model a Detector replica holds, without Ray: resolve the source, pick and build the engine, run batches.

``load_serving_model(source, ...)`` resolves a path or ``models:/NAME@alias`` to a local file, chooses the engine
for this machine (TensorRT on an NVIDIA GPU, else OpenVINO, else ONNX Runtime; exported once from native weights
and cached by the weights' sha256, and a TensorRT engine also by its input shapes, the sha256 of the ONNX it is
compiled from, the GPU's compute capability, the TensorRT version and the precision, see serve/engine_cache.py; a
cached engine that does not load is rebuilt once, with one warning),
and returns a :class:`ServingModel` whose :meth:`ServingModel.predict` runs one
dynamic batch through the library's own pre/post-processing (the task's ``prepare_batch``, the engine, the task's
``postprocess``, from :mod:`yolov12.tasks`). The benchmark calls the same object in-process.

Every loaded engine is described by an :class:`~pipelines.engine_records.EngineRecord` (format, precision, the
artifact's sha256, device and GPU, builder versions), which :meth:`ServingModel.describe` reports. For a
``models:/`` source the record is also written on the model version (one tag per engine) from a background thread:
a registry that refuses the write (read-only credentials, a server gone) costs one warning, never the replica.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from serve.engine_cache import EngineKey, build_target, cache_folder
from serve.engine_registry import engine_record, is_registry_source, register_engine_in_background
from yolov12.data.digest import file_sha256
from yolov12.engines import (
    Engine,
    EngineError,
    artifact_backend,
    available_backends,
    is_exported_artifact,
    load_engine,
    run_on_canvas,
)
from yolov12.export.tensorrt import batch_profile
from yolov12.tasks import task_spec
from yolov12.utils.stride import round_up_to_stride

logger = logging.getLogger(__name__)

EXPORT_FORMAT = {"openvino": "openvino", "onnxruntime": "onnx", "tensorrt": "engine"}
DEFAULT_OPTIONS = (0.25, 0.7, 300)  # conf, iou, max_det of a request that leaves them unset (as PredictConfig)


class ModelSourceError(ValueError):
    """The model source cannot be served (missing file, unknown registry model/alias, unusable backend)."""


class RequestError(ValueError):
    """One request's options do not fit the model (e.g. an image size a fixed-size engine cannot run)."""


class UnknownModelError(RequestError):
    """The request names a model id this application does not serve."""


@dataclass(frozen=True)
class ModelSource:
    """A model source resolved to a local artifact: ``name`` and ``version`` are what responses report."""

    uri: str
    path: Path
    name: str
    version: str


@dataclass(frozen=True)
class InferenceRequest:
    """One image and its options (None: the deployment's current defaults).

    ``image`` is (H, W, 3) BGR uint8 pixels, or the encoded file (JPEG/PNG/WebP/BMP bytes) that the Detector
    decodes itself: the HTTP ingress sends the encoded bytes (~10x smaller than the pixels) and
    :meth:`ServingModel.predict` takes pixels only.
    """

    image: np.ndarray | bytes
    conf: float | None = None
    iou: float | None = None
    max_det: int | None = None
    imgsz: int | None = None

    def with_defaults(self, conf: float, iou: float, max_det: int) -> InferenceRequest:
        return replace(self, conf=conf if self.conf is None else self.conf, iou=iou if self.iou is None else self.iou,
                       max_det=max_det if self.max_det is None else self.max_det)


@dataclass
class Prediction:
    """What the Detector returns for one image (no pixels: the caller has the image).

    Attributes:
        detections: (n, 6) float32 x1, y1, x2, y2, score, class in original pixels (detect), else (0, 6).
        probs: (nc,) float32 class probabilities (classify), else None.
        class_names: name per detection row (detect) or per class index (classify).
        width, height: the original image's size in pixels (after EXIF orientation).
        timing: milliseconds per image: preprocess, inference, postprocess (and decode when the Detector decoded
            the image); ``batch_size`` of its forward.
        engine: the engine that ran it (:meth:`~pipelines.engine_records.EngineRecord.summary`).
    """

    task: str
    detections: np.ndarray
    probs: np.ndarray | None
    class_names: list[str]
    model: str
    version: str
    backend: str
    imgsz: int
    width: int
    height: int
    timing: dict[str, float] = field(default_factory=dict)
    engine: dict[str, Any] | None = None


def resolve_source(source: str, tracking_uri: str | None = None, cache_dir: str | None = None) -> ModelSource:
    """A path, or a registry URI resolved now (aliases move) to the version it names and its downloaded weights
    (kept under ``cache_dir/models`` when given, else the registry's default cache)."""
    if source.startswith("models:/"):
        from pipelines.registry import RegistryError, lookup, mlflow_client, resolve_model_uri  # noqa: PLC0415

        try:
            version = lookup(source, mlflow_client(tracking_uri))
            path = resolve_model_uri(f"models:/{version.name}/{version.version}", tracking_uri=tracking_uri,
                                     cache_dir=Path(cache_dir) / "models" if cache_dir else None)
        except RegistryError as exc:
            raise ModelSourceError(str(exc)) from None
        return ModelSource(source, Path(path), version.name, str(version.version))
    path = Path(source).expanduser()
    if not path.exists():
        raise ModelSourceError(f"model '{source}' does not exist; pass a weights file, an exported model or "
                               "models:/NAME@alias")
    version = file_sha256(path)[:12] if path.is_file() else "1"
    name = path.name.removesuffix("_openvino") if path.is_dir() else path.stem
    return ModelSource(source, path, name, version)


def choose_backend(preference: str, path: Path, device: str) -> str:
    """The backend to run ``path`` with: exported artifacts keep theirs; ``auto`` on native weights picks the best."""
    if is_exported_artifact(path):
        try:
            return artifact_backend(path, preference)
        except EngineError as exc:
            raise ModelSourceError(str(exc)) from None
    if preference != "auto":
        return preference
    available = available_backends()
    if device.startswith("cuda") and "tensorrt" in available:
        return "tensorrt"
    for name in ("openvino", "onnxruntime"):
        if name in available:
            return name
    return "torch"


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when this replica sees a GPU, else ``cpu``."""
    if device != "auto":
        return device
    import torch  # noqa: PLC0415

    return "cuda" if torch.cuda.is_available() else "cpu"


def cache_root(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    from yolov12.data.remote import cache_root as library_cache  # noqa: PLC0415

    return library_cache() / "serve-engines"


def build_artifact(source: ModelSource, backend: str, *, imgsz: int, max_batch: int, device: str,
                   cache_dir: str | None = None, rebuild: bool = False) -> Path:
    """Export native weights for ``backend`` once; later starts (and other replicas) reuse the cached artifact.

    The cache key (:class:`~serve.engine_cache.EngineKey`) is the weights' sha256, the backend, the image size and
    the batch; a TensorRT engine is compiled from the cached ONNX of the same weights and shapes, and its key adds
    the batch profile, that ONNX's sha256, the GPU's compute capability, the TensorRT version and the precision: a
    new registry version, size, exporter or GPU generation builds a new artifact. The export is written to a
    temporary name and renamed into place (atomic). ``rebuild`` removes a cached artifact first (one that no longer
    loads).
    """
    digest = file_sha256(source.path)[:16]
    target = build_target(backend, device)
    profile = batch_profile(max_batch, dynamic=True)
    if target.capability is None:
        fmt = EXPORT_FORMAT[backend]
        key = EngineKey(digest, backend, imgsz, profile, target)
        name = f"{source.name}_openvino" if fmt == "openvino" else f"{source.name}.{fmt}"
        export = partial(_export_portable, source, fmt, imgsz=imgsz, max_batch=max_batch)
    else:
        onnx_path = build_artifact(source, "onnxruntime", imgsz=imgsz, max_batch=max_batch, device="cpu",
                                   cache_dir=cache_dir)
        key = EngineKey(digest, backend, imgsz, profile, target, onnx_digest=file_sha256(onnx_path)[:16])
        name = f"{source.name}.engine"
        export = partial(build_tensorrt_engine, onnx_path, profile=profile, device=device)
    folder = cache_folder(cache_root(cache_dir), key)
    if rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    elif (folder / name).exists():
        logger.info("using cached %s engine %s", backend, folder / name)
        return folder / name
    started = time.perf_counter()
    built = _build_into(folder, name, export)
    logger.info("built %s engine for %s in %.1fs", backend, source.uri, time.perf_counter() - started)
    return built


def _build_into(folder: Path, name: str, export: Callable[[Path], Path]) -> Path:
    """Run ``export(staging / name)`` in a temporary folder beside ``folder`` and rename it into place; when another
    replica finished first, theirs is used."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        built = export(staging / name)
        try:
            staging.rename(folder)
        except OSError:  # another replica finished first: use theirs
            shutil.rmtree(staging, ignore_errors=True)
        return folder / built.name
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _export_portable(source: ModelSource, fmt: str, output: Path, *, imgsz: int, max_batch: int) -> Path:
    """The ONNX / OpenVINO export of native weights (fp32, dynamic batch up to ``max_batch``) at ``output``."""
    from yolov12.export import export_model  # noqa: PLC0415
    from yolov12.models import load_model_with_metadata  # noqa: PLC0415

    model, metadata = load_model_with_metadata(source.path)
    return export_model(model, fmt, source=source.path, source_metadata=metadata, imgsz=imgsz, batch=max_batch,
                        dynamic=True, device="cpu", output=str(output))


def build_tensorrt_engine(onnx_path: Path, output: Path, *, profile: tuple[int, int, int], device: str) -> Path:
    """An fp16 TensorRT engine compiled from the cached ONNX ``onnx_path`` for the batch ``profile`` (min, opt, max)
    on the GPU ``device`` (``cuda`` / ``cuda:N``)."""
    import torch  # noqa: PLC0415

    from yolov12.export import read_onnx_metadata  # noqa: PLC0415
    from yolov12.export.tensorrt import BuildOptions, build_engine  # noqa: PLC0415

    low, opt, high = profile
    index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
    metadata = read_onnx_metadata(onnx_path).replace(format="engine", half=True)
    options = BuildOptions(half=True, min_batch=low, opt_batch=opt, max_batch=high, device=index)
    return build_engine(onnx_path, output, metadata, options)


def needs_build(backend: str, path: Path) -> bool:
    """Whether serving ``path`` on ``backend`` runs an engine exported from native weights (and cached), rather than
    the exported artifact itself or the torch model."""
    return backend != "torch" and not is_exported_artifact(path)


def prepare_engine(source: str | ModelSource, *, backend: str = "auto", device: str = "auto", imgsz: int = 640,
                   max_batch: int = 8, cache_dir: str | None = None, tracking_uri: str | None = None) -> Path | None:
    """Build (or find in the cache) the engine :func:`load_serving_model` would load for ``source``, without
    loading it: what a replica does for its multiplexed models before it is ready, and what
    ``python -m serve.engine_cache`` does ahead of a deployment. None when nothing is built (exported artifact,
    torch backend)."""
    resolved = source if isinstance(source, ModelSource) else resolve_source(source, tracking_uri, cache_dir)
    device = resolve_device(device)
    chosen = choose_backend(backend, resolved.path, device)
    if not needs_build(chosen, resolved.path):
        return None
    return build_artifact(resolved, chosen, imgsz=imgsz, max_batch=max_batch, device=device, cache_dir=cache_dir)


def load_serving_model(source: str | ModelSource, *, backend: str = "auto", device: str = "auto", imgsz: int = 640,
                       max_batch: int = 8, threads: int | None = None, cache_dir: str | None = None,
                       tracking_uri: str | None = None, name: str | None = None) -> ServingModel:
    """Resolve ``source`` and load it on the best engine for this replica (see the module docstring)."""
    resolved = source if isinstance(source, ModelSource) else resolve_source(source, tracking_uri, cache_dir)
    device = resolve_device(device)
    chosen = choose_backend(backend, resolved.path, device)
    options: dict[str, Any] = {"threads": threads} if threads and chosen != "tensorrt" else {}
    if chosen == "torch":
        options["imgsz"] = imgsz
    engine_device = device if chosen != "openvino" else "cpu"
    if not needs_build(chosen, resolved.path):
        engine = load_engine(str(resolved.path), backend=chosen, device=engine_device, **options)
    else:
        build = partial(build_artifact, resolved, chosen, imgsz=imgsz, max_batch=max_batch, device=device,
                        cache_dir=cache_dir)
        engine = _load_built(build, chosen, engine_device, options)
    engine.warmup()
    logger.info("serving %s (%s v%s) on %s", resolved.uri, resolved.name, resolved.version, engine)
    model = ServingModel(engine, resolved, name=name or resolved.name, default_imgsz=imgsz, max_batch=max_batch)
    if is_registry_source(resolved):
        model.registration = register_engine_in_background(resolved, model.engine_record, tracking_uri)
    return model


def _load_built(build: Callable[..., Path], backend: str, device: str, options: dict[str, Any]) -> Engine:
    """Load the engine ``build`` returns (cached or new); a cached one that does not load (a TensorRT engine from
    another build of the runtime, a truncated file) is rebuilt once, with one warning line."""
    before = time.time()
    artifact = build()
    try:
        return load_engine(str(artifact), backend=backend, device=device, **options)
    except Exception as exc:  # noqa: BLE001 - each runtime raises its own types for an engine it cannot read
        if artifact.stat().st_mtime >= before:  # built just now: rebuilding would not help
            raise
        logger.warning("cached %s engine %s does not load (%s: %s); rebuilding it", backend, artifact,
                       type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return load_engine(str(build(rebuild=True)), backend=backend, device=device, **options)


class ServingModel:
    """An engine plus what responses need (name, version, backend); :meth:`predict` runs one dynamic batch."""

    def __init__(self, engine: Engine, source: ModelSource, name: str, default_imgsz: int = 640,
                 max_batch: int = 8) -> None:
        self.engine = engine
        self.source = source
        self.name = name
        info = engine.info
        self.default_imgsz = default_imgsz if info.dynamic_imgsz else int(info.imgsz[0])
        self.engine_record = engine_record(info, imgsz=self.default_imgsz, max_batch=max_batch)
        self._engine_summary = self.engine_record.summary()
        self.registration: threading.Thread | None = None  # the registry write of a models:/ source

    @property
    def version(self) -> str:
        return self.source.version

    @property
    def task(self) -> str:
        return self.engine.info.task

    def describe(self) -> dict[str, Any]:
        """Metadata for responses and ``GET /v2/models/{name}``: which engine serves which version."""
        info = self.engine.info
        return {"name": self.name, "version": self.version, "source": self.source.uri, "task": info.task,
                "backend": info.backend, "device": info.device, "precision": info.precision,
                "imgsz": self.default_imgsz, "dynamic_imgsz": info.dynamic_imgsz, "artifact": info.artifact,
                "names": {str(k): v for k, v in info.names.items()}, "engine": self.engine_record.summary()}

    def input_size(self, requested: int | None) -> int:
        """The input size for a requested ``imgsz``: rounded up to the stride (dynamic engines) or the fixed size."""
        info = self.engine.info
        if requested is None:
            return self.default_imgsz
        if info.dynamic_imgsz:
            return round_up_to_stride(requested, info.stride)
        if requested != self.default_imgsz:
            raise RequestError(f"imgsz={requested} is not available: this {info.backend} engine runs "
                               f"{self.default_imgsz}x{self.default_imgsz} only; omit imgsz or send "
                               f"imgsz={self.default_imgsz}")
        return requested

    def predict(self, requests: Sequence[InferenceRequest]) -> list[Prediction | RequestError]:
        """One dynamic batch: images of the same input size share one forward; a bad request fails alone.

        Unset ``conf`` / ``iou`` / ``max_det`` take :data:`DEFAULT_OPTIONS` (the Detector fills its own first).
        """
        requests = [request.with_defaults(*DEFAULT_OPTIONS) for request in requests]
        outcomes: list[Prediction | RequestError | None] = [None] * len(requests)
        groups: dict[int, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            try:
                groups[self.input_size(request.imgsz)].append(index)
            except RequestError as exc:
                outcomes[index] = exc
        for size, indices in groups.items():
            for index, prediction in zip(indices, self._run([requests[i] for i in indices], size)):
                outcomes[index] = prediction
        return outcomes  # type: ignore[return-value]

    def _run(self, requests: Sequence[InferenceRequest], size: int) -> list[Prediction]:
        info = self.engine.info
        images = [request.image for request in requests]
        started = time.perf_counter()
        batch = task_spec(info.task).prepare_batch(images, size, info.stride)
        prepared = time.perf_counter()
        outputs = run_on_canvas(self.engine, batch.canvas)  # converted in the engine's graph where it can (OpenVINO)
        inferred = time.perf_counter()
        predictions = [self._result(outputs[i:i + 1], request, batch, i) for i, request in enumerate(requests)]
        finished = time.perf_counter()
        per_image = 1000.0 / len(requests)
        timing = {"preprocess": (prepared - started) * per_image, "inference": (inferred - prepared) * per_image,
                  "postprocess": (finished - inferred) * per_image, "batch_size": float(len(requests))}
        for prediction in predictions:
            prediction.timing = dict(timing)
        return predictions

    def _result(self, output: np.ndarray, request: InferenceRequest, batch: Any, index: int) -> Prediction:
        info = self.engine.info
        names = info.names
        height, width = request.image.shape[:2]
        common = {"model": self.name, "version": self.version, "backend": info.backend,
                  "imgsz": batch.canvas.shape[1], "width": int(width), "height": int(height),
                  "engine": self._engine_summary}
        letterboxes = None if batch.letterboxes is None else [batch.letterboxes[index]]
        (result,) = task_spec(info.task).postprocess(output, [request.image], letterboxes, names, conf=request.conf,
                                                     iou=request.iou, max_det=request.max_det, end2end=info.end2end)
        if result.probs is not None:
            probs = result.probs.data.numpy().astype(np.float32)
            return Prediction(info.task, np.zeros((0, 6), np.float32), probs,
                              [names[i] for i in range(len(names))], **common)
        data = result.boxes.data.numpy().astype(np.float32)
        return Prediction(info.task, data, None, [names.get(int(c), str(int(c))) for c in data[:, 5]], **common)


def default_threads(num_cpus: float) -> int:
    """Engine threads for a replica with ``num_cpus`` CPUs (at least one, at most the machine's cores)."""
    return max(1, min(os.cpu_count() or 1, int(num_cpus) or 1))
