"""Letterbox resizing of one image and mapping boxes back to the original image.

Batches are letterboxed by :func:`yolov12.infer.preprocess.letterbox_batch`.

Boxes here are ``xyxy`` corners; format conversions live in :mod:`yolov12.utils.boxes`. The helpers accept torch
tensors or numpy arrays of shape (..., 4) and return the same type.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from yolov12.utils.boxes import BoxArray

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LetterboxInfo:
    """How an image was letterboxed: ``resized = original * ratio``, then ``pad`` pixels added on the left/top.

    Attributes:
        ratio: (width, height) scale actually applied (the resized size over the original size).
        pad: (left, top) padding in pixels.
    """

    ratio: tuple[float, float]
    pad: tuple[int, int]


def letterbox(
    image_bgr: np.ndarray,
    new_shape: int | tuple[int, int] = 640,
    stride: int = 32,
    auto: bool = False,
    scaleup: bool = True,
    pad_value: int = 114,
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize keeping the aspect ratio (``cv2.INTER_LINEAR``) and pad to ``new_shape``, centred.

    Args:
        image_bgr: (H, W, 3) uint8 image.
        new_shape: output size, an int for a square or (height, width).
        stride: with ``auto``, padding only up to the next multiple of ``stride`` (smallest rectangle).
        auto: minimal rectangular padding instead of the full ``new_shape``.
        scaleup: allow enlarging; when False images are only shrunk.
        pad_value: grey level of the padding.

    Returns:
        The (H', W', 3) letterboxed image and its :class:`LetterboxInfo`.

    Example:
        >>> image, info = letterbox(np.zeros((480, 640, 3), np.uint8), 320)
        >>> image.shape, info.pad
        ((320, 320, 3), (0, 40))
    """
    height, width = image_bgr.shape[:2]
    target_h, target_w = (new_shape, new_shape) if isinstance(new_shape, int) else new_shape
    new_w, new_h = letterbox_size(height, width, target_h, target_w, scaleup)
    pad_w, pad_h = target_w - new_w, target_h - new_h
    if auto:
        pad_w, pad_h = pad_w % stride, pad_h % stride
    if (new_w, new_h) != (width, height):
        image_bgr = cv2.resize(image_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left, top = pad_w // 2, pad_h // 2
    if pad_w or pad_h:
        image_bgr = cv2.copyMakeBorder(
            image_bgr, top, pad_h - top, left, pad_w - left, cv2.BORDER_CONSTANT, value=(pad_value,) * 3
        )
    return image_bgr, LetterboxInfo(ratio=(new_w / width, new_h / height), pad=(left, top))


def letterbox_size(height: int, width: int, target_h: int, target_w: int, scaleup: bool = True) -> tuple[int, int]:
    """(new_w, new_h) of an image resized to fit (target_h, target_w) keeping its aspect ratio."""
    gain = min(target_h / height, target_w / width)
    if not scaleup:
        gain = min(gain, 1.0)
    return max(1, round(width * gain)), max(1, round(height * gain))


def images_to_tensor(images_bgr: np.ndarray, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
    """(B, H, W, 3) uint8 BGR -> (B, 3, H, W) RGB in [0, 1], on ``device`` as ``dtype``, in one vectorised pass.

    The uint8 batch is moved to the device first (4x less to copy than floats), then flipped, permuted and scaled.
    """
    batch = torch.from_numpy(np.ascontiguousarray(images_bgr)).to(device, non_blocking=True)
    batch = batch.permute(0, 3, 1, 2).flip(1)  # BHWC -> BCHW, BGR -> RGB
    return batch.to(dtype).div_(255.0).contiguous()


def _float_copy(boxes: BoxArray) -> BoxArray:
    """A copy, promoted to floating point when the input holds integers."""
    if isinstance(boxes, torch.Tensor):
        return boxes.clone() if boxes.is_floating_point() else boxes.float()
    return boxes.copy() if np.issubdtype(boxes.dtype, np.floating) else boxes.astype(np.float64)


def clip_boxes(boxes_xyxy: BoxArray, shape: tuple[int, int]) -> BoxArray:
    """Clip (..., 4) xyxy boxes to an image of ``shape`` (height, width), in place; returns them."""
    height, width = shape[:2]
    if isinstance(boxes_xyxy, torch.Tensor):
        boxes_xyxy[..., 0::2] = boxes_xyxy[..., 0::2].clamp(0, width)
        boxes_xyxy[..., 1::2] = boxes_xyxy[..., 1::2].clamp(0, height)
    else:
        boxes_xyxy[..., 0::2] = boxes_xyxy[..., 0::2].clip(0, width)
        boxes_xyxy[..., 1::2] = boxes_xyxy[..., 1::2].clip(0, height)
    return boxes_xyxy


def scale_boxes(boxes_xyxy: BoxArray, letterbox_info: LetterboxInfo, orig_shape: tuple[int, int]) -> BoxArray:
    """Map (..., 4) xyxy boxes from letterboxed pixels back to the original image and clip them.

    Args:
        boxes_xyxy: boxes in the letterboxed image (not modified).
        letterbox_info: what :func:`letterbox` returned for that image.
        orig_shape: (height, width) of the original image.
    """
    out = _float_copy(boxes_xyxy)
    (ratio_w, ratio_h), (left, top) = letterbox_info.ratio, letterbox_info.pad
    out[..., 0::2] = (out[..., 0::2] - left) / ratio_w
    out[..., 1::2] = (out[..., 1::2] - top) / ratio_h
    return clip_boxes(out, orig_shape)
