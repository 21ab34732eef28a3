"""Fixtures of the data-layer tests: small images and YOLO datasets written into tmp_path, an isolated sample root."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest


def write_image(path: Path, height: int = 64, width: int = 80, seed: int = 0) -> Path:
    """Write a small random BGR image (format from the suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def image_writer() -> Callable[..., Path]:
    """``image_writer(path, height=64, width=80, seed=0)`` writes a random image."""
    return write_image


@pytest.fixture
def yolo_dataset(tmp_path: Path) -> Callable[..., Path]:
    """``yolo_dataset(labels: {stem: text}, split="train", names=("a","b","c"))`` -> data.yaml of a YOLO dataset.

    Each stem gets a 64x80 JPEG under ``images/<split>/`` and, unless its text is None, ``labels/<split>/<stem>.txt``.
    """

    def build(labels: dict[str, str | None], split: str = "train", names=("a", "b", "c"), root: Path | None = None):
        root = root or tmp_path / "ds"
        for index, (stem, text) in enumerate(labels.items()):
            write_image(root / "images" / split / f"{stem}.jpg", seed=index)
            if text is not None:
                label = root / "labels" / split / f"{stem}.txt"
                label.parent.mkdir(parents=True, exist_ok=True)
                label.write_text(text, encoding="utf-8")
        yaml_path = root / "data.yaml"
        yaml_path.write_text(
            f"path: {root}\ntrain: images/{split}\nval: images/{split}\nnames: {list(names)}\n", encoding="utf-8"
        )
        return yaml_path

    return build


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$YOLOV12_DATASETS`` pointed at a session temp folder, so built-in datasets are built once per session."""
    root = tmp_path_factory.mktemp("datasets")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("YOLOV12_DATASETS", str(root))
        yield root
