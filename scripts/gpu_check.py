"""The checks only an NVIDIA GPU can run, in one go: ``bash scripts/gpu_check.sh`` (or ``python -m scripts.gpu_check``).

One function per check; each returns the figure it measured or raises :class:`CheckFailed` with what went wrong,
and :func:`run_check` turns that (or any other exception) into one row, so one failing check never stops the others.
A check whose requirements are missing here (no CUDA, no tensorrt, no flash_attn) is not started: its row says in
one line what is missing. The table is printed once, at the end; the exit status is 0 only when every check passed.

Parity tolerances: TensorRT fp16 against torch fp32 on the GPU, median box error <= 0.5 px and best-class score
error <= 0.01 at 320 px; int8 those of the OpenVINO int8 tests (median box error <= 1/128 of the image, best-class
score correlation >= 0.9, 8 of torch's 10 best anchors among int8's 30 best), on a model whose BatchNorm statistics
come from the sample photos (random weights alone give near-constant scores that say nothing about parity).
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

IMGSZ = 320
FP16_BOX_PX, FP16_SCORE = 0.5, 0.01
INT8_BOX_FRACTION, INT8_CORRELATION, INT8_TOP10_IN_TOP30 = 1 / 128, 0.9, 8
FLASH_TOLERANCE = 2e-3  # fp16 attention outputs of magnitude ~1: a few fp16 ulps


class CheckFailed(AssertionError):
    """A check ran and its result is wrong (the message is the figure and the bound it broke)."""


@dataclass(frozen=True)
class CheckResult:
    """One row of the table: ``result`` is ``ok``, ``FAIL`` or ``missing``; ``figure`` the measurement or reason."""

    check: str
    result: str
    figure: str
    seconds: float


# -- requirements ----------------------------------------------------------------------------------------------------
def missing_cuda() -> str | None:
    """Why CUDA cannot run here (None when it can)."""
    import torch  # noqa: PLC0415

    if torch.version.cuda is None:
        return f"no CUDA: torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return "no CUDA: no NVIDIA GPU visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
    return None


def missing_package(name: str, hint: str) -> str | None:
    """Why ``name`` cannot be imported (None when it can)."""
    return None if importlib.util.find_spec(name) is not None else f"no {name}: {hint}"


def missing_nccl() -> str | None:
    import torch.distributed as dist  # noqa: PLC0415

    return None if dist.is_available() and dist.is_nccl_available() else "no NCCL in this torch build"


GPU_EXTRA = "pip install 'yolov12-platform[gpu]'"
REQUIREMENTS: dict[str, Callable[[], str | None]] = {
    "cuda": missing_cuda,
    "tensorrt": lambda: missing_package("tensorrt", GPU_EXTRA),
    "nncf": lambda: missing_package("nncf", "pip install 'yolov12-platform[openvino]' (NNCF quantises the ONNX)"),
    "flash_attn": lambda: missing_package("flash_attn", GPU_EXTRA),
    "nccl": missing_nccl,
    "ray_serve": lambda: missing_package("ray", "pip install 'yolov12-platform[serve]'"),
}


def missing(needs: tuple[str, ...]) -> str | None:
    """One line naming every requirement of ``needs`` this machine lacks (None when all are here)."""
    reasons = [reason for need in needs if (reason := REQUIREMENTS[need]()) is not None]
    return "; ".join(reasons) or None


# -- shared pieces ---------------------------------------------------------------------------------------------------
def photo_model(imgsz: int = IMGSZ):
    """yolov12n (3 classes, seed 0) whose BatchNorm statistics are those of the letterboxed sample photos."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    from yolov12.models import build_model, load_architecture  # noqa: PLC0415

    torch.manual_seed(0)
    model = build_model(load_architecture("yolov12n").with_overrides(num_classes=3),
                        names={0: "a", 1: "b", 2: "c"})
    images = torch.from_numpy(photo_batch(imgsz))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 1.0  # running statistics := statistics of this batch
    model.train()
    with torch.no_grad():
        model(torch.cat((images, images.flip(3))))
    return model.eval()


def photo_batch(imgsz: int = IMGSZ):
    """(2, 3, imgsz, imgsz) float32: the bundled sample photos, letterboxed as predict does."""
    import cv2  # noqa: PLC0415

    from yolov12.infer import sample_images  # noqa: PLC0415
    from yolov12.infer.preprocess import letterbox_batch  # noqa: PLC0415

    return letterbox_batch([cv2.imread(str(p)) for p in sample_images()], imgsz).to_float_nchw()


