"""Ablation of issue 6: the AFF neck, Dynamic Head v3 and GKD distillation against the yolov12n baseline.

Every row trains from scratch with the same data, epochs, seed, image size, batch and optimiser settings and is
scored by the same evaluator (pycocotools) on the validation split. Rows: yolov12n; +AFF; +DyHead v3; +AFF+DyHead;
+GKD (teacher: yolov12s trained here with the same settings) with gradient-aware weighting; +GKD with a constant
weight equal to the mean weight the gradient-aware run applied (same average strength, no per-step adaptation).

    .venv/bin/python benchmarks/ablation.py --data sample --epochs 30 --imgsz 160 --batch 16 --out ablation.json

Params and GFLOPs are at 640 (published convention: Conv+BN fused, attention matmuls excluded); CPU latency is the
median of ``--latency-runs`` batch-1 forwards of the fused eager model at 640 with 2 threads.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from yolov12 import YOLO

ARCHITECTURE_ROWS = [("yolov12n (baseline)", "yolov12n"), ("+AFF", "yolov12n-aff"), ("+DyHead v3", "yolov12n-dyhead"),
                     ("+AFF +DyHead v3", "yolov12n-aff-dyhead")]


def latency_ms(model: torch.nn.Module, runs: int, size: int = 640) -> float:
    """Median ms of batch-1 forwards of a fused copy in eval mode (after 3 warm-up forwards)."""
    import copy  # noqa: PLC0415

    probe = copy.deepcopy(model).float().eval().fuse()
    x = torch.rand(1, 3, size, size)
    times = []
    with torch.inference_mode():
        for i in range(runs + 3):
            start = time.perf_counter()
            probe(x)
            if i >= 3:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def final_losses(run_dir: Path) -> dict[str, float]:
    """Last epoch's train/*_loss and distill/* columns of results.csv."""
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    return {k: float(v) for k, v in rows[-1].items() if k.endswith("_loss") or k.startswith("distill/")}


def mean_column(run_dir: Path, column: str) -> float:
    rows = list(csv.DictReader((run_dir / "results.csv").open()))
    return statistics.mean(float(r[column]) for r in rows)


def step_overhead(args, steps: int = 6) -> None:
    """Seconds per training step (forward, loss, backward) of yolov12n without and with GKD (teacher yolov12s),
    interleaved so that machine load hits both alike; prints medians."""
    from yolov12.config.train import DistillSection  # noqa: PLC0415
    from yolov12.engine.distill import DistillationLoss  # noqa: PLC0415
    from yolov12.engine.losses import build_loss  # noqa: PLC0415

    torch.manual_seed(args.seed)
    student = YOLO("yolov12n.yaml").model.train()
    teacher = YOLO(f"{args.teacher}.yaml").model
    plain = build_loss(student)
    section = DistillSection(teachers=[args.teacher], terms=["cls", "box"])
    distill = DistillationLoss.build(student, build_loss(student), section, teachers=[teacher])
    batch = {"images": torch.rand(args.batch, 3, args.imgsz, args.imgsz), "batch_index": torch.arange(args.batch),
             "classes": torch.zeros(args.batch, dtype=torch.long),
             "boxes": torch.tensor([[0.5, 0.5, 0.3, 0.3]]).repeat(args.batch, 1)}
    times: dict[str, list[float]] = {"detection loss": [], "GKD (cls+box, gradient-aware)": []}
    for step in range(steps + 1):
        for name, loss_fn in zip(times, (plain, distill)):
            start = time.perf_counter()
            loss, _ = loss_fn(student(batch["images"]), batch)
            loss.backward()
            student.zero_grad(set_to_none=True)
            if step:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["detection loss"])
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} s/step | x{statistics.median(values) / base:.2f} |")


