"""The PyTorch backend: a live YOLOModel (or a checkpoint) run eagerly, optionally through ``torch.compile``."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yolov12.engines.base import ArrayLike, BaseEngine, EngineError, EngineInfo
from yolov12.infer.device import select_device
from yolov12.models.loading import load_model_with_metadata
from yolov12.tasks import TASKS
from yolov12.utils.stride import max_stride
from yolov12.weights import LOADERS

logger = logging.getLogger(__name__)


class TorchEngine(BaseEngine):
    """Eager PyTorch inference of a YOLOModel.

    Args:
        model: a detection or classification YOLOModel (moved to ``device`` in place; its train/eval mode is restored
            after every forward), or a path to a ``.safetensors`` / ``.pt`` checkpoint.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``N`` or ``mps``.
        half: fp16 weights on a GPU; on the CPU the weights stay fp32 and the forward runs under bf16 autocast.
        compile: wrap the forward in ``torch.compile`` (first calls per input shape compile; later ones are faster).
        fuse: fold Conv+BN first (in place; done for checkpoints, off by default for a live model that may still be
            trained).
        imgsz: preferred input size reported in ``info`` (any multiple of the stride runs).
        threads: torch intra-op threads (process-wide setting; None leaves it).
    """

    def __init__(
        self,
        model: nn.Module | str | Path,
        device: str | torch.device = "cpu",
        half: bool = False,
        compile: bool = False,  # noqa: A002 - the torch name
        fuse: bool | None = None,
        imgsz: int | tuple[int, int] | None = None,
        threads: int | None = None,
    ) -> None:
        artifact = "<in-memory model>"
        checkpoint_size = None
        if isinstance(model, (str, Path)):
            artifact = str(model)
            model, checkpoint_size = _load_checkpoint(Path(model))
            fuse = True if fuse is None else fuse
        task = getattr(model, "task", None)
        if task not in TASKS:
            raise ValueError(f"cannot predict with a model whose task is {task!r}; supported tasks: {', '.join(TASKS)}")
        if threads:
            torch.set_num_threads(threads)
        self.device = select_device(device)
        self.fp16 = half and self.device.type != "cpu"
        self.bf16_autocast = half and self.device.type == "cpu"
        self.model = model.to(self.device)
        if fuse:
            self.model.eval().fuse()
        if self.fp16:
            self.model.half()
        self.input_dtype = torch.float16 if self.fp16 else torch.float32
        self._forward = torch.compile(self.model) if compile else self.model
        stride = max_stride(model)
        size = imgsz or checkpoint_size or TASKS[task].default_image_size
        self.info = EngineInfo(
            backend="torch", task=task, names=dict(model.names), stride=stride,
            imgsz=(size, size) if isinstance(size, int) else (int(size[0]), int(size[1])), dynamic_imgsz=True,
            min_batch=1, max_batch=None, end2end=False, input_dtype="float16" if self.fp16 else "float32",
            device=str(self.device), precision="fp16" if self.fp16 else "bf16" if self.bf16_autocast else "fp32",
            artifact=artifact,
        )

    @torch.no_grad()
    def forward_tensor(self, images: ArrayLike) -> torch.Tensor:
        """The model's eval output as a tensor on the engine's device (no copy to numpy).

        ``no_grad`` rather than ``inference_mode``: the detect head caches anchors, and inference tensors in that
        cache would break a later training step on the same model.
        """
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        images = images.to(self.device, self.input_dtype, non_blocking=True)
        was_training = self.model.training
        self.model.eval()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16_autocast else contextlib.nullcontext()
        try:
            with autocast:
                return self._forward(images)
        finally:
            self.model.train(was_training)

    def forward(self, images: ArrayLike) -> np.ndarray:
        output = self.forward_tensor(images)
        if output.dtype != torch.float32:
            output = output.float()
        return output.cpu().numpy() if output.device.type != "cpu" else output.numpy()


def _load_checkpoint(path: Path) -> tuple[nn.Module, int | None]:
    if path.suffix.lower() not in LOADERS:
        raise EngineError(f"the torch backend loads checkpoints ({', '.join(sorted(LOADERS))}), not '{path.name}'")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    model, metadata = load_model_with_metadata(path)
    return model, getattr(metadata, "image_size", None)
