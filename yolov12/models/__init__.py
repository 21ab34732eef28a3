"""Model zoo: architecture configs, the layer registry, the builder and the model classes."""

from yolov12.models.architecture import ArchitectureConfig, ArchitectureError
from yolov12.models.model import ClassificationModel, DetectionModel, YOLOModel, build_model
from yolov12.models.zoo import UnknownModelError, load_architecture, zoo_names

__all__ = [
    "ArchitectureConfig", "ArchitectureError", "ClassificationModel", "DetectionModel", "UnknownModelError",
    "YOLOModel", "build_model", "load_architecture", "zoo_names",
]
