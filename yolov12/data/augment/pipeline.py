"""Detection pipelines from Ultralytics-named hyper-parameters, with ``close_mosaic`` through ``set_epoch``.

Training order (each step a ``Sample -> Sample`` callable)::

    ResizeLongSide(imgsz) -> Mosaic(p=mosaic) -> CopyPaste(p=copy_paste) -> RandomAffine(degrees, translate, scale,
    shear, perspective) -> MixUp(p=mixup, second sample through the same first four steps) -> [PolicyTransform]
    -> RandomHSV(hsv_h, hsv_s, hsv_v) -> RandomFlip(vertical, flipud) -> RandomFlip(horizontal, fliplr)

Validation: ``ResizeLongSide(imgsz, augment=False) -> Letterbox(imgsz, scaleup=False)``. Every output is
(imgsz, imgsz, 3); finish with :func:`~yolov12.data.augment.formatting.to_training_arrays`.

The hyper-parameters are the training config's one augmentation schema,
:class:`~yolov12.config.train.AugmentSection`, so a value out of range is refused where the config is made.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yolov12.config.base import ConfigError
from yolov12.config.train import AugmentSection
from yolov12.data.augment.affine import RandomAffine
from yolov12.data.augment.compose import Compose
from yolov12.data.augment.letterbox import Letterbox
from yolov12.data.augment.mixing import CopyPaste, MixUp
from yolov12.data.augment.mosaic import Mosaic, ResizeLongSide, SampleDataset
from yolov12.data.augment.photometric import RandomFlip, RandomHSV
from yolov12.data.augment.policy import AugmentPolicy
from yolov12.data.augment.policy_transform import PolicyTransform

logger = logging.getLogger(__name__)


class AugmentConfigError(ConfigError):
    """The augmentation settings do not fit how the pipeline is built (e.g. mosaic without a dataset)."""


def augment_section(hyp: AugmentSection | Mapping[str, Any] | None) -> AugmentSection:
    """The augmentation settings: the config's augment section itself, or one made from a mapping's keys.

    Keys of a mapping that are not augmentation settings (``lr0``, ``epochs``, ...) are ignored, so a full
    hyper-parameter set may be passed; missing keys take the defaults.

    Raises:
        ConfigError: a value outside its range; the message names the key, the value and the range.

    Example:
        >>> augment_section({"translate": 0.2, "lr0": 0.01}).translate
        0.2
    """
    if hyp is None:
        return AugmentSection()
    if isinstance(hyp, AugmentSection):
        return hyp
    return AugmentSection.from_overrides(
        {key: value for key, value in hyp.items() if key in AugmentSection.model_fields and value is not None})


class DetectionTransforms(Compose):
    """The training pipeline; ``set_epoch`` closes mosaic/mixup/copy-paste for the last ``close_mosaic`` epochs.

    Call ``set_epoch`` before each epoch's iterator is created: DataLoader workers copy the pipeline when they
    start (use ``persistent_workers=False``, or rebuild the loader when mosaic closes).
    """

    def __init__(self, transforms: list[Any], params: AugmentSection) -> None:
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
    hyp: AugmentSection | Mapping[str, Any] | None,
    imgsz: int,
    dataset: SampleDataset | None = None,
    training: bool = True,
    policy: AugmentPolicy | Mapping[str, Any] | str | Path | None = None,
) -> Compose:
    """The detection pipeline for training or validation.

    Args:
        hyp: the config's augment section, or a mapping with its (Ultralytics) key names; see
            :func:`augment_section`.
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
    params = augment_section(hyp)
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
