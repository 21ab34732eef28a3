"""Prediction settings (``model.predict(...)`` keyword arguments and ``yolov12 predict key=value``)."""

from __future__ import annotations

from functools import partial

from pydantic import Field, field_validator

from yolov12.config.base import Section
from yolov12.settings import default_project
from yolov12.utils.device import normalise_device


class PredictConfig(Section):
    """Settings for inference.

    Attributes:
        imgsz: inference size in pixels (square; rounded up to a multiple of the model stride).
        conf: minimum confidence of a kept detection.
        iou: IoU threshold of non-maximum suppression.
        max_det: maximum detections per image.
        device: ``auto`` (``cuda:0``, else ``mps``, else ``cpu``; logged once), ``cpu``, ``cuda``, ``cuda:0`` or a bare
            GPU index such as ``0``.
        half: run the model in fp16 (CUDA) / bf16 (CPU).
        compile: run a PyTorch model through ``torch.compile`` (Conv+BN-fused, channels-last copy of the model; the
            first forward per input shape compiles, which takes seconds to minutes and is logged; later ones
            reuse it). Only for PyTorch weights: exported models (ONNX, OpenVINO, TensorRT) are refused.
        batch: images per forward pass.
        classes: keep only these class ids.
        agnostic_nms: class-agnostic NMS.
        save: write annotated images to ``project/name``.
        project, name: output folder of saved results.
        verbose: log a line per image.
        stream_timeout_s: seconds a stream (``rtsp://``, ``http(s)://``, webcam) may take to open or to send a frame
            before it counts as stalled.
        reconnect_attempts: reopen attempts in a row for a stalled or dropped stream before it is given up.
        reconnect_delay_s: wait before the first reopen attempt; it doubles with each failed attempt (at most 8 s).
    """

    imgsz: int = Field(640, ge=32, le=8192)
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=30000)
    device: str = "auto"
    half: bool = False
    compile: bool = False
    batch: int = Field(1, ge=1, le=1024)
    classes: tuple[int, ...] | None = None
    agnostic_nms: bool = False
    save: bool = False
    project: str = Field(default_factory=partial(default_project, "predict"))  # <runs_dir>/predict
    name: str = "exp"
    verbose: bool = False
    stream_timeout_s: float = Field(10.0, gt=0.0, le=3600.0)
    reconnect_attempts: int = Field(5, ge=0, le=1000)
    reconnect_delay_s: float = Field(0.5, ge=0.0, le=60.0)

    @field_validator("device", mode="before")
    @classmethod
    def _normalise_device(cls, value: object) -> str:
        text = normalise_device(value)
        if "," in text:
            raise ValueError(f"device={text} names several GPUs; inference runs on one device: pick one (device=0)")
        return text

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_as_tuple(cls, value: object) -> object:
        if isinstance(value, int):
            return (value,)
        return value
