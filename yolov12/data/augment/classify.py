"""Classification transforms on (H, W, 3) uint8 BGR arrays, built from albumentations.

Training: random resized crop (scale 0.08-1, ratio 3/4-4/3) -> flips -> the AutoAlbument-Lite policy's ops, if
any (on RGB, as in detection) -> colour jitter (brightness and contrast ±hsv_v, saturation ±hsv_s, hue ±hsv_h, as
Ultralytics' classification recipe uses ColorJitter) -> optional random erasing; normalisation happens in the model
step. Validation: shorter side to ``imgsz`` then centre crop. Without boxes albumentations costs little over the
raw ops, so everything here is albumentations, in one ``A.Compose`` (seeded as one pipeline per loader worker).

A policy's ops all apply to a classification image as they are: the geometric ones (``Affine``, ``Perspective``)
and ``CoarseDropout`` move or hide pixels of the image alone (a label has nothing to follow them). Its magnitude
schedule follows the epoch through :meth:`ClassificationTransforms.set_epoch`, as for detection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from yolov12.data.augment._albumentations import load_albumentations
from yolov12.data.augment.policy import AugmentPolicy, load_policy
from yolov12.data.augment.policy_transform import build_policy_ops

if TYPE_CHECKING:
    import albumentations as A

logger = logging.getLogger(__name__)


def swap_red_blue(image: np.ndarray, **_: Any) -> np.ndarray:
    """BGR <-> RGB (the policy's ``ToGray`` and ``CLAHE`` weight the channels as RGB)."""
    return np.ascontiguousarray(image[..., ::-1])


class ClassificationTransforms:
    """``(H, W, 3) uint8 BGR -> (imgsz, imgsz, 3) uint8 BGR``; pickles as its settings (rebuilt in each worker).

    Args:
        imgsz: output side.
        training: augment (random crop, flips, policy, jitter, erasing) or resize + centre crop.
        policy: AutoAlbument-Lite policy applied after the flips when training (:func:`build_classification_transforms`
            also takes a dict, file or shipped name).
        settings: the augmentation strengths of :func:`build_classification_transforms`.
    """

    def __init__(self, imgsz: int, training: bool, policy: AugmentPolicy | None = None, **settings: Any) -> None:
        self.imgsz = imgsz
        self.training = training
        self.settings = settings
        self.policy = policy if training else None
        self.magnitude_scale = policy.schedule.factor(0, 1) if self.policy else 1.0
        self._compose: A.Compose | None = None
        self._build()  # validate now

    def set_epoch(self, epoch: int, total_epochs: int) -> None:
        """Scale the policy's magnitudes by its schedule's factor for this epoch (rebuilt on the next call)."""
        if self.policy is None:
            return
        scale = self.policy.schedule.factor(epoch, total_epochs)
        if scale != self.magnitude_scale:
            logger.debug("classification policy: epoch %d/%d, magnitude factor %.3f", epoch, total_epochs, scale)
            self.magnitude_scale = scale
            self._compose = None

    @property
    def compose(self) -> A.Compose:
        """The ``A.Compose`` in use (built on first use, e.g. in a loader worker, so that it can be seeded)."""
        return self._compose if self._compose is not None else self._build()

    def _policy_steps(self) -> list[Any]:
        if self.policy is None or not self.policy.ops:
            return []
        albumentations = load_albumentations()
        return [albumentations.Lambda(image=swap_red_blue, p=1.0),
                *build_policy_ops(self.policy, self.magnitude_scale),
                albumentations.Lambda(image=swap_red_blue, p=1.0)]

    def _build(self) -> A.Compose:
        albumentations = load_albumentations()
        size, s = self.imgsz, self.settings
        if not self.training:
            steps = [albumentations.SmallestMaxSize(max_size=size), albumentations.CenterCrop(size, size)]
        else:
            steps = [
                albumentations.RandomResizedCrop(size=(size, size), scale=s["scale"], ratio=s["ratio"]),
                albumentations.HorizontalFlip(p=s["fliplr"]),
                albumentations.VerticalFlip(p=s["flipud"]),
                *self._policy_steps(),
            ]
            if s["hsv_h"] or s["hsv_s"] or s["hsv_v"]:
                steps.append(
                    albumentations.ColorJitter(
                        brightness=s["hsv_v"], contrast=s["hsv_v"], saturation=s["hsv_s"], hue=s["hsv_h"], p=1.0
                    )
                )
            if s["erasing"] > 0:
                steps.append(albumentations.Erasing(p=s["erasing"], fill=0))
        self._compose = albumentations.Compose(steps)
        return self._compose

    def __call__(self, image_bgr: np.ndarray) -> np.ndarray:
        return self.compose(image=image_bgr)["image"]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_compose"] = None
        return state

    def __repr__(self) -> str:
        policy = f", policy=[{', '.join(op.name for op in self.policy.ops)}]" if self.policy else ""
        return f"ClassificationTransforms(imgsz={self.imgsz}, training={self.training}, {self.settings}{policy})"


def build_classification_transforms(
    imgsz: int = 224,
    training: bool = True,
    hsv_h: float = 0.015,
    hsv_s: float = 0.4,
    hsv_v: float = 0.4,
    fliplr: float = 0.5,
    flipud: float = 0.0,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    erasing: float = 0.0,
    policy: AugmentPolicy | Mapping[str, Any] | str | Path | None = None,
) -> ClassificationTransforms:
    """Classification augmentation (training) or resize + centre crop (validation).

    Args:
        imgsz: output side.
        training: augment or not.
        hsv_h, hsv_s, hsv_v: colour jitter strengths (hue fraction of the circle, saturation and brightness/contrast
            factors 1 ± value).
        fliplr, flipud: flip probabilities.
        scale, ratio: random resized crop area fraction and aspect ratio ranges.
        erasing: probability of random erasing.
        policy: AutoAlbument-Lite policy (object, dict, YAML/JSON file or shipped name) applied after the flips
            when training; ignored for validation.

    Example:
        >>> transform = build_classification_transforms(224, training=False)
        >>> transform(np.zeros((300, 400, 3), np.uint8)).shape
        (224, 224, 3)
    """
    for name, value in (("fliplr", fliplr), ("flipud", flipud), ("erasing", erasing)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}={value!r} is a probability; use a value in [0, 1]")
    return ClassificationTransforms(
        imgsz,
        training,
        load_policy(policy) if policy is not None and training else None,
        hsv_h=hsv_h,
        hsv_s=hsv_s,
        hsv_v=hsv_v,
        fliplr=fliplr,
        flipud=flipud,
        scale=tuple(scale),
        ratio=tuple(ratio),
        erasing=erasing,
    )
