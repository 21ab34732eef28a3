"""Train an Ultralytics model on a data.yaml (run with the separate Ultralytics venv's python).

Prints one JSON line: wall time of the whole ``train`` call, images per second over it, and the last.pt path (our
side imports that checkpoint and validates it with the same evaluator as our own model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="yolo12n.yaml")
    parser.add_argument("--data", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--train-images", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("settings", nargs="*", help="key=value training settings (Ultralytics names)")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(args.threads)
    settings = {}
    for item in args.settings:
        key, _, value = item.partition("=")
        settings[key] = json.loads(value) if value[:1] in "0123456789-[{tf" and value not in ("", "-") else value
    torch.manual_seed(0)
    model = YOLO(args.model)
    start = time.perf_counter()
    model.train(data=args.data, project=args.project, name="ultralytics", exist_ok=True, **settings)
    wall = time.perf_counter() - start
    last = Path(args.project) / "ultralytics" / "weights" / "last.pt"
    epochs = settings.get("epochs", 100)
    print(json.dumps({"wall_s": wall, "images_per_s": args.train_images * epochs / wall, "last": str(last),
                      "torch": torch.__version__}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
