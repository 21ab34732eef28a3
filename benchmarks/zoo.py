"""Zoo benchmark: parameters, GFLOPs and CPU latency of each model (the model library).

Latency is the median (and p90) of ``--runs`` timed eager-torch forwards of the Conv+BN-fused model at batch 1 after
``--warmup`` untimed ones, with ``torch.set_num_threads(--threads)``. With ``--ultralytics-python`` the same
measurement runs for the matching Ultralytics model in its own virtual environment (see benchmarks/reference/),
in the same invocation, so both columns come from one run on one machine.

    .venv/bin/python benchmarks/zoo.py --models yolov12n yolov12s --runs 30 \
        --ultralytics-python ~/.cache/yolov12-platform/ultralytics-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from yolov12.models import build_model, load_architecture
from yolov12.utils.flops import count_gflops, count_parameters

ULTRALYTICS_EQUIVALENT = {"yolov12n-v1": "yolo12n.yaml", "yolov12s-v1": "yolo12s.yaml", "yolo12n": "yolo12n.yaml",
                          "yolo12s": "yolo12s.yaml", "yolo11n": "yolo11n.yaml", "yolov8n": "yolov8n.yaml",
                          "yolov12n": "yolo12n.yaml", "yolov12s": "yolo12s.yaml"}
REFERENCE_SCRIPT = Path(__file__).parent / "reference" / "ultralytics_latency.py"


def time_forward(model: torch.nn.Module, x: torch.Tensor, runs: int, warmup: int) -> dict[str, float]:
    """Median / p90 / min latency in ms of ``model(x)`` under inference mode."""
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"median_ms": statistics.median(samples), "p90_ms": samples[int(0.9 * (len(samples) - 1))],
            "min_ms": samples[0]}


def measure(name: str, imgsz: int, runs: int, warmup: int, batch: int) -> dict:
    config = load_architecture(name)
    size = 224 if config.task == "classify" and imgsz == 640 else imgsz
    model = build_model(config).eval()
    row = {"model": config.name, "version": config.version, "params": count_parameters(model),
           "gflops": round(count_gflops(model, size), 2), "imgsz": size}
    model.fuse()
    row.update(time_forward(model, torch.rand(batch, 3, size, size), runs, warmup))
    return row


def measure_ultralytics(python: str, yaml_name: str, args: argparse.Namespace) -> dict | None:
    command = [python, str(REFERENCE_SCRIPT), "--model", yaml_name, "--imgsz", str(args.imgsz), "--threads",
               str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup), "--batch", str(args.batch)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"ultralytics run failed for {yaml_name}: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["yolov12n", "yolov12s", "yolov12n-v1", "yolov12s-v1"])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--ultralytics-python", default=None, help="python of the separate Ultralytics venv")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a Markdown table")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20 (medians of fewer runs are too noisy)")
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        row = measure(name, args.imgsz, args.runs, args.warmup, args.batch)
        equivalent = ULTRALYTICS_EQUIVALENT.get(name)
        if args.ultralytics_python and equivalent:
            reference = measure_ultralytics(args.ultralytics_python, equivalent, args)
            if reference:
                row["ultralytics_model"] = equivalent
                row["ultralytics_torch_median_ms"] = reference["torch_eager"]["median_ms"]
                row["ultralytics_onnxruntime_median_ms"] = reference.get("onnxruntime", {}).get("median_ms")
        rows.append(row)
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=1))
        return 0
    print(f"machine: {machine}; batch {args.batch}; median of {args.runs} runs after {args.warmup} warm-up")
    print("| model | version | params | GFLOPs | imgsz | median ms | p90 ms | Ultralytics model | Ultralytics eager "
          "median ms | Ultralytics ONNX Runtime median ms |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        eager, ort = r.get("ultralytics_torch_median_ms"), r.get("ultralytics_onnxruntime_median_ms")
        print(f"| {r['model']} | {r['version'] or '—'} | {r['params']:,} | {r['gflops']:.2f} | {r['imgsz']} | "
              f"{r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r.get('ultralytics_model', '—')} | "
              f"{f'{eager:.1f}' if eager else '—'} | {f'{ort:.1f}' if ort else '—'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
