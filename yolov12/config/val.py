"""Validation settings (``model.val(...)`` keyword arguments and ``yolov12 val key=value``).

Example:
    >>> config = ValConfig.from_overrides(data="sample", conf=0.1, max_det=100)
    >>> config.conf, config.iou, config.split
    (0.1, 0.7, 'val')
"""

from __future__ import annotations

from functools import partial
from typing import Literal

from pydantic import Field, field_validator

from yolov12.config.base import Section
from yolov12.config.predict import PredictConfig
from yolov12.settings import default_project


def _predict_device_default() -> str:
    """The default device of :class:`PredictConfig`: validation and prediction pick the same device by default."""
    return PredictConfig.model_fields["device"].get_default(call_default_factory=True)


class ValConfig(Section):
    """Settings for validating a model on a labelled split.

    Attributes:
        data: a data.yaml, an ImageNet-style folder, ``s3://bucket/prefix`` or a built-in name (``sample``,
            ``sample-cls``); None leaves the choice to the caller (``YOLO.val`` uses the data of the last training).
        conf: minimum confidence of a kept detection (low, so the whole precision-recall curve counts in the mAP).
        iou: IoU threshold of non-maximum suppression.
        max_det: maximum detections per image kept by non-maximum suppression.
        split: which split of ``data`` to validate on.
        batch: images per forward pass.
        imgsz: input size in pixels (square); None: the task's default (640 detection, 224 classification).
        workers: data-loading worker processes (0 loads in the calling process).
        save_json: write the predictions to the run folder: ``predictions.json`` in the COCO results format
            (detection) or one record per image with its top-5 classes and true class (classification).
        plots: write ``confusion_matrix.png`` (and, for detection, ``PR_curve.png``) to the run folder.
        half: fp16 autocast on CUDA, bf16 autocast on CPUs with native bf16 (fp32 elsewhere, said in the log).
        device: as :class:`PredictConfig`'s ``device`` (same default); one device.
        rect: rectangular batches (detection only): images in aspect-ratio order, each batch letterboxed to the
            smallest stride multiple that fits it, so less padding is computed.
        project, name: the run folder is ``project/name`` (numbered when it exists), made only when something is
            written to it (``save_json`` or ``plots``).
        verbose: log the metrics of every class too.
    """

    data: str | None = None
    conf: float = Field(0.001, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(300, ge=1, le=30000)
    split: Literal["val", "test", "train"] = "val"
    batch: int = Field(32, ge=1, le=4096)
    imgsz: int | None = Field(None, ge=32, le=8192)
    workers: int = Field(0, ge=0, le=64)
    save_json: bool = False
    plots: bool = False
    half: bool = False
    device: str = Field(default_factory=_predict_device_default)
    rect: bool = False
    project: str = Field(default_factory=partial(default_project, "val"))  # <runs_dir>/val
    name: str = "exp"
    verbose: bool = False

    _normalise_device = field_validator("device", mode="before")(PredictConfig._normalise_device.__func__)

    @field_validator("data", mode="before")
    @classmethod
    def _data_as_text(cls, value: object) -> object:
        return str(value) if hasattr(value, "__fspath__") else value  # a pathlib.Path is as good as its text