def torch_reference(model, x):
    """The fp32 model's raw output on the GPU, (B, 4 + nc, A) as a numpy array."""
    import torch  # noqa: PLC0415

    with torch.no_grad():
        return model.cuda().float()(torch.from_numpy(x).cuda()).float().cpu().numpy()


def tensorrt_output(model, folder: Path, **settings) -> tuple[object, object]:
    """Export ``model`` to a TensorRT engine with ``settings`` and run the photos: (engine output, torch output)."""
    from yolov12.engines import load_engine  # noqa: PLC0415
    from yolov12.export import export_model  # noqa: PLC0415

    path = export_model(model, format="engine", imgsz=IMGSZ, device="cuda", output=str(folder / "m.engine"),
                        batch=2, dynamic=True, **settings)
    x = photo_batch()
    return load_engine(path, device="cuda")(x), torch_reference(model, x)


# -- the checks ------------------------------------------------------------------------------------------------------
def check_tensorrt_fp16() -> str:
    """TensorRT fp16 engine against torch fp32: boxes and best-class scores."""
    import numpy as np  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        got, want = tensorrt_output(photo_model(), Path(folder), half=True)
    box = float(np.median(np.abs(got[:, :4] - want[:, :4])))
    score = float(np.abs(got[:, 4:].max(1) - want[:, 4:].max(1)).max())
    figure = f"median box err {box:.3f} px, max score err {score:.4f}"
    if box > FP16_BOX_PX or score > FP16_SCORE:
        raise CheckFailed(f"{figure} (bounds {FP16_BOX_PX} px, {FP16_SCORE})")
    return figure


def check_tensorrt_int8() -> str:
    """TensorRT int8 engine (explicit Q/DQ from NNCF, calibrated on the sample photos) against torch fp32."""
    import numpy as np  # noqa: PLC0415

    from yolov12.infer import sample_images  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        got, want = tensorrt_output(photo_model(), Path(folder), int8=True,
                                    data=[str(p) for p in sample_images()])
    box = float(np.median(np.abs(got[:, :4] - want[:, :4])))
    best_got, best_want = got[:, 4:].max(1), want[:, 4:].max(1)
    correlation = min(float(np.corrcoef(best_want[i], best_got[i])[0, 1]) for i in range(len(got)))
    kept = min(len(set(np.argsort(best_want[i])[::-1][:10]) & set(np.argsort(best_got[i])[::-1][:30]))
               for i in range(len(got)))
    figure = f"median box err {box:.2f} px, score r {correlation:.3f}, top-10 kept {kept}/10"
    if box > IMGSZ * INT8_BOX_FRACTION or correlation < INT8_CORRELATION or kept < INT8_TOP10_IN_TOP30:
        raise CheckFailed(f"{figure} (bounds {IMGSZ * INT8_BOX_FRACTION:.1f} px, r >= {INT8_CORRELATION}, "
                          f">= {INT8_TOP10_IN_TOP30}/10)")
    return figure


def check_flash_attention() -> str:
    """The project's FlashAttention path against SDPA on fp16 (B, heads, N, d) tensors."""
    import torch  # noqa: PLC0415

    from yolov12.nn.attention_kernels import attention  # noqa: PLC0415

    generator = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2, 4, 1600, 32, device="cuda", dtype=torch.float16, generator=generator)
               for _ in range(3))
    flash, sdpa = attention(q, k, v, backend="flash"), attention(q, k, v, backend="sdpa")
    error = float((flash.float() - sdpa.float()).abs().max())
    figure = f"max |flash - sdpa| {error:.2e}"
    if not error <= FLASH_TOLERANCE:
        raise CheckFailed(f"{figure} (bound {FLASH_TOLERANCE:.0e})")
    return figure


def check_nccl_ddp() -> str:
    """One DDP training step of yolov12n on the NCCL backend with world_size 1 (init, all-reduce of gradients)."""
    import torch  # noqa: PLC0415
    import torch.distributed as dist  # noqa: PLC0415
    from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415

    from yolov12.models import build_model, load_architecture  # noqa: PLC0415

    torch.cuda.set_device(0)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = DistributedDataParallel(build_model(load_architecture("yolov12n")).cuda().train(), device_ids=[0])
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        loss = sum(t.float().square().mean() for t in flat_tensors(model(torch.rand(2, 3, 160, 160, device="cuda"))))
        loss.backward()
        optimizer.step()
        probe = torch.ones(1, device="cuda")
        dist.all_reduce(probe)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads or not all(torch.isfinite(g).all() for g in grads) or probe.item() != 1.0:
            raise CheckFailed(f"non-finite gradients or a wrong all-reduce (sum {probe.item()})")
        return f"loss {loss.item():.4f}, {len(grads)} grads all-reduced, NCCL {'.'.join(map(str, nccl_version()))}"
    finally:
        dist.destroy_process_group()


