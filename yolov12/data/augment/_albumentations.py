"""The one place that imports albumentations, without its import-time network call.

albumentations 2.0.8 asks PyPI for a newer release when it is imported (unless ``NO_ALBUMENTATIONS_UPDATE=1``): a
network request and a warning that recommends upgrading to the AGPL successor. Our rule is "no side effects at import"
and the licence rule is "stay on the MIT 2.0.x line", so every module here gets the package through
:func:`load_albumentations`, which sets that variable only for the duration of the first import and restores the
environment afterwards. Modules refer to albumentations types under ``TYPE_CHECKING`` only.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from types import ModuleType
from typing import Any

logger = logging.getLogger(__name__)

_NO_UPDATE_VARIABLE = "NO_ALBUMENTATIONS_UPDATE"


@functools.cache
def load_albumentations() -> ModuleType:
    """Import and return the ``albumentations`` module (cached), with its PyPI update check switched off."""
    previous = os.environ.get(_NO_UPDATE_VARIABLE)
    os.environ[_NO_UPDATE_VARIABLE] = "1"
    try:
        module = importlib.import_module("albumentations")
    finally:
        if previous is None:
            os.environ.pop(_NO_UPDATE_VARIABLE, None)
        else:
            os.environ[_NO_UPDATE_VARIABLE] = previous
    version = getattr(module, "__version__", "unknown")
    if not version.startswith("2.0."):
        logger.warning("albumentations %s found; this code is written and tested against the MIT 2.0.x line", version)
    return module


def pascal_voc_bbox_params(**overrides: Any) -> Any:
    """``A.BboxParams`` for our boxes: pixel x1,y1,x2,y2 with a ``classes`` label field, clipped to the image.

    ``indices`` is a second label field that lets callers find out which input boxes survived (to keep segments
    aligned with boxes).
    """
    albumentations = load_albumentations()
    settings: dict[str, Any] = {
        "format": "pascal_voc",
        "label_fields": ["classes", "indices"],
        "clip": True,
        "filter_invalid_bboxes": True,
        "min_width": 1.0,
        "min_height": 1.0,
    }
    settings.update(overrides)
    return albumentations.BboxParams(**settings)
