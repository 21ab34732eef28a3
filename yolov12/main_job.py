"""The README's main job (first set-up command), on embedded defaults.

For now: build YOLOv12n, print its summary, and predict on the bundled sample photos, saving annotated images.
Later issues grow this into the full train -> register -> export -> serve run.
"""

from __future__ import annotations

import argparse
import logging
import time

from yolov12 import YOLO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="yolov12-platform main job on embedded defaults")
    parser.add_argument("--model", default="yolov12n.yaml")
    parser.add_argument("--project", default="runs/main")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    print(f"==> building {args.model}")
    model = YOLO(args.model)
    summary = model.info(verbose=False)
    print(f"    {summary['name']}: {summary['parameters']:,} parameters, {summary['gflops']:.2f} GFLOPs")
    print("==> predicting on the bundled sample photos (untrained weights: expect few or no boxes until you train)")
    for result in model.predict(save=True, project=args.project, name="predict", conf=0.25):
        print(f"    {result.path}: {len(result)} boxes, {result.speed['inference']:.0f} ms inference")
    print(f"==> annotated images in {args.project}/predict  ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
