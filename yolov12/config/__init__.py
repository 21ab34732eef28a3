"""Typed, validated configuration objects shared by the Python API, the CLI, YAML files and (later) Ray jobs."""

from yolov12.config.base import ConfigError, Section
from yolov12.config.predict import PredictConfig

__all__ = ["ConfigError", "PredictConfig", "Section"]
