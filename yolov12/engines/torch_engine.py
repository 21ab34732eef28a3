"""The PyTorch backend: a live YOLOModel (or a checkpoint) run eagerly, or compiled with ``torch.compile``."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yolov12.engine.precision import cpu_has_native_bf16
from yolov12.engines.base import ArrayLike, BaseEngine, EngineError, EngineInfo
from yolov12.infer.device import select_device
from yolov12.models.loading import load_model_with_metadata
from yolov12.tasks import TASKS
from yolov12.utils.stride import max_stride
from yolov12.weights import LOADERS

logger = logging.getLogger(__name__)


class TorchEngine(BaseEngine):
    """PyTorch inference of a YOLOModel, eager or compiled.

    Args:
        model: a detection or classification YOLOModel (moved to ``device`` in place; its train/eval mode is restored
            after every forward), or a path to a ``.safetensors`` / ``.pt`` checkpoint.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``N`` or ``mps``.
        half: fp16 weights on a GPU; on the CPU the weights stay fp32 and the forward runs under bf16 autocast
            (compiled: only on a CPU with native bf16, else fp32).
        compile: run a fused, channels-last copy of the model through ``torch.compile`` (:class:`CompiledModel`);
            the live model is left as it is.
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
        self.model = model.to(self.device)
        if fuse:
            self.model.eval().fuse()
        self.compiled = CompiledModel(self.model, self.device, half) if compile else None
        if self.compiled is not None:
            self.fp16, self.bf16_autocast = self.compiled.fp16, self.compiled.bf16_autocast
        else:
            self.fp16 = half and self.device.type != "cpu"
            self.bf16_autocast = half and self.device.type == "cpu"
            if self.fp16:
                self.model.half()
        self.input_dtype = torch.float16 if self.fp16 else torch.float32
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
        if self.compiled is not None:
            return self.compiled(images)
        was_training = self.model.training
        self.model.eval()
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16_autocast else contextlib.nullcontext()
        try:
            with autocast:
                return self.model(images)
        finally:
            self.model.train(was_training)

    def forward(self, images: ArrayLike) -> np.ndarray:
        output = self.forward_tensor(images)
        if output.dtype != torch.float32:
            output = output.float()
        return output.cpu().numpy() if output.device.type != "cpu" else output.numpy()


_LOGGED_SHAPES: set[tuple] = set()
"""(model layout, input shape, dtype, device, autocast, memory format) whose first compiled forward this process has
logged."""


class CompiledModel:
    """``torch.compile`` of an inference copy of a YOLOModel: eval mode, Conv+BN fused, channels-last, no gradients.

    The copy is the engine's own, so a live model that is still being trained is neither fused nor converted; it is
    taken when the engine is built, so weights trained after that need a new engine (``predict`` builds one per call).

    Precision: fp32; with ``half``, fp16 weights and inputs on a GPU, bf16 autocast on a CPU with native bf16
    (AVX512-BF16 or AMX, read at run time), and fp32 on other CPUs, where bf16 would be emulated and slower.

    Compile cost: dynamo traces the model and inductor generates and builds kernels (C++/OpenMP on the CPU, Triton on
    CUDA) during the first forward of each input shape; that forward is timed and logged once per process. A second
    batch size compiles once more with a dynamic batch dimension that then serves every batch size; each new image
    size compiles again (up to ``torch._dynamo.config.recompile_limit`` shapes; past it torch runs that shape
    eagerly). Engines built later from the same model in the same process reuse the compiled code.

    What torch caches on disk: inductor's FX graph cache (turned on here) and AOTAutograd's cache keep the generated
    and built kernels, keyed by the graph, the input shapes and dtypes, the torch version and inductor's settings, in
    ``TORCHINDUCTOR_CACHE_DIR``, which is set to ``<project cache>/torchinductor`` (``$YOLOV12_CACHE``, default
    ``~/.cache/yolov12-platform``) unless it is already set. A second process then skips code generation and the
    C++ builds. What it does not cache: dynamo's tracing and guards run again in every process (seconds per shape),
    and nothing carries over to another torch version, device, precision or changed model code.

    Args:
        model: the live model (copied, not changed).
        device: where the copy runs.
        half: reduced precision as above.
        channels_last: NHWC weights and inputs (faster convolutions on CPUs and tensor cores); False keeps NCHW.
    """

    def __init__(self, model: nn.Module, device: torch.device, half: bool = False,
                 channels_last: bool = True) -> None:
        import torch._dynamo  # noqa: PLC0415 - the compiler stack loads only when compile=True

        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.fp16 = half and device.type != "cpu"
        self.bf16_autocast = half and device.type == "cpu" and cpu_has_native_bf16()
        if half and device.type == "cpu" and not self.bf16_autocast:
            logger.info("compile with half=True: this CPU has no native bf16 (AVX512-BF16 or AMX), so the compiled "
                        "model runs in fp32")
        self.module = inference_copy(model, device, self.fp16, self.memory_format)
        self._layout = hash(tuple((name, tuple(t.shape)) for name, t in self.module.state_dict().items()))
        logger.debug("torch.compile caches kernels in %s", use_project_inductor_cache())
        self._compiled = torch.compile(self.module, options={"fx_graph_cache": True})

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) input on ``device`` -> the model's eval output; the first call per shape compiles."""
        images = images.contiguous(memory_format=self.memory_format)
        key = (self._layout, tuple(images.shape), images.dtype, str(self.device), self.bf16_autocast,
               str(self.memory_format))
        start = time.perf_counter()
        output = self._run(images)
        if key not in _LOGGED_SHAPES:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            _LOGGED_SHAPES.add(key)
            logger.info("torch.compile: first forward at %s took %.1f s (compile); later calls reuse it",
                        "x".join(str(n) for n in images.shape), time.perf_counter() - start)
        return output

    def _run(self, images: torch.Tensor) -> torch.Tensor:
        """The compiled forward; a missing compiler toolchain becomes one :class:`EngineError`.

        ``capture_scalar_outputs``: the detect head reads its strides as Python floats when it builds the anchor
        grid; captured as graph values they keep the model one graph instead of about twenty pieces split there.
        """
        from torch._dynamo.exc import BackendCompilerFailed  # noqa: PLC0415
        from torch._inductor.exc import CppCompileError, InvalidCxxCompiler  # noqa: PLC0415

        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16_autocast else contextlib.nullcontext()
        try:
            with torch.no_grad(), autocast, torch._dynamo.config.patch(capture_scalar_outputs=True):
                return self._compiled(images)
        except (BackendCompilerFailed, InvalidCxxCompiler, CppCompileError) as error:
            problem = toolchain_problem(error)
            if problem is None:
                raise
            raise EngineError(f"torch.compile could not build the model's kernels: {problem}; or predict with "
                              "compile=False (eager PyTorch)") from None


