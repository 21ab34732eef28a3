"""Drawing on BGR images with OpenCV: class colours, boxes with labels, and text lines."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import cv2
import numpy as np

logger = logging.getLogger(__name__)

# 20 well-separated colours (RGB hex), cycled by class id.
PALETTE_HEX = (
    "FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86", "1A9334", "00D4BB",
    "2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085", "CB38FF", "FF95C8", "FF37C7",
)


def class_colour(class_id: int) -> tuple[int, int, int]:
    """BGR colour of a class id."""
    hex_value = PALETTE_HEX[int(class_id) % len(PALETTE_HEX)]
    red, green, blue = (int(hex_value[i:i + 2], 16) for i in (0, 2, 4))
    return blue, green, red


def default_line_width(shape: Sequence[int]) -> int:
    """Line width in pixels scaled to the image: about 0.3% of the mean side, at least 2."""
    return max(round(sum(shape[:2]) / 2 * 0.003), 2)


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    blue, green, red = background
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 160 else (255, 255, 255)


def draw_box(
    image: np.ndarray, box_xyxy: Sequence[float], colour: tuple[int, int, int], label: str, line_width: int
) -> None:
    """Draw one box and, if ``label``, a filled label tag above it (below its top edge near the image top)."""
    p1 = (int(round(box_xyxy[0])), int(round(box_xyxy[1])))
    p2 = (int(round(box_xyxy[2])), int(round(box_xyxy[3])))
    cv2.rectangle(image, p1, p2, colour, line_width, cv2.LINE_AA)
    if not label:
        return
    font_scale, thickness = line_width / 3, max(line_width - 1, 1)
    (text_w, text_h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    outside = p1[1] >= text_h + 3
    tag_end = (p1[0] + text_w, p1[1] - text_h - 3 if outside else p1[1] + text_h + 3)
    cv2.rectangle(image, p1, tag_end, colour, -1, cv2.LINE_AA)
    origin = (p1[0], p1[1] - 2 if outside else p1[1] + text_h + 2)
    cv2.putText(image, label, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, _text_colour(colour), thickness,
                cv2.LINE_AA)


def draw_text_lines(image: np.ndarray, lines: Sequence[str], line_width: int) -> None:
    """Write lines of text at the top left on a dark backing, for classification results."""
    font_scale, thickness = line_width / 3, max(line_width - 1, 1)
    y = 0
    for line in lines:
        (text_w, text_h), baseline = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        step = text_h + baseline + 4
        cv2.rectangle(image, (0, y), (text_w + 8, y + step), (40, 40, 40), -1)
        cv2.putText(image, line, (4, y + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)
        y += step


def has_display() -> bool:
    """Whether a window can plausibly be opened (on Linux: ``DISPLAY`` or ``WAYLAND_DISPLAY`` is set)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show_image(image: np.ndarray, title: str, wait_ms: int = 0) -> bool:
    """Show a BGR image with ``cv2.imshow``; logs a warning and returns False when no window can be opened."""
    if not has_display():
        logger.warning("cannot show %s: no display available (DISPLAY is not set); use save() instead", title)
        return False
    try:
        cv2.imshow(title, image)
        cv2.waitKey(wait_ms)
    except cv2.error as exc:  # opencv-python-headless has no GUI backend
        logger.warning("cannot show %s: OpenCV has no GUI support here (%s); use save() instead", title,
                       str(exc).strip().splitlines()[-1])
        return False
    return True


def write_image(image: np.ndarray, filename: str) -> None:
    """Encode by extension and write with ``ndarray.tofile`` (works with non-ASCII paths)."""
    suffix = os.path.splitext(filename)[1] or ".jpg"
    try:
        ok, encoded = cv2.imencode(suffix, image)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"cannot encode an image as '{suffix}' for {filename}; use .jpg or .png")
    encoded.tofile(filename)
