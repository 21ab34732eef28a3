"""Classification transforms on (H, W, 3) uint8 BGR arrays, built from albumentations.

Training: random resized crop (scale 0.08-1, ratio 3/4-4/3) -> flips -> colour jitter (brightness and contrast
±hsv_v, saturation ±hsv_s, hue ±hsv_h, as Ultralytics' classification recipe uses ColorJitter) -> optional random
erasing. Validation: shorter side to ``imgsz`` then centre crop. Without boxes albumentations costs little over the
raw ops, so everything here is albumentations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from yolov12.data.augment._albumentations import load_albumentations

if TYPE_CHECKING:
    import albumentations as A


class ClassificationTransforms:
    """``(H, W, 3) uint8 BGR -> (imgsz, imgsz, 3) uint8 BGR``; pickles as its settings (rebuilt in each worker)."""

    def __init__(self, imgsz: int, training: bool, **settings: Any) -> None:
        self.imgsz = imgsz
        self.training = training
        self.settings = settings
        self._compose: A.Compose | None = None
        self._build()  # validate now

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
        compose = self._compose if self._compose is not None else self._build()
        return compose(image=image_bgr)["image"]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_compose"] = None
        return state

    def __repr__(self) -> str:
        return f"ClassificationTransforms(imgsz={self.imgsz}, training={self.training}, {self.settings})"


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
        hsv_h=hsv_h,
        hsv_s=hsv_s,
        hsv_v=hsv_v,
        fliplr=fliplr,
        flipud=flipud,
        scale=tuple(scale),
        ratio=tuple(ratio),
        erasing=erasing,
    )
