"""The decoded-size budget checked from the header before any pixel is decoded, and the bytes entry point."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from yolov12.infer import image_io
from yolov12.infer.image_io import (
    MAX_DECODED_BYTES,
    MAX_IMAGE_PIXELS,
    SourceError,
    decode_image_bytes,
    read_header,
    read_image,
    to_bgr_uint8,
)


def _write(path: Path, image: np.ndarray) -> Path:
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok
    encoded.tofile(str(path))
    return path


def _png_header_only(width: int, height: int, bit_depth: int, color_type: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose pixel data is a few zero bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def test_16_bit_png_within_the_pixel_limit_is_refused_by_the_byte_budget(tmp_path) -> None:
    deep = np.full((100, 200, 3), 40000, np.uint16)  # 20000 pixels, 120000 bytes decoded
    path = _write(tmp_path / "deep.png", deep)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really a 16-bit file
    shallow = _write(tmp_path / "shallow.png", (deep >> 8).astype(np.uint8))  # same pixels, 60000 bytes
    assert read_image(shallow, max_pixels=20000, max_bytes=100_000).shape == (100, 200, 3)
    with pytest.raises(SourceError) as info:
        read_image(path, max_pixels=20000, max_bytes=100_000)
    message = str(info.value)
    assert str(path) in message and "200x100" in message and "3 channels of 16 bits" in message
    assert "120000 bytes" in message and "limit of 100000 bytes" in message and "max_bytes" in message
    assert "\n" not in message


def test_gray_16_bit_counts_the_three_channels_it_decodes_to(tmp_path) -> None:
    path = _write(tmp_path / "gray.png", np.full((10, 10), 1000, np.uint16))
    header = read_header(path.open("rb"), str(path))
    assert (header.format, header.width, header.height, header.channels, header.bits) == ("PNG", 10, 10, 1, 16)
    assert header.decoded_bytes == 10 * 10 * 3 * 2
    with pytest.raises(SourceError, match="1 channel of 16 bits"):
        read_image(path, max_bytes=599)
    assert read_image(path, max_bytes=600).shape == (10, 10, 3)


def test_header_claiming_a_huge_16_bit_image_is_refused_before_decoding(tmp_path, monkeypatch) -> None:
    width, height = 20000, 15000  # 300 Mpx: under the pixel limit, 1.8 GB decoded as 16-bit RGB
    assert width * height <= MAX_IMAGE_PIXELS and width * height * 6 > MAX_DECODED_BYTES
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(width, height, bit_depth=16, color_type=2))

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded although the header is over the budget")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    with pytest.raises(SourceError) as info:
        read_image(path)
    assert "20000x15000" in str(info.value) and f"limit of {MAX_DECODED_BYTES} bytes" in str(info.value)


def test_the_module_limit_is_read_at_call_time(tmp_path, monkeypatch) -> None:
    path = _write(tmp_path / "a.png", np.zeros((10, 10, 3), np.uint16))
    monkeypatch.setattr(image_io, "MAX_DECODED_BYTES", 599)
    with pytest.raises(SourceError, match="yolov12.infer.image_io.MAX_DECODED_BYTES"):
        read_image(path)


@pytest.mark.parametrize(("suffix", "image", "expected"), [
    (".png", np.zeros((4, 6), np.uint8), ("PNG", 1, 8)),
    (".png", np.zeros((4, 6, 4), np.uint16), ("PNG", 4, 16)),
    (".tif", np.zeros((4, 6, 3), np.uint16), ("TIFF", 3, 16)),
    (".jpg", np.zeros((4, 6, 3), np.uint8), ("JPEG", 3, 8)),
    (".bmp", np.zeros((4, 6, 3), np.uint8), ("BMP", 3, 8)),
    (".webp", np.zeros((4, 6, 3), np.uint8), ("WEBP", 3, 8)),
])
def test_header_tells_channels_and_depth(tmp_path, suffix, image, expected) -> None:
    path = _write(tmp_path / f"a{suffix}", image)
    header = read_header(path.open("rb"), str(path))
    assert (header.format, header.channels, header.bits) == expected and (header.width, header.height) == (6, 4)


def test_decode_image_bytes_equals_read_image(tmp_path) -> None:
    image = np.random.default_rng(0).integers(0, 65535, (5, 7, 3), dtype=np.uint16)
    path = _write(tmp_path / "a.png", image)
    assert np.array_equal(decode_image_bytes(path.read_bytes(), "a.png"), read_image(path))


def test_a_format_the_header_check_cannot_read_is_never_decoded(tmp_path, monkeypatch) -> None:
    path = tmp_path / "radiance.png"  # the suffix says PNG, the bytes are Radiance HDR (cv2 decodes it to float32)
    assert cv2.imwrite(str(tmp_path / "real.hdr"), np.zeros((4, 4, 3), np.float32))
    path.write_bytes((tmp_path / "real.hdr").read_bytes())
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("decoded a file without a checked header"))
    with pytest.raises(SourceError, match="not a valid image"):
        read_image(path)


def test_16_bit_to_8_bit_matches_the_rounded_scale_for_every_level() -> None:
    levels = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    expected = np.rint(levels.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    assert np.array_equal(to_bgr_uint8(levels, "levels")[..., 0], expected)


def test_16_bit_conversion_allocates_no_float_copy() -> None:
    image = np.full((500, 500, 3), 30000, np.uint16)  # 1.5 MB
    tracemalloc.start()
    try:
        to_bgr_uint8(image, "deep")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < image.nbytes  # the 8-bit result is half the input; a float32 copy alone would be twice it


def test_png_chunk_longer_than_the_file_is_refused_before_decoding(tmp_path, monkeypatch) -> None:
    """OpenCV allocates a chunk's declared length before reading it: 107 bytes cost 1.5 GB before this check."""
    data = bytearray(_png_header_only(100, 100, bit_depth=8, color_type=2))
    idat = data.index(b"IDAT") - 4
    data[idat:idat + 4] = (1_200_000_000).to_bytes(4, "big")
    path = tmp_path / "chunk.png"
    path.write_bytes(bytes(data))
    monkeypatch.setattr(cv2, "imdecode", lambda *a, **k: pytest.fail("decoded a PNG whose chunk overruns the file"))
    with pytest.raises(SourceError, match="chunk 'IDAT' at byte 33 declares 1200000000 bytes"):
        read_image(path)


def test_animated_png_counts_the_frames_opencv_composes_in(tmp_path) -> None:
    frames = [Image.new("RGB", (10, 10), (value, 0, 0)) for value in (0, 255)]
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    header = read_header(path.open("rb"), str(path))
    assert header.buffers == 4 and header.decoded_bytes == 10 * 10 * 3 * 4
    assert read_image(path, max_bytes=1200).shape == (10, 10, 3)
    with pytest.raises(SourceError, match="decodes to 1200 bytes"):
        read_image(path, max_bytes=1199)


def test_a_file_larger_than_the_byte_limit_is_not_read(tmp_path, monkeypatch) -> None:
    path = _write(tmp_path / "noisy.png", np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8))
    size = path.stat().st_size
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file over the limit"))
    with pytest.raises(SourceError, match=rf"is a {size}-byte file, above the limit of {size - 1} bytes"):
        read_image(path, max_bytes=size - 1)
