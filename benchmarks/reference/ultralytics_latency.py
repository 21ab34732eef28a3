#!/usr/bin/env python3
"""CPU latency of a real ``ultralytics`` model (eager PyTorch and ONNX Runtime), as a reference for our own numbers.

Run ONLY with the python of the separate ultralytics virtual environment
(``benchmarks/reference/setup_ultralytics_venv.sh``); ultralytics is never a dependency of this project.

    VENV_PY=$(bash benchmarks/reference/setup_ultralytics_venv.sh | tail -n1)
    $VENV_PY benchmarks/reference/ultralytics_latency.py --model yolo12n.yaml --imgsz 640 --threads 2 \
        --runs 30 --warmup 5 --batch 1

The model is built from its YAML (random weights, nothing is downloaded), fused (Conv+BN) and put in eval mode.
Latency does not depend on the weight values. The ONNX model is exported with ultralytics' own
``Model.export(format="onnx")`` into a temporary directory and run with onnxruntime's CPU provider; when
``openvino`` is importable in this venv, the same ONNX file is also timed in OpenVINO (CPU, latency hint, the
``--openvino-precision`` hints). ``--save-onnx PATH`` keeps a copy of the exported file, so that a caller can time
that very file in its own runtimes too (benchmarks/export_speed.py does, interleaved with our engines).
Prints exactly one JSON object on stdout; all logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")


def log(msg: str) -> None:
    print(f"[ultralytics_latency] {msg}", file=sys.stderr, flush=True)


def _stats(times_s: list[float]) -> dict:
    ms = sorted(t * 1e3 for t in times_s)
    p90 = ms[min(len(ms) - 1, max(0, int(round(0.9 * (len(ms) - 1)))))]
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p90_ms": round(p90, 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "min_ms": round(ms[0], 3),
        "max_ms": round(ms[-1], 3),
        "runs": len(ms),
    }


def _time(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(args) -> dict:
    import numpy as np
    import torch
    import ultralytics
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x_np = np.random.RandomState(0).uniform(0, 1, (args.batch, 3, args.imgsz, args.imgsz)).astype(np.float32)
    x = torch.from_numpy(x_np)

    result: dict = {
        "model": args.model,
        "imgsz": args.imgsz,
        "batch": args.batch,
        "threads": args.threads,
        "runs": args.runs,
        "warmup": args.warmup,
        "versions": {
            "ultralytics": ultralytics.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        },
    }

    yolo = YOLO(args.model, task=args.task)
    model = yolo.model.fuse(verbose=False).eval()
    result["params_fused"] = int(get_num_params(model))
    result["gflops_fused_thop"] = round(float(get_flops(model, args.imgsz)), 4)

    log(f"built {args.model}: {result['params_fused']:,} params (fused); timing eager torch")
    with torch.inference_mode():
        y_torch = model(x)
        y_torch = (y_torch[0] if isinstance(y_torch, (tuple, list)) else y_torch).numpy()
        result["torch_eager"] = _stats(_time(lambda: model(x), args.runs, args.warmup))
    result["torch_eager"]["num_threads"] = torch.get_num_threads()
    result["torch_eager"]["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")

    log(f"torch eager median {result['torch_eager']['median_ms']} ms; exporting ONNX")
    if not args.skip_onnx:
        import onnx
        import onnxruntime as ort

        result["versions"].update({"onnx": onnx.__version__, "onnxruntime": ort.__version__})
        with tempfile.TemporaryDirectory() as tmp:
            cwd = os.getcwd()
            os.chdir(tmp)
            t_exp = time.perf_counter()
            try:
                exp = YOLO(args.model, task=args.task)
                exp.model.load_state_dict(yolo.model.state_dict(), strict=False)  # same weights as timed above
                path = exp.export(
                    format="onnx",
                    imgsz=args.imgsz,
                    batch=args.batch,
                    opset=args.opset,
                    simplify=True,
                    dynamic=False,
                    device="cpu",
                )
            finally:
                os.chdir(cwd)
            path = Path(path) if Path(path).is_absolute() else Path(tmp) / path
            log(f"exported {path.name} in {time.perf_counter() - t_exp:.1f}s; timing onnxruntime")
            proto = onnx.load(str(path))
            opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            y_ort = sess.run(None, {name: x_np})[0]
            result["onnxruntime"] = {
                **_stats(_time(lambda: sess.run(None, {name: x_np}), args.runs, args.warmup)),
                "intra_op_num_threads": args.threads,
                "opset": opset,
                "file_mb": round(path.stat().st_size / 1e6, 3),
                "export": "ultralytics Model.export(format='onnx', simplify=True, dynamic=False)",
                "output_shape": list(y_ort.shape),
            }
            if y_ort.shape == y_torch.shape:
                result["onnxruntime"]["max_abs_diff_vs_torch"] = float(np.abs(y_ort - y_torch).max())
            if args.save_onnx:
                Path(args.save_onnx).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, args.save_onnx)
                result["onnx_saved_to"] = str(args.save_onnx)
            result["openvino"] = _time_openvino(path, x_np, args)
    result["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)  # >> threads means a contended machine
    return result


def _time_openvino(path: Path, x_np, args) -> dict:
    """The exported ONNX file in OpenVINO on the CPU, per precision hint; {"skipped": why} without openvino."""
    try:
        import openvino as ov
    except ImportError:
        return {"skipped": "openvino is not installed in this venv"}
    core = ov.Core()
    out: dict = {"version": ov.__version__}
    for precision in args.openvino_precision:
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": args.threads,
                  "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision]}
        compiled = core.compile_model(str(path), "CPU", config)
        request = compiled.create_infer_request()
        in_effect = compiled.get_property("INFERENCE_PRECISION_HINT")
        name = in_effect.get_type_name() if hasattr(in_effect, "get_type_name") else str(in_effect)
        out[precision] = {**_stats(_time(lambda r=request: r.infer({0: x_np}), args.runs, args.warmup)),
                          "precision_in_effect": name}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="yolo12n.yaml", help="ultralytics model YAML (built without weights)")
    ap.add_argument("--task", default=None)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--skip-onnx", action="store_true")
    ap.add_argument("--save-onnx", default=None, help="copy the exported ONNX file to this path")
    ap.add_argument("--openvino-precision", nargs="*", default=["bf16"], choices=["fp32", "bf16"],
                    help="OpenVINO precision hints to time the ONNX file with (when openvino is installed here)")
    ap.add_argument(
        "--omp-wait-policy",
        default=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        choices=["PASSIVE", "ACTIVE", "passive", "active"],
        help="OpenMP wait policy for torch (default PASSIVE, or $OMP_WAIT_POLICY). With the default "
        "spin-waiting (ACTIVE) torch's 2-thread eager forward becomes 10-25x slower as soon as any other "
        "process competes for the 2 cores",
    )
    args = ap.parse_args()
    os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()  # read when torch's OpenMP runtime starts
    if Path(args.model).is_file():  # a local YAML: resolve before moving into the scratch directory
        args.model = str(Path(args.model).resolve())
    if args.save_onnx:
        args.save_onnx = str(Path(args.save_onnx).resolve())

    # Keep stdout for the JSON alone: point fd 1 (and anything that writes to it, e.g. loggers created at import
    # time or native libraries) at stderr while working.
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    cwd = os.getcwd()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            os.chdir(scratch)  # ultralytics may write runs/ or settings next to the cwd; keep the caller's dir clean
            try:
                result = run(args)
            finally:
                os.chdir(cwd)
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
