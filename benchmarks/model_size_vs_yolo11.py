"""Parameters and GFLOPs of YOLOv12 (paper v1.0 and turbo) against YOLO11, scale by scale (the article's size claims).

Counts come from the models as built here (nc = 80), which the zoo tests hold to the published tables: parameters of
the unfused model (``sum(p.numel())``), GFLOPs of the Conv+BN-fused model at 640 px without the attention matmuls
(the published convention; ``yolov12.utils.flops.count_gflops``). Run with
``python benchmarks/model_size_vs_yolo11.py``; the counts do not depend on the machine.
"""

from __future__ import annotations

from bench_common import machine_line

from yolov12.models import build_model, load_architecture
from yolov12.utils.flops import count_gflops

SCALES = "nsmlx"


def size(name: str) -> tuple[int, float]:
    """(parameters, GFLOPs at 640) of a zoo architecture."""
    model = build_model(load_architecture(name)).eval()
    return sum(p.numel() for p in model.parameters()), count_gflops(model, 640)


def change(value: float, reference: float) -> str:
    return f"{100 * (value - reference) / reference:+.1f}%"


def main() -> int:
    print(machine_line())
    print("| scale | YOLO11 params | YOLOv12 v1.0 params | YOLOv12 turbo params | YOLO11 GFLOPs | v1.0 GFLOPs | "
          "turbo GFLOPs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for scale in SCALES:
        (p11, g11), (p1, g1), (pt, gt) = (size(f"yolo11{scale}"), size(f"yolov12{scale}-v1"), size(f"yolov12{scale}"))
        print(f"| {scale.upper()} | {p11:,} | {p1:,} ({change(p1, p11)}) | {pt:,} ({change(pt, p11)}) | {g11:.2f} | "
              f"{g1:.2f} ({change(g1, g11)}) | {gt:.2f} ({change(gt, g11)}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
