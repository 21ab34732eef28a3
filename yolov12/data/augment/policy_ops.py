"""The ops an AutoAlbument-Lite policy may name, and how magnitude (0..1) maps to each one's parameters.

Every op is an albumentations 2.0.8 transform used as it is; this table only says which parameters the magnitude
drives (at magnitude 1 roughly the library's own default strength, or a strong but still sensible one) and which fixed
settings we pass (grey 114 fill for geometric ops, like the rest of the pipeline). A policy's ``params`` override both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PAD_GREY = 114


def _odd_at_least_3(value: float) -> int:
    """The odd integer >= 3 closest to ``value`` (blur kernel sizes)."""
    rounded = max(3, round(value))
    return rounded if rounded % 2 else rounded + 1


@dataclass(frozen=True)
class OpSpec:
    """How one policy op becomes an albumentations transform.

    Attributes:
        transform: albumentations class name.
        by_magnitude: magnitude in [0, 1] -> keyword arguments.
        fixed: keyword arguments always passed (before ``params``).
        geometric: moves pixels (boxes and polygons must follow).
        description: what the magnitude controls, for error messages and docs.
    """

    transform: str
    by_magnitude: Callable[[float], dict[str, Any]]
    description: str
    fixed: dict[str, Any] = field(default_factory=dict)
    geometric: bool = False


OPS: dict[str, OpSpec] = {
    "HueSaturationValue": OpSpec(
        "HueSaturationValue",
        lambda m: {"hue_shift_limit": 20 * m, "sat_shift_limit": 30 * m, "val_shift_limit": 20 * m},
        "shifts up to ±20 hue, ±30 saturation, ±20 value at magnitude 1",
    ),
    "RandomBrightnessContrast": OpSpec(
        "RandomBrightnessContrast",
        lambda m: {"brightness_limit": 0.4 * m, "contrast_limit": 0.4 * m},
        "brightness and contrast limits ±0.4 at magnitude 1",
    ),
    "Blur": OpSpec(
        "Blur", lambda m: {"blur_limit": (3, _odd_at_least_3(3 + 6 * m))}, "box-blur kernel 3 up to 9 at magnitude 1"
    ),
    "MedianBlur": OpSpec(
        "MedianBlur", lambda m: {"blur_limit": (3, _odd_at_least_3(3 + 4 * m))}, "median kernel 3 up to 7"
    ),
    "MotionBlur": OpSpec(
        "MotionBlur", lambda m: {"blur_limit": (3, _odd_at_least_3(3 + 8 * m))}, "motion kernel 3 up to 11"
    ),
    "GaussNoise": OpSpec(
        "GaussNoise", lambda m: {"std_range": (0.0, 0.2 * m)}, "noise standard deviation up to 0.2 of the range"
    ),
    "CLAHE": OpSpec("CLAHE", lambda m: {"clip_limit": (1.0, 1.0 + 5.0 * m)}, "clip limit 1 up to 6"),
    "ToGray": OpSpec("ToGray", lambda m: {}, "no magnitude: only p matters"),
    "RandomGamma": OpSpec(
        "RandomGamma", lambda m: {"gamma_limit": (100 - 50 * m, 100 + 50 * m)}, "gamma 100±50 (percent)"
    ),
    "ImageCompression": OpSpec(
        "ImageCompression",
        lambda m: {"quality_range": (max(1, round(100 - 70 * m)), 100)},
        "JPEG quality down to 30 at magnitude 1",
    ),
    "Sharpen": OpSpec(
        "Sharpen", lambda m: {"alpha": (0.0, 0.5 * m), "lightness": (1.0, 1.0)}, "sharpening blend up to 0.5"
    ),
    "Affine": OpSpec(
        "Affine",
        lambda m: {"rotate": (-30 * m, 30 * m)},
        "rotation ±30 degrees at magnitude 1 (scale/translate/shear only through params)",
        fixed={"fill": PAD_GREY, "rotate_method": "largest_box"},
        geometric=True,
    ),
    "Perspective": OpSpec(
        "Perspective",
        lambda m: {"scale": (0.0, 0.1 * m)},
        "corner jitter up to 0.1 of the image size",
        fixed={"fill": PAD_GREY},
        geometric=True,
    ),
    "CoarseDropout": OpSpec(
        "CoarseDropout",
        lambda m: {
            "num_holes_range": (1, 1 + round(7 * m)),
            "hole_height_range": (0.02, 0.02 + 0.1 * m),
            "hole_width_range": (0.02, 0.02 + 0.1 * m),
        },
        "1 up to 8 holes of 2-12% of the image side",
        fixed={"fill": PAD_GREY},
    ),
}
