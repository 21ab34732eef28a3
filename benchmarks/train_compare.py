"""Trainer quality and speed against Ultralytics' trainer, same data, model, image size, batch and epochs.

Both runs start from the same architecture (our ``yolov12n-v1`` = Ultralytics ``yolo12n.yaml``), use the same
settings, and are timed as whole ``train`` calls (training + per-epoch validation). Both final models are then scored
by the same evaluator (ours, pycocotools) on the same validation split: Ultralytics' ``last.pt`` is imported through
our restricted unpickler.

    .venv/bin/python benchmarks/train_compare.py --data sample --epochs 35 --imgsz 160 --batch 16 \
        --ultralytics-python ~/.cache/yolov12-platform/ultralytics-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from yolov12 import YOLO
from yolov12.data.detection_dataset import build_datasets
from yolov12.data.sample_dataset import ensure_sample_detection

REFERENCE = Path(__file__).parent / "reference" / "ultralytics_train.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--epochs", type=int, default=35)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ultralytics-python", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = dict(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, workers=0, optimizer="AdamW", lr0=0.004,
                    warmup_epochs=1, close_mosaic=5, seed=0, amp=False)
    data_yaml = ensure_sample_detection() if args.data == "sample" else args.data
    train_images = len(build_datasets(args.data, "train")[0])
    work = Path(tempfile.mkdtemp(prefix="train-compare-"))

    torch.manual_seed(0)
    ours = YOLO("yolov12n-v1.yaml")
    start = time.perf_counter()
    ours.train(data=args.data, project=str(work), name="ours", verbose=False, plots=False, **settings)
    our_wall = time.perf_counter() - start
    our_metrics = ours.val(data=args.data, imgsz=args.imgsz, batch=32)

    command = [args.ultralytics_python, str(REFERENCE), "--data", str(data_yaml), "--project", str(work),
               "--train-images", str(train_images), "--threads", str(args.threads),
               *[f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in settings.items()],
               "plots=false", "deterministic=true"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    their_metrics = YOLO(theirs["last"]).val(data=args.data, imgsz=args.imgsz, batch=32)

    rows = [("yolov12-platform (yolov12n-v1)", our_metrics, train_images * args.epochs / our_wall, our_wall),
            ("Ultralytics 8.4.190 (yolo12n.yaml)", their_metrics, theirs["images_per_s"], theirs["wall_s"])]
    print(f"data={args.data} epochs={args.epochs} imgsz={args.imgsz} batch={args.batch} threads={args.threads} "
          f"train images={train_images}; both scored by yolov12.eval (pycocotools) on the val split")
    print("| trainer | mAP50-95 | mAP50 | images/s (whole train call) | wall s |")
    print("|---|---:|---:|---:|---:|")
    for name, metrics, speed, wall in rows:
        print(f"| {name} | {metrics['metrics/mAP50-95(B)']:.4f} | {metrics['metrics/mAP50(B)']:.4f} | "
              f"{speed:.1f} | {wall:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
