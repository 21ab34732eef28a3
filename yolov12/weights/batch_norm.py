"""BatchNorm ``eps`` / ``momentum`` of a model as plain data: read from a model, kept in metadata, applied on load.

A state dict holds a BatchNorm's weights and running statistics but not its ``eps`` (which changes every output) or
its ``momentum`` (which changes training). A checkpoint's metadata therefore records them: the values most of the
model's BatchNorms share, and each module that differs, by its module path (the state-dict prefix of its tensors)::

    {"eps": 1e-05, "momentum": 0.1, "modules": {"model.0.bn": {"eps": 0.001, "momentum": 0.03}}}

``momentum`` is null for a cumulative average (PyTorch's meaning of ``momentum=None``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from torch import nn

from yolov12.models.architecture import BatchNormSettings
from yolov12.weights.budget import short_repr
from yolov12.weights.errors import CheckpointError, CheckpointMetadataError

__all__ = ["apply_batch_norms", "batch_norm_layers", "describe_batch_norms", "parse_batch_norm_document"]

DOCUMENT_KEYS = ("eps", "momentum", "modules")
SHOWN_PATHS = 5  # how many offending module paths an error message lists


def batch_norm_layers(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm of ``model`` by module path (``model.0.bn``)."""
    return {path: layer for path, layer in model.named_modules()
            if isinstance(layer, nn.modules.batchnorm._BatchNorm)}


def describe_batch_norms(model: nn.Module) -> dict[str, Any] | None:
    """The metadata document of ``model``'s BatchNorm settings; None when it has no BatchNorm (e.g. fused).

    The model-wide values are those most BatchNorms share (the first in module order on a tie); ``modules`` lists
    the others.

    Example:
        >>> describe_batch_norms(build_model(load_architecture("yolov12n-cls")))  # doctest: +SKIP
        {'eps': 1e-05, 'momentum': 0.1, 'modules': {}}
    """
    settings = {path: BatchNormSettings(layer.eps, layer.momentum) for path, layer in batch_norm_layers(model).items()}
    if not settings:
        return None
    common = Counter(settings.values()).most_common(1)[0][0]
    exceptions = {path: _plain(value) for path, value in settings.items() if value != common}
    return {**_plain(common), "modules": exceptions}


def parse_batch_norm_document(document: Any) -> tuple[BatchNormSettings, dict[str, BatchNormSettings]]:
    """Validate a metadata document; returns ``(model-wide settings, settings by module path)``.

    Raises:
        CheckpointMetadataError: a document of the wrong shape or a value out of range (the message names where).
    """
    if not isinstance(document, dict) or set(document) != set(DOCUMENT_KEYS):
        got = short_repr(list(document)) if isinstance(document, dict) else f"a {type(document).__name__}"
        raise CheckpointMetadataError(
            f"batch_norm must be an object with exactly the keys {list(DOCUMENT_KEYS)}, got {got}")
    common = _settings(document, "batch_norm")
    modules = document["modules"]
    if not isinstance(modules, dict) or not all(isinstance(path, str) for path in modules):
        raise CheckpointMetadataError(
            f"batch_norm.modules must map module paths to {{eps, momentum}}, got {type(modules).__name__}")
    by_path = {path: _settings(value, f"batch_norm.modules[{short_repr(path)}]") for path, value in modules.items()}
    return common, by_path


def apply_batch_norms(
    model: nn.Module, default: BatchNormSettings | None, by_path: Mapping[str, BatchNormSettings], origin: str,
    error: type[CheckpointError] = CheckpointMetadataError,
) -> None:
    """Set each BatchNorm of ``model`` to its entry in ``by_path``, else to ``default`` (None: leave it as built).

    Raises:
        error: a path in ``by_path`` that is not a BatchNorm of ``model`` (nothing is changed then).
    """
    layers = batch_norm_layers(model)
    unknown = [path for path in by_path if path not in layers]
    if unknown:
        name = getattr(getattr(model, "config", None), "name", type(model).__name__)
        shown = ", ".join(short_repr(path) for path in unknown[:SHOWN_PATHS])
        raise error(
            f"{origin}: {len(unknown)} BatchNorm settings name modules that are not BatchNorms of the model "
            f"'{name}' (e.g. {shown}); the file's BatchNorm settings belong to another architecture")
    for path, layer in layers.items():
        chosen = by_path.get(path, default)
        if chosen is not None:
            layer.eps, layer.momentum = chosen.eps, chosen.momentum


def _settings(value: Any, where: str) -> BatchNormSettings:
    if not isinstance(value, dict) or "eps" not in value or "momentum" not in value:
        raise CheckpointMetadataError(f"{where} must be an object with 'eps' and 'momentum', got {short_repr(value)}")
    try:
        return BatchNormSettings(value["eps"], value["momentum"])
    except ValueError as exc:
        raise CheckpointMetadataError(f"{where}: {exc}") from None


def _plain(settings: BatchNormSettings) -> dict[str, float | None]:
    return {"eps": settings.eps, "momentum": settings.momentum}
