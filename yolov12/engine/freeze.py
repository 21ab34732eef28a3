"""``freeze=N | [i, j, ...]``: layers that keep their weights while the rest trains.

A frozen layer's parameters get ``requires_grad=False`` (so :func:`~yolov12.engine.optim.build_optimiser` leaves
them out); its norm layers stay in eval mode while training (:func:`keep_frozen_norms_in_eval`), so their running
statistics are not moved by the new data either. Layers are the model's top-level rows (``model.<i>.``); the DFL
projection is always frozen (it is a fixed integral, not a learned layer).
"""

from __future__ import annotations

import logging

from torch import nn

from yolov12.config.base import ConfigError

logger = logging.getLogger(__name__)

ALWAYS_FROZEN = (".dfl.",)


def frozen_layer_indices(freeze: int | list[int] | None, num_layers: int) -> list[int]:
    """The layer indices ``freeze`` names: the first N, or the listed ones (checked against ``num_layers``)."""
    if freeze is None:
        return []
    indices = list(range(freeze)) if isinstance(freeze, int) else sorted(set(freeze))
    if (isinstance(freeze, int) and freeze > num_layers) or any(i >= num_layers for i in indices):
        raise ConfigError(f"freeze={freeze}: the model has {num_layers} layers (0-{num_layers - 1}); freeze at most "
                          f"{num_layers} or list indices below {num_layers}")
    return indices


def freeze_layers(model: nn.Module, freeze: int | list[int] | None) -> int:
    """Freeze the layers ``freeze`` names (plus the DFL); returns the number of parameters (elements) frozen.

    Example:
        >>> frozen = freeze_layers(model, 10)  # the backbone of yolov12n  # doctest: +SKIP
    """
    layers = getattr(model, "model", None)
    num_layers = len(layers) if isinstance(layers, (nn.Sequential, nn.ModuleList)) else 0
    indices = frozen_layer_indices(freeze, num_layers)
    prefixes = tuple(f"model.{i}." for i in indices)
    frozen = 0
    for name, parameter in model.named_parameters():
        if name.startswith(prefixes):
            parameter.requires_grad_(False)
            frozen += parameter.numel()
        elif any(part in f".{name}" for part in ALWAYS_FROZEN):
            parameter.requires_grad_(False)
    if indices:
        total = sum(p.numel() for p in model.parameters())
        logger.info("freeze=%s: froze layers %s, %d/%d parameters", freeze, _ranges(indices), frozen, total)
    return frozen


def keep_frozen_norms_in_eval(model: nn.Module) -> None:
    """Put every batch norm whose parameters are all frozen into eval mode (call after ``model.train()``)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            parameters = list(module.parameters(recurse=False))
            if parameters and not any(p.requires_grad for p in parameters):
                module.eval()


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    parts, start = [], None
    for position, index in enumerate(indices):
        start = index if start is None else start
        if position + 1 == len(indices) or indices[position + 1] != index + 1:
            parts.append(f"{start}-{index}" if index > start else str(index))
            start = None
    return ", ".join(parts)
