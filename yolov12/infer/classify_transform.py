"""Classification preprocessing of one image: resize the shorter side, centre crop.

This matches Ultralytics' ``classify_transforms`` (Resize(shorter side) + CenterCrop, mean 0 / std 1) with OpenCV
in place of torchvision, which is unavailable with this torch build. Batches are made by
:func:`yolov12.infer.preprocess.center_crop_batch`.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

logger = logging.getLogger(__name__)


def resize_center_crop(image_bgr: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) -> (size, size, 3): scale so the shorter side is ``size`` (``INTER_LINEAR``), crop the centre."""
    height, width = image_bgr.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image_bgr = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image_bgr[top:top + size, left:left + size]

