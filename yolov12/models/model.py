"""YOLO models: a routed list of layers built from an architecture config, with fuse() and info()."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from yolov12.models.architecture import ArchitectureConfig
from yolov12.models.builder import BuiltLayer, build_layers
from yolov12.nn.conv import Conv
from yolov12.nn.dyhead import SharedConvLevelNorm
from yolov12.nn.heads import Classify, Detect

logger = logging.getLogger(__name__)

STRIDE_PROBE_SIZE = 256


def default_class_names(num_classes: int) -> dict[int, str]:
    """COCO names for 80-class detectors, ``class<i>`` otherwise."""
    if num_classes == 80:
        from yolov12.data.coco import COCO80_NAMES  # noqa: PLC0415 - small data module

        return dict(enumerate(COCO80_NAMES))
    return {i: f"class{i}" for i in range(num_classes)}


class YOLOModel(nn.Module):
    """Base for detection and classification models.

    The layers live in ``self.model`` (an ``nn.ModuleList``) so state-dict keys read ``model.<index>.<...>`` as in
    published checkpoints. ``self.layers`` holds each layer's routing.
    """

    task: str = ""

    def __init__(self, config: ArchitectureConfig, names: dict[int, str] | None = None) -> None:
        super().__init__()
        self.config = config
        self.model, self.layers = build_layers(config)
        self._keep = {s for layer in self.layers for s in _sources(layer) if s != -1}
        self.names: dict[int, str] = dict(names) if names else default_class_names(config.num_classes)
        if len(self.names) != config.num_classes:
            raise ValueError(f"{len(self.names)} class names given for a model with {config.num_classes} classes")

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def run_layers(self, x: torch.Tensor, stop: int | None = None, keep_all: bool = False) -> tuple[Any, list]:
        """Run layers ``0..stop-1`` with their routing; returns (last output, per-layer outputs).

        Outputs are kept only where a later layer reads them, unless ``keep_all``.
        """
        outputs: list[Any] = []
        for layer, module in zip(self.layers[:stop], self.model[:stop]):
            if layer.source != -1:
                x = outputs[layer.source] if isinstance(layer.source, int) else [
                    x if s == -1 else outputs[s] for s in layer.source
                ]
            x = module(x)
            outputs.append(x if keep_all or layer.index in self._keep else None)
        return x, outputs

    def forward_layers(self, x: torch.Tensor, stop: int | None = None) -> Any:
        """Run layers ``0..stop-1`` (all by default); returns the last layer's output."""
        return self.run_layers(x, stop)[0]

    def forward(self, x: torch.Tensor) -> Any:
        """(B, C, H, W) float images in [0, 1] -> head output (see the head's docstring)."""
        return self.forward_layers(x)

    @property
    def head(self) -> nn.Module:
        return self.model[-1]

    @torch.no_grad()
    def fuse(self) -> YOLOModel:
        """Fold every BatchNorm into its convolution for inference (in place); returns self."""
        for module in list(self.modules()):  # a list: fusing replaces children
            if isinstance(module, (Conv, SharedConvLevelNorm)):
                module.fuse()
        return self

    @property
    def is_fused(self) -> bool:
        return not any(isinstance(m, nn.BatchNorm2d) for m in self.modules())

    def info(self, verbose: bool = True, image_size: int | None = None, include_attention: bool = False) -> dict:
        """Layer table and summary: parameters, gradients, GFLOPs (fused-model convention); printed when verbose.

        GFLOPs count convolutions and linear layers of the Conv+BN-fused model at ``image_size`` (640 for detectors,
        224 for classifiers), attention matmuls excluded unless ``include_attention``.
        """
        from yolov12.utils.model_info import model_summary  # noqa: PLC0415 - keeps the model module small

        return model_summary(self, verbose=verbose, image_size=image_size, include_attention=include_attention)


class DetectionModel(YOLOModel):
    """Anchor-free detector: eval output (B, 4 + nc, A) with (cx, cy, w, h) boxes in input pixels."""

    task = "detect"

    def __init__(self, config: ArchitectureConfig, names: dict[int, str] | None = None) -> None:
        super().__init__(config, names)
        if not isinstance(self.head, Detect):
            raise ValueError(f"{config.name}: a detection model must end with Detect, found {type(self.head).__name__}")
        self.head.stride = self._probe_strides()
        self.head.initialize_biases()

    @property
    def stride(self) -> torch.Tensor:
        return self.head.stride

    @torch.no_grad()
    def _probe_strides(self) -> torch.Tensor:
        """Strides of the head's input levels, from one eval-mode pass (leaves BatchNorm statistics untouched)."""
        was_training = self.training
        self.eval()
        probe = torch.zeros(1, self.config.input_channels, STRIDE_PROBE_SIZE, STRIDE_PROBE_SIZE)
        maps = self.forward_raw(probe)
        self.train(was_training)
        return torch.tensor([STRIDE_PROBE_SIZE / m.shape[-2] for m in maps])

    def forward_raw(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-level raw head maps (B, 4*16 + nc, H_i, W_i), in any mode."""
        _, outputs = self.run_layers(x, stop=-1, keep_all=True)
        return self.head.forward_maps([outputs[s] for s in _sources(self.layers[-1])])


class ClassificationModel(YOLOModel):
    """Image classifier: training output logits (B, nc); eval output probabilities (B, nc)."""

    task = "classify"

    def __init__(self, config: ArchitectureConfig, names: dict[int, str] | None = None) -> None:
        super().__init__(config, names)
        if not isinstance(self.head, Classify):
            raise ValueError(f"{config.name}: a classification model must end with Classify")

    @property
    def stride(self) -> torch.Tensor:
        return torch.tensor([32.0])


def _sources(layer: BuiltLayer) -> tuple[int, ...]:
    return layer.source if isinstance(layer.source, tuple) else (layer.source,)


MODEL_CLASSES: dict[str, type[YOLOModel]] = {"detect": DetectionModel, "classify": ClassificationModel}


def build_model(config: ArchitectureConfig, names: dict[int, str] | None = None) -> YOLOModel:
    """Build the model class that matches ``config.task``."""
    return MODEL_CLASSES[config.task](config, names)
