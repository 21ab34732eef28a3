"""Batch preprocessing shared by predict, export calibration and serving: one pass per image, no torch on the CPU path.

Detection: each image is resized straight into its slot of one pre-filled (B, H, W, 3) uint8 canvas (the letterbox
padding is the canvas's fill), so there is no per-image pad copy and no stack. Classification: resize the shorter
side and centre-crop into the canvas. The uint8 canvas then becomes the (B, 3, H, W) float32 RGB input in [0, 1] in
one numpy pass (scale, BGR->RGB and HWC->CHW together, ~1 ms for 640x640 on one core; torch's CPU ops took tens
of ms for the same on a busy 2-core machine). On a GPU the uint8 canvas is uploaded (4x fewer bytes) and converted
there.

Example:
    >>> batch = letterbox_batch([np.zeros((480, 640, 3), np.uint8)], 320)
    >>> batch.to_float_nchw().shape, batch.letterboxes[0].pad
    ((1, 3, 320, 320), (0, 40))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from yolov12.engines.base import canvas_to_float_nchw
from yolov12.infer.classify_transform import resize_center_crop
from yolov12.infer.letterbox import LetterboxInfo, images_to_tensor, letterbox_size

PAD_VALUE = 114


@dataclass
class PreparedBatch:
    """Letterboxed / cropped images of one batch.

    Attributes:
        canvas: (B, H, W, 3) uint8 BGR, every image at the model's input size.
        letterboxes: per image, how it was letterboxed (None for classification crops).
    """

    canvas: np.ndarray
    letterboxes: list[LetterboxInfo] | None = None

    def to_float_nchw(self, out: np.ndarray | None = None) -> np.ndarray:
        """(B, 3, H, W) float32 RGB in [0, 1], contiguous, in one pass (into ``out`` when given and of that shape).

        :func:`yolov12.engines.base.canvas_to_float_nchw`: values equal ``x / 255`` in float32 exactly.
        """
        return canvas_to_float_nchw(self.canvas, out)

    def to_tensor(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The model input as a tensor on ``device``: CPU via :meth:`to_float_nchw`; GPUs convert the uint8 there."""
        if torch.device(device).type == "cpu":
            tensor = torch.from_numpy(self.to_float_nchw())
            return tensor if dtype == torch.float32 else tensor.to(dtype)
        return images_to_tensor(self.canvas, device, dtype)


def _size(imgsz: int | Sequence[int]) -> tuple[int, int]:
    return (imgsz, imgsz) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))


def letterbox_batch(images: Sequence[np.ndarray], imgsz: int | Sequence[int], stride: int = 32,
                    pad_value: int = PAD_VALUE) -> PreparedBatch:
    """Letterbox (H_i, W_i, 3) BGR uint8 images into one (B, H, W, 3) canvas, centred, ``cv2.INTER_LINEAR``.

    Identical pixels and :class:`LetterboxInfo` to :func:`yolov12.infer.letterbox.letterbox` with ``auto=False``.
    ``stride`` is accepted for symmetry (the target size is already a multiple of it).
    """
    del stride
    target_h, target_w = _size(imgsz)
    canvas = np.full((len(images), target_h, target_w, 3), pad_value, dtype=np.uint8)
    infos = []
    for slot, image in zip(canvas, images):
        height, width = image.shape[:2]
        new_w, new_h = letterbox_size(height, width, target_h, target_w)
        left, top = (target_w - new_w) // 2, (target_h - new_h) // 2
        region = slot[top:top + new_h, left:left + new_w]
        if (new_w, new_h) == (width, height):
            region[...] = image
        else:
            _resize_into(image, region)
        infos.append(LetterboxInfo(ratio=(new_w / width, new_h / height), pad=(left, top)))
    return PreparedBatch(canvas, infos)


def center_crop_batch(images: Sequence[np.ndarray], imgsz: int | Sequence[int], stride: int = 32) -> PreparedBatch:
    """Classification input: shorter side resized to the crop size (``INTER_LINEAR``), centre crop, one canvas.

    ``imgsz`` is the square crop's side, or (height, width) of which the height is used; ``stride`` is accepted so
    that this and :func:`letterbox_batch` are called alike (see :mod:`yolov12.tasks`).
    """
    del stride
    size = _size(imgsz)[0]
    canvas = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for slot, image in zip(canvas, images):
        slot[...] = resize_center_crop(image, size)
    return PreparedBatch(canvas, None)


def _resize_into(image: np.ndarray, region: np.ndarray) -> None:
    """``cv2.resize`` writing into ``region`` (a view into the canvas) without an intermediate image."""
    height, width = region.shape[:2]
    out = cv2.resize(np.ascontiguousarray(image), (width, height), dst=region, interpolation=cv2.INTER_LINEAR)
    if out is not region and not np.shares_memory(out, region):  # OpenCV allocated anyway (e.g. odd strides)
        region[...] = out
