"""Ablation: the AFF neck, Dynamic Head v3 and GKD distillation against the yolov12n baseline.

Every row trains from scratch with the same data, epochs, seed, image size, batch and optimiser settings and is
scored by the same evaluator (pycocotools) on the validation split. Rows: yolov12n; +AFF; +DyHead v3; +AFF+DyHead;
+GKD (teacher: yolov12s trained here with the same settings) with gradient-aware weighting; +GKD with a constant
weight equal to the mean weight the gradient-aware run applied (same average strength, no per-step adaptation).

    .venv/bin/python benchmarks/ablation.py --data sample --epochs 35 --imgsz 160 --batch 16 --seeds 0 1 2 \
        --out ablation-sample.jsonl
    .venv/bin/python benchmarks/ablation.py --summarize ablation-sample.jsonl      # the tables again, no training

Each finished row is appended to ``--out`` (JSON lines) at once, so a long multi-seed run that is stopped keeps what
it finished; the tables list every seed's rows and, with several seeds, each row's mean ± sample standard deviation
and its paired difference from the baseline trained with the same seed.

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

# COCO's size ranges (area below 32², 32² to 96², above 96² pixels of the image as stored), from pycocotools; -1 where
# the split has no object of that size.
SIZE_METRICS = {"AP_S": "metrics/mAP50-95_small(B)", "AP_M": "metrics/mAP50-95_medium(B)",
                "AP_L": "metrics/mAP50-95_large(B)", "AR_S": "metrics/AR50-95_small(B)",
                "AR_M": "metrics/AR50-95_medium(B)", "AR_L": "metrics/AR50-95_large(B)"}
CLAIM_ROWS = ("yolov12n", "yolov12n-aff", "yolov12n-dyhead")  # --rows claims: these, the teacher and +GKD
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
            if step:  # step 0 warms up
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["detection loss"])
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} s/step | x{statistics.median(values) / base:.2f} |")

def train_row(label: str, model_name: str, settings: dict, work: Path, args, record: dict | None = None,
              **extra) -> tuple[dict, YOLO]:
    """Train one row from scratch at ``settings['seed']``, score it, append it (with ``record``) to ``--out``."""
    seed = settings["seed"]
    torch.manual_seed(seed)
    model = YOLO(f"{model_name}.yaml")
    start = time.perf_counter()
    model.train(data=args.data, project=str(work), name=f"s{seed}_" + label.replace(" ", "_").replace("+", "plus"),
                verbose=False, plots=False, val=False, **settings, **extra)
    wall = time.perf_counter() - start
    metrics = model.val(data=args.data, imgsz=args.imgsz, batch=32)
    sizes = {short: metrics[key] for short, key in SIZE_METRICS.items()}
    cross = {}
    if args.cross_data:  # the same weights on another domain's val split (same class list), never trained on
        other = model.val(data=args.cross_data, imgsz=args.imgsz, batch=32)
        cross = {"cross": {"data": args.cross_data, "mAP50-95": other["metrics/mAP50-95(B)"],
                           "mAP50": other["metrics/mAP50(B)"]}}
    info = model.info(verbose=False, imgsz=640)
    row = {"row": label, "seed": seed, "data": args.data, "model": model_name, "params": info["parameters"],
           "gflops": info["gflops"], "latency_ms": latency_ms(model.model, args.latency_runs),
           "mAP50-95": metrics["metrics/mAP50-95(B)"], "mAP50": metrics["metrics/mAP50(B)"], "train_s": wall,
           "losses": final_losses(model.trainer_result.run_dir), "run_dir": str(model.trainer_result.run_dir),
           "sizes": sizes, **cross, **(record or {})}
    print(json.dumps(row), flush=True)
    if args.out:
        with args.out.open("a") as out:
            out.write(json.dumps(row) + "\n")
    return row, model


def seed_rows(settings: dict, work: Path, args, wanted: set[str]) -> list[dict]:
    """The trained rows of one seed: the architecture rows, then the teacher and the two GKD rows."""
    rows = []
    if wanted & {"arch", "dyhead", "claims"}:
        rows += [train_row(label, name, settings, work, args)[0] for label, name in ARCHITECTURE_ROWS
                 if "arch" in wanted or ("dyhead" in wanted and "dyhead" in name)
                 or ("claims" in wanted and name in CLAIM_ROWS)]
    if wanted & {"gkd", "claims"}:
        teacher_row, _ = train_row(f"teacher {args.teacher}", args.teacher, settings, work, args)
        rows.append(teacher_row)
        teacher_path = str(Path(teacher_row["run_dir"]) / "weights" / "last.safetensors")
        distill = {"teachers": [teacher_path], "terms": ["cls", "box"], "temperature": 2.0, "ratio": 0.5,
                   "fade_epochs": 5}
        gradient_row, _ = train_row("+GKD (gradient-aware)", "yolov12n", settings, work, args,
                                    distill={**distill, "weighting": "gradient"})
        rows.append(gradient_row)
        if "gkd" not in wanted:  # the claims set: the gradient-aware row only
            return rows
        constant = mean_column(Path(gradient_row["run_dir"]), "distill/weight")
        constant_row, _ = train_row("+GKD (constant)", "yolov12n", settings, work, args,
                                    record={"constant_weight": constant},
                                    distill={**distill, "weighting": "constant", "weight": constant})
        rows.append(constant_row)
    return rows


def _mean_sd(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def print_tables(rows: list[dict]) -> None:
    """Every row (one per seed), then, with several seeds, each row label's mean ± sample sd and its paired
    difference from the baseline of the same seed."""
    canonical = [label for label, _ in ARCHITECTURE_ROWS] + ["teacher", "+GKD (gradient-aware)", "+GKD (constant)"]

    def position(label: str) -> int:
        exact = [i for i, known in enumerate(canonical) if label == known]
        prefix = [i for i, known in enumerate(canonical) if label.startswith(known)]
        return (exact or prefix or [len(canonical)])[0]

    rows = sorted(rows, key=lambda r: (r.get("seed", 0), position(r["row"])))
    print("| row | seed | params | GFLOPs@640 | CPU ms@640 | mAP50-95 | mAP50 | train s | final train losses |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        losses = ", ".join(f"{k.split('/')[-1]}={v:.3g}" for k, v in r["losses"].items() if "loss" in k)
        label = r["row"] + (f" {r['constant_weight']:.3g}" if "constant_weight" in r else "")
        print(f"| {label} | {r.get('seed', '')} | {r['params']:,} | {r['gflops']:.2f} | {r['latency_ms']:.0f} | "
              f"{r['mAP50-95']:.4f} | {r['mAP50']:.4f} | {r['train_s']:.0f} | {losses} |")
    by_label: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: position(r["row"])):
        by_label.setdefault(r["row"], []).append(r)
    print_size_and_cross_tables(by_label)
    if max(len(group) for group in by_label.values()) < 2:
        return
    baseline_label = ARCHITECTURE_ROWS[0][0]
    baseline = {r["seed"]: r["mAP50-95"] for r in by_label.get(baseline_label, [])}
    print("\n| row | seeds | mAP50-95 mean ± sd | mAP50 mean ± sd | Δ mAP50-95 vs baseline, same seed | train s |")
    print("|---|---|---:|---:|---:|---:|")
    for label, group in by_label.items():
        paired = [r["mAP50-95"] - baseline[r["seed"]] for r in group if r["seed"] in baseline]
        delta = _mean_sd(paired) if paired and label != baseline_label else "—"
        print(f"| {label} | {','.join(str(r['seed']) for r in group)} | "
              f"{_mean_sd([r['mAP50-95'] for r in group])} | {_mean_sd([r['mAP50'] for r in group])} | {delta} | "
              f"{statistics.mean(r['train_s'] for r in group):.0f} |")


def print_size_and_cross_tables(by_label: dict[str, list[dict]]) -> None:
    """Per row label, mean ± sd over seeds of the size-bucketed AP/AR and of the cross-domain scores (rows recorded
    before these were measured are left out)."""
    sized = {label: [r for r in group if "sizes" in r] for label, group in by_label.items()}
    if any(sized.values()):
        print("\n| row | seeds | " + " | ".join(f"{k} mean ± sd" for k in SIZE_METRICS) + " |")
        print("|---|---|" + "---:|" * len(SIZE_METRICS))
        for label, group in sized.items():
            if group:
                cells = [_mean_sd([r["sizes"][k] for r in group], 3) for k in SIZE_METRICS]
                print(f"| {label} | {','.join(str(r['seed']) for r in group)} | {' | '.join(cells)} |")
    crossed = {label: [r for r in group if "cross" in r] for label, group in by_label.items()}
    if any(crossed.values()):
        print("\n| row | trained on -> evaluated on | seeds | mAP50-95 in domain | mAP50-95 cross-domain | "
              "mAP50 cross-domain |")
        print("|---|---|---|---:|---:|---:|")
        for label, group in crossed.items():
            if group:
                print(f"| {label} | {group[0]['data']} -> {group[0]['cross']['data']} | "
                      f"{','.join(str(r['seed']) for r in group)} | {_mean_sd([r['mAP50-95'] for r in group])} | "
                      f"{_mean_sd([r['cross']['mAP50-95'] for r in group])} | "
                      f"{_mean_sd([r['cross']['mAP50'] for r in group])} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sample")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--nbs", type=int, default=None,
                        help="nominal batch size (default: --batch, one optimiser step per batch; the sample set's 96 "
                             "images make 6 batches an epoch, which nbs 64 would merge into ~1.5 steps)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one full set of rows per seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-runs", type=int, default=10)
    parser.add_argument("--teacher", default="yolov12s")
    parser.add_argument("--rows", default="arch,gkd",
                        help="comma list: arch (4 trained architecture rows), dyhead (its 2 DyHead rows), gkd "
                             "(3 rows), claims (baseline, +AFF, +DyHead v3, the teacher, +GKD), static (size only), "
                             "overhead (GKD cost per training step)")
    parser.add_argument("--cross-data", default=None,
                        help="also evaluate every trained row on this dataset's val split (same classes, another "
                             "domain; e.g. --data sample --cross-data sample-photo)")
    parser.add_argument("--out", type=Path, default=None, help="JSON lines file; each finished row is appended")
    parser.add_argument("--summarize", type=Path, nargs="+", default=None,
                        help="print the tables of these JSON lines files and exit (no training)")
    args = parser.parse_args()
    if args.summarize:
        print_tables([json.loads(line) for path in args.summarize for line in path.read_text().splitlines()
                      if line.strip()])
        return 0
    args.seed = args.seeds[0]  # step_overhead's seed
    torch.set_num_threads(args.threads)
    settings = dict(epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, nbs=args.nbs or args.batch, workers=0,
                    optimizer="AdamW", lr0=0.004, warmup_epochs=1, close_mosaic=5, amp=False)
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
    for seed in args.seeds:
        rows += seed_rows({**settings, "seed": seed}, work, args, wanted)
    if not rows:
        return 0
    print(f"data={args.data} epochs={args.epochs} imgsz={args.imgsz} batch={args.batch} nbs={settings['nbs']} "
          f"seeds={args.seeds} threads={args.threads}; scored by yolov12.eval (pycocotools) on the val split")
    print_tables(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
