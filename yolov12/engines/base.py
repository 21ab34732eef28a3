"""The one inference-engine contract shared by predict and serving.

An engine takes a preprocessed batch — (B, 3, H, W) float RGB in [0, 1], numpy or torch — and returns the raw model
output as a float32 numpy array in the PyTorch head's layout:

- detection: (B, 4 + nc, A), boxes (cx, cy, w, h) in input pixels, then sigmoid class scores;
- detection exported with ``nms=True`` (``info.end2end``): (B, max_det, 6) x1, y1, x2, y2, score, class;
- classification: (B, nc) probabilities.

:class:`EngineInfo` says what input the engine accepts (size, whether it is dynamic, batch limits), which task and
classes it has, and which backend runs it. :class:`BaseEngine` implements the checks and the batching rules once:
inputs of the wrong shape raise :class:`EngineInputError`; a batch larger than a fixed/maximum batch is split, and a
short batch for a fixed-batch engine is zero-padded (the padding's outputs are dropped).

:meth:`BaseEngine.run_canvas` takes the batch one step earlier, as the library prepares it: the (B, H, W, 3) uint8
BGR canvas of :func:`yolov12.infer.preprocess.letterbox_batch` (or the classification crop). Engines whose graph can
convert it themselves (``info.canvas_input``: OpenVINO's pre-processing steps) skip the Python float conversion, a
full pass over the batch that writes four bytes per input byte; the others convert it here. Predict and serving use it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from yolov12.utils.stride import round_up_to_stride

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor


class EngineError(RuntimeError):
    """An engine could not be loaded or run; the message names the artifact / backend and the fix."""


class EngineInputError(ValueError):
    """The batch handed to an engine has the wrong shape for it."""


@dataclass(frozen=True)
class EngineInfo:
    """What an engine runs and accepts.

    Attributes:
        backend: ``torch``, ``onnxruntime``, ``openvino`` or ``tensorrt``.
        task: ``detect`` or ``classify``.
        names: class index -> name.
        stride: largest model stride; dynamic input sizes must be multiples of it.
        imgsz: (height, width) the engine was built for (the preferred size when dynamic).
        dynamic_imgsz: any (height, width) that are multiples of ``stride`` are accepted.
        min_batch: smallest batch the engine runs.
        max_batch: largest batch per run (None: unbounded); ``min_batch == max_batch`` is a fixed batch.
        end2end: NMS is inside the model; output (B, max_det, 6).
        input_dtype: ``float32`` or ``float16``: what the engine feeds the model (inputs are converted).
        device: where it runs (``cpu``, ``cuda:0``, ``CPU``...).
        precision: compute precision in effect (``fp32``, ``fp16``, ``bf16``, ``int8``).
        artifact: the file / folder it was loaded from (``<in-memory model>`` for a live torch model).
        metadata: the artifact's export metadata as a dict (empty for a live model).
        canvas_input: :meth:`BaseEngine.run_canvas` hands the uint8 canvas to the engine, which converts it in its
            graph (scale, BGR -> RGB, HWC -> CHW), instead of converting it in Python first.
    """

    backend: str
    task: str
    names: dict[int, str]
    stride: int
    imgsz: tuple[int, int]
    dynamic_imgsz: bool
    min_batch: int = 1
    max_batch: int | None = None
    end2end: bool = False
    input_dtype: str = "float32"
    device: str = "cpu"
    precision: str = "fp32"
    artifact: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    canvas_input: bool = False

    @property
    def fixed_batch(self) -> int | None:
        """The batch size when the engine only runs exactly that many images, else None."""
        return self.max_batch if self.max_batch is not None and self.max_batch == self.min_batch else None


@runtime_checkable
class Engine(Protocol):
    """What predict and serving rely on: ``engine(batch) -> raw output`` plus :class:`EngineInfo`."""

    info: EngineInfo

    def __call__(self, images: ArrayLike) -> np.ndarray: ...

    def warmup(self, runs: int = 1) -> None: ...


class BaseEngine(ABC):
    """Shared input checks and batching; subclasses implement :meth:`forward` for a batch they can run."""

    info: EngineInfo

    # -- shortcuts ---------------------------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self.info.backend

    @property
    def task(self) -> str:
        return self.info.task

    @property
    def names(self) -> dict[int, str]:
        return self.info.names

    @property
    def stride(self) -> int:
        return self.info.stride

    @property
    def imgsz(self) -> tuple[int, int]:
        return self.info.imgsz

    # -- running -----------------------------------------------------------------------------------------------------
    @abstractmethod
    def forward(self, images: ArrayLike) -> np.ndarray:
        """Run one batch the engine accepts as is (size and batch already checked); float32 numpy output."""

    def __call__(self, images: ArrayLike) -> np.ndarray:
        """Raw output for a (B, 3, H, W) batch; see the module docstring for the layout."""
        self.check_input(images)
        return self._batched(images, self.forward)

    def run_canvas(self, canvas: np.ndarray) -> np.ndarray:
        """Raw output for a (B, H, W, 3) uint8 BGR canvas (see the module docstring): converted in the engine's graph
        when ``info.canvas_input``, else to the (B, 3, H, W) float input here."""
        if not self.info.canvas_input:
            return self(canvas_to_float_nchw(canvas))
        shape = tuple(canvas.shape)
        if len(shape) != 4 or shape[3] != 3 or canvas.dtype != np.uint8:
            raise EngineInputError(f"{self.info.backend} engine expects a (B, H, W, 3) uint8 canvas, got shape "
                                   f"{shape} of {canvas.dtype}")
        self.check_shape((shape[0], 3, shape[1], shape[2]))
        return self._batched(np.ascontiguousarray(canvas), self.forward_canvas)

    def forward_canvas(self, canvas: np.ndarray) -> np.ndarray:
        """:meth:`forward` for a (B, H, W, 3) uint8 BGR canvas; engines with ``info.canvas_input`` implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not take the uint8 canvas (info.canvas_input=False)")

    def _batched(self, images: ArrayLike, forward: Any) -> np.ndarray:
        """``forward`` over ``images`` split and padded to the batches the engine runs (batch = first axis)."""
        count = int(images.shape[0])
        fixed, limit = self.info.fixed_batch, self.info.max_batch
        if fixed is None and (limit is None or count <= limit) and count >= self.info.min_batch:
            return forward(images)
        step = fixed or limit or count
        outputs = []
        for start in range(0, count, step):
            chunk = images[start:start + step]
            real = int(chunk.shape[0])
            if (fixed and real < fixed) or real < self.info.min_batch:
                chunk = _pad_batch(chunk, fixed or self.info.min_batch)
            outputs.append(forward(chunk)[:real])
        return np.concatenate(outputs, 0)

    def check_input(self, images: ArrayLike) -> None:
        """Raise :class:`EngineInputError` unless ``images`` is a (B, 3, H, W) batch of a size this engine runs."""
        self.check_shape(tuple(images.shape))

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """:meth:`check_input` of a batch of (B, 3, H, W) ``shape``."""
        if len(shape) != 4 or shape[1] != 3 or shape[0] < 1:
            raise EngineInputError(
                f"{self.info.backend} engine expects a (B, 3, H, W) float batch in [0, 1], got shape {shape}"
            )
        height, width = shape[2:]
        if self.info.dynamic_imgsz:
            stride = self.info.stride
            if height % stride or width % stride:
                raise EngineInputError(
                    f"input size {height}x{width} is not a multiple of the model stride {stride}; letterbox to "
                    f"e.g. {round_up_to_stride(height, stride)}x{round_up_to_stride(width, stride)}"
                )
        elif (height, width) != tuple(self.info.imgsz):
            h, w = self.info.imgsz
            raise EngineInputError(
                f"{self.info.artifact or self.info.backend} was exported for {h}x{w} inputs, got {height}x{width}; "
                f"use imgsz={h if h == w else [h, w]} or export with dynamic_imgsz=True"
            )

    def warmup(self, runs: int = 1) -> None:
        """Run ``runs`` forwards on a zero batch (first runs allocate memory and pick kernels)."""
        batch = self.info.fixed_batch or self.info.min_batch
        height, width = self.info.imgsz
        dtype = np.float16 if self.info.input_dtype == "float16" else np.float32
        zeros = np.zeros((batch, 3, height, width), dtype=dtype)
        for _ in range(runs):
            self.forward(zeros)

    def __repr__(self) -> str:
        info = self.info
        limit = info.max_batch or "any"
        batch = f"batch {info.fixed_batch}" if info.fixed_batch else f"batch {info.min_batch}..{limit}"
        size = "dynamic size" if info.dynamic_imgsz else f"{info.imgsz[0]}x{info.imgsz[1]}"
        return (f"{type(self).__name__}({info.artifact!r}, task={info.task}, {len(info.names)} classes, {size}, "
                f"{batch}, device={info.device}, precision={info.precision})")


