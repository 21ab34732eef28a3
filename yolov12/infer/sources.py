"""Turn a prediction ``source`` into named BGR uint8 frames, lazily, in batches.

A source is an image file, a folder, a glob pattern, a video file, a numpy array, a PIL image, a torch tensor
(B, 3, H, W) float RGB in [0, 1], or a list of any of these; or, alone, a live source: an ``rtsp://`` or
``http(s)://`` stream or a webcam index (``0``), read by :mod:`yolov12.infer.streams`. Paths are resolved eagerly (so
a missing file fails at once); pixels are decoded lazily, one frame at a time.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from yolov12.infer.image_io import MAX_IMAGE_PIXELS, SourceError, read_image, to_bgr_uint8
from yolov12.infer.streams import (
    LiveSource,
    StreamSettings,
    check_capture_size,
    is_live_source,
    live_frames,
    live_source,
)

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
GLOB_CHARACTERS = "*?["

Frame = tuple[str, np.ndarray]  # (name, (H, W, 3) BGR uint8)
Source = str | int | Path | np.ndarray | Image.Image | torch.Tensor | list | tuple


def iter_frames(source: Source, max_pixels: int = MAX_IMAGE_PIXELS, max_bytes: int | None = None,
                stream: StreamSettings | None = None) -> Iterator[Frame]:
    """Frames of ``source`` in order, as (name, (H, W, 3) BGR uint8).

    Names are the file path for images, ``<path>:frame<i>`` (0-based) for video frames, ``<url>:frame<i>`` or
    ``webcam<n>:frame<i>`` for live sources, ``image<i>`` for in-memory images (``i`` counts the in-memory items of
    the source). Raises :class:`SourceError` for bad input; path errors are raised by this call, decode errors when
    the frame is reached. Image files and video frames over ``max_pixels`` pixels or ``max_bytes`` decoded bytes
    (None: ``image_io.MAX_DECODED_BYTES``) are refused before they are decoded; in-memory images and stream frames
    over the limits are refused too. ``stream`` sets the timeouts and reconnection of live sources.

    Example:
        >>> [name for name, _ in iter_frames(np.zeros((4, 4, 3), np.uint8))]
        ['image0']
    """
    items = list(_expand(source))
    if len(items) > 1 and any(isinstance(item, LiveSource) for item in items):
        raise SourceError("a stream or webcam must be the only source (it has no end); predict each one on its own")
    return _generate(items, max_pixels, max_bytes, stream or StreamSettings())


def iter_batches(source: Source, batch_size: int, max_pixels: int = MAX_IMAGE_PIXELS,
                 max_bytes: int | None = None, stream: StreamSettings | None = None) -> Iterator[list[Frame]]:
    """Lists of up to ``batch_size`` frames from :func:`iter_frames`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    frames = iter_frames(source, max_pixels, max_bytes, stream)
    return _chunks(frames, batch_size)


def _chunks(frames: Iterator[Frame], batch_size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _expand(source: Any) -> Iterator[Path | LiveSource | np.ndarray | Image.Image | torch.Tensor]:
    """Flatten lists and resolve paths (folders, globs) into files; live sources and in-memory images pass through."""
    if is_live_source(source):
        yield live_source(source)
    elif isinstance(source, (list, tuple)):
        if not source:
            raise SourceError("the source list is empty")
        for item in source:
            yield from _expand(item)
    elif isinstance(source, (str, Path)):
        yield from _expand_path(source)
    elif isinstance(source, (np.ndarray, Image.Image, torch.Tensor)):
        yield source
    else:
        raise SourceError(
            f"unsupported source type {type(source).__name__}; expected a path, folder, glob pattern, video, stream "
            "URL, webcam index, numpy array, PIL image, torch tensor or a list of these"
        )


def _expand_path(source: str | Path) -> Iterator[Path]:
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _is_supported(p))
        if not files:
            raise SourceError(f"no images or videos found in folder {path} (supported: {_supported_text()})")
        yield from files
    elif path.is_file():
        if not _is_supported(path):
            raise SourceError(f"unsupported file type '{path.suffix}' for {path} (supported: {_supported_text()})")
        yield path
    elif any(c in str(source) for c in GLOB_CHARACTERS):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in matches if p.is_file() and _is_supported(p)]
        if not files:
            raise SourceError(
                f"no images or videos match the pattern {source} ({len(matches)} paths matched, none of them a "
                f"supported file: {_supported_text()})"
            )
        yield from files
    else:
        raise SourceError(f"no such file: {source}")


