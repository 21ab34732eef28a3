"""Devices: ``auto`` (the best this machine has), ``cpu``, ``cuda``, ``cuda:N``, ``N``, ``mps``, and GPU lists.

A device setting is first *normalised* (what a config stores: :func:`normalise_device`) and later *resolved* to a
usable ``torch.device`` (:func:`select_device`). ``auto`` resolves to ``cuda:0``, else ``mps``, else ``cpu``, and the
choice is logged once per process with the device's name. A list of GPUs (``0,1``, ``[0, 1]``) is a training
setting: one process uses one device, so several GPUs mean one DDP worker per GPU (``yolov12 train device=0,1``
launches them through Ray Train when the pipelines package is installed).
"""

from __future__ import annotations

import functools
import logging
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

AUTO = "auto"
SINGLE_DEVICES = ("cpu", "cuda", "mps")


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine or with this torch build."""


def normalise_device(value: object) -> str:
    """The canonical text of a device setting, without checking that the device exists.

    ``None``/``""``/``"auto"`` -> ``"auto"``; ``0``/``"0"`` -> ``"cuda:0"``; ``"0,1"``/``[0, 1]``/``"cuda:0,1"`` ->
    ``"0,1"`` (a GPU list; one index collapses to ``"cuda:N"``); ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` as is.

    Raises:
        ValueError: the text names no device (one line with the accepted forms).

    Example:
        >>> normalise_device([0, 1]), normalise_device("1"), normalise_device(None)
        ('0,1', 'cuda:1', 'auto')
    """
    if value is None:
        return AUTO
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        parts = [str(v).strip() for v in value]
    else:
        text = str(value).strip().lower().replace(" ", "")
        if text in ("", AUTO, *SINGLE_DEVICES):
            return text or AUTO
        parts = text.removeprefix("cuda:").strip("[]()").split(",")
        if text.startswith("cuda:") and len(parts) == 1 and parts[0].isdigit():
            return f"cuda:{int(parts[0])}"
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"device {value!r} is not a device: use auto, cpu, cuda, cuda:N, mps, a GPU index such "
                         "as 0, or a list of GPU indices such as 0,1")
    indices = list(dict.fromkeys(int(p) for p in parts))
    return f"cuda:{indices[0]}" if len(indices) == 1 else ",".join(str(i) for i in indices)


def gpu_indices(device: object) -> list[int]:
    """The GPU indices of a multi-GPU setting (``"0,1"`` -> ``[0, 1]``); ``[]`` for a single device."""
    text = normalise_device(device)
    return [int(p) for p in text.split(",")] if "," in text else []


def best_device() -> str:
    """``cuda:0`` when a CUDA GPU is visible, else ``mps`` (Apple), else ``cpu``."""
    if torch.cuda.is_available():
        return "cuda:0"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def select_device(text: str | int | torch.device | None = AUTO) -> torch.device:
    """The ``torch.device`` for a device setting, checked to be usable.

    Raises:
        DeviceError: the device is not available here, or a GPU list was given where one process needs one device
            (one line naming the device and the fix).

    Example:
        >>> select_device("cpu")
        device(type='cpu')
    """
    try:
        value = normalise_device(text)
    except ValueError as exc:
        raise DeviceError(f"unknown device {text!r}; use 'auto', 'cpu', 'cuda', 'cuda:N', a GPU index such as 0, "
                          "or 'mps'") from exc
    if "," in value:
        raise DeviceError(f"device={value} names {len(gpu_indices(value))} GPUs, but this runs in one process on one "
                          "device; pick one (device=0), or train on several with yolov12 train device=" + value)
    if value == AUTO:
        value = best_device()
        _log_auto_choice(value)
    if value == "cpu":
        return torch.device("cpu")
    if value == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("device 'mps' requested but Apple MPS is not available here; use device=cpu")
        return torch.device("mps")
    return _cuda_device(value)


def check_gpus(indices: list[int]) -> None:
    """Raise :class:`DeviceError` unless every GPU index in ``indices`` is visible."""
    for index in indices:
        _cuda_device(f"cuda:{index}")


def device_name(device: torch.device) -> str:
    """A readable name: the GPU model (``NVIDIA H100 80GB HBM3``), ``Apple MPS``, or the CPU model and cores."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"{cpu_model()}, {torch.get_num_threads()} threads"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


@functools.cache
def _log_auto_choice(value: str) -> None:
    logger.info("device=auto: using %s (%s)", value, device_name(torch.device(value)))


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
