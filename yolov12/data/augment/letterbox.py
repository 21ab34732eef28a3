"""Letterbox for validation and rectangular batches, reusing the inference letterbox so that train-time validation
and deployed inference see identical pixels.

Not ``A.LongestMaxSize`` + ``A.PadIfNeeded``: they give the same geometry but took 3.3-6.0 ms per 500x375 -> 640
image against 0.9-2.0 ms for :func:`yolov12.infer.letterbox.letterbox` (``benchmarks/dataloader.py --ops``, 2 shared
cores), and a second implementation could drift from what the deployed model is fed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yolov12.data.augment.compose import replace_sample
from yolov12.data.augment.geometry import scale_labels
from yolov12.infer.letterbox import letterbox

if TYPE_CHECKING:
    from yolov12.data.types import Sample


class Letterbox:
    """Resize keeping the aspect ratio and pad (grey 114) to ``new_shape``, centred; boxes/polygons follow.

    Args:
        new_shape: output side, or (height, width) for rectangular validation batches.
        auto: pad only to the next multiple of ``stride`` (minimal rectangle).
        scaleup: allow enlarging (False for validation, like Ultralytics).
        stride: the model stride used by ``auto``.
    """

    def __init__(
        self, new_shape: int | tuple[int, int] = 640, auto: bool = False, scaleup: bool = True, stride: int = 32
    ) -> None:
        self.new_shape = new_shape
        self.auto, self.scaleup, self.stride = auto, scaleup, stride

    def __call__(self, sample: Sample) -> Sample:
        image, info = letterbox(sample.image, self.new_shape, stride=self.stride, auto=self.auto, scaleup=self.scaleup)
        height, width = image.shape[:2]
        boxes, segments = scale_labels(sample.boxes, sample.segments, info.ratio, info.pad, height, width)
        return replace_sample(sample, image=image, boxes=boxes, segments=segments)

    def __repr__(self) -> str:
        return f"Letterbox(new_shape={self.new_shape}, auto={self.auto}, scaleup={self.scaleup}, stride={self.stride})"
