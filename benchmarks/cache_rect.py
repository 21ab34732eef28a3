"""``cache=`` and ``rect=`` on the sample data: training-loader epoch time per cache mode, validation time and mAP
with square and rectangular batches, in one run.

    .venv/bin/python benchmarks/cache_rect.py --imgsz 320 --epochs 8 --train-epochs 20 --val-imgsz 160
    .venv/bin/python benchmarks/cache_rect.py --parts cache --source-size 1280 --imgsz 640 --epochs 8

1. **cache** (``none``, ``ram``, ``disk``): the training loader of ``build_training_data`` (the full augmentation:
   mosaic, affine, HSV, flips, collate; ``--workers`` processes, 0 = in this process) iterated for ``--epochs``
   epochs, the modes interleaved epoch by epoch so that machine noise hits each alike. What is timed is the loader,
   not the training step: the cache removes the JPEG decode and the long-side resize, and the step (the same for
   every mode) would only add the same seconds to each row. ``build`` is building the loaders, the cache fill
   included (for ``disk`` the first build writes the ``.npy`` files; a second build, also timed, reuses them).
   The dataset is a copy of ``sample`` in a temporary folder (``.npy`` files go beside its images); with
   ``--source-size`` its train images are first upscaled to that side (JPEG, quality 95), like photos larger than
   the training size, whose decode and downscale the cache saves.
2. **rect** (False, True): a yolov12n trained ``--train-epochs`` epochs on ``sample`` (``--weights`` skips the
   training), validated with ``build_val_loader(rect=...)`` + ``evaluate_detection``, alternating, ``--val-repeats``
   times each. On ``sample`` every image is 320x320, so rectangular batches are square; the second dataset,
   ``sample-cropped``, is ``sample``'s validation images cropped to aspect ratios between 1:2 and 2:1, and
   ``sample-4x3`` the same images cropped to 4:3 landscape, the shape of most photos (labels clipped,
   boxes that keep under 60% of their area dropped), where rect batches are smaller than the square.

Prints the machine (CPU model and features, load average at start) and Markdown tables.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from bench_common import copy_dataset, machine_line

from yolov12.config.train import TrainConfig
from yolov12.engine.data_setup import build_training_data, build_val_loader
from yolov12.engine.distributed import DistributedContext
from yolov12.engine.evaluate import MAP50_KEY, MAP_KEY, evaluate_detection

CONTEXT = DistributedContext(0, 1, 0)
CACHE_MODES = {"none": False, "ram": "ram", "disk": "disk"}


def upscale_train_images(data_yaml: Path, side: int) -> None:
    """Rewrite the train images of a dataset copy at ``side`` x ``side`` (labels are normalised: unchanged)."""
    config = yaml.safe_load(data_yaml.read_text())
    for path in sorted((Path(config["path"]) / config["train"]).iterdir()):
        image = cv2.resize(cv2.imread(str(path)), (side, side), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def loader_epochs(data_yaml: Path, args: argparse.Namespace) -> list[dict]:
    """Per cache mode: build seconds (and a second disk build), and seconds per loader epoch (interleaved)."""
    rows, loaders = [], {}
    for label, mode in CACHE_MODES.items():
        config = TrainConfig.from_overrides(data=str(data_yaml), imgsz=args.imgsz, batch=args.batch,
                                            workers=args.workers, cache=mode, val=False, epochs=args.epochs)
        start = time.perf_counter()
        loaders[label] = build_training_data(config, "detect", CONTEXT)
        build = time.perf_counter() - start
        rebuild = None
        if label == "disk":
            start = time.perf_counter()
            loaders[label] = build_training_data(config, "detect", CONTEXT)
            rebuild = time.perf_counter() - start
        rows.append({"mode": label, "build": build, "rebuild": rebuild, "epochs": []})
    for epoch in range(args.epochs):
        for row in rows:
            data = loaders[row["mode"]]
            data.set_epoch(epoch, args.epochs)
            np.random.seed(epoch)
            start = time.perf_counter()
            images = sum(batch["images"].shape[0] for batch in data.train_loader)
            row["epochs"].append(time.perf_counter() - start)
            row["images"] = images
    return rows


def cropped_copy(data_yaml: Path, destination: Path, seed: int = 0, landscape: float | None = None) -> Path:
    """``sample``'s val images cropped to random aspect ratios in [1/2, 2] (boxes clipped) -> a YOLO data.yaml.

    ``landscape``: crop every image to this width / height ratio instead (4/3: the shape of most photos).
    """
    from yolov12.data.detection_dataset import build_datasets  # noqa: PLC0415

    dataset, names = build_datasets(str(data_yaml), "val")
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        (destination / "images" / split).mkdir(parents=True, exist_ok=True)
        (destination / "labels" / split).mkdir(parents=True, exist_ok=True)
    for record in dataset.records:
        image = cv2.imread(record.path)
        height, width = image.shape[:2]
        keep = rng.uniform(0.5, 1.0)
        crop_h, crop_w = (height, int(width * keep)) if rng.uniform() < 0.5 else (int(height * keep), width)
        if landscape is not None:
            crop_h, crop_w = round(width / landscape), width
        top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
        lines = []
        for cls, (cx, cy, w, h) in zip(record.classes, record.boxes_xywhn.astype(np.float64), strict=True):
            x1, y1, x2, y2 = (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height
            cx1, cy1 = max(x1, left), max(y1, top)
            cx2, cy2 = min(x2, left + crop_w), min(y2, top + crop_h)
            if cx2 <= cx1 or cy2 <= cy1 or (cx2 - cx1) * (cy2 - cy1) < 0.6 * (x2 - x1) * (y2 - y1):
                continue
            lines.append(f"{int(cls)} {((cx1 + cx2) / 2 - left) / crop_w:.6f} {((cy1 + cy2) / 2 - top) / crop_h:.6f} "
                         f"{(cx2 - cx1) / crop_w:.6f} {(cy2 - cy1) / crop_h:.6f}")
        name = Path(record.path).name
        for split in ("train", "val"):  # the train split only has to exist
            cv2.imwrite(str(destination / "images" / split / name), image[top:top + crop_h, left:left + crop_w])
            (destination / "labels" / split / f"{Path(name).stem}.txt").write_text("\n".join(lines))
    (destination / "data.yaml").write_text(yaml.safe_dump({"path": str(destination), "train": "images/train",
                                                           "val": "images/val", "names": list(names)}))
    return destination / "data.yaml"


def trained_model(data_yaml: Path, args: argparse.Namespace, workdir: Path):
    from yolov12 import YOLO  # noqa: PLC0415

    if args.weights:
        return YOLO(args.weights).model
    torch.manual_seed(0)
    model = YOLO("yolov12n.yaml")
    model.train(data=str(data_yaml), epochs=args.train_epochs, imgsz=args.val_imgsz, batch=16, nbs=16, workers=0,
                optimizer="AdamW", lr0=0.004, warmup_epochs=1, close_mosaic=5, seed=0, amp=False, plots=False,
                val=False, verbose=False, project=str(workdir / "runs"), name="train", device="cpu")
    return model.model


def validation_rows(model, datasets: dict[str, Path], args: argparse.Namespace) -> list[dict]:
    """Per dataset and rect setting: mean / min seconds of a validation pass, pixels per image, mAPs."""
    rows = []
    names = model.names
    for label, data_yaml in datasets.items():
        loaders = {rect: build_val_loader(str(data_yaml), "detect", args.val_imgsz, args.val_batch, 0, rect=rect)
                   for rect in (False, True)}
        times: dict[bool, list[float]] = {False: [], True: []}
        metrics = {}
        for _ in range(args.val_repeats):
            for rect, loader in loaders.items():
                start = time.perf_counter()
                metrics[rect] = evaluate_detection(model, loader, names, torch.device("cpu"))
                times[rect].append(time.perf_counter() - start)
        for rect, loader in loaders.items():
            pixels = [b["images"].shape[2] * b["images"].shape[3] for b in loader for _ in range(len(b["paths"]))]
            rows.append({"data": label, "rect": rect, "mean": statistics.mean(times[rect]), "min": min(times[rect]),
                         "pixels": statistics.mean(pixels), "map": metrics[rect][MAP_KEY],
                         "map50": metrics[rect][MAP50_KEY]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imgsz", type=int, default=320, help="training size of the cache rows")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4, help="loader epochs per cache mode")
    parser.add_argument("--weights", help="a trained detector (skips the training)")
    parser.add_argument("--train-epochs", type=int, default=20)
    parser.add_argument("--val-imgsz", type=int, default=160)
    parser.add_argument("--val-batch", type=int, default=8)
    parser.add_argument("--val-repeats", type=int, default=3)
    parser.add_argument("--source-size", type=int, default=0, help="upscale the train images to this side first")
    parser.add_argument("--parts", default="cache,rect", help="which tables: cache, rect or both")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    cv2.setNumThreads(1)
    print(machine_line())
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="cache_rect."))
    try:
        data_yaml, images = copy_dataset("sample", workdir / "data")
        cache_rows = val_rows = []
        if "rect" in args.parts:
            model = trained_model(data_yaml, args, workdir)
            cropped = cropped_copy(data_yaml, workdir / "sample-cropped")
            photos = cropped_copy(data_yaml, workdir / "sample-4x3", landscape=4 / 3)
            val_rows = validation_rows(model, {"sample": data_yaml, "sample-cropped": cropped, "sample-4x3": photos},
                                       args)
        if "cache" in args.parts:
            if args.source_size:
                upscale_train_images(data_yaml, args.source_size)
            cache_rows = loader_epochs(data_yaml, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if cache_rows:
        print_cache_table(cache_rows, images, args)
    if val_rows:
        print_rect_table(val_rows, args)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nwhole command: {time.perf_counter() - started:.0f} s; load average at the end {load}")


def print_cache_table(cache_rows: list[dict], images: int, args: argparse.Namespace) -> None:
    source = f"{args.source_size}x{args.source_size}" if args.source_size else "320x320"
    print(f"\ncache: {images} train images ({source} JPEG), imgsz {args.imgsz}, batch {args.batch}, workers "
          f"{args.workers}, {args.epochs} loader epochs per mode (interleaved)\n")
    print("| cache | build (s) | epoch 1 (s) | mean epoch 2+ (s) | min epoch (s) | images/s (mean 2+) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in cache_rows:
        later = row["epochs"][1:] or row["epochs"]
        build = f"{row['build']:.2f}" + (f" (again: {row['rebuild']:.2f})" if row["rebuild"] is not None else "")
        print(f"| {row['mode']} | {build} | {row['epochs'][0]:.2f} | {statistics.mean(later):.2f} | "
              f"{min(row['epochs']):.2f} | {row['images'] / statistics.mean(later):.0f} |")


def print_rect_table(val_rows: list[dict], args: argparse.Namespace) -> None:
    source = args.weights or f"yolov12n trained {args.train_epochs} epochs on sample at {args.val_imgsz} px"
    print(f"\nrect: {source}; val at {args.val_imgsz} px, batch {args.val_batch}, {args.val_repeats} passes each "
          "(alternating)\n")
    print("| data | rect | mean pass (s) | min pass (s) | input px per image | mAP50-95 | mAP50 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in val_rows:
        print(f"| {row['data']} | {row['rect']} | {row['mean']:.2f} | {row['min']:.2f} | {row['pixels']:.0f} | "
              f"{row['map']:.4f} | {row['map50']:.4f} |")


if __name__ == "__main__":
    sys.exit(main())
