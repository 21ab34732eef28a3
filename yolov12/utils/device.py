"""Resolve a device string (``cpu``, ``cuda``, ``cuda:N``, ``N``, ``mps``) to an available ``torch.device``."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine or with this torch build."""


def select_device(text: str | int | torch.device = "cpu") -> torch.device:
    """The ``torch.device`` for ``text``, checked to be usable.

    Raises:
        DeviceError: a GPU was requested but is not available (one line naming the device and the fix).

    Example:
        >>> select_device("cpu")
        device(type='cpu')
    """
    value = str(text).strip().lower()
    if value.isdigit():
        value = f"cuda:{value}"
    if value == "cpu":
        return torch.device("cpu")
    if value == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("device 'mps' requested but Apple MPS is not available here; use device=cpu")
        return torch.device("mps")
    if value == "cuda" or value.startswith("cuda:"):
        return _cuda_device(value)
    raise DeviceError(f"unknown device '{text}'; use 'cpu', 'cuda', 'cuda:N', a GPU index such as 0, or 'mps'")


def _cuda_device(value: str) -> torch.device:
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
        raise DeviceError(
            f"device '{value}' requested but CUDA is not available (torch {torch.__version__}, {build}); "
            "use device=cpu"
        )
    try:
        device = torch.device(value)
    except RuntimeError:
        raise DeviceError(f"invalid CUDA device '{value}'; use 'cuda' or 'cuda:N'") from None
    count = torch.cuda.device_count()
    index = device.index or 0
    if index >= count:
        raise DeviceError(f"device '{value}' requested but only {count} CUDA device(s) are visible (0..{count - 1})")
    return torch.device("cuda", index)
