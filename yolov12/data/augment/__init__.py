"""Detection and classification augmentation: transforms are ``Sample -> Sample`` callables.

Entry points: :func:`build_detection_transforms`, :func:`build_classification_transforms`,
:func:`to_training_arrays`, :func:`collate_detection`, and the AutoAlbument-Lite policy (:class:`AugmentPolicy`,
:class:`PolicyTransform`). albumentations is imported only when a transform that uses it is built.
"""

from __future__ import annotations

from yolov12.data.augment.affine import RandomAffine, random_affine_matrix, warp_sample
from yolov12.data.augment.classify import ClassificationTransforms, build_classification_transforms
from yolov12.data.augment.compose import Compose, EpochAware, Transform
from yolov12.data.augment.formatting import collate_detection, to_training_arrays
from yolov12.data.augment.letterbox import Letterbox
from yolov12.data.augment.mixing import CopyPaste, MixUp, copy_paste_flipped, mixup
from yolov12.data.augment.mosaic import Mosaic, ResizeLongSide, build_mosaic, resize_long_side
from yolov12.data.augment.photometric import RandomFlip, RandomHSV, flip_sample, hsv_jitter
from yolov12.data.augment.pipeline import (
    AugmentConfigError,
    DetectionTransforms,
    augment_section,
    build_detection_transforms,
)
from yolov12.data.augment.policy import AugmentPolicy, MagnitudeSchedule, PolicyError, PolicyOp, UnknownPolicyOpError
from yolov12.data.augment.policy_ops import OPS
from yolov12.data.augment.policy_transform import PolicyTransform, compile_policy

__all__ = [
    "OPS",
    "AugmentConfigError",
    "AugmentPolicy",
    "ClassificationTransforms",
    "Compose",
    "CopyPaste",
    "DetectionTransforms",
    "EpochAware",
    "Letterbox",
    "MagnitudeSchedule",
    "MixUp",
    "Mosaic",
    "PolicyError",
    "PolicyOp",
    "PolicyTransform",
    "RandomAffine",
    "RandomFlip",
    "RandomHSV",
    "ResizeLongSide",
    "Transform",
    "UnknownPolicyOpError",
    "augment_section",
    "build_classification_transforms",
    "build_detection_transforms",
    "build_mosaic",
    "collate_detection",
    "compile_policy",
    "copy_paste_flipped",
    "flip_sample",
    "hsv_jitter",
    "mixup",
    "random_affine_matrix",
    "resize_long_side",
    "to_training_arrays",
    "warp_sample",
]
