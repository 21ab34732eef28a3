"""Trainer quality and speed against Ultralytics' trainer, same data, model, image size, batch, epochs and seeds.

Both sides start from the same architecture (our ``yolov12n-v1`` = Ultralytics ``yolo12n.yaml``), use the same
settings, and are timed as whole ``train`` calls (training + per-epoch validation). Both final (EMA, last-epoch)
models are scored by the same evaluator (ours, pycocotools) on the same validation split: Ultralytics' ``last.pt``
is imported through our restricted unpickler. Ultralytics trains on a copy of the dataset (it writes label caches
beside the labels). Every seed is one pair of runs, ours then theirs, back to back; the summary gives the mean and
the spread over seeds, because on a 96-image dataset one run's mAP moves by several points with the seed.

    .venv/bin/python benchmarks/train_compare.py --data sample --epochs 35 --imgsz 160 --batch 16 --seeds 0 1 2 \
        --ultralytics-python ~/.cache/yolov12-platform/ultralytics-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_common import copy_dataset, machine_line, ultralytics_version

from yolov12 import YOLO

REFERENCE = Path(__file__).parent / "reference" / "ultralytics_train.py"
MAP, MAP50 = "metrics/mAP50-95(B)", "metrics/mAP50(B)"


def train_ours(data: str, settings: dict, work: Path, seed: int) -> dict:
    torch.manual_seed(seed)
    model = YOLO("yolov12n-v1.yaml")
    start = time.perf_counter()
    model.train(data=data, project=str(work), name=f"ours-{seed}", verbose=False, plots=False, seed=seed, **settings)
    wall = time.perf_counter() - start
    metrics = model.val(data=data, imgsz=settings["imgsz"], batch=32)
    return {"mAP50-95": metrics[MAP], "mAP50": metrics[MAP50], "wall_s": wall}


def train_theirs(python: str, data: str, their_data: Path, images: int, settings: dict, work: Path, seed: int,
                 threads: int) -> dict:
    command = [python, str(REFERENCE), "--data", str(their_data), "--project", str(work / f"theirs-{seed}"),
               "--train-images", str(images), "--threads", str(threads),
               *[f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in settings.items()],
               f"seed={seed}", "plots=false", "deterministic=true"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = YOLO(theirs["last"]).val(data=data, imgsz=settings["imgsz"], batch=32)
    return {"mAP50-95": metrics[MAP], "mAP50": metrics[MAP50], "wall_s": theirs["wall_s"]}


def spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{mean:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--epochs", type=int, default=35)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--close-mosaic", type=int, default=5,
                        help="epochs at the end without mosaic (both trainers close it for all epochs when this is "
                             "at least --epochs; 0 keeps mosaic on throughout)")
    parser.add_argument("--ultralytics-python", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = dict(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=0, optimizer="AdamW", lr0=0.004,
                    warmup_epochs=1, close_mosaic=args.close_mosaic, amp=False)
    work = Path(tempfile.mkdtemp(prefix="train-compare-"))
    their_data, images = copy_dataset(args.data, work / "data")
    print(f"Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`\n")
    print(f"Machine: {machine_line()}; Ultralytics {ultralytics_version(args.ultralytics_python)} in its own venv\n")
    runs: dict[str, list[dict]] = {"ours": [], "theirs": []}
    for seed in args.seeds:
        runs["ours"].append(train_ours(args.data, settings, work, seed))
        runs["theirs"].append(train_theirs(args.ultralytics_python, args.data, their_data, images, settings, work,
                                           seed, args.threads))
        print(json.dumps({"seed": seed, "ours": runs["ours"][-1], "theirs": runs["theirs"][-1]}), flush=True)
    names = {"ours": "yolov12-platform (yolov12n-v1)", "theirs": "Ultralytics (yolo12n.yaml)"}
    print(f"\ndata={args.data} ({images} train images) epochs={args.epochs} imgsz={args.imgsz} batch={args.batch} "
          f"seeds={args.seeds} threads={args.threads}; both scored by yolov12.eval (pycocotools) on the val split\n")
    print("| trainer | seed | mAP50-95 | mAP50 | images/s (whole train call) | wall s |")
    print("|---|---:|---:|---:|---:|---:|")
    for side in ("ours", "theirs"):
        for seed, run in zip(args.seeds, runs[side]):
            print(f"| {names[side]} | {seed} | {run['mAP50-95']:.4f} | {run['mAP50']:.4f} | "
                  f"{images * args.epochs / run['wall_s']:.1f} | {run['wall_s']:.0f} |")
    print("\n| trainer | mAP50-95 (mean ± sd) | mAP50 (mean ± sd) | images/s (mean) |")
    print("|---|---:|---:|---:|")
    speed = {side: statistics.mean(images * args.epochs / r["wall_s"] for r in runs[side]) for side in runs}
    for side in ("ours", "theirs"):
        print(f"| {names[side]} | {spread([r['mAP50-95'] for r in runs[side]])} | "
              f"{spread([r['mAP50'] for r in runs[side]])} | {speed[side]:.1f} |")
    print(f"\nthroughput ours / theirs: {speed['ours'] / speed['theirs']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
