"""Data-loader benchmark: images/s of the full detection training augmentation per worker process.

Measured on the offline sample dataset (``yolov12.data.sample_dataset``: 96 train scenes of 320x320 JPEGs, digits
with polygons), at ``--imgsz`` (640): JPEG decode + the pipeline of ``build_detection_transforms`` with Ultralytics'
default hyper-parameters (mosaic 1.0, translate 0.1, scale 0.5, HSV, fliplr 0.5; override with ``--hyp k=v``) +
``to_training_arrays``. Three rows: decode only, the full pipeline in one process (no DataLoader: this is the
per-worker rate), and a ``torch.utils.data.DataLoader`` with ``--workers`` processes, batch ``--batch`` and
``collate_detection``. OpenCV and torch run 1 thread per process, as in data-loader workers.

``--ops`` adds the per-op timings behind the albumentations-vs-hand-written choices cited in
``yolov12/data/augment/*.py``.

``--ultralytics-python PATH`` (the separate Ultralytics venv's python) also runs
``benchmarks/reference/ultralytics_loader.py`` in that venv, in this invocation, right after our full-pipeline row:
Ultralytics' own training dataset (``build_yolo_dataset(..., mode="train")``, their ``default.yaml`` hyper-parameters
plus the same ``--hyp`` overrides) on the same data.yaml, imgsz and number of images, ``dataset[i]`` timed in one
process with 1 OpenCV/torch thread after 3 untimed calls, exactly like our row. It adds the row "Ultralytics 8.4 full
pipeline, one process" and the ratio ours/theirs, and checks that both sides report the same augmentation
hyper-parameters (mosaic 1.0, translate 0.1, scale 0.5, hsv 0.015/0.7/0.4, fliplr 0.5; degrees, shear, perspective,
flipud, mixup, copy-paste 0; their cutmix and bgr 0). The steps are the same (load + long-side resize, 4-image mosaic
on a 2·imgsz canvas, one affine warp into imgsz with boxes from the warped polygons, candidate filter, HSV LUT,
flips, CHW RGB output). Differences that remain, all in how the work is done, not in the augmentation:

* **Mosaic partners.** Both keep the last min(n, 8·batch, 1000) loaded images (decoded and resized) per process
  and draw the three mosaic partners from that buffer (ours: ``data.mixing_buffer``,
  ``yolov12/data/augment/partners.py``, built here by the trainer's own ``mosaic_partners``); with ``--batch 16``
  the 96-image sample set fits. An image still in the buffer is not decoded again on either side, so on the sample
  set neither decodes after the buffer has filled; ``--copies K`` trains on K links of each image, a set larger than
  the buffers, where both decode about one image per sample. Ours empties its buffer at each epoch start (here:
  each pass over the set), so that a resumed epoch repeats its draws; theirs keeps it across epochs in persistent
  workers. The row
  "mixing_buffer=0" is our pipeline decoding all four images of every mosaic (the behaviour before the buffer).
* **Polygons.** Theirs resamples every polygon to 1000 points on each ``dataset[i]`` and warps those; ours warps
  the polygon's own vertices (clipped). Both take the boxes from the warped polygons.
* **Albumentations.** Their pipeline has an ``Albumentations`` step (Blur, MedianBlur, ToGray, CLAHE, each p=0.01)
  that only runs when albumentations imports in their venv; the reference venv does not install it (the JSON says
  so), so it is a no-op there, and ours has no such step.
* **Formatting.** Theirs returns torch tensors plus ``batch_idx`` per sample; ours returns numpy arrays
  (``to_training_arrays``) and makes tensors in ``collate_detection``.

``--rounds N`` times our full-pipeline row and theirs N times, alternately, and reports the medians with every round:
the Ultralytics side varied by up to 1.6x between runs of the same command on a quiet machine, ours by a few percent.

Their dataset writes a label cache next to the labels, so the reference copies our sample dataset to a temporary
folder first (see its docstring); our dataset folder is not written to.

    .venv/bin/python benchmarks/dataloader.py --imgsz 640 --images 192 --workers 2 --batch 16 --ops \
        --ultralytics-python ~/.cache/yolov12-platform/ultralytics-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from bench_common import machine_line
from torch.utils.data import DataLoader, Dataset

from yolov12.config.train import AugmentSection, TrainConfig
from yolov12.data.augment import (
    augment_section,
    build_detection_transforms,
    collate_detection,
    to_training_arrays,
)
from yolov12.data.augment._albumentations import load_albumentations, pascal_voc_bbox_params
from yolov12.data.augment.affine import RandomAffine
from yolov12.data.augment.mosaic import Mosaic, build_mosaic, resize_long_side
from yolov12.data.augment.photometric import RandomHSV, flip_sample
from yolov12.data.detection_dataset import build_datasets
from yolov12.data.sample_dataset import ensure_sample_detection
from yolov12.engine.data_setup import mosaic_partners
from yolov12.infer.letterbox import letterbox

REFERENCE = Path(__file__).parent / "reference" / "ultralytics_loader.py"


class AugmentedArrays(Dataset):
    """``dataset[i]`` -> :func:`to_training_arrays` of the augmented sample (what a training DataLoader yields)."""

    def __init__(self, dataset, pipeline, partners=None) -> None:
        self.dataset, self.pipeline, self.partners = dataset, pipeline, partners

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        if index == 0 and self.partners is not None:  # an epoch starts: the trainer empties the buffer
            self.partners.clear()
        return to_training_arrays(self.pipeline(self.dataset.load_sample(index)))


def _one_thread(_: int = 0) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _parse_hyp(pairs: list[str]) -> dict[str, float]:
    hyp = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        hyp[key] = float(value)
    return hyp


def rate(function: Callable[[int], object], count: int, size: int) -> float:
    """Items per second of ``function(i)`` over ``count`` calls (after 3 untimed ones)."""
    for i in range(3):
        function(i % size)
    start = time.perf_counter()
    for i in range(count):
        function(i % size)
    return count / (time.perf_counter() - start)


def loader_rate(dataset: Dataset, workers: int, batch: int, count: int) -> float:
    """Images per second through a DataLoader (worker start-up included, first batch excluded)."""
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate_detection,
        worker_init_fn=_one_thread,
        persistent_workers=False,
    )
    seen, start = 0, None
    while seen < count:
        for batch_data in loader:
            if start is None:  # exclude worker start-up and the first batch
                start = time.perf_counter()
                continue
            seen += len(batch_data["paths"])
            if seen >= count:
                break
    return seen / (time.perf_counter() - start)


def ultralytics_rate(python: str, data_yaml: Path, args: argparse.Namespace, hyp: dict[str, float]) -> dict:
    """Run ``reference/ultralytics_loader.py`` with the Ultralytics venv's ``python``; its JSON result."""
    overrides = [f"{key}={value}" for key, value in hyp.items()]
    options = {"--data": data_yaml, "--imgsz": args.imgsz, "--images": args.images, "--batch": args.batch}
    options["--seed"] = args.seed
    command = [python, str(REFERENCE), *[str(x) for item in options.items() for x in item], *overrides]
    env = {**os.environ, "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def hyp_differences(ours: AugmentSection, theirs: dict[str, float]) -> list[str]:
    """Augmentation settings that differ; keys only Ultralytics has (cutmix, bgr) must be 0 there."""
    differences = []
    for key, value in theirs.items():
        mine = getattr(ours, key, 0.0)
        if abs(float(mine) - float(value)) > 1e-12:
            differences.append(f"{key}: ours {mine}, Ultralytics {value}")
    return differences


def print_ultralytics_side(theirs: dict, ours: AugmentSection) -> None:
    """Their versions and mosaic buffer, and whether both sides ran the same augmentation settings."""
    albumentations = theirs["albumentations"] or "not installed (their Albumentations step is a no-op)"
    print(
        f"Ultralytics side: ultralytics {theirs['ultralytics']}, torch {theirs['torch']}, OpenCV {theirs['opencv']}, "
        f"albumentations {albumentations}; {theirs['train_images']} train images, mosaic buffer "
        f"{theirs['mosaic_buffer_images']} images\n"
    )
    differences = hyp_differences(ours, theirs["hyp"])
    settings = ", ".join(f"{key} {value}" for key, value in theirs["hyp"].items())
    print(
        f"Augmentation: {'DIFFERENT: ' + '; '.join(differences) if differences else 'same on both sides'} "
        f"({settings})\n"
    )


def time_ms(function: Callable[[], object], repeats: int = 30, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean ms per call of ``repeats`` calls (robust on a shared machine)."""
    function()
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        results.append((time.perf_counter() - start) / repeats * 1000)
    return statistics.median(results)


def op_rows(dataset, imgsz: int) -> list[tuple[str, str, float]]:
    """(operation, implementation, ms) for the choices documented in the augment modules."""
    A = load_albumentations()
    rng = np.random.default_rng(0)
    sample = resize_long_side(dataset.load_sample(0), imgsz)
    image = sample.image
    boxes, classes = sample.boxes, sample.classes
    indices = np.arange(len(boxes))
    canvas = Mosaic(dataset, imgsz, p=1.0)(sample)
    bbox_params = pascal_voc_bbox_params()
    rows = []

    def add(operation: str, implementation: str, function: Callable[[], object]) -> None:
        rows.append((operation, implementation, time_ms(function)))

    hsv = RandomHSV(0.015, 0.7, 0.4)
    add("HSV jitter", "ours: LUT (Ultralytics gains)", lambda: hsv.apply_to_image(image))
    hue_sat = A.HueSaturationValue(hue_shift_limit=3, sat_shift_limit=50, val_shift_limit=40, p=1)
    add("HSV jitter", "A.HueSaturationValue (additive)", lambda: hue_sat(image=image))
    jitter = A.ColorJitter(brightness=0.4, contrast=0, saturation=0.7, hue=0.015, p=1)
    add("HSV jitter", "A.ColorJitter", lambda: jitter(image=image))
    add("horizontal flip + boxes", "ours: cv2.flip", lambda: flip_sample(sample, "horizontal"))
    flip = A.Compose([A.HorizontalFlip(p=1)], bbox_params=bbox_params)
    add(
        "horizontal flip + boxes",
        "A.Compose[HorizontalFlip]",
        lambda: flip(image=image, bboxes=boxes, classes=classes, indices=indices),
    )
    others = [resize_long_side(dataset.load_sample(i), imgsz) for i in (1, 2, 3)]
    centre = (imgsz, imgsz)
    add(
        "4-image mosaic, decoded+resized inputs",
        "ours: build_mosaic (2·imgsz canvas)",
        lambda: build_mosaic([sample, *others], centre, 2 * imgsz),
    )
    a_mosaic = A.Compose(
        [A.Mosaic(target_size=(imgsz, imgsz), cell_shape=(imgsz, imgsz), fit_mode="contain", fill=114, p=1)],
        bbox_params=bbox_params,
    )
    metadata = [
        {"image": o.image, "bboxes": o.boxes, "classes": o.classes, "indices": np.arange(len(o.boxes))} for o in others
    ]
    add(
        "4-image mosaic, decoded+resized inputs",
        "A.Mosaic (cell grid, output imgsz)",
        lambda: a_mosaic(image=image, bboxes=boxes, classes=classes, indices=indices, mosaic_metadata=metadata),
    )
    affine = RandomAffine(imgsz, degrees=10, translate=0.1, scale=0.5, shear=2)
    add("affine on mosaic canvas -> imgsz", "ours: one warpAffine into imgsz", lambda: affine(canvas))
    a_affine = A.Compose(
        [
            A.Affine(scale=(0.5, 1.5), translate_percent=(-0.05, 0.05), rotate=(-10, 10), shear=(-2, 2), fill=114, p=1),
            A.CenterCrop(imgsz, imgsz),
        ],
        bbox_params=bbox_params,
    )
    canvas_indices = np.arange(len(canvas.boxes))
    add(
        "affine on mosaic canvas -> imgsz",
        "A.Affine + A.CenterCrop",
        lambda: a_affine(image=canvas.image, bboxes=canvas.boxes, classes=canvas.classes, indices=canvas_indices),
    )
    square = cv2.resize(image, (imgsz, imgsz))
    perspective = RandomAffine(imgsz, degrees=10, scale=0.5, perspective=0.0005)
    add(
        "affine + perspective, imgsz -> imgsz",
        "ours: one warpPerspective",
        lambda: perspective(type(sample)(square, boxes, classes, sample.path)),
    )
    a_perspective = A.Compose(
        [A.Affine(scale=(0.5, 1.5), rotate=(-10, 10), fill=114, p=1), A.Perspective(scale=(0, 0.05), fill=114, p=1)],
        bbox_params=bbox_params,
    )
    add(
        "affine + perspective, imgsz -> imgsz",
        "A.Affine + A.Perspective",
        lambda: a_perspective(image=square, bboxes=boxes, classes=classes, indices=indices),
    )
    raw = rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)
    add("letterbox 500x375 -> imgsz", "ours: yolov12.infer.letterbox", lambda: letterbox(raw, imgsz))
    a_letterbox = A.Compose(
        [
            A.LongestMaxSize(max_size=imgsz),
            A.PadIfNeeded(imgsz, imgsz, position="center", border_mode=cv2.BORDER_CONSTANT, fill=114),
        ],
        bbox_params=bbox_params,
    )
    add(
        "letterbox 500x375 -> imgsz",
        "A.LongestMaxSize + A.PadIfNeeded",
        lambda: a_letterbox(image=raw, bboxes=boxes[:1] * 0.5, classes=classes[:1], indices=indices[:1]),
    )
    return rows


def replicated_dataset(data_yaml: Path, copies: int, folder: Path) -> Path:
    """A data.yaml under ``folder`` whose train split holds ``copies`` hard links of each train image (and label)
    of ``data_yaml``'s dataset, the val split one of each: a larger set with the same pixels."""
    source = data_yaml.parent
    for split, count in (("train", copies), ("val", 1)):
        for kind in ("images", "labels"):
            (folder / kind / split).mkdir(parents=True)
            for path in sorted((source / kind / split).iterdir()):
                for copy in range(count):
                    os.link(path, folder / kind / split / f"{path.stem}_c{copy}{path.suffix}")
    text = data_yaml.read_text().replace(f"path: {source}", f"path: {folder}")
    (folder / "data.yaml").write_text(text)
    return folder / "data.yaml"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--images", type=int, default=192, help="images timed per row")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hyp", nargs="*", default=[], help="augmentation overrides, e.g. mixup=0.1 degrees=5")
    parser.add_argument("--ops", action="store_true", help="also time single ops against albumentations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1, help="full-pipeline rows: alternate ours and theirs N times "
                        "and report medians")
    parser.add_argument("--copies", type=int, default=1,
                        help="train on K hard-linked copies of each sample image (a set larger than the buffers)")
    parser.add_argument("--ultralytics-python", help="the Ultralytics venv's python: add their loader's row")
    args = parser.parse_args(argv)
    _one_thread()
    np.random.seed(args.seed)
    data_yaml = ensure_sample_detection()
    scratch = None
    if args.copies > 1:
        scratch = tempfile.TemporaryDirectory(prefix="loader-bench-")
        data_yaml = replicated_dataset(data_yaml, args.copies, Path(scratch.name))
    dataset, _ = build_datasets(data_yaml, "train")
    hyp = _parse_hyp(args.hyp)
    section = TrainConfig.from_overrides({"imgsz": args.imgsz, "batch": args.batch}).data
    buffered_set, _ = build_datasets(data_yaml, "train")
    partners = mosaic_partners(buffered_set, section, world_size=1)  # what the trainer builds (and attaches)
    augmented = AugmentedArrays(buffered_set, build_detection_transforms(hyp, args.imgsz, partners, training=True),
                                partners)
    unbuffered = AugmentedArrays(dataset, build_detection_transforms(hyp, args.imgsz, dataset, training=True))
    size = len(dataset)
    header = f"{machine_line()}, OpenCV {cv2.__version__}, albumentations {load_albumentations().__version__}"
    ours_rates, their_rates, theirs = [], [], None
    for _ in range(args.rounds):  # ours then theirs, alternately, so that both see the same machine load
        ours_rates.append(rate(augmented.__getitem__, args.images, size))
        if args.ultralytics_python:
            theirs = ultralytics_rate(args.ultralytics_python, data_yaml, args, hyp)
            their_rates.append(theirs["images_per_s"])
    rows = [
        ("decode only (cv2.imread)", 1, rate(dataset.load_sample, args.images, size)),
        ("full pipeline, one process, no DataLoader", 1, statistics.median(ours_rates)),
    ]
    if theirs is not None:
        major_minor = ".".join(theirs["ultralytics"].split(".")[:2])
        rows.append((f"Ultralytics {major_minor} full pipeline, one process", 1, statistics.median(their_rates)))
    rows.append(("full pipeline, mixing_buffer=0 (every partner decoded), one process", 1,
                 rate(unbuffered.__getitem__, args.images, size)))
    rows.append(
        (
            f"DataLoader, {args.workers} workers, batch {args.batch}",
            args.workers,
            loader_rate(augmented, args.workers, args.batch, args.images),
        )
    )
    print(f"Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`\n")
    print(f"Machine: {header}\n")
    copies = f" ({args.copies} copies of each sample image)" if args.copies > 1 else ""
    print(f"Data: sample dataset, {size} train images{copies} (320x320 JPEG); imgsz {args.imgsz}; mixing buffer "
          f"{partners.capacity} images; overrides: {hyp or 'none'}\n")
    if theirs is not None:
        print_ultralytics_side(theirs, augment_section(hyp))
    print("| what | processes | images/s | images/s per process |")
    print("| --- | ---: | ---: | ---: |")
    for what, processes, value in rows:
        print(f"| {what} | {processes} | {value:.1f} | {value / processes:.1f} |")
    if theirs is not None:
        ratios = ", ".join(f"{mine / other:.2f}x" for mine, other in zip(ours_rates, their_rates))
        print(f"\nours / Ultralytics, full pipeline in one process (medians of {args.rounds} alternating rounds): "
              f"{rows[1][2] / rows[2][2]:.2f}x; per round: {ratios}; ours "
              f"{', '.join(f'{r:.1f}' for r in ours_rates)}, theirs {', '.join(f'{r:.1f}' for r in their_rates)} "
              "images/s")
    if args.ops:
        print(f"\n| operation (imgsz {args.imgsz}) | implementation | ms (median of 5 x 30) |")
        print("| --- | --- | ---: |")
        for operation, implementation, ms in op_rows(dataset, args.imgsz):
            print(f"| {operation} | {implementation} | {ms:.2f} |")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    main()
