"""Run a detection or classification model over a source: batches, preprocessing, engine, postprocessing.

The model runs through an :class:`yolov12.engines.Engine` (a live model through the torch engine), so predict on a
checkpoint, an ONNX file, an OpenVINO folder or a TensorRT engine shares one pre- and post-processing path, the same
one serving uses.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from yolov12.config.predict import PredictConfig
from yolov12.engines.base import Engine, EngineError
from yolov12.infer.letterbox import LetterboxInfo
from yolov12.infer.prefetch import Prefetched
from yolov12.infer.preprocess import PreparedBatch
from yolov12.infer.results import Results
from yolov12.infer.samples import sample_images
from yolov12.infer.sources import IMAGE_SUFFIXES, Source, iter_batches
from yolov12.infer.streams import StreamSettings
from yolov12.tasks import TASKS, TaskSpec
from yolov12.utils.stride import round_up_to_stride

logger = logging.getLogger(__name__)


class Predictor:
    """Prediction with a built model or a loaded engine, and a :class:`PredictConfig`.

    A model is wrapped in a :class:`TorchEngine`: moved to ``config.device`` (in place); with ``half=True`` it is
    converted to fp16 on a GPU, while on the CPU it stays fp32 and runs under bfloat16 autocast; each forward is done
    in eval mode under ``torch.no_grad()`` and the model's previous train/eval mode is restored afterwards. An engine
    (``yolov12.engines.load_engine(...)``) is used as loaded; an engine exported for a fixed input size runs at that
    size whatever ``imgsz`` says.

    Example:
        >>> from yolov12.models import build_model, load_architecture
        >>> model = build_model(load_architecture("yolov12n"))
        >>> results = Predictor(model, PredictConfig(imgsz=320))(sample_images())
        >>> results[0].boxes.xyxy.shape[1]
        4
    """

    def __init__(self, model: nn.Module | Engine, config: PredictConfig | None = None) -> None:
        # imported here: the torch engine imports yolov12.infer (device selection), which imports this module
        from yolov12.engines.torch_engine import TorchEngine  # noqa: PLC0415

        self.config = config or PredictConfig()
        if isinstance(model, nn.Module):
            engine: Any = TorchEngine(model, device=self.config.device, half=self.config.half,
                                      compile=self.config.compile)
        elif hasattr(model, "info") and callable(model):
            engine = model
            if self.config.compile:
                check_compilable(engine)
        else:
            raise ValueError(f"cannot predict with {type(model).__name__}: pass a YOLO model or an engine")
        self.engine = engine
        self._on_torch = isinstance(engine, TorchEngine)
        self._canvas_input = bool(getattr(engine.info, "canvas_input", False)) and hasattr(engine, "run_canvas")
        info = engine.info
        if info.task not in TASKS:
            raise ValueError(f"cannot predict with a model whose task is {info.task!r}; supported: {', '.join(TASKS)}")
        self.task: str = info.task
        self.task_spec: TaskSpec = TASKS[info.task]
        self.model = getattr(engine, "model", None)
        self.device = getattr(engine, "device", torch.device("cpu"))
        self.fp16 = bool(getattr(engine, "fp16", False))
        self.bf16_autocast = bool(getattr(engine, "bf16_autocast", False))
        self.input_dtype = getattr(engine, "input_dtype", torch.float32)
        self.max_stride = info.stride
        self.input_size = self._input_size(info)
        height, width = self.input_size
        self.image_size: int | tuple[int, int] = height if height == width else (height, width)
        self._buffer: np.ndarray | None = None
        # applied in frame order to each result of stream() before it is logged or saved (tracking adds ids here)
        self.result_hooks: list[Callable[[Results], Results]] = []
        self._warned_conf = False

    def _input_size(self, info: Any) -> tuple[int, int]:
        requested = self.config.imgsz
        if not info.dynamic_imgsz:
            if "imgsz" in self.config.model_fields_set and (requested, requested) != tuple(info.imgsz):
                logger.warning("%s was exported for %dx%d inputs; predicting at that size, not imgsz=%d",
                               info.artifact, *info.imgsz, requested)
            return tuple(info.imgsz)
        size = round_up_to_stride(requested, self.max_stride)
        if size != requested:
            logger.warning("imgsz=%d is not a multiple of the max stride %d; using %d", requested, self.max_stride,
                           size)
        return (size, size)

    def __call__(self, source: Source | None = None) -> list[Results]:
        """All results for ``source`` (the bundled sample images when None); use :meth:`stream` for long videos."""
        return list(self.stream(source))

    def stream(self, source: Source | None = None) -> Iterator[Results]:
        """Results one image at a time, ``config.batch`` images per forward; memory stays flat for long videos.

        While a batch is inferred and post-processed, the next one is read, decoded and letterboxed on a background
        thread (one batch ahead: a live stream is read at most one batch early); results, hooks and errors keep the
        source's order.
        """
        if source is None:
            source = sample_images()
            logger.warning("no source given; using the bundled sample images %s", [p.name for p in source])
        config = self.config
        streams = StreamSettings(config.stream_timeout_s, config.reconnect_attempts, config.reconnect_delay_s)
        # the first batch is read here (a single image pays no thread start); the rest are decoded and letterboxed
        # on a background thread while the engine and post-processing work on the batch before (prefetch.py)
        batches = (self._read_ahead(batch) for batch in iter_batches(source, config.batch, stream=streams))
        first = next(batches, None)
        if first is None:
            return
        with Prefetched(batches) as ahead:
            for names, images, prepared, prepare_s in itertools.chain((first,), ahead):
                for result in self._predict_prepared(names, images, prepared, prepare_s):
                    for hook in self.result_hooks:
                        result = hook(result)
                    self._after(result)
                    yield result

    def _read_ahead(self, batch: list[tuple[str, np.ndarray]]) -> tuple[list[str], list[np.ndarray], PreparedBatch,
                                                                         float]:
        """What the read-ahead thread does for one decoded batch: letterbox it into the canvas, timed."""
        names, images = [name for name, _ in batch], [image for _, image in batch]
        return names, images, *self._timed_prepare(images)

    def predict_batch(self, names: Sequence[str], images: Sequence[np.ndarray]) -> list[Results]:
        """Predict one batch of (H_i, W_i, 3) BGR uint8 images; ``speed`` is milliseconds per image."""
        return self._predict_prepared(names, images, *self._timed_prepare(images))

    def _timed_prepare(self, images: Sequence[np.ndarray]) -> tuple[PreparedBatch, float]:
        """:meth:`prepare` and the seconds it took (``speed["preprocess"]``)."""
        start = time.perf_counter()
        prepared = self.prepare(images)
        return prepared, time.perf_counter() - start

    def _predict_prepared(self, names: Sequence[str], images: Sequence[np.ndarray], prepared: PreparedBatch,
                          prepare_s: float) -> list[Results]:
        """:meth:`predict_batch` of a batch already letterboxed (in ``prepare_s`` seconds)."""
        start = self._clock()
        inputs = self.engine_input(prepared)
        preprocessed = self._clock()
        outputs = self.inference(inputs)
        inferred = self._clock()
        results = self.postprocess(outputs, names, images, prepared.letterboxes)
        finished = self._clock()
        per_image = 1000.0 / len(images)
        speed = {
            "preprocess": (prepare_s + preprocessed - start) * per_image,
            "inference": (inferred - preprocessed) * per_image,
            "postprocess": (finished - inferred) * per_image,
        }
        for result in results:
            result.speed = dict(speed)
        return results

    def prepare(self, images: Sequence[np.ndarray]) -> PreparedBatch:
        """Images -> one uint8 canvas at the input size: letterboxed (detection) or centre-cropped (classification)."""
        return self.task_spec.prepare_batch(images, self.input_size, self.max_stride)

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor | np.ndarray, list[LetterboxInfo] | None]:
        """Images -> engine input and the letterbox of each image (None for classification). The input is a
        (B, 3, H, W) tensor on the torch engine's device; the (B, H, W, 3) uint8 canvas itself for an engine that
        converts it in its graph (``info.canvas_input``); else (B, 3, H, W) float32 numpy."""
        prepared = self.prepare(images)
        return self.engine_input(prepared), prepared.letterboxes

    def engine_input(self, prepared: PreparedBatch) -> torch.Tensor | np.ndarray:
        """The engine's input for a prepared batch (see :meth:`preprocess`)."""
        if self._on_torch:
            return prepared.to_tensor(self.device, self.input_dtype)
        if self._canvas_input:
            return prepared.canvas
        self._buffer = prepared.to_float_nchw(out=self._buffer)  # reused: the engine is done with it by the next batch
        return self._buffer

    def inference(self, inputs: torch.Tensor | np.ndarray) -> np.ndarray:
        """The engine's raw output: (B, 4 + nc, A) detections, (B, max_det, 6) end-to-end, or (B, nc) probabilities."""
        return self.engine.run_canvas(inputs) if self._canvas_input else self.engine(inputs)

    def postprocess(
        self,
        outputs: np.ndarray | torch.Tensor,
        names: Sequence[str],
        images: Sequence[np.ndarray],
        letterboxes: Sequence[LetterboxInfo] | None,
    ) -> list[Results]:
        """Model outputs -> one :class:`Results` per image, boxes in original-image pixels.

        The same functions serving uses (:mod:`yolov12.infer.postprocess`): batched NMS for raw detector output, a
        confidence filter for end-to-end output, probabilities for classifiers.
        """
        info, config = self.engine.info, self.config
        if info.end2end and not self._warned_conf and config.conf < (info.metadata.get("nms") or {}).get("conf", 0):
            logger.warning("the model's in-graph NMS already dropped scores <= %.3g; conf=%.3g cannot bring them back",
                           info.metadata["nms"]["conf"], config.conf)
            self._warned_conf = True
        return self.task_spec.postprocess(outputs, images, letterboxes, info.names, conf=config.conf, iou=config.iou,
                                          max_det=config.max_det, classes=config.classes,
                                          agnostic=config.agnostic_nms, end2end=info.end2end, paths=names)

    def _clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _after(self, result: Results) -> None:
        if self.config.verbose:
            height, width = result.orig_shape
            logger.info("%s: %dx%d %s, %.1fms", result.path, width, height, result.verbose(),
                        result.speed["inference"])
        if self.config.save:
            path = result.save(Path(self.config.project) / self.config.name / save_name(result.path))
            logger.debug("saved %s", path)


def check_compilable(engine: Any) -> None:
    """Refuse ``compile=True`` for a ready engine it cannot apply to: another backend, or a torch engine built
    without it (:class:`EngineError`, one line)."""
    info = engine.info
    if info.backend != "torch":
        raise EngineError(f"compile=True compiles PyTorch models with torch.compile, but {info.artifact} runs on "
                          f"{info.backend}; predict with compile=False, or with the PyTorch weights (.safetensors / "
                          ".pt) it was exported from")
    if getattr(engine, "compiled", None) is None:
        raise EngineError("compile=True cannot change a torch engine that is already loaded: load it with "
                          "load_engine(..., compile=True), or pass the model itself")


def save_name(source_name: str) -> str:
    """File name for an annotated result: the image's own name, ``<video stem>_frame<i>.jpg``, or ``image<i>.jpg``."""
    video, marker, index = source_name.rpartition(":frame")
    if marker and index.isdigit():
        return f"{Path(video).stem}_frame{index}.jpg"
    path = Path(source_name)
    return path.name if path.suffix.lower() in IMAGE_SUFFIXES else f"{path.stem}.jpg"
