"""Inference: sources -> letterbox -> model -> NMS -> ``Results`` (``Predictor`` ties them together)."""

from yolov12.infer.device import DeviceError, select_device
from yolov12.infer.image_io import MAX_IMAGE_PIXELS, SourceError, read_image, to_bgr_uint8
from yolov12.infer.letterbox import (
    LetterboxInfo,
    clip_boxes,
    letterbox,
    scale_boxes,
)

# `nms` (the plain greedy function) is not re-exported: it would shadow the `yolov12.infer.nms` module.
from yolov12.infer.nms import non_max_suppression
from yolov12.infer.predictor import Predictor
from yolov12.infer.results import Boxes, Probs, Results
from yolov12.infer.samples import sample_images
from yolov12.infer.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, iter_batches, iter_frames

__all__ = [
    "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "VIDEO_SUFFIXES", "Boxes", "DeviceError", "LetterboxInfo", "Predictor",
    "Probs", "Results", "SourceError", "clip_boxes", "iter_batches", "iter_frames", "letterbox",
    "non_max_suppression", "read_image", "sample_images", "scale_boxes", "select_device",
    "to_bgr_uint8",
]
