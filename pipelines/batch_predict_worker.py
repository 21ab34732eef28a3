"""What runs inside the Ray Data job of ``pipelines.batch_predict``: decoding tasks and the predicting actors.

- :func:`decode_batch` (CPU tasks) turns the bytes Ray Data read into (H, W, 3) BGR uint8 pixels with the library's
  safe decoder (:func:`yolov12.infer.image_io.decode_image_bytes`: the header is checked before any pixel is
  allocated). A file that is not a valid image, or is over the decoder's limits, becomes a row marked with its
  one-line reason; it never fails the job.
- :class:`ImagePredictor` (an actor of the autoscaling pool) loads the model once in ``__init__`` (a ``models:/``
  version through :func:`pipelines.registry.resolve_model_uri`; native weights exported to ONNX / OpenVINO once per
  node when that backend is asked) and runs each batch through :meth:`yolov12.infer.Predictor.predict_batch`, the
  pre/post-processing ``YOLO.predict`` uses. Each call returns an Arrow table of :data:`OUTPUT_SCHEMA`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from yolov12.data.digest import file_sha256
from yolov12.engines import Engine, EngineError, artifact_backend, available_backends, is_exported_artifact, load_engine
from yolov12.infer.image_io import SourceError, decode_image_bytes

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
EXPORT_FORMAT = {"onnxruntime": "onnx", "openvino": "openvino"}
NO_IMAGE = np.zeros((0, 0, 3), np.uint8)  # the pixels of a row that could not be decoded
OUTPUT_SCHEMA = pa.schema([
    ("path", pa.string()),  # the image's source: s3://bucket/key or an absolute local path
    ("width", pa.int32()),  # original size in pixels (after EXIF orientation); null when the image is bad
    ("height", pa.int32()),
    ("boxes", pa.list_(pa.list_(pa.float32(), 4))),  # [x1, y1, x2, y2] in original pixels; null when bad
    ("scores", pa.list_(pa.float32())),
    ("classes", pa.list_(pa.int32())),
    ("model", pa.string()),
    ("version", pa.string()),
    ("error", pa.string()),  # null for a predicted image, else why it could not be predicted (one line)
])


class BatchPredictError(ValueError):
    """The batch job cannot run as asked (model, backend, source or output); the message says what to change."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when the message is empty)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def decode_batch(batch: dict[str, np.ndarray], prefix: str = "") -> dict[str, Any]:
    """Ray Data rows ``bytes``, ``path`` -> ``path`` (``prefix`` + the reader's path), ``image``, ``error``.

    ``image`` is (H, W, 3) BGR uint8, or an empty (0, 0, 3) array with ``error`` saying why it could not be decoded
    (``""`` for a decoded image).
    """
    paths, images, errors = [], [], []
    for data, path in zip(batch["bytes"], batch["path"]):
        name = f"{prefix}{path}"
        try:
            image, error = decode_image_bytes(bytes(data), name), ""
        except SourceError as exc:
            image, error = NO_IMAGE, first_line(exc)
        paths.append(name)
        images.append(image)
        errors.append(error)
    return {"path": np.array(paths, dtype=object), "image": images, "error": np.array(errors, dtype=object)}


@dataclass(frozen=True)
class EngineSpec:
    """Everything an actor needs to build its engine and predict, shipped to every actor of the pool.

    Attributes:
        model: ``models:/NAME/VERSION`` (the version is pinned by the driver: an alias may move during the job) or
            an absolute path to native weights or an exported artifact.
        name, version: what every output row reports.
        tracking_uri: the registry of a ``models:/`` model (resolved on the driver).
        backend: ``auto`` (OpenVINO, else ONNX Runtime, else PyTorch on a CPU; PyTorch on a GPU) or one by name.
        imgsz, conf, iou, max_det: as ``YOLO.predict`` takes them.
        batch_size: images per forward (the largest batch an exported engine is built for).
        threads: engine threads (the CPUs each actor reserves).
        device: ``cpu`` or ``cuda``.
    """

    model: str
    name: str
    version: str
    tracking_uri: str | None = None
    backend: str = "auto"
    imgsz: int = 640
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300
    batch_size: int = 8
    threads: int = 1
    device: str = "cpu"


def local_weights(spec: EngineSpec) -> Path:
    """The model's local file: a ``models:/`` version is downloaded once per node (cached by its model id)."""
    if spec.model.startswith("models:/"):
        from pipelines.registry import resolve_model_uri  # noqa: PLC0415 - MLflow only for registry models

        return resolve_model_uri(spec.model, tracking_uri=spec.tracking_uri)
    return Path(spec.model)


