"""Where an OpenVINO engine spends its time: per-op profile (``PERF_COUNT``) of our exports, and of Ultralytics' ONNX.

Usage:
    .venv/bin/python benchmarks/openvino_profile.py --model yolov12n --imgsz 640 --threads 2 --runs 30 \
        [--ultralytics-onnx /tmp/w/bench_export/ultralytics.onnx] [--workdir DIR]

Exports the model to OpenVINO (fp32 graph run in fp32 and in bf16; int8 through NNCF on the ``sample`` images, as
``yolov12 export int8=True`` does), compiles each with ``PERF_COUNT`` on, runs ``--runs`` inferences after
``--warmup`` and sums each executed node's ``real_time`` per run. It prints, per engine, the median latency, the
share of the summed node time by op type and by kernel family (the ``exec_type`` OpenVINO reports: ``jit_*``,
``brgconv_*``/``brgemm_*`` with ``amx`` when the AMX tiles run it, ``ref_*``/``ref`` for the reference kernels), and
the time in data-movement ops (``Transpose``, ``Reorder``, ``Concat``, ``Split``/``VariadicSplit``, ``Reshape``,
``Gather``). The node times add up to less than the wall latency (the rest is the plugin's own work between nodes).
The machine (CPU model, ISA flags that matter) and the versions are printed first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import openvino as ov

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_common import add_engine_timing_arguments, machine_line  # noqa: E402
from yolov12.export import export_model  # noqa: E402
from yolov12.models import build_model, load_architecture  # noqa: E402

DATA_MOVEMENT = {"Transpose", "Reorder", "Concat", "Split", "VariadicSplit", "Reshape", "Gather", "Broadcast",
                 "StridedSlice", "Slice"}
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


def kernel_family(exec_type: str) -> str:
    """The kernel family of an ``exec_type``: ``brgconv_avx512_amx_I8`` -> ``brgconv amx``, ``jit_avx512_BF16`` ->
    ``jit avx512``, ``ref_any_FP32`` -> ``ref``."""
    name = exec_type.lower()
    if name.startswith("ref") or "_ref" in name:
        return "ref"
    family = name.split("_")[0]
    for isa in ("amx", "avx512", "avx2", "sse41"):
        if isa in name:
            return f"{family} {isa}"
    return family


def profile(compiled: ov.CompiledModel, runs: int, warmup: int, imgsz: int) -> dict:
    request = compiled.create_infer_request()
    x = np.random.RandomState(0).uniform(0, 1, (1, 3, imgsz, imgsz)).astype(np.float32)
    for _ in range(warmup):
        request.infer({0: x})
    latencies, by_type, by_kernel, by_node = [], defaultdict(list), defaultdict(list), defaultdict(list)
    for _ in range(runs):
        start = time.perf_counter()
        request.infer({0: x})
        latencies.append((time.perf_counter() - start) * 1000)
        types, kernels = defaultdict(float), defaultdict(float)
        for info in request.get_profiling_info():
            if info.status != info.Status.EXECUTED:
                continue
            ms = info.real_time.total_seconds() * 1000
            types[info.node_type] += ms
            kernels[kernel_family(info.exec_type)] += ms
            by_node[(info.node_type, info.exec_type)].append(ms)
        for key, value in types.items():
            by_type[key].append(value)
        for key, value in kernels.items():
            by_kernel[key].append(value)
    median = {key: statistics.median(values) for key, values in by_type.items()}
    return {"latency_ms": statistics.median(latencies), "node_ms": sum(median.values()), "by_type": median,
            "by_kernel": {key: statistics.median(values) for key, values in by_kernel.items()},
            "by_type_kernel": {key: sum(values) / runs for key, values in by_node.items()}}


def table(name: str, result: dict, top: int) -> str:
    total = result["node_ms"]
    moving = sum(ms for op, ms in result["by_type"].items() if op in DATA_MOVEMENT)
    ref = result["by_kernel"].get("ref", 0.0)
    lines = [f"### {name}: median {result['latency_ms']:.1f} ms, node time {total:.1f} ms; data movement "
             f"{moving:.1f} ms ({100 * moving / total:.0f}%), reference kernels {ref:.1f} ms "
             f"({100 * ref / total:.0f}%)",
             "", "| op type | ms | share |", "|---|---:|---:|"]
    for op, ms in sorted(result["by_type"].items(), key=lambda item: -item[1])[:top]:
        lines.append(f"| {op} | {ms:.2f} | {100 * ms / total:.1f}% |")
    lines += ["", "| kernel family | ms | share |", "|---|---:|---:|"]
    for kernel, ms in sorted(result["by_kernel"].items(), key=lambda item: -item[1]):
        lines.append(f"| {kernel} | {ms:.2f} | {100 * ms / total:.1f}% |")
    lines += ["", "| op type / exec type (top) | ms per run | share |", "|---|---:|---:|"]
    for (op, kind), ms in sorted(result["by_type_kernel"].items(), key=lambda item: -item[1])[:top]:
        lines.append(f"| {op} / `{kind}` | {ms:.2f} | {100 * ms / total:.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_engine_timing_arguments(parser)
    parser.add_argument("--top", type=int, default=12, help="rows per table")
    parser.add_argument("--ultralytics-onnx", default=None,
                        help="Ultralytics' exported ONNX (export_speed.py keeps it in its workdir)")
    parser.add_argument("--workdir", default=None, help="where exports go (default: a temporary folder)")
    args = parser.parse_args(argv)
    scratch = tempfile.TemporaryDirectory(prefix="openvino-profile-")
    work = Path(args.workdir or scratch.name)
    work.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    print(f"OpenVINO {ov.__version__}; {args.model} at {args.imgsz} px, batch 1, {args.threads} threads, "
          f"{args.runs} runs after {args.warmup} warm-up\n")
    model = build_model(load_architecture(args.model)).eval()
    fp32 = export_model(model, format="openvino", imgsz=args.imgsz, output=str(work / args.model))
    int8 = export_model(model, format="openvino", imgsz=args.imgsz, int8=True, data="sample",
                        output=str(work / f"{args.model}_int8"))
    core = ov.Core()
    graphs = {f"ours {kind}": (next(Path(fp32).glob("*.xml")), hint) for kind, hint in PRECISIONS.items()}
    int8_graph = next(Path(int8).glob("*.xml"))
    graphs["ours int8 (NNCF), float parts fp32 (the engine's default)"] = (int8_graph, "f32")
    graphs["ours int8 (NNCF), float parts bf16"] = (int8_graph, "bf16")
    if args.ultralytics_onnx:
        graphs["Ultralytics ONNX bf16"] = (Path(args.ultralytics_onnx), "bf16")
    for name, (graph, hint) in graphs.items():
        config = {"PERF_COUNT": "YES", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": hint,
                  "INFERENCE_NUM_THREADS": args.threads}
        compiled = core.compile_model(core.read_model(str(graph)), "CPU", config)
        print(table(name, profile(compiled, args.runs, args.warmup, args.imgsz), args.top))
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
