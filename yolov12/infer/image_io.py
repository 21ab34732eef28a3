"""Read image files and normalise in-memory images to (H, W, 3) BGR uint8, with errors that say what is wrong."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 20000 * 20000  # refuse larger images: decoding one would take > 1.2 GB
_HEADER_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WEBP")


class SourceError(ValueError):
    """A prediction source cannot be read: missing, empty, corrupt, too large or of an unsupported type."""


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image file -> (H, W, 3) BGR uint8.

    Uses ``cv2.imdecode`` on ``np.fromfile`` so non-ASCII paths work; EXIF orientation is applied, alpha is
    dropped, grayscale is expanded and 16-bit images are scaled to 8 bits. The size is checked from the file header
    before decoding, so an oversized image is refused without allocating it.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise SourceError(f"no such file: {path}") from None
    except OSError as exc:
        raise SourceError(f"cannot read file {path}: {exc}") from None
    size = header_size(path)
    if size is not None:
        check_pixel_limit(size, str(path), max_pixels)
    image = None
    if data.size:
        try:
            image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
        except cv2.error:
            image = None
    if image is None:
        raise SourceError(f"cannot decode image {path}: the file is not a valid image (corrupt or unsupported format)")
    check_pixel_limit((image.shape[1], image.shape[0]), str(path), max_pixels)
    return to_bgr_uint8(image, str(path))


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) read from the file header without decoding pixels; None when the format is not recognised.

    ``PIL.Image.open`` would raise its own decompression-bomb error (about 179 Mpx) before telling the size, so the
    registered Pillow plugins for our formats are called directly; they parse the header only.
    """
    Image.init()
    try:
        with path.open("rb") as handle:
            prefix = handle.read(16)
            for name in _HEADER_FORMATS:
                factory, accept = Image.OPEN.get(name, (None, None))
                recognised = factory is not None and (accept is None or accept(prefix))
                if not recognised or isinstance(recognised, str):  # a str is Pillow's "known but unsupported"
                    continue
                handle.seek(0)
                try:
                    return tuple(factory(handle, str(path)).size)  # type: ignore[return-value]
                except (SyntaxError, OSError, ValueError, IndexError, TypeError, EOFError):
                    return None
    except OSError:
        return None
    return None


def check_pixel_limit(size: tuple[int, int], name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Raise :class:`SourceError` when a (width, height) image has more than ``max_pixels`` pixels."""
    width, height = size
    if width * height > max_pixels:
        raise SourceError(
            f"image {name} is {width}x{height} ({width * height} pixels), above the limit of {max_pixels} pixels "
            f"({_limit_text(max_pixels)}); downscale or tile it first"
        )


def _limit_text(max_pixels: int) -> str:
    side = int(max_pixels ** 0.5)
    return f"{side}x{side}" if side * side == max_pixels else f"{max_pixels} pixels"


def to_bgr_uint8(image: np.ndarray, name: str) -> np.ndarray:
    """A numpy image -> contiguous (H, W, 3) BGR uint8.

    Accepts (H, W) or (H, W, 1) grayscale, (H, W, 3) BGR and (H, W, 4) BGRA (alpha dropped); uint8, uint16 (scaled
    by 255/65535 with rounding) or float in [0, 1].
    """
    if not isinstance(image, np.ndarray):
        raise SourceError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise SourceError(f"{name}: the image is empty (shape {image.shape})")
    image = _to_uint8(image, name)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise SourceError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return np.rint(image.astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        low, high = float(np.nanmin(image)), float(np.nanmax(image))
        if low < 0.0 or high > 1.0:
            raise SourceError(f"{name}: a float image must be in [0, 1], got values in [{low:g}, {high:g}]")
        return np.rint(np.nan_to_num(image, nan=0.0) * 255.0).astype(np.uint8)
    raise SourceError(f"{name}: unsupported pixel type {image.dtype}; use uint8, uint16 or float in [0, 1]")
