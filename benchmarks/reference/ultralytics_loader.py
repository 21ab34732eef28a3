"""Images/s of Ultralytics' own detection training dataset, one process (run with the Ultralytics venv's python).

Builds the dataset the Ultralytics trainer would build for ``--data`` through their public API
(``ultralytics.cfg.get_cfg`` with overrides, ``ultralytics.data.utils.check_det_dataset``,
``ultralytics.data.build.build_yolo_dataset(cfg, img_path, batch, data, mode="train")``), with the defaults of their
``default.yaml`` apart from ``imgsz``/``batch`` and the ``key=value`` overrides given. Then times ``dataset[i]``
(JPEG decode, mosaic, random perspective, their Albumentations step, HSV, flips, ``Format``) for ``--images``
calls, ``i`` cycling over the dataset, after 3 untimed calls, with OpenCV and torch on 1 thread: the per-worker rate
of their training loader. Prints one JSON line on stdout (their logs go to stderr). Their dataset keeps the last
min(n, 8·batch, 1000) loaded images in RAM and draws the mosaic partners from that buffer, so ``--batch`` matters
(the JSON reports the buffer length).

Their dataset writes a label cache (``labels/train.cache``) next to the labels. When the dataset lies under our
datasets folder (``--datasets-root``, default ``$YOLOV12_DATASETS`` or ``~/.cache/yolov12-platform/datasets``, as
``yolov12.data.sample_dataset.datasets_root``), images and labels are first copied to a temporary folder, which is
removed at the end, so our folder stays clean. Nothing is downloaded (``YOLO_OFFLINE=1``).

    YOLO_OFFLINE=1 $VENV_PY benchmarks/reference/ultralytics_loader.py --data ~/.cache/yolov12-platform/datasets/sample/data.yaml \
        --imgsz 640 --images 192 --batch 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

HYP_KEYS = (
    "mosaic mixup cutmix copy_paste degrees translate scale shear perspective hsv_h hsv_s hsv_v flipud fliplr bgr"
)
HYP_KEYS = tuple(HYP_KEYS.split())  # reported, so that the caller can check both sides ran the same augmentation


def default_datasets_root() -> Path:
    return Path(os.environ.get("YOLOV12_DATASETS") or Path.home() / ".cache" / "yolov12-platform" / "datasets")


def parse_settings(items: list[str]) -> dict:
    """``key=value`` -> dict, values read as JSON where they parse (numbers, true/false), else strings."""
    settings = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def dataset_root(data_yaml: Path, data: dict) -> Path:
    root = Path(data.get("path") or data_yaml.parent).expanduser()
    return root if root.is_absolute() else (data_yaml.parent / root).resolve()


def scratch_copy(data_yaml: Path, protected: Path, scratch: Path) -> Path:
    """The data.yaml to use: ``data_yaml`` itself, or a copy of its dataset (images, labels) under ``scratch``."""
    import yaml

    data = yaml.safe_load(data_yaml.read_text())
    root = dataset_root(data_yaml, data).resolve()
    if not root.is_relative_to(protected.resolve()):
        return data_yaml
    copy = scratch / root.name
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("*.cache", "*.cache.json", "*.npy", ".complete"))
    data["path"] = str(copy)
    copied_yaml = copy / data_yaml.name
    copied_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    print(f"copied {root} -> {copy} (label cache files stay out of our dataset folder)", file=sys.stderr)
    return copied_yaml


def images_per_second(dataset, count: int, warmup: int = 3) -> float:
    size = len(dataset)
    for i in range(warmup):
        dataset[i % size]
    start = time.perf_counter()
    for i in range(count):
        dataset[i % size]
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="data.yaml")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--images", type=int, default=192, help="timed dataset[i] calls")
    parser.add_argument("--batch", type=int, default=16, help="sets their mosaic buffer: min(n, 8*batch, 1000) images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--datasets-root",
        type=Path,
        default=default_datasets_root(),
        help="datasets under this folder are copied to a temporary folder first",
    )
    parser.add_argument("settings", nargs="*", help="key=value augmentation overrides (Ultralytics names)")
    args = parser.parse_args()
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import cv2
    import numpy as np
    import torch
    import ultralytics
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.utils import LOGGER

    for handler in LOGGER.handlers:  # keep stdout for the JSON line
        if getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(sys.stderr)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        import albumentations  # noqa: F401 - their Albumentations step only does something when it imports

        albumentations_version = albumentations.__version__
    except ImportError:
        albumentations_version = None

    overrides = parse_settings(args.settings)
    with tempfile.TemporaryDirectory(prefix="ultralytics-loader-") as scratch:
        data_yaml = scratch_copy(Path(args.data).expanduser(), args.datasets_root, Path(scratch))
        cfg = get_cfg(overrides={**overrides, "data": str(data_yaml), "imgsz": args.imgsz, "batch": args.batch})
        data = check_det_dataset(str(data_yaml), autodownload=False)
        dataset = build_yolo_dataset(cfg, data["train"], args.batch, data, mode="train")
        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)
        rate = images_per_second(dataset, args.images)
        sample = dataset[0]
        shape = list(sample["img"].shape)
        train_images = len(dataset)
        buffer_length = dataset.max_buffer_length
    hyp = {key: getattr(cfg, key) for key in HYP_KEYS}
    print(
        json.dumps(
            {
                "images_per_s": rate,
                "images": args.images,
                "imgsz": args.imgsz,
                "train_images": train_images,
                "output_shape": shape,
                "mosaic_buffer_images": buffer_length,
                "hyp": hyp,
                "ultralytics": ultralytics.__version__,
                "torch": torch.__version__,
                "opencv": cv2.__version__,
                "numpy": np.__version__,
                "albumentations": albumentations_version,
                "python": platform.python_version(),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
