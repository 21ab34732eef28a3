"""HSV colour jitter and flips.

Both are hand-written, measured per 640x640 image with cv2 on 1 thread on 2 shared, loaded cores
(``benchmarks/dataloader.py --ops``; ranges are over runs):

* HSV, decided by correctness: Ultralytics' ``hsv_h/s/v`` mean an additive hue shift of ±hsv_h of the hue circle
  and *multiplicative* saturation/value gains of 1 ± hsv_s/v. ``A.HueSaturationValue`` shifts saturation and value
  additively (a different augmentation); ``A.ColorJitter`` scales brightness but blends saturation with the grey
  image PIL-style, and adds random op order. Speed is a wash on this machine: ours 5.6-7.2 ms,
  ``A.HueSaturationValue`` 5.9-12 ms, ``A.ColorJitter`` 6.3-15 ms over four runs. Ours is one BGR->HSV conversion,
  three 256-entry look-up tables and one conversion back.
* Flips: ``cv2.flip`` plus four subtractions for boxes took 0.1-0.4 ms; ``A.HorizontalFlip`` inside an ``A.Compose``
  with box parameters took 2.2-2.9 ms, almost all of it Compose's box pre/post-processing, and it cannot carry
  polygons.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from yolov12.data.augment.compose import replace_sample

if TYPE_CHECKING:
    from yolov12.data.types import Sample

logger = logging.getLogger(__name__)


def hsv_jitter(image_bgr: np.ndarray, hue_shift: float, saturation_gain: float, value_gain: float) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> jittered copy.

    Args:
        hue_shift: fraction of the hue circle to add (OpenCV hue spans 0..180).
        saturation_gain: factor on saturation.
        value_gain: factor on value (brightness).
    """
    levels = np.arange(256, dtype=np.float32)
    hue_table = np.mod(levels + hue_shift * 180.0, 180.0).astype(np.uint8)
    saturation_table = np.clip(levels * saturation_gain, 0, 255).astype(np.uint8)
    saturation_table[0] = 0  # grey stays grey
    value_table = np.clip(levels * value_gain, 0, 255).astype(np.uint8)
    table = np.stack((hue_table, saturation_table, value_table), axis=1).reshape(256, 1, 3)  # one LUT per channel,
    jittered = cv2.LUT(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2HSV), table)  # in one call (no split and merge)
    return cv2.cvtColor(jittered, cv2.COLOR_HSV2BGR)


class RandomHSV:
    """Random hue shift (±``hsv_h`` of the circle) and saturation/value gains (1 ± ``hsv_s``, 1 ± ``hsv_v``)."""

    def __init__(self, hsv_h: float = 0.015, hsv_s: float = 0.7, hsv_v: float = 0.4) -> None:
        self.hsv_h, self.hsv_s, self.hsv_v = hsv_h, hsv_s, hsv_v

    def draw(self) -> tuple[float, float, float]:
        """Sample (hue_shift, saturation_gain, value_gain)."""
        hue, saturation, value = np.random.uniform(-1, 1, 3) * (self.hsv_h, self.hsv_s, self.hsv_v)
        return float(hue), float(1 + saturation), float(1 + value)

    def apply_to_image(self, image_bgr: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 BGR -> jittered copy (or the same array when all gains are zero)."""
        if not (self.hsv_h or self.hsv_s or self.hsv_v):
            return image_bgr
        return hsv_jitter(image_bgr, *self.draw())

    def __call__(self, sample: Sample) -> Sample:
        if not (self.hsv_h or self.hsv_s or self.hsv_v):
            return sample
        return replace_sample(sample, image=self.apply_to_image(sample.image))

    def __repr__(self) -> str:
        return f"RandomHSV(hsv_h={self.hsv_h}, hsv_s={self.hsv_s}, hsv_v={self.hsv_v})"


def flip_sample(sample: Sample, direction: Literal["horizontal", "vertical"]) -> Sample:
    """Mirror the image, boxes and polygons left-right (``horizontal``) or top-bottom (``vertical``)."""
    height, width = sample.image.shape[:2]
    axis, size, flip_code = (0, width, 1) if direction == "horizontal" else (1, height, 0)
    boxes = sample.boxes.reshape(-1, 4).copy()
    boxes[:, [axis, axis + 2]] = size - sample.boxes.reshape(-1, 4)[:, [axis + 2, axis]]
    segments = None
    if sample.segments is not None:
        segments = []
        for polygon in sample.segments:
            mirrored = polygon.copy()
            mirrored[:, axis] = size - polygon[:, axis]
            segments.append(mirrored)
    return replace_sample(sample, image=cv2.flip(sample.image, flip_code), boxes=boxes, segments=segments)


class RandomFlip:
    """Flip with probability ``p`` (``fliplr`` for horizontal, ``flipud`` for vertical)."""

    def __init__(self, direction: Literal["horizontal", "vertical"] = "horizontal", p: float = 0.5) -> None:
        if direction not in ("horizontal", "vertical"):
            raise ValueError(f"flip direction must be 'horizontal' or 'vertical', got {direction!r}")
        self.direction = direction
        self.p = p

    def __call__(self, sample: Sample) -> Sample:
        if self.p <= 0 or np.random.uniform() > self.p:
            return sample
        return flip_sample(sample, self.direction)

    def __repr__(self) -> str:
        return f"RandomFlip({self.direction!r}, p={self.p})"
