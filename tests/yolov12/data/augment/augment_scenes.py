"""Synthetic scenes for the augmentation property tests: filled shapes of known colours with known boxes.

Every object is one of eight colours (the corners of the RGB cube) on a grey (114) background, the fill colour of
every geometric op. Bilinear blends of two corner colours, or of a corner and grey, are never close to a third
corner, so "pixels of colour k" is a reliable mask even after interpolation. Class id = palette index; within one
test each instance gets its own colour, so every kept box can be checked against exactly its object's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from hypothesis import strategies as st

from yolov12.data.types import Sample

PALETTE = np.array(
    [[0, 0, 255], [0, 255, 0], [255, 0, 0], [0, 255, 255], [255, 0, 255], [255, 255, 0], [255, 255, 255], [0, 0, 0]],
    np.uint8,
)
BACKGROUND = 114
COLOUR_TOLERANCE = 50  # max abs channel difference that still counts as the object's colour (>= ~65% coverage)


@dataclass
class ListDataset:
    """The dataset protocol the mixing transforms need: ``len`` and ``load_sample``."""

    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)

    def load_sample(self, index: int) -> Sample:
        return self.samples[index]


def draw_scene(
    height: int, width: int, shapes: list[tuple[int, tuple[int, int, int, int], bool]], path: str = "synthetic.png"
) -> Sample:
    """Draw ``(colour, (x1, y1, x2, y2), is_polygon)`` shapes on grey; polygons are diamonds inscribed in the box.

    Rectangles fill exactly the pixels of their box. Every shape gets a polygon (the rectangle's corners, or the
    diamond's), so ``segments`` is aligned with ``boxes``.
    """
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    boxes, classes, segments = [], [], []
    for colour, (x1, y1, x2, y2), is_polygon in shapes:
        if is_polygon:
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            polygon = np.array([[cx, y1], [x2, cy], [cx, y2], [x1, cy]], np.float32)
            # fillPoly addresses pixel centres: shrink by half a pixel so the drawn pixels stay inside the box.
            centre_coords = np.array([[cx - 0.5, y1], [x2 - 1, cy - 0.5], [cx - 0.5, y2 - 1], [x1, cy - 0.5]])
            cv2.fillPoly(image, [np.round(centre_coords).astype(np.int32)], PALETTE[colour].tolist())
        else:
            polygon = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
            image[y1:y2, x1:x2] = PALETTE[colour]
        boxes.append([x1, y1, x2, y2])
        classes.append(colour)
        segments.append(polygon)
    return Sample(
        image=image,
        boxes=np.array(boxes, np.float32).reshape(-1, 4),
        classes=np.array(classes, np.int64),
        path=path,
        segments=segments,
    )


@st.composite
def scenes(draw, colours: list[int] | None = None, min_size: int = 48, max_size: int = 200, polygons: bool = True):
    """A scene with one object per cell of a 2x2 grid (up to 4 objects, no overlaps), distinct colours."""
    height = draw(st.integers(min_size, max_size))
    width = draw(st.integers(min_size, max_size))
    colours = list(colours) if colours is not None else draw(st.permutations(range(8)))[:4]
    count = draw(st.integers(1, min(4, len(colours))))
    shapes = []
    for index in range(count):
        row, col = divmod(index, 2)
        top, left = row * height // 2, col * width // 2
        cell_h, cell_w = height // 2, width // 2
        x1 = draw(st.integers(left, left + cell_w - 8))
        y1 = draw(st.integers(top, top + cell_h - 8))
        x2 = draw(st.integers(x1 + 6, left + cell_w))
        y2 = draw(st.integers(y1 + 6, top + cell_h))
        is_polygon = polygons and draw(st.booleans()) and min(x2 - x1, y2 - y1) >= 10
        shapes.append((colours[index], (x1, y1, x2, y2), is_polygon))
    return draw_scene(height, width, shapes)


def colour_mask(image: np.ndarray, colour: int) -> np.ndarray:
    """(H, W) bool: pixels within :data:`COLOUR_TOLERANCE` of palette colour ``colour`` on every channel."""
    difference = np.abs(image.astype(np.int16) - PALETTE[colour].astype(np.int16)).max(axis=2)
    return difference <= COLOUR_TOLERANCE


def assert_boxes_valid(sample: Sample) -> None:
    """Shapes and dtypes are right, segments are aligned, and no box lies outside the image."""
    height, width = sample.image.shape[:2]
    assert sample.image.dtype == np.uint8 and sample.image.ndim == 3 and sample.image.shape[2] == 3
    assert sample.boxes.dtype == np.float32 and sample.boxes.shape == (len(sample.classes), 4)
    assert sample.classes.dtype == np.int64
    if sample.segments is not None:
        assert len(sample.segments) == len(sample.boxes)
    boxes = sample.boxes
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 1] >= 0), boxes
    assert np.all(boxes[:, 2] <= width) and np.all(boxes[:, 3] <= height), (boxes, width, height)
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(boxes[:, 3] >= boxes[:, 1]), boxes


def assert_boxes_enclose_pixels(
    sample: Sample,
    tolerance: float = 1.5,
    tight: bool = False,
    pixels_from: np.ndarray | None = None,
    dropped_from: Sample | None = None,
) -> None:
    """Every pixel of colour k lies inside a kept box of class k (grown by ``tolerance`` pixels).

    With ``tight`` (axis-aligned transforms), each box must also be no larger than its pixels plus ``tolerance + 1``.
    Skipped there: boxes smaller than 6 px on a side (interpolation may leave no pure pixel) and diamonds (their
    one-pixel tips blend away when resized). ``pixels_from``: find the object pixels in this image instead (for
    MixUp, whose output blends colours but moves nothing). ``dropped_from``: the input of the transform, when a
    colour may occur twice (copy-paste): for a colour that lost an instance to the candidate filter, whose sliver may
    stay visible, only check that each kept box holds pixels of its colour.
    """
    assert_boxes_valid(sample)
    image = sample.image if pixels_from is None else pixels_from
    for colour in np.unique(sample.classes):
        boxes = sample.boxes[sample.classes == colour]
        rows, cols = np.nonzero(colour_mask(image, int(colour)))
        inside = np.zeros(len(rows), bool)
        for x1, y1, x2, y2 in boxes:
            inside |= (
                (cols >= x1 - tolerance)
                & (cols + 1 <= x2 + tolerance)
                & (rows >= y1 - tolerance)
                & (rows + 1 <= y2 + tolerance)
            )
        outside = np.flatnonzero(~inside)
        if dropped_from is not None and (dropped_from.classes == colour).sum() > len(boxes):
            assert inside.any(), f"colour {colour}: none of its pixels lies in its boxes {boxes.tolist()}"
            continue
        assert len(outside) == 0, (
            f"colour {colour}: {len(outside)} pixels outside its boxes {boxes.tolist()}, "
            f"e.g. (x, y) = {list(zip(cols[outside][:5].tolist(), rows[outside][:5].tolist()))}"
        )
        if tight:
            for x1, y1, x2, y2 in boxes[_rectangles(sample)[sample.classes == colour]]:
                if min(x2 - x1, y2 - y1) < 6:
                    continue
                mine = (cols >= x1 - tolerance) & (cols + 1 <= x2 + tolerance)
                mine &= (rows >= y1 - tolerance) & (rows + 1 <= y2 + tolerance)
                assert mine.any(), f"colour {colour}: box {(x1, y1, x2, y2)} holds none of its pixels"
                slack = tolerance + 1
                assert cols[mine].min() <= x1 + slack and cols[mine].max() + 1 >= x2 - slack, (colour, x1, x2)
                assert rows[mine].min() <= y1 + slack and rows[mine].max() + 1 >= y2 - slack, (colour, y1, y2)


def _rectangles(sample: Sample) -> np.ndarray:
    """(n,) bool: instances drawn as rectangles (no polygon, or an axis-aligned one)."""
    if sample.segments is None:
        return np.ones(len(sample.boxes), bool)
    flags = []
    for polygon in sample.segments:
        low, high = polygon.min(axis=0), polygon.max(axis=0)
        flags.append(bool(np.all(np.isclose(polygon, low) | np.isclose(polygon, high))))
    return np.array(flags, bool).reshape(-1)
