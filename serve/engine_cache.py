"""Where engines built from native weights are cached, and what a cached engine is tied to.

An ONNX model or an OpenVINO IR runs on any machine with its runtime, so its cache entry is keyed by the weights, the
backend, the image size and the batch. A serialized TensorRT engine is not portable: it runs only on GPUs of the
compute capability it was built for and only with the TensorRT version that built it (TensorRT 10's documentation,
"engine compatibility"), and an fp16 engine is another engine than an fp32 one. Its key therefore also names the
compute capability, the TensorRT version and the precision, so a replica on another GPU generation or image builds
its own engine instead of failing to deserialize a foreign one. An engine is also fixed to the input shapes of its
optimisation profile (the image size and the min/opt/max batch), and it is compiled from one ONNX graph: the key
names the profile and the ONNX's sha256, so a new exporter (another graph from the same weights) builds a new
engine instead of reusing one compiled from the old graph.

``python -m serve.engine_cache <yolov12 serve key=value ...>`` builds the engines of a Serve config into this cache
ahead of the deployment (a RayJob step on a GPU node of the same type; see docs/architecture.md).

Example:
    >>> BuildTarget.for_backend("onnxruntime").tag
    'portable'
    >>> BuildTarget.for_backend("tensorrt", capability=(8, 9), tensorrt_version="10.3.0").tag
    'sm89-trt10.3.0-fp16'
    >>> trt = BuildTarget.for_backend("tensorrt", capability=(8, 9), tensorrt_version="10.3.0")
    >>> EngineKey("abc", "tensorrt", 640, (1, 4, 8), trt, onnx_digest="0123456789abcdef").folder_name
    'abc-tensorrt-640x640-b1.4.8-sm89-trt10.3.0-fp16-onnx0123456789abcdef'
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_UNSAFE = re.compile(r"[^0-9A-Za-z.]+")


class EngineTargetError(RuntimeError):
    """The machine cannot build or run the engine asked for (one line: what is missing)."""


@dataclass(frozen=True)
class BuildTarget:
    """What a built engine is bound to beyond its weights and shapes (empty for portable formats)."""

    backend: str
    capability: tuple[int, int] | None = None
    runtime_version: str | None = None
    precision: str | None = None

    @classmethod
    def for_backend(cls, backend: str, *, capability: tuple[int, int] | None = None,
                    tensorrt_version: str | None = None) -> BuildTarget:
        """The target of ``backend``; TensorRT needs the GPU's compute capability and the TensorRT version."""
        if backend not in NON_PORTABLE:
            return cls(backend)
        if capability is None or not tensorrt_version:
            raise EngineTargetError("a TensorRT engine is keyed by the GPU's compute capability and the TensorRT "
                                    "version; both are needed (install tensorrt and run on an NVIDIA GPU)")
        return cls(backend, tuple(capability), tensorrt_version, "fp16")

    @property
    def tag(self) -> str:
        """A folder-name-safe text of the target: ``portable`` or ``sm89-trt10.3.0-fp16``."""
        if self.capability is None:
            return "portable"
        major, minor = self.capability
        version = _UNSAFE.sub("_", self.runtime_version or "")
        return f"sm{major}{minor}-trt{version}-{self.precision}"


def probe_tensorrt_target(device: str) -> BuildTarget:
    """The TensorRT target of this replica's GPU (``device`` ``cuda`` or ``cuda:N``)."""
    if importlib.util.find_spec("tensorrt") is None:
        raise EngineTargetError("backend tensorrt needs the tensorrt package: pip install 'yolov12-platform[gpu]'")
    import tensorrt  # noqa: PLC0415 - GPU machines only
    import torch  # noqa: PLC0415

    if not torch.cuda.is_available():
        raise EngineTargetError("backend tensorrt needs an NVIDIA GPU; this replica sees none (use onnxruntime or "
                                "openvino on the CPU)")
    index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
    return BuildTarget.for_backend("tensorrt", capability=torch.cuda.get_device_capability(index),
                                   tensorrt_version=tensorrt.__version__)


