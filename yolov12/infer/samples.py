"""Bundled sample photos (``yolov12/assets``) used when ``predict()`` is given no source."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

_SAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png")


def sample_images() -> list[Path]:
    """Paths of the bundled sample images, sorted by name (see ``yolov12/assets/README.md`` for their licences).

    Example:
        >>> [p.name for p in sample_images()]
        ['astronaut.jpg', 'coffee.jpg']
    """
    folder = resources.files("yolov12").joinpath("assets")
    paths = sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.lower().endswith(_SAMPLE_SUFFIXES))
    if not paths:
        raise FileNotFoundError(f"no sample images in {folder}; the yolov12 package data was not installed")
    return paths
