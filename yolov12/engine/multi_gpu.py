"""``device=0,1``: training on several GPUs of this machine, one DDP worker per GPU, through a launcher plugin.

The core library never starts processes (see :func:`yolov12.engine.trainer.fit`). A package that can launch DDP
workers registers a function under the ``yolov12.launchers`` entry point group with the name ``gpus``; the
pipelines package registers its Ray Train job (a local Ray with one worker per GPU), so ``YOLO.train(device="0,1")``
and ``yolov12 train device=0,1`` train exactly like ``yolov12 train-ray`` would. Without such a package the request
is refused in one line naming the command that does it.

A launcher (:func:`gpu_launcher_for`) is called as ``launcher(model_source, config, gpus, callbacks)`` and returns a
:class:`~yolov12.engine.trainer.FitResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from yolov12.utils.device import DeviceError, check_gpus
from yolov12.utils.extras import MissingExtraError

if TYPE_CHECKING:
    from yolov12.config.train import TrainConfig
    from yolov12.engine.trainer import FitResult

LAUNCHER_GROUP = "yolov12.launchers"
GPU_LAUNCHER = "gpus"
GpuLauncher = Callable[[str, "TrainConfig", list[int], list[Any]], "FitResult"]


class LauncherMissingError(DeviceError):
    """Several GPUs were asked for, but no installed package can launch DDP workers."""


def find_gpu_launcher() -> GpuLauncher | None:
    """The registered multi-GPU launcher, or None when no installed package provides one."""
    for entry in metadata.entry_points(group=LAUNCHER_GROUP):
        if entry.name == GPU_LAUNCHER:
            try:
                return entry.load()
            except MissingExtraError:  # the package is there, its extra (Ray, MLflow) is not
                return None
    return None


def gpu_launcher_for(gpus: list[int]) -> GpuLauncher:
    """The launcher that trains on ``gpus`` (called ``launcher(model_source, config, gpus, callbacks)``).

    Raises:
        LauncherMissingError: the pipelines package with its extra (``yolov12-platform[ray]``) is not installed.
        DeviceError: one of ``gpus`` is not visible here.
    """
    launcher = find_gpu_launcher()
    if launcher is None:
        devices = ",".join(str(g) for g in gpus)
        raise LauncherMissingError(
            f"device={devices} trains with DDP, one Ray Train worker per GPU, which needs the pipelines package: "
            f"pip install 'yolov12-platform[ray]', then yolov12 train device={devices} ... (or yolov12 train-ray "
            f"scaling.num_workers={len(gpus)} scaling.use_gpu=true ...)"
        )
    check_gpus(gpus)
    return launcher
