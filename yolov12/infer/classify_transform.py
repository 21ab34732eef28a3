"""Classification preprocessing: resize the shorter side, centre crop, to a (B, 3, S, S) tensor.

This matches Ultralytics' ``classify_transforms`` (Resize(shorter side) + CenterCrop, mean 0 / std 1) with OpenCV
in place of torchvision, which is unavailable with this torch build.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np
import torch

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


def preprocess_classify_batch(
    images: Sequence[np.ndarray], size: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(H_i, W_i, 3) BGR uint8 images -> (B, 3, size, size) RGB tensor in [0, 1]."""
    from yolov12.infer.preprocess import center_crop_batch  # noqa: PLC0415 - preprocess builds on this module

    return center_crop_batch(images, size).to_tensor(device, dtype)
