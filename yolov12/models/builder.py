"""Build the layer list of a model from an :class:`ArchitectureConfig`."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

from torch import nn

from yolov12.models.architecture import ArchitectureConfig, ArchitectureError, BatchNormSettings, LayerDef
from yolov12.models.registry import LayerType, lookup_layer_type
from yolov12.models.scale_rules import block_keyword_arguments, uses_legacy_detect_head


@dataclass(frozen=True)
class BuiltLayer:
    """A constructed layer with its routing: ``source`` (-1 = previous layer) and resolved arguments."""

    index: int
    source: int | tuple[int, ...]
    repeats: int
    module_name: str
    arguments: tuple
    out_channels: int


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= x."""
    return int(math.ceil(x / divisor) * divisor)


def _resolve_arg(value, num_classes: int):
    if value == "nc":
        return num_classes
    if value == "None":
        return None
    return value


def _instantiate(layer_type: LayerType, args: list, kwargs: dict, where: str) -> nn.Module:
    signature = inspect.signature(layer_type.factory)
    try:
        bound = signature.bind(*args)
    except TypeError as exc:
        raise ArchitectureError(
            f"{where}: arguments {args} do not fit {layer_type.factory.__name__}{signature}: {exc}"
        ) from None
    bound.arguments.update(kwargs)
    return layer_type.factory(*bound.args, **bound.kwargs)


def build_layers(config: ArchitectureConfig) -> tuple[nn.ModuleList, list[BuiltLayer]]:
    """Construct every layer; returns the modules and their routing table."""
    scale = config.scale_factors
    channels: list[int] = []
    modules: list[nn.Module] = []
    table: list[BuiltLayer] = []
    input_channels = config.input_channels
    for index, layer in enumerate(config.layers):
        where = f"{config.name} layer {index} ({layer.module}): "
        layer_type = lookup_layer_type(layer.module, where)
        sources = layer.source if isinstance(layer.source, tuple) else (layer.source,)
        for s in sources:
            if not -1 <= s < index:
                raise ArchitectureError(f"{where}'from' index {s} must refer to an earlier layer")
        source_channels = [input_channels if (s == -1 and index == 0) else channels[s] for s in sources]
        repeats = max(round(layer.repeats * scale.depth), 1) if layer.repeats > 1 else layer.repeats
        args = [_resolve_arg(a, config.num_classes) for a in layer.args]
        module, out_channels, repeats = _build_one(layer, layer_type, args, source_channels, repeats, config, where)
        modules.append(module)
        channels.append(out_channels)
        table.append(BuiltLayer(index, layer.source, repeats, layer.module, tuple(args), out_channels))
    layers = nn.ModuleList(modules)
    set_batch_norm(layers, config.batch_norm)
    return layers, table


def set_batch_norm(module: nn.Module, settings: BatchNormSettings) -> int:
    """Give every BatchNorm under ``module`` the ``eps`` and ``momentum`` of ``settings``; returns how many.

    Layers build their BatchNorms with the detection values (``yolov12.nn.conv.BN_EPS``); the builder applies the
    architecture's own convention (:attr:`ArchitectureConfig.batch_norm`) here, in one place.
    """
    count = 0
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.eps, layer.momentum = settings.eps, settings.momentum
            count += 1
    return count


def _build_one(
    layer: LayerDef, layer_type: LayerType, args: list, source_channels: list[int], repeats: int,
    config: ArchitectureConfig, where: str,
) -> tuple[nn.Module, int, int]:
    scale = config.scale_factors
    c1 = source_channels[0]
    kwargs: dict = {}
    if layer_type.channels == "scaled":
        c2 = args[0]
        if c2 != config.num_classes:
            c2 = make_divisible(min(c2, scale.max_channels) * scale.width, 8)
        args = [c1, c2, *args[1:]]
        if layer_type.repeatable:
            args.insert(2, repeats)
            repeats = 1
        kwargs = block_keyword_arguments(layer.module.removeprefix("nn."), config)
    elif layer_type.channels == "fuse":  # a fusion node: (channels of every input, c2 scaled, *rest)
        c2 = make_divisible(min(args[0], scale.max_channels) * scale.width, 8)
        args = [tuple(source_channels), c2, *args[1:]]
    elif layer_type.channels == "classify":
        c2 = args[0]
        args = [c1, *args]
    elif layer_type.channels == "concat":
        c2 = sum(source_channels)
    elif layer_type.channels == "same":
        c2 = c1
    else:  # detect
        c2 = 0
        args = [args[0] if args else config.num_classes, tuple(source_channels)]
        kwargs = {"legacy": uses_legacy_detect_head(config)}
    if repeats > 1:
        module = nn.Sequential(*(_instantiate(layer_type, args, kwargs, where) for _ in range(repeats)))
    else:
        module = _instantiate(layer_type, args, kwargs, where)
    return module, c2, repeats
