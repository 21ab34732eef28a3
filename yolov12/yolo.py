"""The ``YOLO`` facade users know from Ultralytics: build, load, inspect and run models.

Example:
    >>> from yolov12 import YOLO
    >>> model = YOLO("yolov12n.yaml")          # architecture from the zoo, random weights
    >>> results = model.predict()              # bundled sample photos
    >>> results[0].boxes.xyxy.shape
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from yolov12.engine.event_callbacks import EventFunction, UltralyticsEventCallbacks
from yolov12.engines.registry import is_exported_artifact
from yolov12.models import YOLOModel
from yolov12.models.loading import ModelLoadError, load_model_with_metadata
from yolov12.tasks import task_spec

__all__ = ["YOLO", "ExportedModelError", "ModelLoadError"]

logger = logging.getLogger(__name__)


class ExportedModelError(ValueError):
    """An exported model (ONNX, OpenVINO, TensorRT) was asked for something only PyTorch weights can do."""


class YOLO:
    """A YOLO model plus what it needs to run: class names, task, checkpoint metadata.

    Args:
        model: a zoo name (``"yolov12n.yaml"``, ``"yolo11s"``), a model YAML path, a native ``.safetensors``
            checkpoint, an Ultralytics / official YOLOv12 ``.pt`` checkpoint, an already built ``YOLOModel``, or an
            exported model (``.onnx``, TensorRT ``.engine``, ``*_openvino/`` folder), which predicts through the
            matching engine (``self.engine``; ``self.model`` is None then).
        task: optional check that the model is a ``"detect"`` or ``"classify"`` model.
    """

    def __init__(self, model: str | Path | YOLOModel = "yolov12n.yaml", task: str | None = None) -> None:
        self.metadata: Any = None
        self.engine: Any = None
        self.model: YOLOModel | None = None
        self.source = str(model) if not isinstance(model, YOLOModel) else "<in-memory model>"
        if isinstance(model, YOLOModel):
            self.model = model
        elif is_exported_artifact(model):
            from yolov12.engines import load_engine  # noqa: PLC0415 - engines import their runtimes lazily

            if not Path(model).exists():
                raise ModelLoadError(f"exported model '{model}' does not exist")
            self.engine = load_engine(model)
            self.metadata = self.engine.info.metadata
        else:
            self.model, self.metadata = load_model_with_metadata(model)
        if task is not None and task != self.task:
            raise ModelLoadError(f"{self.source} is a '{self.task}' model, but task='{task}' was requested")
        self._tracking: Any = None  # the TrackingSession that track(persist=True) continues
        self._event_callbacks = UltralyticsEventCallbacks()  # add_callback: Ultralytics-style training events

    # -- properties users reach for ---------------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.engine.info.task if self.engine is not None else self.model.task

    @property
    def names(self) -> dict[int, str]:
        return self.engine.info.names if self.engine is not None else self.model.names

    @property
    def device(self):
        if self.engine is not None:
            return self.engine.info.device
        return next(self.model.parameters()).device

    def _torch_model(self, action: str) -> YOLOModel:
        """The PyTorch model, or a clear error for an exported one (which can only predict)."""
        if self.model is None:
            raise ExportedModelError(
                f"cannot {action} '{self.source}': it is an exported {self.engine.info.backend} model and can only "
                "predict; use the PyTorch weights it was exported from (.safetensors / .pt / .yaml)"
            )
        return self.model

    # -- actions ----------------------------------------------------------------------------------------------------
    def predict(self, source: Any = None, stream: bool = False, **kwargs: Any):
        """Run inference; ``source=None`` uses the bundled sample photos. Keyword arguments: :class:`PredictConfig`.

        Returns a list of ``Results`` (or a generator of them with ``stream=True``).
        """
        predictor, source = self._predictor(source, kwargs)
        return predictor.stream(source) if stream else predictor(source)

    def track(self, source: Any = None, tracker: str | Path | Any = "bytetrack.yaml", persist: bool = False,
              stream: bool = False, **kwargs: Any):
        """Detect and track objects over the frames of a video, stream, webcam or image sequence.

        Args:
            source: as for :meth:`predict` (a video, ``rtsp://`` / ``http(s)://`` URL, webcam index, folder...).
            tracker: ``bytetrack.yaml``, ``botsort.yaml``, a tracker YAML path or a ``TrackerConfig``.
            persist: keep the tracks of the previous ``track`` call (feed a video frame by frame); without it each
                call starts new tracks with ids from 1.
            stream: return a generator (memory stays flat on long videos and live streams).
            **kwargs: :class:`PredictConfig` keywords; ``conf`` defaults to 0.1 so that low-score detections reach
                the tracker's second association.

        Returns ``Results`` whose ``boxes.id`` holds the track ids (only detections that belong to a track are kept).

        Example:
            >>> for result in YOLO("best.safetensors").track("clip.mp4", stream=True):  # doctest: +SKIP
            ...     print(result.boxes.id)
        """
        from yolov12.track import TrackingSession, load_tracker_config  # noqa: PLC0415

        if self.task != "detect":
            raise ValueError(f"cannot track with a '{self.task}' model: tracking needs a detection model")
        config = load_tracker_config(tracker)
        session = self._tracking
        if not persist or session is None or session.config != config:
            session = self._tracking = TrackingSession(config)
        kwargs.setdefault("conf", 0.1)
        predictor, source = self._predictor(source, kwargs)
        predictor.result_hooks.append(session.track)
        return predictor.stream(source) if stream else predictor(source)

    def _predictor(self, source: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """A :class:`Predictor` for ``kwargs`` (PredictConfig keywords) and the source (the sample photos for None)."""
        from yolov12.config import PredictConfig  # noqa: PLC0415 - keep `import yolov12` light

        fixed_size = self.engine is not None and not self.engine.info.dynamic_imgsz
        if "imgsz" not in kwargs and not fixed_size:
            kwargs["imgsz"] = task_spec(self.task).default_image_size
        config = PredictConfig.from_overrides(kwargs)
        from yolov12.infer import Predictor, sample_images  # noqa: PLC0415

        if source is None:
            source = [str(p) for p in sample_images()]
            logger.info("no source given: predicting on the bundled sample photos %s", source)
        predictor = Predictor(self._engine_for(config.device) if self.engine is not None else self.model, config)
        return predictor, source

    def _engine_for(self, device: str) -> Any:
        """The loaded engine; an ONNX Runtime one is reloaded when predict asks for another device (cpu / cuda).

        OpenVINO runs on the CPU and TensorRT on the GPU whatever ``device`` says.
        """
        current, wanted = str(self.engine.info.device).lower(), str(device).lower()
        same = current == wanted or wanted == "auto" or (wanted == "cuda" and current.startswith("cuda"))
        if self.engine.info.backend == "onnxruntime" and not same:
            from yolov12.engines import load_engine  # noqa: PLC0415

            self.engine = load_engine(self.source, device=device)
        return self.engine

    def export(self, format: str = "onnx", **kwargs: Any) -> Path:  # noqa: A002 - the Ultralytics keyword
        """Export to ``format`` (``onnx``, ``openvino``, ``engine``); returns the artifact path.

        Keywords (see :class:`yolov12.export.ExportConfig`): ``imgsz``, ``half``, ``dynamic``, ``batch``, ``opset``,
        ``simplify``, ``nms`` (+ ``conf``, ``iou``, ``max_det``), ``int8`` + ``data``, ``device``, ``precision``,
        ``output``. The artifact embeds task, class names, stride, size and this model's source digest, and loads
        back with ``YOLO(path)``.
        """
        from yolov12.export import export_model  # noqa: PLC0415 - export pulls in onnx

        model = self._torch_model("export")
        source = self.source if Path(self.source).is_file() else None
        return export_model(model, format, source=source, source_metadata=self.metadata, **kwargs)

    def __call__(self, source: Any = None, stream: bool = False, **kwargs: Any):
        """Same as :meth:`predict`."""
        return self.predict(source, stream=stream, **kwargs)

    def train(self, data: str | None = None, **kwargs: Any):
        """Train with the one training engine; keyword arguments are the Ultralytics names (see ``TrainConfig``).

        Accepts a ``cfg=path.yaml`` of settings too (explicit keywords win). Afterwards ``self.model`` is the trained
        EMA model and ``self.trainer_result`` says where the run went. Returns the final metrics.
        """
        from yolov12.config.train import TrainConfig  # noqa: PLC0415
        from yolov12.engine.multi_gpu import gpu_launcher_for  # noqa: PLC0415
        from yolov12.engine.trainer import fit  # noqa: PLC0415
        from yolov12.utils.device import gpu_indices  # noqa: PLC0415

        self._torch_model("train")
        overrides = _read_cfg(kwargs.pop("cfg", None))
        overrides.update(kwargs)
        if data is not None:
            overrides["data"] = data
        callbacks = list(overrides.pop("callbacks", None) or [])
        if self._event_callbacks:  # functions of add_callback, fired on every rank
            callbacks.append(self._event_callbacks)
        config = TrainConfig.from_overrides(overrides)
        if gpus := gpu_indices(config.run.device):  # device=0,1: one DDP worker per GPU through a launcher
            launcher = gpu_launcher_for(gpus)  # checks the GPUs and the launcher before anything is written
            self.trainer_result = launcher(self._weights_for_workers(config), config, gpus, callbacks or [])
        else:
            self.trainer_result = fit(self.model, config, callbacks=callbacks)
        self.model = self.trainer_result.model
        return self.trainer_result.metrics

    def _weights_for_workers(self, config: Any) -> str:
        """A file the DDP workers can load this model from: its own weights file, else a copy in the run's project."""
        source = Path(self.source)
        if not getattr(self, "trainer_result", None) and self.source != "<in-memory model>":
            return str(source.resolve()) if source.is_file() else self.source  # a weights file or a zoo name
        from yolov12.weights import save_checkpoint  # noqa: PLC0415

        target = Path(config.run.project) / f"{config.run.name}-start.safetensors"
        target.parent.mkdir(parents=True, exist_ok=True)
        return str(save_checkpoint(self._torch_model("train"), target, overwrite=True).resolve())

    @property
    def callbacks(self) -> dict[str, list[EventFunction]]:
        """Training event name -> the functions :meth:`train` calls with a ``CallbackContext`` (see add_callback)."""
        return self._event_callbacks.functions

    def add_callback(self, event: str, func: EventFunction) -> None:
        """Call ``func(trainer)`` at a training event, under Ultralytics' name (``on_fit_epoch_end``...).

        ``trainer`` is a read-only :class:`~yolov12.engine.event_callbacks.CallbackContext` (epoch, epochs, metrics,
        loss_items, lr, model, save_dir, rank, world_size...), not Ultralytics' trainer; events fire on every rank of
        a distributed run. An event the training loop does not fire (``on_train_batch_start``...) or an unknown name
        raises :class:`~yolov12.engine.event_callbacks.CallbackEventError`. See
        :mod:`yolov12.engine.event_callbacks` for the events and how they differ from Ultralytics'.

        Example:
            >>> model = YOLO("yolov12n.yaml")
            >>> model.add_callback("on_fit_epoch_end", lambda trainer: print(trainer.epoch, trainer.metrics))
        """
        self._event_callbacks.add(event, func)

    def clear_callback(self, event: str) -> None:
        """Remove every function registered for ``event`` with :meth:`add_callback`."""
        self._event_callbacks.clear(event)

    def val(self, data: str | None = None, **kwargs: Any) -> dict[str, float]:
        """Validate on ``data`` (default: the data of the last ``train`` call); returns the metrics dict.

        Keywords are those of :class:`yolov12.config.ValConfig`: ``conf`` (0.001), ``iou`` (0.7), ``max_det`` (300),
        ``split`` (``val``/``test``/``train``), ``batch`` (32), ``imgsz`` (the task's default), ``workers``,
        ``device``, ``half``, ``rect`` (rectangular batches, detection), ``save_json`` (predictions file in the run
        folder: COCO results for detection, top-5 classes per image for classification), ``plots`` (confusion
        matrix, PR curve), ``project``, ``name``, ``verbose`` (per-class metrics in the log). Detection metrics
        include the COCO size metrics (``metrics/mAP50-95_small(B)``, ...). An unknown keyword raises
        ``ConfigError`` naming the closest key.

        Example:
            >>> metrics = YOLO("yolov12n.yaml").val(data="sample", imgsz=64, conf=0.1, max_det=100)  # doctest: +SKIP
        """
        from yolov12.config.val import ValConfig  # noqa: PLC0415
        from yolov12.engine.validate import validate  # noqa: PLC0415

        self._torch_model("validate")
        if data is None and getattr(self, "trainer_result", None) is not None:
            data = self.trainer_result.data
        if data is None:
            raise ValueError("model.val() needs data=...: a data.yaml, a dataset folder, or 'sample'")
        return validate(self.model, ValConfig.from_overrides(kwargs, data=data))

    def info(self, verbose: bool = True, imgsz: int | None = None, include_attention: bool = False) -> dict:
        """Layer table, parameters and GFLOPs (see :meth:`YOLOModel.info`)."""
        model = self._torch_model("describe")
        return model.info(verbose=verbose, image_size=imgsz, include_attention=include_attention)

    def fuse(self) -> YOLO:
        """Fold Conv+BN for faster inference (in place)."""
        self._torch_model("fuse").fuse()
        return self

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write a native checkpoint (``.safetensors`` with JSON metadata)."""
        from yolov12.weights import save_checkpoint  # noqa: PLC0415

        return save_checkpoint(self._torch_model("save"), Path(path), overwrite=overwrite)

    def to(self, device: str) -> YOLO:
        """Move the model (or reload the ONNX Runtime engine) to ``device`` (``auto``, ``cpu``, ``cuda:0``, ...)."""
        if self.engine is not None:
            self._engine_for(device)
            return self
        from yolov12.utils.device import select_device  # noqa: PLC0415

        self.model.to(select_device(device))
        return self

    def __repr__(self) -> str:
        if self.engine is not None:
            info = self.engine.info
            return f"YOLO({self.source!r}, task={self.task!r}, classes={len(info.names)}, backend={info.backend!r})"
        config = self.model.config
        return f"YOLO({config.name!r}, task={self.task!r}, classes={config.num_classes}, version={config.version!r})"


def _read_cfg(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml  # noqa: PLC0415

    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ValueError(f"cfg file '{path}' does not exist") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"cfg file '{path}' must contain a mapping of training settings")
    return loaded
