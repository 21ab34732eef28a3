"""Decoding dataset images from bytes: the same pixels and the same checks as decoding the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from yolov12.data.errors import DatasetError
from yolov12.data.images import decode_image_bgr, read_image_bgr


def test_decoded_bytes_equal_the_decoded_file_and_keep_the_limits(tmp_path: Path) -> None:
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.random.default_rng(0).integers(0, 255, (20, 30), dtype=np.uint8))
    image = decode_image_bgr(gray.read_bytes(), "s3://b/gray.png")
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    assert np.array_equal(image, read_image_bgr(gray)), "bytes and file decode to the same pixels"
    with pytest.raises(DatasetError, match=r"image s3://b/gray.png .* above the limit of 100 bytes"):
        decode_image_bgr(gray.read_bytes(), "s3://b/gray.png", max_bytes=100)
    with pytest.raises(DatasetError, match="s3://b/x.jpg"):
        decode_image_bgr(b"\xff\xd8\xff\xe0 truncated", "s3://b/x.jpg")
