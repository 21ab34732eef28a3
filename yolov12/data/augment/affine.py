"""Random affine / perspective warp in one OpenCV call, with exact box transforms and candidate filtering.

Why hand-written and not ``A.Affine`` + ``A.Perspective`` (640 px, cv2 on 1 thread, 2 shared and loaded cores,
``benchmarks/dataloader.py --ops`` and a bare-op script; ranges are over runs): after a mosaic the warp must also crop
the (1280, 1280) canvas to (640, 640). ``A.Affine`` keeps the input size, so it warps the whole canvas and needs a
crop after it: 25-32 ms against 8 ms for the bare ``cv2.warpAffine`` into the output size (12-17 ms with our box
and polygon handling). With perspective on, albumentations needs a second warp and a second interpolation
(``A.Affine`` + ``A.Perspective``: 13-24 ms on a 640 image) where we do one ``warpPerspective`` (9-15 ms). We also
need polygons to follow the same matrix (tight boxes), and the area-ratio candidate filter relative to the *scaled*
original box, which albumentations' ``min_visibility`` does not express.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from yolov12.data.augment.compose import has_segments, select_instances
from yolov12.data.augment.geometry import (
    apply_homography,
    apply_homography_to_polygons,
    box_candidates,
    box_corners,
    clip_boxes,
    clip_polygon,
    corners_to_boxes,
    edge_to_centre_matrix,
    polygon_boxes,
)
from yolov12.data.augment.mosaic import PAD_VALUE

if TYPE_CHECKING:
    from yolov12.data.types import Sample

logger = logging.getLogger(__name__)


def random_affine_matrix(
    input_hw: tuple[int, int],
    output_hw: tuple[int, int],
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.0,
    perspective: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Sample a (3, 3) edge-coordinate matrix mapping the input centre near the output centre.

    Composition: centre the input, perspective (±``perspective``), rotate (±``degrees``) and scale
    (uniform in [1 - scale, 1 + scale]), shear (±``shear`` degrees), then move to the output centre plus a shift of
    ±``translate`` of the output size. At zero strength it is a centred letterbox without resizing.

    Returns:
        The matrix and the sampled scale factor (used by the candidate filter).
    """
    (in_h, in_w), (out_h, out_w) = input_hw, output_hw
    centre = np.eye(3)
    centre[0, 2], centre[1, 2] = -in_w / 2, -in_h / 2
    warp = np.eye(3)
    warp[2, 0], warp[2, 1] = np.random.uniform(-perspective, perspective, size=2)
    angle = np.random.uniform(-degrees, degrees)
    scale_factor = float(np.random.uniform(1 - scale, 1 + scale))
    rotation = np.eye(3)
    rotation[:2] = cv2.getRotationMatrix2D(angle=angle, center=(0, 0), scale=scale_factor)
    shearing = np.eye(3)
    shearing[0, 1] = math.tan(math.radians(np.random.uniform(-shear, shear)))
    shearing[1, 0] = math.tan(math.radians(np.random.uniform(-shear, shear)))
    move = np.eye(3)
    move[0, 2] = np.random.uniform(0.5 - translate, 0.5 + translate) * out_w
    move[1, 2] = np.random.uniform(0.5 - translate, 0.5 + translate) * out_h
    return move @ shearing @ rotation @ warp @ centre, scale_factor


def warp_sample(sample: Sample, matrix: np.ndarray, output_hw: tuple[int, int], scale_factor: float = 1.0) -> Sample:
    """Warp the image with the (3, 3) edge-coordinate ``matrix`` into ``output_hw``; boxes and polygons follow.

    Boxes come from the transformed polygons when every box has one (tight), otherwise from the 4 transformed box
    corners (encloses the object, loose under rotation). Boxes are clipped to the image and filtered with
    :func:`~yolov12.data.augment.geometry.box_candidates` against the original boxes times ``scale_factor``.
    """
    out_h, out_w = output_hw
    image = sample.image
    identity = np.allclose(matrix, np.eye(3)) and image.shape[:2] == (out_h, out_w)
    if not identity:
        centre_matrix = edge_to_centre_matrix(matrix)
        fill = (PAD_VALUE, PAD_VALUE, PAD_VALUE)
        if np.allclose(matrix[2], (0.0, 0.0, 1.0)):
            image = cv2.warpAffine(image, centre_matrix[:2], (out_w, out_h), borderValue=fill)
        else:
            image = cv2.warpPerspective(image, centre_matrix, (out_w, out_h), borderValue=fill)
    boxes_before = sample.boxes.reshape(-1, 4)
    segments = None
    if has_segments(sample) and len(boxes_before):
        segments = [clip_polygon(s, out_h, out_w) for s in apply_homography_to_polygons(sample.segments, matrix)]
        boxes = polygon_boxes(segments)
    else:
        boxes = clip_boxes(corners_to_boxes(apply_homography(box_corners(boxes_before), matrix)), out_h, out_w)
    keep = box_candidates(boxes_before * scale_factor, boxes)
    return select_instances(sample, keep, image=image, boxes=boxes, segments=segments)


class RandomAffine:
    """Random rotation, scale, shear, translation and perspective, output (imgsz, imgsz).

    Works for both paths of the pipeline: a (2·imgsz)² mosaic canvas is centre-cropped by the same warp, and a
    single image (long side imgsz) is letterboxed into the centre. Ultralytics hyper-parameter names and defaults.

    Args:
        imgsz: output side.
        degrees: rotation range ±degrees.
        translate: shift range ± fraction of the output size.
        scale: scale gain range 1 ± scale.
        shear: shear range ±degrees.
        perspective: perspective coefficient range ±perspective (sensible values ≤ 0.001).
    """

    def __init__(
        self,
        imgsz: int,
        degrees: float = 0.0,
        translate: float = 0.1,
        scale: float = 0.5,
        shear: float = 0.0,
        perspective: float = 0.0,
    ) -> None:
        self.imgsz = imgsz
        self.degrees, self.translate, self.scale = degrees, translate, scale
        self.shear, self.perspective = shear, perspective

    def __call__(self, sample: Sample) -> Sample:
        output_hw = (self.imgsz, self.imgsz)
        matrix, scale_factor = random_affine_matrix(
            sample.image.shape[:2], output_hw, self.degrees, self.translate, self.scale, self.shear, self.perspective
        )
        return warp_sample(sample, matrix, output_hw, scale_factor)

    def __repr__(self) -> str:
        return (
            f"RandomAffine(imgsz={self.imgsz}, degrees={self.degrees}, translate={self.translate}, "
            f"scale={self.scale}, shear={self.shear}, perspective={self.perspective})"
        )