def check_serve_tensorrt() -> str:
    """A Ray Serve app on the TensorRT backend (engine built from native weights) answering one /v1/detect."""
    import cv2  # noqa: PLC0415
    import ray  # noqa: PLC0415
    import requests  # noqa: PLC0415
    from ray import serve  # noqa: PLC0415

    from serve.app import build_app  # noqa: PLC0415
    from yolov12.infer import sample_images  # noqa: PLC0415
    from yolov12.weights import save_checkpoint  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        weights = save_checkpoint(photo_model(), Path(folder) / "photo.safetensors")
        port = free_port()
        ray.init(address="local", num_gpus=1, include_dashboard=False, log_to_driver=False)
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            serve.run(build_app({"model": str(weights), "backend": "tensorrt", "device": "cuda", "imgsz": IMGSZ,
                                 "max_batch_size": 2, "num_gpus": 1, "cache_dir": str(Path(folder) / "cache")}),
                      name="gpu-check", route_prefix="/")
            image = cv2.imencode(".jpg", cv2.imread(str(sample_images()[0])))[1].tobytes()
            answer = requests.post(f"http://127.0.0.1:{port}/v1/detect", data=image, timeout=120,
                                   headers={"Content-Type": "image/jpeg"}, params={"conf": 0.0})
        finally:
            serve.shutdown()
            ray.shutdown()
    if answer.status_code != 200:
        raise CheckFailed(f"HTTP {answer.status_code}: {answer.text[:200]}")
    body = answer.json()
    backend = body["model"]["backend"]
    if backend != "tensorrt":
        raise CheckFailed(f"answered by backend {backend}, not tensorrt")
    return f"HTTP 200 from {backend}, {len(body['detections'])} detections"


def flat_tensors(output: object) -> list:
    """Every tensor in a nested output (tuples, lists, dicts of tensors)."""
    import torch  # noqa: PLC0415

    if isinstance(output, torch.Tensor):
        return [output]
    items = output.values() if isinstance(output, dict) else output if isinstance(output, (list, tuple)) else ()
    return [tensor for item in items for tensor in flat_tensors(item)]


def nccl_version() -> tuple[int, ...]:
    import torch  # noqa: PLC0415

    version = torch.cuda.nccl.version()
    return version if isinstance(version, tuple) else (version,)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CHECKS: tuple[tuple[str, tuple[str, ...], Callable[[], str]], ...] = (
    ("tensorrt fp16 parity", ("cuda", "tensorrt"), check_tensorrt_fp16),
    ("tensorrt int8 parity", ("cuda", "tensorrt", "nncf"), check_tensorrt_int8),
    ("flash attention vs sdpa", ("cuda", "flash_attn"), check_flash_attention),
    ("nccl ddp step", ("cuda", "nccl"), check_nccl_ddp),
    ("serve tensorrt request", ("cuda", "tensorrt", "ray_serve"), check_serve_tensorrt),
)


# -- running and reporting -------------------------------------------------------------------------------------------
def run_check(name: str, needs: tuple[str, ...], check: Callable[[], str]) -> CheckResult:
    """One row: ``missing`` without starting the check, else ``ok`` with its figure or ``FAIL`` with one line."""
    reason = missing(needs)
    if reason is not None:
        return CheckResult(name, "missing", reason, 0.0)
    started = time.perf_counter()
    try:
        figure, result = check(), "ok"
    except Exception as exc:  # noqa: BLE001 - one failing check must not stop the others
        text = str(exc).splitlines()[0] if str(exc) else ""
        figure, result = (text if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {text}"), "FAIL"
    return CheckResult(name, result, figure, time.perf_counter() - started)


def format_table(rows: list[CheckResult]) -> str:
    """The rows as one aligned text table with the header ``check | result | figure | seconds``."""
    header = ("check", "result", "figure", "seconds")
    cells = [header, *((r.check, r.result, r.figure, f"{r.seconds:.1f}") for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(3)]
    lines = [" | ".join([*(row[i].ljust(widths[i]) for i in range(3)), row[3].rjust(7)]) for row in cells]
    lines.insert(1, "-+-".join([*("-" * w for w in widths), "-" * 7]))
    return "\n".join(lines)


def main() -> int:
    """Run every check, print the table, return 0 only when all passed."""
    rows = [run_check(name, needs, check) for name, needs, check in CHECKS]
    print(format_table(rows))
    return 0 if all(row.result == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