def inference_copy(model: nn.Module, device: torch.device, fp16: bool = False,
                   memory_format: torch.memory_format = torch.channels_last) -> nn.Module:
    """A copy of ``model`` on ``device`` for compiled inference: eval, Conv+BN fused, in ``memory_format``, fp16
    weights when asked, no gradients."""
    module = copy.deepcopy(model).eval()
    if not getattr(module, "is_fused", True):
        module.fuse()
    module = module.to(device, memory_format=memory_format)
    if fp16:
        module.half()
    return module.requires_grad_(False)


def use_project_inductor_cache() -> str:
    """Point inductor's caches at ``<project cache>/torchinductor`` unless ``TORCHINDUCTOR_CACHE_DIR`` is already set
    (by the user, or by torch itself after an earlier compile in this process); returns the folder in use."""
    from yolov12.data.remote import cache_root  # noqa: PLC0415 - the project's cache folder, resolved when called

    return os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root() / "torchinductor"))


def toolchain_problem(error: BaseException) -> str | None:
    """What is missing when ``error`` (or an error it wraps) comes from inductor's compiler toolchain; else None."""
    from torch._inductor.exc import CppCompileError, InvalidCxxCompiler, TritonMissing  # noqa: PLC0415

    current: BaseException | None = error
    for _ in range(8):  # the wrapping chain is a few links long; a bound guards against a cycle
        if current is None:
            return None
        if isinstance(current, InvalidCxxCompiler):
            return (f"no working C++ compiler for inductor on the CPU ({current}); install one (apt install g++) or "
                    "set CXX to it")
        if isinstance(current, CppCompileError):
            return f"the C++ build of a kernel failed ({_first_error_line(current.output)}); install what it names"
        if isinstance(current, TritonMissing):
            return "Triton is not installed, which inductor needs on a GPU (pip install triton)"
        current = getattr(current, "inner_exception", None) or current.__cause__ or current.__context__
    return None


def _first_error_line(output: str) -> str:
    lines = [line.strip() for line in str(output).splitlines() if line.strip()]
    return next((line for line in lines if "error" in line.lower()), lines[0] if lines else "no compiler output")


def _load_checkpoint(path: Path) -> tuple[nn.Module, int | None]:
    if path.suffix.lower() not in LOADERS:
        raise EngineError(f"the torch backend loads checkpoints ({', '.join(sorted(LOADERS))}), not '{path.name}'")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    model, metadata = load_model_with_metadata(path)
    return model, getattr(metadata, "image_size", None)
