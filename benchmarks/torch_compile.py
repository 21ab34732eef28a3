"""Compiled torch inference against eager: latency, compile cost and output drift, batch 1 on the CPU.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/torch_compile.py --model yolov12n --imgsz 640 --runs 20

Variants, each through the torch engine's compile path (:class:`yolov12.engines.torch_engine.CompiledModel`):

- eager fp32: the Conv+BN-fused model, eager (the torch engine without ``compile``);
- compiled fp32: ``torch.compile`` of the fused model, NCHW;
- compiled channels-last fp32: the same in NHWC (what ``compile=True`` runs);
- compiled channels-last bf16: with bf16 autocast, only on a CPU with native bf16 (AVX512-BF16 or AMX).

Each compiled variant's first forward is timed (the compile). After ``--warmup`` calls each, the variants are timed
**interleaved**, one call of each per round, so machine noise hits every column alike. Per variant: median wall
latency, median CPU time per call (process CPU seconds: less disturbed than wall time when other processes share the
cores), the ratio to eager, compile seconds, and the drift from the eager output: largest absolute difference of the
boxes (input pixels) and of the scores, and the relative L2 error of the whole output. ``--profile`` adds
torch.profiler's top operators of eager and compiled channels-last fp32.

The input is the first bundled photo, letterboxed. Weights are random (latency does not depend on their values) with
BatchNorm statistics measured on the bundled photos, so that boxes and scores spread and the drift columns mean
something (with default statistics every box is the anchor grid and every score about 0). A random network amplifies
rounding, so its bf16 drift is larger than a trained model's.

Inductor's cache goes to ``--cache-dir`` (default: a new temporary folder, so the compile column is a cold compile);
run again with the same folder to see a second process's compile time.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import torch
from bench_common import machine_line

from yolov12.engine.precision import cpu_has_native_bf16
from yolov12.engines.torch_engine import CompiledModel
from yolov12.infer import sample_images
from yolov12.infer.preprocess import letterbox_batch
from yolov12.models import build_model, load_architecture

TARGET_RATIO = 0.5


@dataclass
class Variant:
    """One way of running the model, and what was measured of it."""

    name: str
    forward: Callable[[torch.Tensor], torch.Tensor]
    compile_s: float | None = None
    box_diff: float = 0.0
    score_diff: float = 0.0
    relative_error: float = 0.0
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolov12n", help="zoo architecture name")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--runs", type=int, default=20, help="timed calls per variant (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per variant after the compile")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    parser.add_argument("--cache-dir", default=None, help="inductor cache folder (default: a new temporary one)")
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler's top operators")
    return parser.parse_args(argv)


def cpu_seconds() -> float:
    """CPU seconds this process has used (all threads, user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def photo_calibrated(name: str, imgsz: int) -> tuple[torch.nn.Module, torch.Tensor]:
    """The architecture with random weights and BatchNorm statistics of the letterboxed bundled photos (eval mode),
    and the first photo as a (1, 3, imgsz, imgsz) input."""
    torch.manual_seed(0)
    model = build_model(load_architecture(name))
    photos = [cv2.imread(str(path)) for path in sample_images()]
    images = torch.from_numpy(letterbox_batch(photos, imgsz).to_float_nchw())
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0  # the statistics of this one batch
    with torch.no_grad():
        model.train()(images)
    return model.eval(), images[:1].clone()


def measure_drift(variant: Variant, output: torch.Tensor, reference: torch.Tensor) -> None:
    """Box, score and relative L2 differences of ``output`` from the eager ``reference`` (B, 4 + nc, A)."""
    difference = output.float() - reference
    variant.box_diff = float(difference[:, :4].abs().max())
    variant.score_diff = float(difference[:, 4:].abs().max())
    variant.relative_error = float(difference.norm() / reference.norm())


def build_variants(model: torch.nn.Module, images: torch.Tensor) -> list[Variant]:
    """Eager fp32 plus the compiled variants this CPU supports, each compiled (timed) and checked against eager."""
    device = torch.device("cpu")
    eager_model = copy.deepcopy(model).fuse().eval()
    eager = Variant("eager fp32 (Conv+BN fused)", eager_model)
    with torch.no_grad():
        reference = eager_model(images)
    compiled = [("compiled fp32", {"channels_last": False}), ("compiled channels-last fp32", {})]
    if cpu_has_native_bf16():
        compiled.append(("compiled channels-last bf16", {"half": True}))
    variants = [eager]
    for name, options in compiled:
        engine = CompiledModel(model, device, **options)
        start = time.perf_counter()
        output = engine(images)
        variant = Variant(name, engine, compile_s=time.perf_counter() - start)
        measure_drift(variant, output, reference)
        variants.append(variant)
        print(f"{name}: compiled in {variant.compile_s:.1f} s", file=sys.stderr)
    return variants


def time_interleaved(variants: list[Variant], images: torch.Tensor, runs: int, warmup: int) -> None:
    """``warmup`` untimed calls of each, then ``runs`` rounds of one timed call of each variant."""
    with torch.no_grad():
        for variant in variants:
            for _ in range(warmup):
                variant.forward(images)
        for _ in range(runs):
            for variant in variants:
                cpu, wall = cpu_seconds(), time.perf_counter()
                variant.forward(images)
                variant.wall_ms.append((time.perf_counter() - wall) * 1000)
                variant.cpu_ms.append((cpu_seconds() - cpu) * 1000)


def results_table(variants: list[Variant]) -> str:
    """Markdown table: median wall and CPU milliseconds, ratios to eager, compile seconds, drift from eager."""
    eager_wall, eager_cpu = (statistics.median(v) for v in (variants[0].wall_ms, variants[0].cpu_ms))
    rows = ["| variant | median ms | x eager | median CPU ms | x eager (CPU) | compile s | max box diff px "
            "| max score diff | relative error |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for variant in variants:
        wall, cpu = statistics.median(variant.wall_ms), statistics.median(variant.cpu_ms)
        compile_s = "-" if variant.compile_s is None else f"{variant.compile_s:.1f}"
        rows.append(f"| {variant.name} | {wall:.1f} | {wall / eager_wall:.2f} | {cpu:.1f} | {cpu / eager_cpu:.2f} | "
                    f"{compile_s} | {variant.box_diff:.3g} | {variant.score_diff:.2e} | {variant.relative_error:.2e} |")
    return "\n".join(rows)


def verdict(variants: list[Variant]) -> str:
    """The best compiled variant against the target ratio, by wall and by CPU time."""
    eager_wall, eager_cpu = statistics.median(variants[0].wall_ms), statistics.median(variants[0].cpu_ms)
    best = min(variants[1:], key=lambda v: statistics.median(v.wall_ms))
    wall_ratio = statistics.median(best.wall_ms) / eager_wall
    cpu_ratio = statistics.median(best.cpu_ms) / eager_cpu
    met = "meets" if wall_ratio <= TARGET_RATIO else "misses"
    return (f"best compiled: {best.name}, {wall_ratio:.2f}x eager wall ({cpu_ratio:.2f}x CPU time); {met} the "
            f"{TARGET_RATIO}x target")


def profile_table(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, runs: int = 5,
                  rows: int = 12) -> str:
    """torch.profiler's top operators by self CPU time over ``runs`` calls."""
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(runs):
            forward(images)
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    cache_dir = arguments.cache_dir or tempfile.mkdtemp(prefix="torchinductor-bench-")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache_dir  # before the first compile, so that torch uses it
    torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    print(f"machine: {machine_line()}", file=sys.stderr)
    model, images = photo_calibrated(arguments.model, arguments.imgsz)
    variants = build_variants(model, images)
    time_interleaved(variants, images, arguments.runs, arguments.warmup)
    print(f"{arguments.model} at {arguments.imgsz}, batch 1, {arguments.threads} threads, {arguments.runs} runs "
          f"after {arguments.warmup} warm-up calls; inductor cache {cache_dir}")
    print(f"machine: {machine_line()}\n")
    print(results_table(variants))
    print(f"\n{verdict(variants)}")
    if arguments.profile:
        by_name = {variant.name: variant for variant in variants}
        for name in ("eager fp32 (Conv+BN fused)", "compiled channels-last fp32"):
            print(f"\ntop operators, {name}:\n{profile_table(by_name[name].forward, images)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