def train_row(label: str, model_name: str, settings: dict, work: Path, args, **extra) -> tuple[dict, YOLO]:
    torch.manual_seed(args.seed)
    model = YOLO(f"{model_name}.yaml")
    start = time.perf_counter()
    model.train(data=args.data, project=str(work), name=label.replace(" ", "_").replace("+", "plus"),
                verbose=False, plots=False, val=False, **settings, **extra)
    wall = time.perf_counter() - start
    metrics = model.val(data=args.data, imgsz=args.imgsz, batch=32)
    info = model.info(verbose=False, imgsz=640)
    row = {"row": label, "model": model_name, "params": info["parameters"], "gflops": info["gflops"],
           "latency_ms": latency_ms(model.model, args.latency_runs), "mAP50-95": metrics["metrics/mAP50-95(B)"],
           "mAP50": metrics["metrics/mAP50(B)"], "train_s": wall,
           "losses": final_losses(model.trainer_result.run_dir), "run_dir": str(model.trainer_result.run_dir)}
    print(json.dumps(row), flush=True)
    return row, model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--nbs", type=int, default=None,
                        help="nominal batch size (default: --batch, one optimiser step per batch; the sample set's 96 "
                             "images make 6 batches an epoch, which nbs 64 would merge into ~1.5 steps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-runs", type=int, default=10)
    parser.add_argument("--teacher", default="yolov12s")
    parser.add_argument("--rows", default="arch,gkd",
                        help="comma list: arch (4 trained architecture rows), gkd (3 rows), static (size only), "
                             "overhead (GKD cost per training step)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = dict(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, nbs=args.nbs or args.batch, workers=0,
                    optimizer="AdamW", lr0=0.004,
                    warmup_epochs=1, close_mosaic=5, seed=args.seed, amp=False)
    work = Path(tempfile.mkdtemp(prefix="ablation-"))
    rows = []
    wanted = set(args.rows.split(","))
    if "overhead" in wanted:
        step_overhead(args)
    if "static" in wanted:  # params and GFLOPs only (no training): exact, independent of machine load
        print("| row | params | GFLOPs@640 |\n|---|---:|---:|")
        for label, name in ARCHITECTURE_ROWS:
            info = YOLO(f"{name}.yaml").info(verbose=False, imgsz=640)
            print(f"| {label} | {info['parameters']:,} | {info['gflops']:.2f} |")
    if "arch" in wanted:
        rows += [train_row(label, name, settings, work, args)[0] for label, name in ARCHITECTURE_ROWS]
    if "gkd" in wanted:
        teacher_row, teacher = train_row(f"teacher {args.teacher}", args.teacher, settings, work, args)
        rows.append(teacher_row)
        teacher_path = str(Path(teacher_row["run_dir"]) / "weights" / "last.safetensors")
        distill = {"teachers": [teacher_path], "terms": ["cls", "box"], "temperature": 2.0, "ratio": 0.5,
                   "fade_epochs": 5}
        gradient_row, _ = train_row("+GKD (gradient-aware)", "yolov12n", settings, work, args,
                                    distill={**distill, "weighting": "gradient"})
        rows.append(gradient_row)
        constant = mean_column(Path(gradient_row["run_dir"]), "distill/weight")
        constant_row, _ = train_row(f"+GKD (constant {constant:.3g})", "yolov12n", settings, work, args,
                                    distill={**distill, "weighting": "constant", "weight": constant})
        rows.append(constant_row)
    if not rows:
        return 0
    print(f"data={args.data} epochs={args.epochs} imgsz={args.imgsz} batch={args.batch} nbs={settings['nbs']} "
          f"seed={args.seed} "
          f"threads={args.threads}; scored by yolov12.eval (pycocotools) on the val split")
    print("| row | params | GFLOPs@640 | CPU ms@640 | mAP50-95 | mAP50 | train s | final train losses |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        losses = ", ".join(f"{k.split('/')[-1]}={v:.3g}" for k, v in r["losses"].items() if "loss" in k)
        print(f"| {r['row']} | {r['params']:,} | {r['gflops']:.2f} | {r['latency_ms']:.0f} | {r['mAP50-95']:.4f} | "
              f"{r['mAP50']:.4f} | {r['train_s']:.0f} | {losses} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