def choose_backend(preference: str, path: Path, device: str) -> str:
    """The backend that runs ``path``: an exported artifact keeps its own; ``auto`` on native weights picks the
    fastest installed one for the device.

    Raises:
        BatchPredictError: an exported artifact asked to run on another backend.
    """
    if is_exported_artifact(path):
        try:
            return artifact_backend(path, preference)
        except EngineError as exc:
            raise BatchPredictError(f"model {exc}") from None
    if preference != "auto":
        return preference
    if device.startswith("cuda"):
        return "torch"
    installed = available_backends()
    return next((name for name in ("openvino", "onnxruntime") if name in installed), "torch")


def export_engine(weights: Path, backend: str, imgsz: int, batch_size: int, cache: Path) -> Path:
    """Native ``weights`` exported for ``backend`` once per node and cached (key: weights sha256, backend, imgsz,
    batch); actors that start together on a node agree on one copy (each exports into a staging folder, the first
    rename wins)."""
    from yolov12.export import export_model  # noqa: PLC0415 - the exporters import onnx / openvino
    from yolov12.models import load_model_with_metadata  # noqa: PLC0415

    fmt = EXPORT_FORMAT[backend]
    folder = cache / f"{file_sha256(weights)[:16]}-{backend}-{imgsz}-b{batch_size}"
    name = f"{weights.stem}_openvino" if fmt == "openvino" else f"{weights.stem}.onnx"
    if (folder / name).exists():
        return folder / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model, metadata = load_model_with_metadata(weights)
        built = export_model(model, fmt, source=weights, source_metadata=metadata, imgsz=imgsz, batch=batch_size,
                             dynamic=True, device="cpu", output=str(staging / name))
        try:
            staging.rename(folder)
        except OSError:  # another actor on this node renamed its copy first
            pass
        return folder / built.name
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build_engine(spec: EngineSpec, cache: Path | None = None) -> Engine:
    """Load the model of ``spec`` on its backend (exporting native weights first when needed)."""
    from yolov12.data.remote import cache_root  # noqa: PLC0415

    weights = local_weights(spec)
    backend = choose_backend(spec.backend, weights, spec.device)
    artifact = weights
    if backend != "torch" and not is_exported_artifact(weights):
        artifact = export_engine(weights, backend, spec.imgsz, spec.batch_size, cache or cache_root() / "batch-engines")
    options: dict[str, Any] = {"threads": spec.threads}
    if backend == "torch":
        options["imgsz"] = spec.imgsz
    return load_engine(str(artifact), backend=backend, device=spec.device if backend != "openvino" else "cpu",
                       **options)


class ImagePredictor:
    """The callable class of the actor pool: one engine per actor, one Arrow table per batch.

    Args:
        spec: the model and prediction settings.

    Raises:
        BatchPredictError: the model is not a detection model (the output holds boxes).
    """

    def __init__(self, spec: EngineSpec) -> None:
        from yolov12.config import PredictConfig  # noqa: PLC0415
        from yolov12.infer import Predictor  # noqa: PLC0415

        engine = build_engine(spec)
        if engine.info.task != "detect":
            raise BatchPredictError(f"model {spec.name} version {spec.version} is a {engine.info.task} model; batch "
                                    "prediction writes boxes and needs a detection model")
        config = PredictConfig(imgsz=spec.imgsz, conf=spec.conf, iou=spec.iou, max_det=spec.max_det,
                               batch=spec.batch_size, device=spec.device, verbose=False)
        self.predictor = Predictor(engine, config)
        self.spec = spec
        logger.info("predicting with %s version %s on %s", spec.name, spec.version, engine.info.backend)

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        """Rows ``path``, ``image``, ``error`` -> one :data:`OUTPUT_SCHEMA` row per image (bad rows passed on)."""
        paths, images, errors = list(batch["path"]), list(batch["image"]), list(batch["error"])
        good = [i for i, error in enumerate(errors) if not error]
        results = self.predictor.predict_batch([paths[i] for i in good], [images[i] for i in good]) if good else []
        predicted = dict(zip(good, results))
        rows = [self._row(paths[i], predicted.get(i), errors[i]) for i in range(len(paths))]
        return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)

    def _row(self, path: str, result: Any, error: str) -> dict[str, Any]:
        row: dict[str, Any] = {"path": str(path), "model": self.spec.name, "version": self.spec.version}
        if result is None:
            return {**row, "error": str(error) or "not predicted"}
        data = result.boxes.data.cpu().numpy().astype(np.float32)
        height, width = result.orig_shape
        return {**row, "width": int(width), "height": int(height), "boxes": data[:, :4].tolist(),
                "scores": data[:, 4].tolist(), "classes": data[:, 5].astype(np.int32).tolist()}
