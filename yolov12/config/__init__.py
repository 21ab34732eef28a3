"""Typed, validated configuration objects shared by the Python API, the CLI, YAML files and Ray jobs.

``PredictConfig`` and ``ValConfig`` are loaded on first use: their defaults read ``yolov12.settings``, which builds on
:mod:`yolov12.config.base`, so importing the package must not import them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from yolov12.config.base import ConfigError, Section

if TYPE_CHECKING:
    from yolov12.config.predict import PredictConfig
    from yolov12.config.val import ValConfig

__all__ = ["ConfigError", "PredictConfig", "Section", "ValConfig"]
_LAZY = {"PredictConfig": "yolov12.config.predict", "ValConfig": "yolov12.config.val"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'yolov12.config' has no attribute {name!r}")