def _is_supported(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES


def _supported_text() -> str:
    return " ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)


def _generate(items: list, max_pixels: int, max_bytes: int | None, stream: StreamSettings) -> Iterator[Frame]:
    memory_index = 0
    for item in items:
        if isinstance(item, LiveSource):
            yield from live_frames(item, stream, max_pixels, max_bytes)
        elif isinstance(item, Path):
            if item.suffix.lower() in VIDEO_SUFFIXES:
                yield from _video_frames(item, max_pixels, max_bytes)
            else:
                yield str(item), read_image(item, max_pixels, max_bytes)
        elif isinstance(item, torch.Tensor):
            for image in _tensor_images(item):
                yield f"image{memory_index}", _check_size(image, f"image{memory_index}", max_pixels)
                memory_index += 1
        else:
            name = f"image{memory_index}"
            image = _pil_to_bgr(item, name) if isinstance(item, Image.Image) else to_bgr_uint8(item, name)
            yield name, _check_size(image, name, max_pixels)
            memory_index += 1


def _check_size(image: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    height, width = image.shape[:2]
    if height * width > max_pixels:
        raise SourceError(f"{name} is {width}x{height} pixels, above the limit of {max_pixels} pixels")
    return image


def _video_frames(path: Path, max_pixels: int, max_bytes: int | None) -> Iterator[Frame]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise SourceError(f"cannot open video {path}: the file is not a readable video (corrupt or unsupported)")
        check_capture_size(capture, f"video {path}", max_pixels, max_bytes)
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield f"{path}:frame{index}", to_bgr_uint8(frame, f"{path}:frame{index}")
            index += 1
        if index == 0:
            raise SourceError(f"cannot read any frame from video {path} (corrupt, empty or unsupported codec)")
        logger.debug("read %d frames from %s", index, path)
    finally:
        capture.release()


def _tensor_images(tensor: torch.Tensor) -> list[np.ndarray]:
    """(B, 3, H, W) or (3, H, W) float RGB in [0, 1] -> B (H, W, 3) BGR uint8 images."""
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4 or tensor.shape[1] != 3:
        raise SourceError(f"a tensor source must be (B, 3, H, W) RGB, got shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise SourceError(f"a tensor source must be float in [0, 1], got {tensor.dtype}; use tensor.float() / 255")
    low, high = float(tensor.min()), float(tensor.max())
    if low < 0.0 or high > 1.0:
        raise SourceError(f"a tensor source must be in [0, 1], got values in [{low:g}, {high:g}]; divide by 255?")
    pixels = (tensor.detach().float() * 255).round_().to(torch.uint8).flip(1).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(image) for image in pixels]


def _pil_to_bgr(image: Image.Image, name: str) -> np.ndarray:
    """PIL image (RGB, L, RGBA, P, CMYK, 16-bit I;16 / I) -> (H, W, 3) BGR uint8."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I"):
        array = np.asarray(image)
        if array.min() < 0 or array.max() > 65535:
            raise SourceError(f"{name}: PIL mode {image.mode} values outside 0..65535 cannot be read as 16-bit")
        return to_bgr_uint8(array.astype(np.uint16), name)
    if image.mode == "F":
        raise SourceError(f"{name}: unsupported PIL mode 'F' (32-bit float); convert it to 'RGB' or 'L' first")
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[..., ::-1])