def run_on_canvas(engine: Engine, canvas: np.ndarray) -> np.ndarray:
    """Raw output of ``engine`` for a (B, H, W, 3) uint8 BGR canvas: :meth:`BaseEngine.run_canvas`, or the float
    input for an engine that only implements the :class:`Engine` protocol."""
    if hasattr(engine, "run_canvas"):
        return engine.run_canvas(canvas)
    return engine(canvas_to_float_nchw(canvas))


def canvas_to_float_nchw(canvas: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """A (B, H, W, 3) uint8 BGR canvas -> the (B, 3, H, W) float32 RGB input in [0, 1] of this contract, in one pass.

    One numpy ufunc over a BGR->RGB, HWC->CHW view of the canvas: the division reads each byte once and writes each
    float once; values equal ``x / 255`` in float32 exactly, as torch computes it. Written into ``out`` when given
    and of that shape.
    """
    batch, height, width, _ = canvas.shape
    if out is None or out.shape != (batch, 3, height, width) or out.dtype != np.float32:
        out = np.empty((batch, 3, height, width), dtype=np.float32)
    np.divide(canvas.transpose(0, 3, 1, 2)[:, ::-1], np.float32(255.0), out=out, dtype=np.float32)
    return out


def as_numpy(images: ArrayLike, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """A contiguous numpy array of ``dtype`` (zero-copy for contiguous CPU float32 inputs)."""
    if isinstance(images, torch.Tensor):
        images = images.detach()
        if images.device.type != "cpu":
            images = images.cpu()
        images = images.numpy() if images.dtype != torch.bfloat16 else images.float().numpy()
    array = np.asarray(images)
    if array.dtype != dtype:
        array = array.astype(dtype)
    return np.ascontiguousarray(array)


def _pad_batch(chunk: ArrayLike, size: int) -> ArrayLike:
    missing = size - int(chunk.shape[0])
    if isinstance(chunk, torch.Tensor):
        return torch.cat((chunk, chunk.new_zeros((missing, *chunk.shape[1:]))), 0)
    return np.concatenate((chunk, np.zeros((missing, *chunk.shape[1:]), dtype=chunk.dtype)), 0)
