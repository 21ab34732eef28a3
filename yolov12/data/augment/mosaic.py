"""Load-time resize and the 4-image mosaic.

Why not ``A.Mosaic`` (albumentations 2.0.8): its boxes are correct (a box-encloses-pixels check passed on 30/30
random mosaics in both fit modes), but it fits every image into a fixed grid cell (crop or pad) instead of anchoring
the four images, at their own size, on a random centre of a 2·imgsz canvas, so it is a different augmentation from the
one Ultralytics' hyper-parameters were tuned for. It cannot carry our polygons, and it is slower: 19-39 ms per 640
mosaic against 3.6-5.4 ms for :func:`build_mosaic` on the same decoded inputs (``benchmarks/dataloader.py --ops``, 2
shared and loaded cores; ours still needs the warp, which the affine step does anyway). Assembly here is array
slicing only; the crop to imgsz happens in the single warp of :class:`~yolov12.data.augment.affine.RandomAffine`.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from yolov12.data.augment.compose import has_segments, replace_sample, select_instances
from yolov12.data.augment.geometry import clip_boxes, clip_polygon, polygon_boxes, scale_labels

if TYPE_CHECKING:
    from yolov12.data.types import Sample

logger = logging.getLogger(__name__)

PAD_VALUE = 114


class SampleDataset(Protocol):
    """What the mixing transforms need from a dataset: its length and raw samples."""

    def __len__(self) -> int: ...

    def load_sample(self, index: int) -> Sample: ...


def resize_long_side(sample: Sample, size: int, augment: bool = True) -> Sample:
    """Resize so that the longer side is ``size`` (aspect kept); boxes and segments follow.

    Linear interpolation when augmenting or enlarging, area interpolation when shrinking for validation.
    The image becomes (h', w', 3) with ``max(h', w') == size``.
    """
    height, width = sample.image.shape[:2]
    ratio = size / max(height, width)
    if ratio == 1.0:
        return sample
    new_w, new_h = min(math.ceil(width * ratio), size), min(math.ceil(height * ratio), size)
    interpolation = cv2.INTER_LINEAR if augment or ratio > 1 else cv2.INTER_AREA
    image = cv2.resize(sample.image, (new_w, new_h), interpolation=interpolation)
    gain = (new_w / width, new_h / height)
    boxes, segments = scale_labels(sample.boxes, sample.segments, gain, (0.0, 0.0), new_h, new_w)
    return replace_sample(sample, image=image, boxes=boxes, segments=segments)


class ResizeLongSide:
    """Transform form of :func:`resize_long_side` (the first step of every detection pipeline)."""

    def __init__(self, size: int, augment: bool = True) -> None:
        self.size = size
        self.augment = augment

    def __call__(self, sample: Sample) -> Sample:
        return resize_long_side(sample, self.size, self.augment)

    def __repr__(self) -> str:
        return f"ResizeLongSide(size={self.size}, augment={self.augment})"


class Mosaic:
    """Four images around a random centre of a (2·imgsz, 2·imgsz) canvas.

    The input sample (already resized to long side imgsz) goes top-left, three random dataset samples (distinct from
    each other when the dataset allows) fill the other quadrants. The centre is uniform in [0.5, 1.5]·imgsz on both
    axes; each image touches the centre with one corner, so only canvas borders cut images and clipping boxes to the
    canvas is exact. The output image is
    (2·imgsz, 2·imgsz, 3); the following :class:`RandomAffine` maps it to (imgsz, imgsz).

    Args:
        dataset: source of the three other samples (``len`` and ``load_sample``); one with a ``remember(sample)``
            method (:class:`~yolov12.data.augment.partners.DatasetPartners`) is also given each input sample.
        imgsz: target training size.
        p: probability of building a mosaic; otherwise the sample passes through unchanged.
    """

    def __init__(self, dataset: SampleDataset, imgsz: int, p: float = 1.0) -> None:
        if len(dataset) == 0:
            raise ValueError("Mosaic needs a dataset with at least one sample; got an empty dataset")
        self.dataset = dataset
        self.imgsz = imgsz
        self.p = p

    def __call__(self, sample: Sample) -> Sample:
        if self.p <= 0 or np.random.uniform() > self.p:
            return sample
        remember = getattr(self.dataset, "remember", None)  # a partner buffer (augment/partners.py) keeps the image
        if remember is not None:  # the mosaic starts from (build_mosaic only reads it); as in Ultralytics, it is
            remember(sample)  # then one of the buffered images its partners are drawn from
        others = [resize_long_side(self.dataset.load_sample(i), self.imgsz) for i in self._pick_three()]
        centre = np.random.uniform(0.5 * self.imgsz, 1.5 * self.imgsz, size=2).astype(int)
        return build_mosaic([sample, *others], (int(centre[0]), int(centre[1])), 2 * self.imgsz)

    def _pick_three(self) -> list[int]:
        """Three random dataset indices, distinct when the dataset has at least three samples (O(1), no shuffle)."""
        size = len(self.dataset)
        picked: list[int] = []
        while len(picked) < 3:
            index = int(np.random.randint(0, size))
            if index not in picked or size < 3:
                picked.append(index)
        return picked

    def __repr__(self) -> str:
        return f"Mosaic(imgsz={self.imgsz}, p={self.p})"


def build_mosaic(samples: list[Sample], centre_xy: tuple[int, int], canvas_size: int) -> Sample:
    """Assemble four samples (top-left, top-right, bottom-left, bottom-right) around ``centre_xy``.

    Returns a sample with a (canvas_size, canvas_size, 3) image, the boxes shifted and clipped to the canvas (boxes
    left with no area are dropped) and, when every input has polygons, the polygons shifted and clipped, each box
    then the tight box of its clipped polygon (an instance whose polygon leaves the canvas is dropped).
    """
    if len(samples) != 4:
        raise ValueError(f"a mosaic takes exactly 4 samples, got {len(samples)}")
    canvas = np.full((canvas_size, canvas_size, 3), PAD_VALUE, np.uint8)
    centre_x, centre_y = centre_xy
    all_boxes, all_classes, all_segments = [], [], []
    keep_segments = all(has_segments(s) for s in samples)
    for quadrant, sample in enumerate(samples):
        height, width = sample.image.shape[:2]
        left = centre_x - width if quadrant in (0, 2) else centre_x
        top = centre_y - height if quadrant in (0, 1) else centre_y
        x1, y1 = max(left, 0), max(top, 0)
        x2, y2 = min(left + width, canvas_size), min(top + height, canvas_size)
        if x2 > x1 and y2 > y1:
            canvas[y1:y2, x1:x2] = sample.image[y1 - top : y2 - top, x1 - left : x2 - left]
        offset = np.array([left, top], np.float32)
        all_boxes.append(sample.boxes.reshape(-1, 4) + np.tile(offset, 2))
        all_classes.append(sample.classes.reshape(-1))
        if keep_segments:
            all_segments.extend(clip_polygon(s + offset, canvas_size, canvas_size) for s in sample.segments)
    if keep_segments:  # the tight box of each polygon's visible part (a clipped box can keep a corner the shape
        boxes = polygon_boxes(all_segments).reshape(-1, 4)  # does not reach, e.g. a diamond cut near its tip)
    else:
        boxes = clip_boxes(np.concatenate(all_boxes), canvas_size, canvas_size)
    visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if not keep_segments and any(s.segments is not None for s in samples):
        logger.debug("mosaic: not every image has polygons, so polygons are dropped for this mosaic")
    merged = replace_sample(samples[0], image=canvas)
    return select_instances(
        merged,
        visible,
        boxes=boxes,
        classes=np.concatenate(all_classes).astype(np.int64),
        segments=all_segments if keep_segments else None,
    )
