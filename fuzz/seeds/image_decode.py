"""Seed inputs of the ``image_decode`` fuzz target: one small file per format and depth the decoder reads, plus
headers that claim sizes far over the limits.

    python -m fuzz.seeds.image_decode            # rewrites fuzz/corpus/image_decode/
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fuzz.seeds import command_line, write_corpus


def _gradient(channels: int, dtype: type, height: int = 6, width: int = 8) -> np.ndarray:
    """A small image whose values cover the type's range (so 16-bit files really hold 16-bit samples)."""
    top = np.iinfo(dtype).max
    ramp = np.linspace(0, top, height * width * max(channels, 1)).astype(dtype)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return ramp.reshape(shape)


def _encode(suffix: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, encoded = cv2.imencode(suffix, image, list(params))
    if not ok:
        raise RuntimeError(f"OpenCV cannot encode a {image.dtype} {image.shape} image as {suffix}")
    return encoded.tobytes()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int, bit_depth: int, colour_type: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` over a few compressed zero bytes of pixel data."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 frame header is patched to claim ``width`` x ``height``."""
    data = bytearray(_encode(".jpg", _gradient(3, np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _webp_claiming(width: int, height: int) -> bytes:
    """An animated (VP8X) WebP whose canvas is patched to claim ``width`` x ``height``."""
    frames = [Image.fromarray(np.full((8, 8, 3), value, np.uint8)) for value in (0, 200)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    data = bytearray(buffer.getvalue())
    data[24:27], data[27:30] = (width - 1).to_bytes(3, "little"), (height - 1).to_bytes(3, "little")
    return bytes(data)


def _tiff_claiming(width: int, height: int) -> bytes:
    """A 16-bit TIFF whose ImageWidth and ImageLength tags are patched to claim ``width`` x ``height``."""
    buffer = io.BytesIO()
    Image.fromarray(_gradient(1, np.uint16)).save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    offset = struct.unpack("<I", data[4:8])[0]
    for index in range(struct.unpack("<H", data[offset:offset + 2])[0]):
        entry = offset + 2 + 12 * index
        tag, kind = struct.unpack("<HH", data[entry:entry + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[entry + 8:entry + 12] = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
    return bytes(data)


def _bmp_claiming(width: int, height: int) -> bytes:
    data = bytearray(_encode(".bmp", _gradient(3, np.uint8)))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def seeds() -> dict[str, bytes]:
    """File name -> bytes of every seed."""
    files = {
        "png-gray8": _encode(".png", _gradient(1, np.uint8)),
        "png-gray16": _encode(".png", _gradient(1, np.uint16)),
        "png-rgb8": _encode(".png", _gradient(3, np.uint8)),
        "png-rgb16": _encode(".png", _gradient(3, np.uint16)),
        "png-rgba8": _encode(".png", _gradient(4, np.uint8)),
        "png-rgba16": _encode(".png", _gradient(4, np.uint16)),
        "png-palette": _png_bytes(Image.fromarray(_gradient(3, np.uint8)).convert("P")),
        "jpeg-rgb": _encode(".jpg", _gradient(3, np.uint8), (cv2.IMWRITE_JPEG_QUALITY, 80)),
        "jpeg-gray": _encode(".jpg", _gradient(1, np.uint8)),
        "jpeg-progressive": _encode(".jpg", _gradient(3, np.uint8), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
        "bmp-rgb": _encode(".bmp", _gradient(3, np.uint8)),
        "bmp-gray": _encode(".bmp", _gradient(1, np.uint8)),
        "webp-lossy": _encode(".webp", _gradient(3, np.uint8), (cv2.IMWRITE_WEBP_QUALITY, 50)),
        "webp-lossless-rgba": _encode(".webp", _gradient(4, np.uint8), (cv2.IMWRITE_WEBP_QUALITY, 101)),
        "tiff-rgb8": _encode(".tif", _gradient(3, np.uint8)),
        "tiff-rgb16": _encode(".tif", _gradient(3, np.uint16)),
        "tiff-gray16": _encode(".tif", _gradient(1, np.uint16)),
        "pgm-gray16": _encode(".pgm", _gradient(1, np.uint16)),
        "ppm-rgb8": _encode(".ppm", _gradient(3, np.uint8)),
        "huge-png-rgb16-20000x15000": _png_header_only(20000, 15000, 16, 2),
        "huge-png-gray8-65535x65535": _png_header_only(65535, 65535, 8, 0),
        "huge-jpeg-65500x65500": _jpeg_claiming(65500, 65500),
        "huge-webp-canvas-16384x16384": _webp_claiming(16384, 16384),
        "huge-tiff-gray16-60000x60000": _tiff_claiming(60000, 60000),
        "huge-bmp-30000x30000": _bmp_claiming(30000, 30000),
        "over-bytes-png-rgba16-1900x1900": _png_header_only(1900, 1900, 16, 6),  # within the pixels, not the bytes
        "short-data-png-rgb8-1000x1000": _png_header_only(1000, 1000, 8, 2),  # within both, pixel data cut short
    }
    return files


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def write_seeds(folder: Path) -> None:
    """Write every seed into ``folder`` (created); crash inputs already there (``crash-*``) are kept."""
    write_corpus(folder, seeds())


if __name__ == "__main__":
    command_line("image_decode", write_seeds)
