"""Start training from other weights (``pretrained=``): copy every tensor whose name and shape match.

Unlike :func:`~yolov12.models.load_model`, nothing has to fit strictly: a checkpoint with another class count (its
classification head is skipped), another scale (only tensors of equal shape move) or a bare state dict gives what
it can, and the count is logged (``transferred 349/355 tensors from yolov12n.pt``). Nothing is downloaded: ``True``
means the model's zoo checkpoint on this machine (:data:`WEIGHTS_DIRS`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

__all__ = ["WEIGHT_SUFFIXES", "PretrainedWeightsError", "apply_pretrained", "find_zoo_weights", "load_pretrained",
           "pretrained_path", "read_tensors", "transfer_tensors", "weights_dirs"]

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


class PretrainedWeightsError(FileNotFoundError):
    """The pretrained weights asked for are not on this machine or hold no tensors; the message says where to put
    them."""


def weights_dirs() -> list[Path]:
    """Where ``pretrained=True`` looks: the working folder, then ``~/.cache/yolov12-platform/weights``."""
    return [Path.cwd(), Path.home() / ".cache" / "yolov12-platform" / "weights"]


def find_zoo_weights(name: str) -> Path | None:
    """The first ``<name>.safetensors`` / ``.pt`` / ``.pth`` in :func:`weights_dirs` (None when there is none)."""
    for folder in weights_dirs():
        for suffix in WEIGHT_SUFFIXES:
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a weights file, by state-dict name: native ``.safetensors``, an Ultralytics / YOLOv12
    ``.pt`` (its ``ema`` or ``model``, read by the restricted unpickler; no code runs) or a bare state dict."""
    from yolov12.weights import read_foreign_checkpoint  # noqa: PLC0415 - yolov12.weights builds on yolov12.models
    from yolov12.weights.placeholders import is_module_placeholder, placeholder_state_dict  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"pretrained={path}: no such file (nothing is downloaded); pass a local "
                                     f"{' / '.join(WEIGHT_SUFFIXES)} file")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file  # noqa: PLC0415

        return load_file(str(path), device="cpu")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise PretrainedWeightsError(f"pretrained={path}: unknown weights format '{path.suffix}'; pass a "
                                     f"{' / '.join(WEIGHT_SUFFIXES)} file")
    checkpoint = read_foreign_checkpoint(path)
    if isinstance(checkpoint, dict):
        for entry in ("ema", "model"):
            if is_module_placeholder(checkpoint.get(entry)):
                return dict(placeholder_state_dict(checkpoint[entry]))
        tensors = {str(k): v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise PretrainedWeightsError(f"pretrained={path}: no model tensors in it (expected an Ultralytics / YOLOv12 "
                                 "checkpoint with 'model' or 'ema', or a state dict)")


def transfer_tensors(model: nn.Module, tensors: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Copy into ``model`` each of ``tensors`` whose name and shape match its state dict; (copied, model's total)."""
    own = model.state_dict()
    matched = {name: value.to(own[name].dtype) for name, value in tensors.items()
               if name in own and own[name].shape == value.shape}
    model.load_state_dict(matched, strict=False)
    return len(matched), len(own)


def pretrained_path(model: nn.Module, pretrained: bool | str, name: str | None = None) -> Path | None:
    """The weights file ``pretrained`` names for ``model`` (None for False), checked to exist.

    Args:
        model: the model to start from these weights.
        pretrained: True (the zoo checkpoint ``name`` found in :func:`weights_dirs`), False, or a weights path.
        name: the zoo name of the model (``yolov12n``); default ``model.config.name``.

    Raises:
        PretrainedWeightsError: no such local file (for True the message lists where it looks).
    """
    if pretrained is False:
        return None
    if pretrained is not True:
        path = Path(pretrained)
        if not path.is_file():
            raise PretrainedWeightsError(f"pretrained={path}: no such file (nothing is downloaded); pass a local "
                                         f"{' / '.join(WEIGHT_SUFFIXES)} file")
        return path
    name = name or getattr(getattr(model, "config", None), "name", None) or type(model).__name__
    path = find_zoo_weights(name)
    if path is None:
        places = " or ".join(str(folder) for folder in weights_dirs())
        raise PretrainedWeightsError(
            f"pretrained=True: no {name}{{{','.join(WEIGHT_SUFFIXES)}}} in {places} (nothing is downloaded); put the "
            f"checkpoint there, pass pretrained=path/to/weights, or pretrained=False")
    return path


def load_pretrained(model: nn.Module, path: str | Path) -> int:
    """Copy the matching tensors of ``path`` into ``model``, log ``transferred N/M tensors``; returns N.

    Raises:
        PretrainedWeightsError: not a weights file, or none of its tensors fits the model.
    """
    copied, total = transfer_tensors(model, read_tensors(path))
    if copied == 0:
        raise PretrainedWeightsError(f"pretrained={path}: none of its tensors fits the model (names or shapes "
                                     "differ); is it a checkpoint of this architecture?")
    logger.info("pretrained: transferred %d/%d tensors from %s", copied, total, path)
    return copied


def apply_pretrained(model: nn.Module, pretrained: bool | str, name: str | None = None) -> int:
    """:func:`pretrained_path` then :func:`load_pretrained`; 0 for False.

    Example:
        >>> apply_pretrained(model, "yolo12n.pt")  # doctest: +SKIP
        349
    """
    path = pretrained_path(model, pretrained, name)
    return load_pretrained(model, path) if path is not None else 0
