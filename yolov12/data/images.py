"""Image files for datasets: which suffixes count as images, a cheap integrity check, and decoding to BGR uint8.

Dataset images are untrusted files: both the integrity check and the decoder first run the header check of
:func:`yolov12.infer.image_io.check_before_decode` (format, pixels and decoded bytes within the limits), so an image
that would decode to more than ``yolov12.infer.image_io.MAX_DECODED_BYTES`` is skipped at verification and never
decoded.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from yolov12.data.errors import DatasetError
from yolov12.infer.image_io import SourceError, check_before_decode, check_decoded

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


def verify_image(path: str | Path, max_bytes: int | None = None) -> ImageCheck:
    """Check that an image file is complete and decodable without always decoding its pixels.

    The header check of :func:`~yolov12.infer.image_io.check_before_decode` comes first (a format the decoder's
    check reads, within the pixel and decoded-byte limits; ``max_bytes`` None: ``image_io.MAX_DECODED_BYTES``).
    Pillow then parses the header and runs ``verify()`` (catches bad headers and PNG CRC errors). A JPEG without the
    end marker is fully decoded once: a truncated file fails there; one with harmless trailing bytes passes.
    """
    path = Path(path)
    try:
        with path.open("rb") as stream:
            check_before_decode(stream, str(path), max_bytes=max_bytes)
    except FileNotFoundError:
        return ImageCheck(reason="file not found")
    except OSError as exc:
        return ImageCheck(reason=f"cannot read the file ({exc})")
    except SourceError as exc:
        return ImageCheck(reason=str(exc))
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


def read_image_bgr(path: str | Path, max_bytes: int | None = None) -> np.ndarray:
    """Decode an image file -> (H, W, 3) uint8 BGR.

    Grayscale is expanded, alpha dropped, 16-bit scaled to 8 bits. The header is checked first
    (:func:`~yolov12.infer.image_io.check_before_decode`; ``max_bytes`` None: ``image_io.MAX_DECODED_BYTES``), then
    ``cv2.imdecode`` decodes the bytes (read by Python, so non-ASCII paths work). EXIF orientation is not applied
    (labels are made against the stored pixel order).

    Raises:
        DatasetError: the file is missing, over a limit or cannot be decoded (changed since the label cache was
            built?).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}; delete the split's .cache.json to re-verify") from None
    try:
        image = _checked_decode(data, str(path), max_bytes)
    except SourceError as exc:
        raise DatasetError(f"{exc} (the label cache lists it: delete the split's .cache.json to re-verify)") from None
    if image is None:
        raise DatasetError(
            f"cannot decode image {path}; it changed since the label cache was built? delete the split's .cache.json"
        )
    return to_bgr_uint8(image)


def decode_image_bgr(data: bytes, name: str, max_bytes: int | None = None) -> np.ndarray:
    """Decode the bytes of an image file (fetched from object storage, say) -> (H, W, 3) uint8 BGR.

    The same checks and conversion as :func:`read_image_bgr`: header limits first, no EXIF orientation (labels are
    made against the stored pixel order); ``name`` (a path or ``s3://`` URI) is used in errors.

    Raises:
        DatasetError: the bytes are over a limit or are not a decodable image.

    Example:
        >>> decode_image_bgr(Path("a.jpg").read_bytes(), "a.jpg").shape  # doctest: +SKIP
        (320, 320, 3)
    """
    try:
        image = _checked_decode(data, name, max_bytes)
    except SourceError as exc:
        raise DatasetError(str(exc)) from None
    if image is None:
        raise DatasetError(f"cannot decode image {name}: its {len(data)} bytes are not a valid image (corrupt or "
                           "unsupported format); replace or remove it")
    return to_bgr_uint8(image)


def _checked_decode(data: bytes, name: str, max_bytes: int | None) -> np.ndarray | None:
    """Header check, decode, decoded-size check; None when OpenCV cannot decode; :class:`SourceError` over a limit."""
    check_before_decode(io.BytesIO(data), name, max_bytes=max_bytes)
    image = _imdecode(data)
    if image is not None:
        check_decoded(image, name, max_bytes=max_bytes)
    return image


def _imdecode(data: bytes) -> np.ndarray | None:
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


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
