"""Request bytes -> (H, W, 3) BGR uint8 pixels, refusing what is not a supported image before decoding it.

:func:`check_image` recognises the format from its magic bytes (JPEG, PNG, WebP, BMP) and reads the size from the
header with Pillow (lazy: no pixels, ~0.05 ms) against the limit: the ingress calls it to refuse bad uploads with a
4xx before anything is sent on. :func:`decode_image` (in the Detector, in its worker thread) checks the same and
then decodes with OpenCV exactly as ``read_image`` decodes files (``IMREAD_COLOR | IMREAD_ANYDEPTH``, EXIF
orientation applied), so HTTP and in-process predictions see the same pixels.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from yolov12.infer.image_io import SourceError, check_pixel_limit, to_bgr_uint8

FORMATS = {"JPEG": (b"\xff\xd8\xff",), "PNG": (b"\x89PNG\r\n\x1a\n",), "BMP": (b"BM",), "WEBP": (b"RIFF",)}


class ImageError(ValueError):
    """The bytes are not a usable image; ``status`` is 413 for too large, 415 for an unsupported format, else 400."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type, tuple[str, int]]:  # keeps ``status`` when sent back from the Detector
        return type(self), (str(self), self.status)


@dataclass(frozen=True)
class ImageHeader:
    """What the header of an upload says: format and size in pixels (before EXIF orientation)."""

    format: str
    width: int
    height: int


def sniff_format(data: bytes) -> str | None:
    """JPEG / PNG / BMP / WEBP from the first bytes, else None."""
    for name, prefixes in FORMATS.items():
        if any(data.startswith(prefix) for prefix in prefixes):
            if name == "WEBP" and data[8:12] != b"WEBP":
                continue
            return name
    return None


def check_image(data: bytes, max_pixels: int, name: str = "upload") -> ImageHeader:
    """Format and size from the header alone (no pixels decoded); :class:`ImageError` says what is wrong."""
    if not data:
        raise ImageError("the request has no image: send the image bytes as the body or a multipart 'file' field")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError("the body is not a JPEG, PNG, WebP or BMP image", status=415)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as header:
                size = header.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageError(f"the {fmt} image is larger than {max_pixels} pixels; downscale it first", 413) from None
    except Exception:  # noqa: BLE001 - Pillow raises many types for broken headers; all mean "not an image"
        raise ImageError(f"the {fmt} image header is corrupt or truncated") from None
    try:
        check_pixel_limit(size, name, max_pixels)
    except SourceError as exc:
        raise ImageError(str(exc), status=413) from None
    return ImageHeader(fmt, *size)


def decode_image(data: bytes, max_pixels: int, name: str = "upload") -> np.ndarray:
    """Decode an uploaded image (checked first as :func:`check_image` does); :class:`ImageError` says what is
    wrong with it."""
    fmt = check_image(data, max_pixels, name).format
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    except cv2.error:
        image = None
    if image is None:
        raise ImageError(f"the {fmt} image cannot be decoded (corrupt or truncated)")
    if image.shape[1] * image.shape[0] > max_pixels:
        raise ImageError(f"the image is {image.shape[1]}x{image.shape[0]}, above {max_pixels} pixels", status=413)
    try:
        return to_bgr_uint8(image, name)
    except SourceError as exc:
        raise ImageError(str(exc)) from None
