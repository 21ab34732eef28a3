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
from yolov12.infer.letterbox import LetterboxInfo, letterbox

if TYPE_CHECKING:
    from yolov12.data.types import Sample


class Letterbox:
    """Resize keeping the aspect ratio and pad (grey 114) to ``new_shape``, centred; boxes/polygons follow.

    The output sample also records how its pixels relate to the image file's (``original_shape`` and ``letterbox``,
    see :func:`file_to_letterbox`), so that validation can measure box sizes in the file's pixels.

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
        original_shape, mapping = file_to_letterbox(sample, info)
        return replace_sample(sample, image=image, boxes=boxes, segments=segments, original_shape=original_shape,
                              letterbox=mapping)

    def __repr__(self) -> str:
        return f"Letterbox(new_shape={self.new_shape}, auto={self.auto}, scaleup={self.scaleup}, stride={self.stride})"


def file_to_letterbox(sample: Sample, info: LetterboxInfo) -> tuple[tuple[int, int], LetterboxInfo]:
    """(original (height, width), mapping from the file's pixels to the letterboxed image) of ``sample``.

    ``info`` is the letterbox applied to ``sample.image``. The steps before the letterbox may only have resized the
    image (the validation pipelines: :class:`~yolov12.data.augment.mosaic.ResizeLongSide`), so the file-to-input
    scale is the product of that resize and the letterbox's own. A sample that does not know its file's shape is
    taken as the file itself.

    Example:
        >>> sample = Sample(np.zeros((160, 320, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
        ...                 "a.png", original_shape=(300, 600))  # doctest: +SKIP
        >>> file_to_letterbox(sample, LetterboxInfo(ratio=(0.2, 0.2), pad=(0, 16)))  # doctest: +SKIP
        ((300, 600), LetterboxInfo(ratio=(0.10666666666666667, 0.10666666666666667), pad=(0, 16)))
    """
    height, width = sample.image.shape[:2]
    original_height, original_width = sample.original_shape or (height, width)
    ratio = (info.ratio[0] * width / original_width, info.ratio[1] * height / original_height)
    return (int(original_height), int(original_width)), LetterboxInfo(ratio=ratio, pad=info.pad)
