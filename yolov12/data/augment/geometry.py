"""Box and polygon helpers for augmentation: formats named explicitly, shapes in every docstring.

Coordinates are pixel *edges*: a box (x1, y1, x2, y2) = (0, 0, 2, 1) covers exactly the two top-left pixels. OpenCV
warps and resizes address pixel *centres* (pixel ``i`` is centred on ``i``), so the geometric transforms build their
matrices in edge coordinates and convert with :func:`edge_to_centre_matrix` before calling OpenCV.
"""

from __future__ import annotations

import numpy as np

from yolov12.utils.boxes import box_area

EPS = 1e-9


def edge_to_centre_matrix(matrix: np.ndarray) -> np.ndarray:
    """(3, 3) transform acting on edge coordinates -> the same transform acting on pixel-centre coordinates.

    ``p_edge = p_centre + 0.5``, hence ``M_centre = T(-0.5) @ M_edge @ T(+0.5)``.
    """
    shift = np.eye(3)
    shift[:2, 2] = 0.5
    unshift = np.eye(3)
    unshift[:2, 2] = -0.5
    return unshift @ matrix @ shift


def apply_homography(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (k, 2) points through a (3, 3) affine or projective matrix; returns (k, 2) float32."""
    if len(points) == 0:
        return np.zeros((0, 2), np.float32)
    homogeneous = np.concatenate([points.astype(np.float64), np.ones((len(points), 1))], axis=1) @ matrix.T
    projective = not np.allclose(matrix[2], (0.0, 0.0, 1.0))
    if projective:
        return (homogeneous[:, :2] / np.maximum(homogeneous[:, 2:3], EPS)).astype(np.float32)
    return homogeneous[:, :2].astype(np.float32)


def apply_homography_to_polygons(polygons: list[np.ndarray], matrix: np.ndarray) -> list[np.ndarray]:
    """:func:`apply_homography` of each (k_i, 2) polygon, in one matrix product for all of them."""
    if not polygons:
        return []
    mapped = apply_homography(np.concatenate([p.reshape(-1, 2) for p in polygons]), matrix)
    return np.split(mapped, np.cumsum([len(p) for p in polygons])[:-1])


def box_corners(boxes_xyxy: np.ndarray) -> np.ndarray:
    """(n, 4) xyxy boxes -> (n * 4, 2) corners, in the order (x1,y1), (x2,y1), (x2,y2), (x1,y2) per box."""
    x1, y1, x2, y2 = boxes_xyxy.T
    corners = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=1)
    return corners.reshape(-1, 2)


def corners_to_boxes(corners: np.ndarray) -> np.ndarray:
    """(n * 4, 2) corners -> (n, 4) xyxy enclosing boxes (float32)."""
    grouped = corners.reshape(-1, 4, 2)
    return np.concatenate([grouped.min(axis=1), grouped.max(axis=1)], axis=1).astype(np.float32)


def clip_boxes(boxes_xyxy: np.ndarray, height: int, width: int) -> np.ndarray:
    """(n, 4) xyxy boxes clipped to an image of ``height`` x ``width`` (new array)."""
    clipped = boxes_xyxy.astype(np.float32, copy=True)
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, width)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, height)
    return clipped


def scale_labels(
    boxes_xyxy: np.ndarray,
    segments: list[np.ndarray] | None,
    gain: tuple[float, float] | np.ndarray,
    pad: tuple[float, float] | np.ndarray,
    height: int,
    width: int,
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Boxes (n, 4) and polygons (k, 2) scaled by ``gain`` (gx, gy) then shifted by ``pad`` (px, py), kept inside an
    image of ``height`` x ``width``.

    The clip is not cosmetic: in float32, ``x * (new / old)`` can land a hair past the new edge (an edge at 82 scaled
    to 59 gives 59.000004), and every later step assumes boxes inside the image.
    """
    gain = np.asarray(gain, np.float32)
    pad = np.asarray(pad, np.float32)
    boxes = clip_boxes(boxes_xyxy.reshape(-1, 4) * np.tile(gain, 2) + np.tile(pad, 2), height, width)
    if segments is None:
        return boxes, None
    limits = np.array([width, height], np.float32)
    return boxes, [np.clip(s * gain + pad, 0, limits).astype(np.float32) for s in segments]


def box_ioa(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over the area of ``b``: (n, 4), (m, 4) xyxy -> (n, m)."""
    top_left = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = (bottom_right - top_left).clip(0).prod(axis=2)
    return intersection / (box_area(boxes_b)[None, :] + EPS)


def box_candidates(
    before: np.ndarray,
    after: np.ndarray,
    min_size: float = 2.0,
    max_aspect_ratio: float = 100.0,
    min_area_ratio: float = 0.1,
) -> np.ndarray:
    """Which boxes survive a geometric transform: (n, 4) xyxy before (already scaled) and after -> (n,) bool.

    Kept when the new box is wider and taller than ``min_size`` pixels, keeps more than ``min_area_ratio`` of its
    area, and its aspect ratio stays under ``max_aspect_ratio``.
    """
    width_before, height_before = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    width_after, height_after = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    aspect = np.maximum(width_after / (height_after + EPS), height_after / (width_after + EPS))
    area_ratio = width_after * height_after / (width_before * height_before + EPS)
    large_enough = (width_after > min_size) & (height_after > min_size)
    return large_enough & (area_ratio > min_area_ratio) & (aspect < max_aspect_ratio)


def clip_polygon(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clip a (k, 2) polygon to the image rectangle (Sutherland-Hodgman); returns (k', 2) float32, maybe empty.

    Exact for the straight edges that affine and projective maps preserve, so the box of the result is the tight box
    of the visible part of the object.
    """
    if len(polygon) and polygon.min() >= 0 and polygon[:, 0].max() <= width and polygon[:, 1].max() <= height:
        return polygon.astype(np.float32)  # inside already (most polygons of a mosaic): nothing to clip
    points = polygon.astype(np.float64)
    edges = ((0, 0.0, False), (0, float(width), True), (1, 0.0, False), (1, float(height), True))
    for axis, limit, keep_below in edges:
        if len(points) == 0:
            break
        points = _clip_half_plane(points, axis, limit, keep_below)
    points = points.reshape(-1, 2)
    # Intersections are computed in float64; remove the rounding that can leave them 1e-15 outside the image.
    return np.stack([points[:, 0].clip(0, width), points[:, 1].clip(0, height)], axis=1).astype(np.float32)


def _clip_half_plane(points: np.ndarray, axis: int, limit: float, keep_below: bool) -> np.ndarray:
    """One Sutherland-Hodgman pass: keep the part of the closed polygon with ``coord <= limit`` (or ``>=``).

    Vectorised: each edge i -> i+1 emits point i when it is inside, then the edge's crossing of the limit when the
    edge crosses it; both candidates of every edge are laid out in order and the emitted ones selected (a Python
    loop over the vertices took 4 ms of a 30 ms mosaic sample at 640 px).
    """
    coord = points[:, axis]
    inside = coord <= limit if keep_below else coord >= limit
    if inside.all():
        return points
    following = np.roll(points, -1, axis=0)
    crossing = inside != np.roll(inside, -1)
    span = following[:, axis] - coord
    t = np.divide(limit - coord, span, out=np.zeros_like(coord), where=crossing)
    candidates = np.stack([points, points + t[:, None] * (following - points)], axis=1)  # (n, 2, 2)
    emitted = np.stack([inside, crossing], axis=1)  # (n, 2)
    return candidates[emitted]


def polygon_boxes(segments: list[np.ndarray]) -> np.ndarray:
    """Tight xyxy boxes of polygons: list of (k_i, 2) -> (n, 4) float32; an empty polygon gives a zero box."""
    boxes = np.zeros((len(segments), 4), np.float32)
    for index, segment in enumerate(segments):
        if len(segment):
            boxes[index, :2] = segment.min(axis=0)
            boxes[index, 2:] = segment.max(axis=0)
    return boxes


def xyxy_to_normalised_cxcywh(boxes_xyxy: np.ndarray, height: int, width: int) -> np.ndarray:
    """(n, 4) pixel xyxy -> (n, 4) float32 (cx, cy, w, h) divided by the image size, clipped to [0, 1]."""
    boxes = clip_boxes(boxes_xyxy, height, width)
    out = np.empty_like(boxes)
    out[:, 0] = (boxes[:, 0] + boxes[:, 2]) / (2 * width)
    out[:, 1] = (boxes[:, 1] + boxes[:, 3]) / (2 * height)
    out[:, 2] = (boxes[:, 2] - boxes[:, 0]) / width
    out[:, 3] = (boxes[:, 3] - boxes[:, 1]) / height
    return out
