"""Model zoo: architecture configs, the layer registry, the builder, the model classes and ``load_model``."""

from yolov12.models.architecture import ArchitectureConfig, ArchitectureError
from yolov12.models.loading import ModelLoadError, load_model, load_model_with_metadata
from yolov12.models.model import ClassificationModel, DetectionModel, YOLOModel, build_model
from yolov12.models.zoo import UnknownModelError, load_architecture, zoo_names

__all__ = [
    "ArchitectureConfig", "ArchitectureError", "ClassificationModel", "DetectionModel", "ModelLoadError",
    "UnknownModelError", "YOLOModel", "build_model", "load_architecture", "load_model", "load_model_with_metadata",
    "zoo_names",
]
