"""The ``model.info()`` report: a layer table and a one-line summary."""

from __future__ import annotations

import logging

from torch import nn

from yolov12.tasks import TASKS
from yolov12.utils.flops import count_gflops, count_parameters

logger = logging.getLogger(__name__)


def model_summary(model: nn.Module, verbose: bool = True, image_size: int | None = None,
                  include_attention: bool = False) -> dict:
    """Parameters, fused parameters and GFLOPs of a YOLO model; prints the layer table when ``verbose``."""
    spec = TASKS.get(getattr(model, "task", ""))
    image_size = image_size or (spec.default_image_size if spec else 640)
    config = model.config
    gflops = count_gflops(model, image_size, config.input_channels, include_attention=include_attention)
    summary = {
        "name": config.name,
        "task": model.task,
        "version": config.version,
        "layers": len(list(model.modules())),
        "parameters": count_parameters(model),
        "gradients": count_parameters(model, trainable_only=True),
        "image_size": image_size,
        "gflops": round(gflops, 4),
        "attention_included": include_attention,
    }
    if verbose:
        print(format_layer_table(model))
        attention = " (incl. attention matmuls)" if include_attention else ""
        print(f"{config.name} summary: {summary['layers']} layers, {summary['parameters']:,} parameters, "
              f"{summary['gradients']:,} gradients, {gflops:.2f} GFLOPs at {image_size}px{attention}")
    return summary


def format_layer_table(model: nn.Module) -> str:
    """One row per YAML layer: index, from, repeats, parameters, module, arguments."""
    rows = [f"{'':>4}{'from':>18}{'n':>4}{'params':>12}  {'module':<28}arguments"]
    for layer, module in zip(model.layers, model.model):
        params = sum(p.numel() for p in module.parameters())
        source = str(list(layer.source)) if isinstance(layer.source, tuple) else str(layer.source)
        rows.append(f"{layer.index:>4}{source:>18}{layer.repeats:>4}{params:>12,}  {type(module).__name__:<28}"
                    f"{list(layer.arguments)}")
    return "\n".join(rows)
