"""Image files for datasets: which suffixes count as images, a cheap integrity check, and decoding to BGR uint8."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from yolov12.data.errors import DatasetError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm"}
)
MIN_IMAGE_SIDE = 10  # Ultralytics' rule: images of 9 px or less on a side are rejected as unusable
_JPEG_END = b"\xff\xd9"


@dataclass(frozen=True)
class ImageCheck:
    """Result of :func:`verify_image`: ``height``/``width`` when usable, else ``reason`` says why not."""

    height: int = 0
    width: int = 0
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the image can be used."""
        return not self.reason


def is_image_file(path: str | Path) -> bool:
    """True when the suffix is one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def verify_image(path: str | Path) -> ImageCheck:
    """Check that an image file is complete and decodable without always decoding its pixels.

    Pillow parses the header and runs ``verify()`` (catches bad headers and PNG CRC errors). A JPEG without the end
    marker is fully decoded once: a truncated file fails there; one with harmless trailing bytes passes.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.verify()
            width, height = image.size
            fmt = image.format
    except FileNotFoundError:
        return ImageCheck(reason="file not found")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return ImageCheck(reason=f"not a readable image ({type(exc).__name__}: {exc})")
    if min(width, height) < MIN_IMAGE_SIDE:
        return ImageCheck(reason=f"image is {width}x{height}, smaller than {MIN_IMAGE_SIDE} px on a side")
    if fmt in ("JPEG", "MPO") and not _ends_with(path, _JPEG_END):
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            return ImageCheck(reason=f"truncated JPEG ({exc})")
    return ImageCheck(height=height, width=width)


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) read from the file header; raises :class:`DatasetError` when the file is not an image."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot read the size of image {path}: {exc}") from None
    return height, width


def read_image_bgr(path: str | Path) -> np.ndarray:
    """Decode an image file -> (H, W, 3) uint8 BGR.

    Grayscale is expanded, alpha dropped, 16-bit scaled to 8 bits. ``np.fromfile`` + ``cv2.imdecode`` so non-ASCII
    paths work. EXIF orientation is not applied (labels are made against the stored pixel order).

    Raises:
        DatasetError: the file is missing or cannot be decoded (it changed since the label cache was built?).
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}; delete the split's .cache.json to re-verify") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise DatasetError(
            f"cannot decode image {path}; it changed since the label cache was built? delete the split's .cache.json"
        )
    return to_bgr_uint8(image)


def to_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """Convert (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) images of uint8/uint16/float to (H, W, 3) uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        scale = 255.0 if float(np.nanmax(image, initial=0.0)) <= 1.0 else 1.0
        image = np.clip(np.nan_to_num(image.astype(np.float32)) * scale, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels == 3:
        return np.ascontiguousarray(image)
    raise DatasetError(f"unsupported image with {channels} channels; expected 1, 3 or 4")


def _ends_with(path: Path, marker: bytes) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        if handle.tell() < len(marker):
            return False
        handle.seek(-len(marker), 2)
        return handle.read() == marker
