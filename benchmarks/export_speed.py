"""Export and engine speed on the CPU: our engines against Ultralytics' exported YOLO12n, in one run.

    .venv/bin/python benchmarks/export_speed.py --model yolov12n --imgsz 640 --threads 2 --runs 30 \\
        --ultralytics-python ~/.cache/yolov12-platform/ultralytics-venv/bin/python

What it measures (batch 1, ``--imgsz``, ``--threads`` threads everywhere):

1. Ultralytics, in its own venv (benchmarks/reference/ultralytics_latency.py): YOLO12n built from its YAML, eager
   torch and its own ONNX export in its ONNX Runtime; the exported file is kept (``--save-onnx``).
2. Our model exported to ONNX and OpenVINO (static batch 1), then timed **interleaved** in this process, one call of
   each engine per round so that machine noise hits every column alike: torch eager (Conv+BN fused), ONNX Runtime,
   OpenVINO fp32, bf16 and int8 (NNCF post-training quantisation calibrated on the ``sample`` train images) — and
   Ultralytics' ONNX file in the same ONNX Runtime and OpenVINO (fp32, bf16).
3. Batch-8 throughput (images/s) of our torch, ONNX Runtime and OpenVINO engines (static batch-8 exports).
4. End-to-end predict on a real photo (file decode + letterbox + inference + NMS + Results) against raw inference
   of the same engine, interleaved; the overhead share, and the decode/pre/post milliseconds against the inference
   inside the same predict calls (a steadier ratio on a noisy machine); and predict over a list of
   ``FOLDER_IMAGES`` paths (a folder's worth: later images are decoded and letterboxed on predict's read-ahead
   thread while the engine runs), per image. These rows use the architecture with BatchNorm
   statistics measured on the sample photos, so that scores spread and NMS has candidates (random weights give none).
5. The compute lower bound: model GFLOPs / the best measured fp32 (and bf16) matmul GFLOP/s of torch on this CPU.

Prints a Markdown table (or ``--json``). Weights are random: latency does not depend on their values (NMS does, a
little: the e2e rows say how many boxes were kept).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the Ultralytics reference does for torch (see its README)

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import openvino  # noqa: E402
import torch  # noqa: E402

from benchmarks.bench_common import add_engine_timing_arguments, machine_line  # noqa: E402
from yolov12.config import PredictConfig  # noqa: E402
from yolov12.engines import load_engine  # noqa: E402
from yolov12.engines.base import canvas_to_float_nchw  # noqa: E402
from yolov12.engines.torch_engine import TorchEngine  # noqa: E402
from yolov12.export import export_model  # noqa: E402
from yolov12.infer import Predictor, sample_images  # noqa: E402
from yolov12.infer.preprocess import letterbox_batch  # noqa: E402
from yolov12.models import build_model, load_architecture  # noqa: E402
from yolov12.utils.flops import count_gflops  # noqa: E402

REFERENCE_SCRIPT = Path(__file__).parent / "reference" / "ultralytics_latency.py"
FOLDER_IMAGES = 16  # images per "folder" predict call of the end-to-end rows
ULTRALYTICS_EQUIVALENT = {"yolov12n": "yolo12n.yaml", "yolov12n-v1": "yolo12n.yaml", "yolov12s": "yolo12s.yaml",
                          "yolov12s-v1": "yolo12s.yaml"}


def stats(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {"median_ms": round(statistics.median(ms), 2), "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2),
            "min_ms": round(ms[0], 2)}


def interleaved(calls: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, dict[str, float]]:
    """Median/p90/min of each call, timed round-robin (one call of each per round) after ``warmup`` rounds."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {name: stats(values) for name, values in samples.items()}


def matmul_peak_gflops(dtype: torch.dtype, threads: int, seconds: float = 1.5) -> float:
    """Best sustained GFLOP/s of torch's GEMM (oneDNN / MKL) over a few square sizes."""
    torch.set_num_threads(threads)
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
        torch.mm(a, b)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            torch.mm(a, b)
            count += 1
        best = max(best, 2 * n**3 * count / (time.perf_counter() - start) / 1e9)
    return best


