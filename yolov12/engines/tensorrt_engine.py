"""The TensorRT backend (NVIDIA GPUs, tensorrt >= 10): runs a ``.engine`` written by ``export format=engine``.

Loading checks, in order: tensorrt and a CUDA GPU are present (else one line naming what is missing and
``pip install 'yolov12-platform[gpu]'``), the file has our header, and the header's TensorRT version and GPU compute
capability match this machine (else :class:`EngineCompatibilityError` saying which differs). Buffers are torch CUDA
tensors; inference is enqueued on torch's current stream.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from yolov12.engines.base import ArrayLike, BaseEngine, EngineError, EngineInfo
from yolov12.export.tensorrt import check_compatibility, read_engine_header, require_tensorrt

logger = logging.getLogger(__name__)


class TensorRTEngine(BaseEngine):
    """A deserialized TensorRT engine with one input (``images``) and one output.

    Args:
        path: the ``.engine`` file.
        device: ``cuda`` / ``cuda:N`` (``cpu`` is refused: TensorRT runs on NVIDIA GPUs only).
    """

    def __init__(self, path: str | Path, device: str = "cuda") -> None:
        trt = require_tensorrt("load")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TensorRT engine '{path}' does not exist")
        text = str(device).strip().lower()
        if text == "cpu":
            text = "cuda"
            logger.info("TensorRT runs on the GPU; ignoring device=cpu")
        self.device = torch.device(f"cuda:{text}" if text.isdigit() else text)
        index = self.device.index or 0
        header, offset = read_engine_header(path)
        capability = torch.cuda.get_device_capability(index)
        check_compatibility(header, trt.__version__, (capability[0], capability[1]), origin=f"'{path}'")
        self.header = header
        self._trt = trt
        with torch.cuda.device(index):
            runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = runtime.deserialize_cuda_engine(path.read_bytes()[offset:])
            if self.engine is None:
                raise EngineError(f"TensorRT could not deserialize '{path}' (damaged file?)")
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineError(f"'{path}' has inputs {inputs} and outputs {outputs}; expected one of each")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = torch.float16 if self.engine.get_tensor_dtype(self.input_name) == trt.float16 \
            else torch.float32
        shape = tuple(self.engine.get_tensor_shape(self.input_name))
        if shape[0] < 0:
            low, _, high = self.engine.get_tensor_profile_shape(self.input_name, 0)
            min_batch, max_batch = int(low[0]), int(high[0])
        else:
            min_batch = max_batch = int(shape[0])
        meta = header.metadata
        self.info = EngineInfo(
            backend="tensorrt", task=meta.task, names=meta.names, stride=meta.stride,
            imgsz=(int(shape[2]), int(shape[3])), dynamic_imgsz=False, min_batch=min_batch, max_batch=max_batch,
            end2end=meta.end2end, input_dtype="float16" if self.input_dtype == torch.float16 else "float32",
            device=str(self.device), precision="int8" if meta.int8 else "fp16" if meta.half else "fp32",
            artifact=str(path), metadata=meta.to_dict(),
        )

    def forward(self, images: ArrayLike) -> np.ndarray:
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        batch = images.to(self.device, self.input_dtype, non_blocking=True).contiguous()
        self.context.set_input_shape(self.input_name, tuple(batch.shape))
        out_shape = tuple(self.context.get_tensor_shape(self.output_name))
        out_dtype = torch.float16 if self.engine.get_tensor_dtype(self.output_name) == self._trt.float16 \
            else torch.float32
        output = torch.empty(out_shape, dtype=out_dtype, device=self.device)
        self.context.set_tensor_address(self.input_name, batch.data_ptr())
        self.context.set_tensor_address(self.output_name, output.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise EngineError("TensorRT execution failed (see the TensorRT log)")
        stream.synchronize()
        return output.float().cpu().numpy()
