"""Run a detection or classification model over a source: batches, preprocessing, forward, postprocessing."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yolov12.config.predict import PredictConfig
from yolov12.infer.classify_transform import preprocess_classify_batch
from yolov12.infer.device import select_device
from yolov12.infer.letterbox import LetterboxInfo, preprocess_batch, scale_boxes
from yolov12.infer.nms import non_max_suppression
from yolov12.infer.results import Boxes, Probs, Results
from yolov12.infer.samples import sample_images
from yolov12.infer.sources import IMAGE_SUFFIXES, Source, iter_batches

logger = logging.getLogger(__name__)

TASKS = ("detect", "classify")


class Predictor:
    """Prediction with a built model and a :class:`PredictConfig`.

    The model is moved to ``config.device`` (in place). With ``half=True`` it is converted to fp16 on a GPU; on the
    CPU it stays fp32 and runs under bfloat16 autocast. Each forward is done in eval mode under ``torch.no_grad()``
    and the model's previous train/eval mode is restored afterwards.

    Example:
        >>> from yolov12.models import build_model, load_architecture
        >>> model = build_model(load_architecture("yolov12n"))
        >>> results = Predictor(model, PredictConfig(imgsz=320))(sample_images())
        >>> results[0].boxes.xyxy.shape[1]
        4
    """

    def __init__(self, model: nn.Module, config: PredictConfig | None = None) -> None:
        self.config = config or PredictConfig()
        task = getattr(model, "task", None)
        if task not in TASKS:
            raise ValueError(f"cannot predict with a model whose task is {task!r}; supported tasks: {', '.join(TASKS)}")
        self.task: str = task
        self.device = select_device(self.config.device)
        self.fp16 = self.config.half and self.device.type != "cpu"
        self.bf16_autocast = self.config.half and self.device.type == "cpu"
        self.model = model.to(self.device)
        if self.fp16:
            self.model.half()
        self.input_dtype = torch.float16 if self.fp16 else torch.float32
        self.max_stride = max(int(torch.as_tensor(model.stride).max()), 1)
        self.image_size = math.ceil(self.config.imgsz / self.max_stride) * self.max_stride
        if self.image_size != self.config.imgsz:
            logger.warning("imgsz=%d is not a multiple of the max stride %d; using %d",
                           self.config.imgsz, self.max_stride, self.image_size)

    def __call__(self, source: Source | None = None) -> list[Results]:
        """All results for ``source`` (the bundled sample images when None); use :meth:`stream` for long videos."""
        return list(self.stream(source))

    def stream(self, source: Source | None = None) -> Iterator[Results]:
        """Results one image at a time, ``config.batch`` images per forward; memory stays flat for long videos."""
        if source is None:
            source = sample_images()
            logger.warning("no source given; using the bundled sample images %s", [p.name for p in source])
        for batch in iter_batches(source, self.config.batch):
            names, images = [name for name, _ in batch], [image for _, image in batch]
            for result in self.predict_batch(names, images):
                self._after(result)
                yield result

    def predict_batch(self, names: Sequence[str], images: Sequence[np.ndarray]) -> list[Results]:
        """Predict one batch of (H_i, W_i, 3) BGR uint8 images; ``speed`` is milliseconds per image."""
        start = self._clock()
        inputs, letterboxes = self.preprocess(images)
        preprocessed = self._clock()
        outputs = self.inference(inputs)
        inferred = self._clock()
        results = self.postprocess(outputs, names, images, letterboxes)
        finished = self._clock()
        per_image = 1000.0 / len(images)
        speed = {
            "preprocess": (preprocessed - start) * per_image,
            "inference": (inferred - preprocessed) * per_image,
            "postprocess": (finished - inferred) * per_image,
        }
        for result in results:
            result.speed = dict(speed)
        return results

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[LetterboxInfo] | None]:
        """Images -> (B, 3, S, S) input; letterboxed for detection (with their infos), centre-cropped for classify."""
        if self.task == "classify":
            return preprocess_classify_batch(images, self.image_size, self.device, self.input_dtype), None
        return preprocess_batch(images, self.image_size, self.max_stride, self.device, self.input_dtype)

    @torch.no_grad()
    def inference(self, inputs: torch.Tensor) -> torch.Tensor:
        """Forward in eval mode: (B, 3, S, S) -> (B, 4 + nc, A) detections or (B, nc) probabilities.

        ``no_grad`` rather than ``inference_mode``: the detect head caches anchors, and inference tensors in that
        cache would break a later training step on the same model.
        """
        was_training = self.model.training
        self.model.eval()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16_autocast else contextlib.nullcontext()
        try:
            with autocast:
                return self.model(inputs)
        finally:
            self.model.train(was_training)

    def postprocess(
        self,
        outputs: torch.Tensor,
        names: Sequence[str],
        images: Sequence[np.ndarray],
        letterboxes: Sequence[LetterboxInfo] | None,
    ) -> list[Results]:
        """Model outputs -> one :class:`Results` per image, boxes in original-image pixels."""
        class_names = dict(self.model.names)
        if self.task == "classify":
            return [
                Results(orig_img=image, path=name, names=class_names, probs=Probs(probs))
                for name, image, probs in zip(names, images, outputs.float())
            ]
        if outputs.shape[1] != 4 + len(class_names):
            raise ValueError(f"detector output has {outputs.shape[1]} rows, expected 4 + {len(class_names)} classes")
        config = self.config
        detections = non_max_suppression(
            outputs, conf=config.conf, iou=config.iou, classes=config.classes, agnostic=config.agnostic_nms,
            max_det=config.max_det,
        )
        results = []
        for name, image, letterbox_info, det in zip(names, images, letterboxes, detections):
            det[:, :4] = scale_boxes(det[:, :4], letterbox_info, image.shape[:2])
            boxes = Boxes(det, image.shape[:2])
            results.append(Results(orig_img=image, path=name, names=class_names, boxes=boxes))
        return results

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


def save_name(source_name: str) -> str:
    """File name for an annotated result: the image's own name, ``<video stem>_frame<i>.jpg``, or ``image<i>.jpg``."""
    video, marker, index = source_name.rpartition(":frame")
    if marker and index.isdigit():
        return f"{Path(video).stem}_frame{index}.jpg"
    path = Path(source_name)
    return path.name if path.suffix.lower() in IMAGE_SUFFIXES else f"{path.stem}.jpg"
