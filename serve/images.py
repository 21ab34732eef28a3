"""Request bytes -> (H, W, 3) BGR uint8 pixels, refusing what is not a supported image before decoding it.

The checks and the decoding are the core's (:mod:`yolov12.infer.image_io`), so HTTP uploads and files given to
``predict`` are read by one code path and give the same pixels. This module adds what HTTP needs on top: the formats
an upload may have (JPEG, PNG, WebP, BMP, recognised from their magic bytes), a status code for each refusal (400
corrupt, 413 too large, 415 unsupported) and the per-request budget.

:func:`check_image` reads only the header (Pillow, lazy; for PNG also IHDR and every chunk's length, because OpenCV
allocates a chunk's declared length before reading it): the ingress calls it to refuse bad uploads before anything is
sent on, and sums :attr:`ImageHeader.decoded_bytes` over a request's images against the request's budget
(:func:`check_request_budget`). :func:`decode_image` runs in the Detector's worker thread.

Why bytes and not only pixels: a 16-bit PNG decodes to twice the memory of an 8-bit one with the same pixel count,
and deflate packs a flat 16-bit image of 40 million pixels into ~300 KB (decoding one took 5 s of CPU and 1.1 GB).
So an image may decode to at most as many bytes as the largest 8-bit image within ``max_image_pixels`` (RGBA, 4
bytes a pixel): 8-bit images are limited by their pixel count as before, deeper ones by what their pixels take.
"""

from __future__ import annotations

import io

import numpy as np

from yolov12.infer.image_io import ImageHeader, SourceError, check_header_limits, decode_image_bytes, read_header

__all__ = ["FORMATS", "MAX_BYTES_PER_PIXEL", "ImageError", "ImageHeader", "check_image", "check_request_budget",
           "decode_image", "sniff_format"]

FORMATS = {"JPEG": (b"\xff\xd8\xff",), "PNG": (b"\x89PNG\r\n\x1a\n",), "BMP": (b"BM",), "WEBP": (b"RIFF",)}
MAX_BYTES_PER_PIXEL = 4  # of an 8-bit image (RGBA): the per-image byte limit is max_pixels times this
_RAISE_HINT = "raise max_image_pixels (the byte limit is 4 bytes a pixel of it)"


class ImageError(ValueError):
    """The bytes are not a usable image; ``status`` is 413 for too large, 415 for an unsupported format, else 400."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type, tuple[str, int]]:  # keeps ``status`` when sent back from the Detector
        return type(self), (str(self), self.status)


def sniff_format(data: bytes) -> str | None:
    """JPEG / PNG / BMP / WEBP from the first bytes, else None."""
    for name, prefixes in FORMATS.items():
        if any(data.startswith(prefix) for prefix in prefixes):
            if name == "WEBP" and data[8:12] != b"WEBP":
                continue
            return name
    return None


def check_image(data: bytes, max_pixels: int, name: str = "upload") -> ImageHeader:
    """Format, size and depth from the header alone (no pixels decoded); :class:`ImageError` says what is wrong.

    Refused (413): more than ``max_pixels`` pixels, or pixels that decode to more than ``max_pixels`` x
    :data:`MAX_BYTES_PER_PIXEL` bytes (a 16-bit image with many pixels).
    """
    if not data:
        raise ImageError("the request has no image: send the image bytes as the body or a multipart 'file' field")
    if sniff_format(data) is None:
        raise ImageError("the body is not a JPEG, PNG, WebP or BMP image", status=415)
    try:
        header = read_header(io.BytesIO(data), name)
    except SourceError as exc:
        raise ImageError(str(exc)) from None
    try:
        check_header_limits(header, name, max_pixels, max_pixels * MAX_BYTES_PER_PIXEL, _RAISE_HINT)
    except SourceError as exc:
        raise ImageError(str(exc), status=413) from None
    return header


def check_request_budget(decoded_sizes: list[int], limit: int) -> int:
    """The bytes a request's images decode to together (:attr:`ImageHeader.decoded_bytes` of each, or the size of
    pixels sent decoded); a 413 :class:`ImageError` naming the total, the limit and the setting above ``limit``."""
    total = sum(decoded_sizes)
    if total > limit:
        raise ImageError(f"the request's {len(decoded_sizes)} image(s) decode to {total} bytes, above the limit of "
                         f"{limit} bytes a request (max_request_decoded_bytes); send fewer or smaller images per "
                         "request, or raise max_request_decoded_bytes", status=413)
    return total


def decode_image(data: bytes, max_pixels: int, name: str = "upload") -> np.ndarray:
    """Decode an uploaded image (checked first as :func:`check_image` does); :class:`ImageError` says what is
    wrong with it."""
    check_image(data, max_pixels, name)
    try:
        return decode_image_bytes(data, name, max_pixels, max_pixels * MAX_BYTES_PER_PIXEL)
    except SourceError as exc:
        raise ImageError(str(exc)) from None
