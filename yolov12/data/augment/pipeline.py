"""Detection pipelines from Ultralytics-named hyper-parameters, with ``close_mosaic`` through ``set_epoch``.

Training order (each step a ``Sample -> Sample`` callable)::

    ResizeLongSide(imgsz) -> Mosaic(p=mosaic) -> CopyPaste(p=copy_paste) -> RandomAffine(degrees, translate, scale,
    shear, perspective) -> MixUp(p=mixup, second sample through the same first four steps) -> [PolicyTransform]
    -> RandomHSV(hsv_h, hsv_s, hsv_v) -> RandomFlip(vertical, flipud) -> RandomFlip(horizontal, fliplr)

Validation: ``ResizeLongSide(imgsz, augment=False) -> Letterbox(imgsz, scaleup=False)``. Every output is
(imgsz, imgsz, 3); finish with :func:`~yolov12.data.augment.formatting.to_training_arrays`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolov12.data.augment.affine import RandomAffine
from yolov12.data.augment.compose import Compose
from yolov12.data.augment.letterbox import Letterbox
from yolov12.data.augment.mixing import CopyPaste, MixUp
from yolov12.data.augment.mosaic import Mosaic, ResizeLongSide, SampleDataset
from yolov12.data.augment.photometric import RandomFlip, RandomHSV
from yolov12.data.augment.policy import AugmentPolicy
from yolov12.data.augment.policy_transform import PolicyTransform

logger = logging.getLogger(__name__)

PROBABILITY_KEYS = ("mosaic", "mixup", "copy_paste", "fliplr", "flipud")


class AugmentConfigError(ValueError):
    """An augmentation hyper-parameter is out of range."""


@dataclass(frozen=True)
class DetectionAugmentParams:
    """The detection augmentation hyper-parameters (Ultralytics names and defaults).

    ``close_mosaic``: mosaic, mixup and copy-paste are off for the last ``close_mosaic`` epochs.
    ``augment_policy``: optional AutoAlbument-Lite policy file (YAML/JSON).
    """

    mosaic: float = 1.0
    mixup: float = 0.0
    copy_paste: float = 0.0
    degrees: float = 0.0
    translate: float = 0.1
    scale: float = 0.5
    shear: float = 0.0
    perspective: float = 0.0
    hsv_h: float = 0.015
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    fliplr: float = 0.5
    flipud: float = 0.0
    close_mosaic: int = 10
    augment_policy: str | None = None

    def __post_init__(self) -> None:
        for key in PROBABILITY_KEYS:
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise AugmentConfigError(f"{key}={getattr(self, key)!r} is a probability; use a value in [0, 1]")
        if not 0.0 <= self.scale < 1.0:
            raise AugmentConfigError(f"scale={self.scale!r}: the gain range is 1 ± scale, so use 0 <= scale < 1")
        if not 0.0 <= self.translate <= 0.5:
            raise AugmentConfigError(f"translate={self.translate!r}: use a fraction of the image size in [0, 0.5]")
        if self.close_mosaic < 0:
            raise AugmentConfigError(f"close_mosaic={self.close_mosaic!r}: use a number of epochs >= 0")

    @classmethod
    def from_hyp(cls, hyp: Mapping[str, Any] | object | None) -> DetectionAugmentParams:
        """Read the known keys from a mapping or an object with attributes (e.g. the config's augment section).

        Other keys (``lr0``, ``epochs``, ...) are ignored: a full hyper-parameter set may be passed.
        """
        if hyp is None:
            return cls()
        values = {}
        for name in (f.name for f in dataclasses.fields(cls)):
            value = hyp.get(name) if isinstance(hyp, Mapping) else getattr(hyp, name, None)
            if value is not None:
                values[name] = value
        return cls(**values)


class DetectionTransforms(Compose):
    """The training pipeline; ``set_epoch`` closes mosaic/mixup/copy-paste for the last ``close_mosaic`` epochs.

    Call ``set_epoch`` before each epoch's iterator is created: DataLoader workers copy the pipeline when they
    start (use ``persistent_workers=False``, or rebuild the loader when mosaic closes).
    """

    def __init__(self, transforms: list[Any], params: DetectionAugmentParams) -> None:
        super().__init__(transforms)
        self.params = params
        self.mosaic_closed = False

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Close (or, when resuming earlier, reopen) the mixing augmentations, then forward to children."""
        closed = self.params.close_mosaic > 0 and epoch >= total_epochs - self.params.close_mosaic
        if closed != self.mosaic_closed:
            logger.info("epoch %d: mosaic, mixup and copy-paste %s", epoch, "closed" if closed else "re-opened")
        self.mosaic_closed = closed
        for transform in self.find(Mosaic):
            transform.p = 0.0 if closed else self.params.mosaic
        for transform in self.find(MixUp):
            transform.p = 0.0 if closed else self.params.mixup
        for transform in self.find(CopyPaste):
            transform.p = 0.0 if closed else self.params.copy_paste
        super().set_epoch(epoch, total_epochs)


def build_detection_transforms(
    hyp: Mapping[str, Any] | object | None,
    imgsz: int,
    dataset: SampleDataset | None = None,
    training: bool = True,
    policy: AugmentPolicy | Mapping[str, Any] | str | Path | None = None,
) -> Compose:
    """The detection pipeline for training or validation.

    Args:
        hyp: hyper-parameters with Ultralytics names (mapping or attribute object); missing keys take defaults.
        imgsz: output side; every output image is (imgsz, imgsz, 3).
        dataset: source of the extra mosaic/mixup samples (needed when training with mosaic or mixup).
        training: augment (True) or only resize + letterbox (False).
        policy: AutoAlbument-Lite policy (object, dict or file); defaults to ``hyp.augment_policy`` if set.

    Returns:
        :class:`DetectionTransforms` when training, a plain :class:`Compose` otherwise.

    Example:
        >>> pipeline = build_detection_transforms({"mosaic": 1.0, "fliplr": 0.5}, 640, dataset)  # doctest: +SKIP
        >>> pipeline.set_epoch(epoch=0, total_epochs=100)  # doctest: +SKIP
        >>> sample = pipeline(dataset.load_sample(0))  # doctest: +SKIP
    """
    params = DetectionAugmentParams.from_hyp(hyp)
    if not training:
        return Compose([ResizeLongSide(imgsz, augment=False), Letterbox(imgsz, auto=False, scaleup=False)])
    if dataset is None and (params.mosaic > 0 or params.mixup > 0):
        raise AugmentConfigError("mosaic and mixup draw extra samples: pass dataset=... (or set mosaic=0, mixup=0)")
    pre_transform = Compose(
        [
            ResizeLongSide(imgsz),
            *([Mosaic(dataset, imgsz, p=params.mosaic)] if dataset is not None else []),
            CopyPaste(p=params.copy_paste),
            RandomAffine(imgsz, params.degrees, params.translate, params.scale, params.shear, params.perspective),
        ]
    )
    steps: list[Any] = [pre_transform]
    if dataset is not None:
        steps.append(MixUp(dataset, pre_transform, p=params.mixup))
    policy = policy if policy is not None else params.augment_policy
    if policy is not None:
        steps.append(PolicyTransform(policy))
    steps += [
        RandomHSV(params.hsv_h, params.hsv_s, params.hsv_v),
        RandomFlip("vertical", p=params.flipud),
        RandomFlip("horizontal", p=params.fliplr),
    ]
    return DetectionTransforms(steps, params)
