"""Prediction settings (``model.predict(...)`` keyword arguments and ``yolov12 predict key=value``)."""

from __future__ import annotations

from pydantic import Field, field_validator

from yolov12.config.base import Section


class PredictConfig(Section):
    """Settings for inference.

    Attributes:
        imgsz: inference size in pixels (square; rounded up to a multiple of the model stride).
        conf: minimum confidence of a kept detection.
        iou: IoU threshold of non-maximum suppression.
        max_det: maximum detections per image.
        device: ``cpu``, ``cuda``, ``cuda:0`` or a bare GPU index such as ``0``.
        half: run the model in fp16 (CUDA) / bf16 (CPU).
        batch: images per forward pass.
        classes: keep only these class ids.
        agnostic_nms: class-agnostic NMS.
        save: write annotated images to ``project/name``.
        project, name: output folder of saved results.
        verbose: log a line per image.
    """

    imgsz: int = Field(640, ge=32, le=8192)
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=30000)
    device: str = "cpu"
    half: bool = False
    batch: int = Field(1, ge=1, le=1024)
    classes: tuple[int, ...] | None = None
    agnostic_nms: bool = False
    save: bool = False
    project: str = "runs/predict"
    name: str = "exp"
    verbose: bool = False

    @field_validator("device", mode="before")
    @classmethod
    def _normalise_device(cls, value: object) -> str:
        text = str(value).strip().lower()
        if text.isdigit():
            return f"cuda:{text}"
        if text in ("cpu", "cuda", "mps") or text.startswith("cuda:"):
            return text
        raise ValueError("device must be 'cpu', 'cuda', 'cuda:N' or a GPU index such as 0")

    @field_validator("classes", mode="before")
    @classmethod
    def _classes_as_tuple(cls, value: object) -> object:
        if isinstance(value, int):
            return (value,)
        return value