def run_reference(python: str, yaml_name: str, args: argparse.Namespace, onnx_out: Path) -> dict | None:
    command = [python, str(REFERENCE_SCRIPT), "--model", yaml_name, "--imgsz", str(args.imgsz), "--threads",
               str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup), "--batch", "1",
               "--save-onnx", str(onnx_out), "--openvino-precision", "fp32", "bf16"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"ultralytics reference failed: {done.stderr.strip().splitlines()[-3:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_engine_timing_arguments(parser)
    parser.add_argument("--ultralytics-python", default=None, help="python of the separate Ultralytics venv")
    parser.add_argument("--workdir", default=None, help="where exports go (default: a temporary folder)")
    parser.add_argument("--photo", default=str(sample_images()[-1]), help="real photo for the end-to-end rows")
    parser.add_argument("--skip-batch8", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--end-to-end-only", choices=["openvino-int8", "openvino-bf16", "openvino-fp32"],
                        help="only step 4, for this engine (the predict overhead on a slow machine in minutes)")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20 (medians of fewer runs are too noisy)")
    torch.set_num_threads(args.threads)
    scratch = tempfile.TemporaryDirectory(prefix="export-speed-")
    work = Path(args.workdir or scratch.name)
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"model": args.model, "imgsz": args.imgsz, "threads": args.threads, "runs": args.runs,
                    "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                "loadavg_1m_at_start": round(os.getloadavg()[0], 2)},
                    "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                                 "openvino": openvino.__version__, "nncf": version("nncf")}}

    if args.end_to_end_only:
        print(json.dumps(end_to_end_only(args, work), indent=1))
        scratch.cleanup()
        return 0

    # 1. Ultralytics in its own venv (first, so that our exports do not overlap with its timing)
    reference, their_onnx = None, work / "ultralytics.onnx"
    if args.ultralytics_python and args.model in ULTRALYTICS_EQUIVALENT:
        reference = run_reference(args.ultralytics_python, ULTRALYTICS_EQUIVALENT[args.model], args, their_onnx)
        report["ultralytics"] = reference

    # 2. our exports
    model = build_model(load_architecture(args.model)).eval()
    report["gflops"] = round(count_gflops(model, args.imgsz), 3)
    report["gflops_with_attention"] = round(count_gflops(model, args.imgsz, include_attention=True), 3)
    started = time.perf_counter()
    onnx_path = export_model(model, format="onnx", imgsz=args.imgsz, output=str(work / f"{args.model}.onnx"))
    ov_path = export_model(model, format="openvino", imgsz=args.imgsz, output=str(work / args.model))
    report["export_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    ov_int8 = export_model(model, format="openvino", imgsz=args.imgsz, int8=True, data="sample",
                           output=str(work / f"{args.model}_int8"))
    report["int8_export_seconds"] = round(time.perf_counter() - started, 1)
    t = args.threads
    fused = build_model(load_architecture(args.model)).eval().fuse()
    engines = {
        "ours torch eager": TorchEngine(fused, threads=t),
        "ours onnxruntime": load_engine(onnx_path, threads=t),
        "ours openvino fp32": load_engine(ov_path, threads=t, precision="fp32"),
        "ours openvino bf16": load_engine(ov_path, threads=t, precision="bf16"),
        "ours openvino int8": load_engine(ov_int8, threads=t),  # float parts (post-processing) in fp32
    }
    if reference and their_onnx.is_file():
        engines["ultralytics onnx in onnxruntime"] = _foreign_ort(their_onnx, t)
        engines["ultralytics onnx in openvino fp32"] = _foreign_ov(their_onnx, t, "f32")
        engines["ultralytics onnx in openvino bf16"] = _foreign_ov(their_onnx, t, "bf16")
    x = np.random.RandomState(0).uniform(0, 1, (1, 3, args.imgsz, args.imgsz)).astype(np.float32)
    report["precision_in_effect"] = {name: getattr(e, "info", None) and e.info.precision for name, e in
                                     engines.items() if hasattr(e, "info")}
    report["latency"] = interleaved({name: (lambda e=e: e(x)) for name, e in engines.items()}, args.runs,
                                    args.warmup)

    # 3. batch-8 throughput
    if not args.skip_batch8:
        onnx8 = export_model(model, format="onnx", imgsz=args.imgsz, batch=8, output=str(work / "b8.onnx"))
        ov8 = export_model(model, format="openvino", imgsz=args.imgsz, batch=8, output=str(work / "b8"))
        x8 = np.random.RandomState(1).uniform(0, 1, (8, 3, args.imgsz, args.imgsz)).astype(np.float32)
        batch_engines = {"ours torch eager": engines["ours torch eager"], "ours onnxruntime": load_engine(
            onnx8, threads=t), "ours openvino fp32": load_engine(ov8, threads=t, precision="fp32",
                                                                 hint="throughput")}
        timed = interleaved({n: (lambda e=e: e(x8)) for n, e in batch_engines.items()}, max(5, args.runs // 4), 2)
        report["batch8_images_per_s"] = {n: round(8000 / v["median_ms"], 2) for n, v in timed.items()}

    # 4. end-to-end predict on a real photo vs raw inference, per engine. Random weights give no box at all, so
    # these rows use the same architecture with BatchNorm statistics measured on the sample photos: its scores
    # spread like a model's (0.001..0.05), so NMS has real work at a low threshold.
    ours = {k: v for k, v in report["latency"].items() if k.startswith("ours")}
    best = min(ours, key=lambda k: ours[k]["median_ms"])
    report["best_engine"] = best
    photo_model = photo_calibrated(args.model, args.imgsz)
    photo_engines = {"ours torch eager": TorchEngine(copy.deepcopy(photo_model).fuse(), threads=t)}
    photo_onnx = export_model(photo_model, format="onnx", imgsz=args.imgsz, output=str(work / "photo.onnx"))
    photo_engines["ours onnxruntime"] = load_engine(photo_onnx, threads=t)
    if best.startswith("ours openvino"):
        kind = best.rpartition(" ")[2]  # fp32, bf16 or int8
        quantize = {"int8": True, "data": "sample"} if kind == "int8" else {}
        photo_ov = export_model(photo_model, format="openvino", imgsz=args.imgsz, output=str(work / "photo"),
                                **quantize)
        photo_engines[best] = load_engine(photo_ov, threads=t, **({} if quantize else {"precision": kind}))
    report["end_to_end"] = {}
    for name in dict.fromkeys([best, "ours onnxruntime", "ours torch eager"]):
        for candidates in (100, 3000):  # ~ a deployment threshold / a validation threshold (conf=0.001)
            conf = _threshold_for(photo_engines[name], args, candidates)
            row = _end_to_end(photo_engines[name], args, conf, folder=name == best)  # the folder: the target's engine
            report["end_to_end"][f"{name}, {candidates} candidates (conf={conf:.3g})"] = row
            if photo_engines[name].info.canvas_input:  # the same engine fed the Python-converted float input
                row = _end_to_end(photo_engines[name], args, conf, canvas_input=False)
                report["end_to_end"][f"{name}, {candidates} candidates, float input (conf={conf:.3g})"] = row

    # 5. compute lower bound
    peak32 = matmul_peak_gflops(torch.float32, t)
    peak16 = matmul_peak_gflops(torch.bfloat16, t)
    flops = report["gflops_with_attention"]
    report["compute_bound"] = {"peak_matmul_gflops_fp32": round(peak32, 1), "peak_matmul_gflops_bf16": round(peak16, 1),
                               "lower_bound_ms_fp32": round(flops / peak32 * 1000, 1),
                               "lower_bound_ms_bf16": round(flops / peak16 * 1000, 1)}
    report["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    scratch.cleanup()
    print(json.dumps(report, indent=1) if args.json else markdown(report))
    return 0


def end_to_end_only(args: argparse.Namespace, work: Path) -> dict:
    """Step 4 alone for one OpenVINO engine: single-photo and folder predict against raw inference."""
    kind = args.end_to_end_only.rpartition("-")[2]
    photo_model = photo_calibrated(args.model, args.imgsz)
    quantize = {"int8": True, "data": "sample"} if kind == "int8" else {}
    path = export_model(photo_model, format="openvino", imgsz=args.imgsz, output=str(work / "photo"), **quantize)
    engine = load_engine(path, threads=args.threads, **({} if quantize else {"precision": kind}))
    report = {"machine": machine_line(), "engine": f"openvino {kind}", "precision_in_effect": engine.info.precision}
    for candidates in (100, 3000):
        conf = _threshold_for(engine, args, candidates)
        report[f"{candidates} candidates (conf={conf:.3g})"] = _end_to_end(engine, args, conf)
        report[f"{candidates} candidates, float input"] = _end_to_end(engine, args, conf, canvas_input=False)
    return report


def photo_calibrated(name: str, imgsz: int) -> torch.nn.Module:
    """The architecture with random weights and BatchNorm statistics of the (flipped) letterboxed sample photos."""
    torch.manual_seed(0)
    model = build_model(load_architecture(name))
    images = torch.from_numpy(letterbox_batch([cv2.imread(str(p)) for p in sample_images()], imgsz).to_float_nchw())
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.cat((images, images.flip(3))))
    return model.eval()


def _foreign_ort(path: Path, threads: int) -> Callable:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _foreign_ov(path: Path, threads: int, precision: str) -> Callable:
    compiled = openvino.Core().compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                                 "INFERENCE_NUM_THREADS": threads,
                                                                 "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    return lambda x: request.infer({0: x})


def _threshold_for(engine, args: argparse.Namespace, candidates: int) -> float:
    """The confidence threshold at which ``candidates`` anchors of the photo enter NMS."""
    predictor = Predictor(engine, PredictConfig(imgsz=args.imgsz))
    inputs = _float_input(predictor, args.photo)
    best = np.sort(np.asarray(engine(inputs))[0, 4:].max(0))[::-1]
    return float(best[min(candidates, len(best) - 1)])


def _float_input(predictor: Predictor, photo: str) -> torch.Tensor | np.ndarray:
    """The photo as the engine's (1, 3, H, W) float input (a copy), also where predict hands over the uint8 canvas."""
    inputs, _ = predictor.preprocess([cv2.imread(photo)])
    if isinstance(inputs, np.ndarray) and inputs.dtype == np.uint8:
        return canvas_to_float_nchw(inputs)
    return inputs.clone() if isinstance(inputs, torch.Tensor) else inputs.copy()


def _end_to_end(engine, args: argparse.Namespace, conf: float, canvas_input: bool = True, folder: bool = True) -> dict:
    """Predict from the photo's path (decode included) vs the engine alone on the preprocessed input.

    ``canvas_input=False``: predict converts the uint8 canvas to the float input in Python even for an engine that
    converts it in its graph (the path before engines took the canvas), for the same-run comparison.
    """
    predictor = Predictor(engine, PredictConfig(imgsz=args.imgsz, conf=conf))
    predictor._canvas_input &= canvas_input  # noqa: SLF001 - a benchmark switch, not an option users need
    photo = args.photo
    inputs = _float_input(predictor, photo)
    speeds: list[dict] = []
    boxes = [0]

    def full() -> None:
        [result] = predictor([photo])
        speeds.append(result.speed)
        boxes[0] = len(result)

    def whole_folder() -> None:
        assert sum(1 for _ in predictor.stream([photo] * FOLDER_IMAGES)) == FOLDER_IMAGES

    calls = {"raw": lambda: engine(inputs), "predict": full, "decode": lambda: cv2.imread(photo)}
    timed = interleaved({**calls, "folder": whole_folder} if folder else calls, args.runs, 3)
    raw, e2e = timed["raw"]["median_ms"], timed["predict"]["median_ms"]
    per_image = timed["folder"]["median_ms"] / FOLDER_IMAGES if folder else float("nan")
    speeds = speeds[-args.runs:]
    pre, post, inference = (statistics.median(s[k] for s in speeds) for k in ("preprocess", "postprocess", "inference"))
    decode = timed["decode"]["median_ms"]
    return {"raw_median_ms": raw, "predict_median_ms": e2e, "overhead_pct": round(100 * (e2e - raw) / raw, 1),
            "decode_ms": decode, "preprocess_ms": round(pre, 2), "postprocess_ms": round(post, 2),
            "inference_in_predict_ms": round(inference, 2),
            "stage_overhead_pct": round(100 * (decode + pre + post) / inference, 1), "boxes": boxes[0],
            "folder_ms_per_image": round(per_image, 2), "folder_overhead_pct": round(100 * (per_image - raw) / raw, 1)}


def markdown(report: dict) -> str:
    lines = [f"machine: {report['machine']}; {report['model']} at {report['imgsz']}, batch 1, {report['threads']} "
             f"threads, {report['runs']} interleaved runs; versions {report['versions']}", ""]
    reference = report.get("ultralytics") or {}
    base = (report["latency"].get("ultralytics onnx in onnxruntime") or {}).get("median_ms")
    lines += ["| engine | median ms | p90 ms | min ms | × Ultralytics ONNX in ORT (same run) |",
              "|---|---:|---:|---:|---:|"]
    rows = list(report["latency"].items())
    for label, key in (("Ultralytics torch eager (own venv, before)", "torch_eager"),
                       ("Ultralytics ONNX Runtime (own venv, before)", "onnxruntime")):
        if reference.get(key):
            rows.append((label, reference[key]))
    for name, row in rows:
        ratio = f"{row['median_ms'] / base:.2f}" if base else "—"
        lines.append(f"| {name} | {row['median_ms']:.1f} | {row['p90_ms']:.1f} | {row['min_ms']:.1f} | {ratio} |")
    lines += ["", f"precision in effect: {report['precision_in_effect']}", ""]
    if "batch8_images_per_s" in report:
        lines += ["batch-8 throughput (images/s): " + ", ".join(f"{k} {v}" for k, v in
                                                                report["batch8_images_per_s"].items()), ""]
    lines += ["| end-to-end predict on a photo | raw ms | predict ms | overhead (medians) | decode ms | pre ms | "
              "post ms | (decode+pre+post) / inference | boxes | folder ms / image | folder overhead |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in report["end_to_end"].items():
        lines.append(f"| {name} | {row['raw_median_ms']:.1f} | {row['predict_median_ms']:.1f} | "
                     f"{row['overhead_pct']:.1f}% | {row['decode_ms']:.2f} | {row['preprocess_ms']:.2f} | "
                     f"{row['postprocess_ms']:.2f} | {row['stage_overhead_pct']:.1f}% | {row['boxes']} | "
                     f"{row['folder_ms_per_image']:.1f} | {row['folder_overhead_pct']:.1f}% |")
    bound = report["compute_bound"]
    lines += ["", f"compute lower bound: {report['gflops_with_attention']} GFLOPs (incl. attention; "
              f"{report['gflops']} without) / peak matmul {bound['peak_matmul_gflops_fp32']} GFLOP/s fp32 = "
              f"{bound['lower_bound_ms_fp32']} ms; bf16 {bound['peak_matmul_gflops_bf16']} GFLOP/s = "
              f"{bound['lower_bound_ms_bf16']} ms"]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