NON_PORTABLE: dict[str, Callable[[str], BuildTarget]] = {"tensorrt": probe_tensorrt_target}
"""Backends whose built engines are bound to the machine, with the probe that reads their target on this replica."""


def build_target(backend: str, device: str) -> BuildTarget:
    """The target an engine built here for ``backend`` on ``device`` is bound to."""
    probe = NON_PORTABLE.get(backend)
    return probe(device) if probe is not None else BuildTarget.for_backend(backend)


@dataclass(frozen=True)
class EngineKey:
    """What one cached engine depends on; :attr:`folder_name` is its cache key.

    Attributes:
        weights_digest: sha256 prefix of the native weights file.
        backend: ``onnxruntime``, ``openvino`` or ``tensorrt``.
        imgsz: square input size.
        batch_profile: (min, opt, max) batch of the engine (portable formats: only max is used).
        target: what the engine is bound to beyond weights and shapes (:class:`BuildTarget`).
        onnx_digest: sha256 prefix of the ONNX a TensorRT engine is compiled from (required for TensorRT).
    """

    weights_digest: str
    backend: str
    imgsz: int
    batch_profile: tuple[int, int, int]
    target: BuildTarget
    onnx_digest: str | None = None

    def __post_init__(self) -> None:
        if self.target.capability is not None and not self.onnx_digest:
            raise EngineTargetError(f"a {self.backend} engine is keyed by the sha256 of the ONNX it is built from; "
                                    "export the ONNX first and pass onnx_digest")

    @property
    def folder_name(self) -> str:
        """``<weights>-<backend>-<imgsz>-b<max>`` (portable) or, for TensorRT,
        ``<weights>-tensorrt-<h>x<w>-b<min>.<opt>.<max>-<target tag>-onnx<onnx digest>``."""
        low, opt, high = self.batch_profile
        if self.target.capability is None:
            return f"{self.weights_digest}-{self.backend}-{self.imgsz}-b{high}"
        return (f"{self.weights_digest}-{self.backend}-{self.imgsz}x{self.imgsz}-b{low}.{opt}.{high}-"
                f"{self.target.tag}-onnx{self.onnx_digest}")


def cache_folder(root: Path, key: EngineKey) -> Path:
    """The cache folder of one engine under ``root``."""
    return root / key.folder_name


def build_ahead(arguments: list[str]) -> int:
    """``python -m serve.engine_cache model=... [models=...] imgsz=640 max_batch_size=8 cache_dir=...``.

    Takes the ``yolov12 serve`` keys (:class:`serve.config.ServeAppConfig`) and builds, into ``cache_dir``, every
    engine a replica of that config would build (the default model and the multiplexed ones), then prints where
    each one is. Run it on a machine with the replicas' GPU type and TensorRT version (a TensorRT engine is bound to
    both) and a ``cache_dir`` the replicas mount at the same path; a replica then finds the engine and only loads it.
    """
    from serve.config import ServeAppConfig  # noqa: PLC0415 - the command only
    from serve.runtime import prepare_engine  # noqa: PLC0415 - serve.runtime imports this module
    from yolov12.cli.arguments import parse_key_values  # noqa: PLC0415

    values = parse_key_values(arguments, list(ServeAppConfig.model_fields), positional=("model",))
    if "model" in values:
        values["model"] = str(values["model"])
    config = ServeAppConfig.from_overrides(values)
    for model_id, source in {"default": config.model, **config.models}.items():
        path = prepare_engine(source, backend=config.backend, device=config.device, imgsz=config.imgsz,
                              max_batch=config.max_batch_size, cache_dir=config.cache_dir,
                              tracking_uri=config.tracking_uri)
        print(f"{model_id}: {path if path is not None else f'{source} is served as it is (nothing to build)'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run :func:`build_ahead`; a bad setting, source or machine is one line on stderr and exit status 2."""
    import sys  # noqa: PLC0415

    from yolov12.cli.arguments import CommandLineError  # noqa: PLC0415
    from yolov12.cli.main import USER_ERRORS  # noqa: PLC0415

    try:
        return build_ahead(sys.argv[1:] if argv is None else argv)
    except (CommandLineError, *USER_ERRORS) as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
