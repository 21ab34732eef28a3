"""Calibration images for int8 exports (OpenVINO via NNCF, TensorRT): ``data=`` -> model inputs as predict makes them.

``data`` is an image source (a folder, glob, image file or list of them, read by :func:`yolov12.infer.sources.
iter_batches`) or a dataset (a built-in name such as ``sample``, a ``data.yaml``, a dataset folder; resolved by
:func:`yolov12.data.dataset_config.load_dataset_config`), whose ``train`` split is used (``val`` when it has no
train split): calibration should not see the images the model is evaluated on. At most
:data:`MAX_CALIBRATION_IMAGES` images are read, in source order. Detection images are letterboxed, classification
images centre-cropped, at the export size, exactly as :class:`yolov12.infer.Predictor` prepares them.

Example:
    >>> images = CalibrationImages.from_data("sample", imgsz=(320, 320), task="detect")  # doctest: +SKIP
    >>> len(images), next(iter(images.batches(1))).shape  # doctest: +SKIP
    (96, (1, 3, 320, 320))
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yolov12.data import builtin
from yolov12.data.dataset_config import load_dataset_config
from yolov12.infer.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, iter_batches
from yolov12.tasks import task_spec

logger = logging.getLogger(__name__)

MAX_CALIBRATION_IMAGES = 300  # NNCF's default subset_size; enough for min/max activation statistics
DATASET_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class CalibrationImages:
    """Where the calibration images come from, how many are used, and how they are prepared.

    Attributes:
        source: what :func:`iter_batches` reads (paths, a folder, a glob...).
        count: number of images used (``<= MAX_CALIBRATION_IMAGES``).
        imgsz: (height, width) of the model input.
        task: ``detect`` (letterbox) or ``classify`` (centre crop).
        stride: model stride (letterbox).
        description: what ``data`` was, for messages.
    """

    source: Any
    count: int
    imgsz: tuple[int, int]
    task: str = "detect"
    stride: int = 32
    description: str = ""

    @classmethod
    def from_data(cls, data: str | Path | list, imgsz: tuple[int, int], task: str = "detect",
                  stride: int = 32) -> CalibrationImages:
        """Resolve ``data`` and count its images (each is decoded once here, so a bad file fails before export)."""
        source, description = resolve_source(data)
        frames = itertools.islice(itertools.chain.from_iterable(iter_batches(source, 1)), MAX_CALIBRATION_IMAGES)
        count = sum(1 for _ in frames)
        logger.info("int8 calibration on %d image(s) of %s", count, description)
        return cls(source, count, tuple(imgsz), task, stride, description)

    def __len__(self) -> int:
        return self.count

    def batches(self, batch: int, fixed: bool = False) -> Iterator[np.ndarray]:
        """(B, 3, H, W) float32 RGB in [0, 1] batches of up to ``batch`` images (``fixed``: exactly ``batch``, the
        last one filled up by repeating its own images, for static-batch graphs)."""
        frames = itertools.islice(itertools.chain.from_iterable(iter_batches(self.source, 1)), self.count)
        prepare_batch = task_spec(self.task).prepare_batch
        while chunk := [image for _, image in itertools.islice(frames, batch)]:
            if fixed and len(chunk) < batch:
                chunk = list(itertools.islice(itertools.cycle(chunk), batch))
            yield prepare_batch(chunk, self.imgsz, self.stride).to_float_nchw()


def resolve_source(data: str | Path | list) -> tuple[Any, str]:
    """``data`` -> (an image source for :func:`iter_batches`, a description); datasets become their image files."""
    if isinstance(data, (list, tuple)) or not _is_dataset(data):
        return data, f"'{data}'" if isinstance(data, (str, Path)) else f"{len(data)} listed source(s)"
    config = load_dataset_config(data)
    split = "train" if "train" in config.splits else "val"
    return config.resolve_split(split)[:MAX_CALIBRATION_IMAGES], f"the {split} split of {config.source}"


def _is_dataset(data: str | Path) -> bool:
    """A built-in dataset name, a data.yaml / COCO json, ``s3://``, or a folder that holds no images itself."""
    text = os.fspath(data)
    if text in builtin.BUILTIN_DATASETS or text.startswith("s3://"):
        return True
    path = Path(text).expanduser()
    if path.is_file():
        return path.suffix.lower() in DATASET_SUFFIXES
    if path.is_dir():
        media = IMAGE_SUFFIXES + VIDEO_SUFFIXES
        return not any(p.is_file() and p.suffix.lower() in media for p in path.iterdir())
    return False


@contextmanager
def quiet_nncf() -> Iterator[None]:
    """NNCF logs one INFO line per ignored node or op while quantising; keep its warnings, unless the exporters'
    logger is at DEBUG."""
    nncf_logger = logging.getLogger("nncf")
    previous = nncf_logger.level
    if not logging.getLogger("yolov12.export").isEnabledFor(logging.DEBUG):
        nncf_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        nncf_logger.setLevel(previous)
