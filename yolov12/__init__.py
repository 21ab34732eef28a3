"""yolov12: the YOLOv12 model library (model zoo, weights, inference) — usable without Ray.

``from yolov12 import YOLO`` is the entry point; see :class:`yolov12.yolo.YOLO`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["YOLO", "__version__"]

try:  # pragma: no cover - depends on how the package was installed
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("yolov12-platform")
except PackageNotFoundError:  # pragma: no cover
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from yolov12.yolo import YOLO


def __getattr__(name: str):
    """Import the facade lazily so that ``import yolov12`` stays cheap."""
    if name == "YOLO":
        from yolov12.yolo import YOLO  # noqa: PLC0415

        return YOLO
    raise AttributeError(f"module 'yolov12' has no attribute {name!r}")
